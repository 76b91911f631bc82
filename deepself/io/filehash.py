"""Content hashes of the data files, with a stat cache so that an unchanged file is never read twice.

The workflow reruns ingest when the content of a listed file changes, not its modification time:
``touch`` or a copy that keeps the bytes reruns nothing, one changed byte reruns ingest and what
follows it. Hashing every file on every run would read all the data each time, so, as git's index
and DVC do, each file's hash is cached under its stat: (path, size, mtime_ns, ctime_ns, inode, device). A
file whose stat matches the cache costs one ``os.stat``; a file whose stat changed (touched, copied,
edited) is read once and hashed (SHA-256, about 1.3 GB/s on one core here), and its new stat
recorded.

The same cache keeps what each file's header says (a ``.npy`` shape, an audio file's length and
rate), which the checks before any job read, under the same stat.

The cache is an SQLite file (``<results>/.deepself-cache/filehashes.sqlite``): safe for two
processes at once, and a damaged or unreadable cache is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

def cache_path(results: str | os.PathLike) -> Path:
    """The hash cache of a results folder (the config's ``results``), shared by its experiments."""
    return Path(results) / ".deepself-cache" / "filehashes.sqlite"


_SCHEMA = ("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
           "ctime_ns INTEGER, inode INTEGER, device INTEGER, sha256 TEXT)")
# what a file's header says (a .npy's shape, an audio file's frames and rate), by what and stat
_HEADERS = ("CREATE TABLE IF NOT EXISTS headers (path TEXT, what TEXT, size INTEGER, mtime_ns INTEGER, "
            "ctime_ns INTEGER, inode INTEGER, device INTEGER, value TEXT, PRIMARY KEY (path, what))")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in large blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    # ctime too, as git's index keeps it: no one can set it back, so an edit in place whose
    # modification time was restored (touch -d, os.utime) is still seen
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


class HashCache:
    """Content hashes of files by their stat, kept in an SQLite file (or in memory when ``path`` is None)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._db = self._open()
        self._stats: dict[str, tuple] = {}  # the first stat of each file, shared by headers() and hashes()

    def _stat_key(self, path: str) -> tuple[int, int, int, int, int]:
        """A file's stat key, taken once per cache object (preflight asks for headers, then hashes, of the
        same files; a file changed in between is seen by the next run, as its stat then differs from the kept one)."""
        key = self._stats.get(path)
        if key is None:
            key = self._stats[path] = _stat_key(os.stat(path))
        return key

    def _open(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute(_SCHEMA)
            db.execute(_HEADERS)
            return db
        except (OSError, sqlite3.Error) as err:
            log.warning("%s: hash cache unusable (%s); hashing without it this time", self.path, err)
            return None

    def _cached(self, paths: list[str]) -> dict[str, tuple]:
        if self._db is None:
            return {}
        try:
            rows = self._db.execute("SELECT path, size, mtime_ns, ctime_ns, inode, device, sha256 FROM files").fetchall()
        except sqlite3.Error as err:
            log.warning("%s: hash cache unreadable (%s); hashing every file again", self.path, err)
            return {}
        wanted = set(paths)
        return {r[0]: (tuple(r[1:6]), r[6]) for r in rows if r[0] in wanted}

    def hashes(self, paths: list[str]) -> dict[str, str]:
        """SHA-256 of each file of ``paths`` (absolute paths), reading only those whose stat changed."""
        cached = self._cached(paths)
        out, fresh, read_bytes, start = {}, [], 0, time.perf_counter()
        for p in paths:
            key = self._stat_key(p)
            hit = cached.get(p)
            if hit is not None and hit[0] == key:
                out[p] = hit[1]
                continue
            out[p] = file_sha256(p)
            read_bytes += key[0]
            if _stat_key(os.stat(p)) == key:  # not changed while it was read: its hash may be kept
                fresh.append((p, *key, out[p]))
        if fresh:
            elapsed = time.perf_counter() - start
            log.info("hashed %d changed or new files (%.1f MB) in %.2f s", len(fresh), read_bytes / 1e6, elapsed)
            self._store(fresh)
        return out

    def _store(self, rows: list[tuple], table: str = "files") -> None:
        if self._db is None:
            return
        marks = ", ".join("?" * len(rows[0]))
        try:
            with self._db:
                self._db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", rows)
        except sqlite3.Error as err:
            log.warning("%s: could not update the hash cache (%s)", self.path, err)

    def headers(self, what: str, paths: list[str], probe: Callable[[str], object]) -> dict[str, object]:
        """``probe(path)`` of each file (what its header says, JSON-able), probed again only when its stat changed.

        ``what`` names the probe (one cache serves several); a probe that returns None (the header
        could not be read) is not cached, so that the file is probed again next time.
        """
        cached = {}
        if self._db is not None:
            try:
                rows = self._db.execute("SELECT path, size, mtime_ns, ctime_ns, inode, device, value FROM headers "
                                        "WHERE what = ?", (what,)).fetchall()
                cached = {r[0]: (tuple(r[1:6]), r[6]) for r in rows}
            except sqlite3.Error as err:
                log.warning("%s: hash cache unreadable (%s); reading every header again", self.path, err)
        out, fresh = {}, []
        for p in paths:
            key = self._stat_key(p)
            hit = cached.get(p)
            if hit is not None and hit[0] == key:
                out[p] = json.loads(hit[1])
                continue
            out[p] = probe(p)
            if out[p] is not None:
                fresh.append((p, what, *key, json.dumps(out[p])))
        if fresh:
            self._store(fresh, "headers")
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
