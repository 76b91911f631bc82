"""The content-hash cache of the data files: an unchanged stat costs no read, a changed one one hash."""

from __future__ import annotations

import hashlib
import os

import pytest

from deepself.io import filehash
from deepself.io.filehash import HashCache


@pytest.fixture
def files(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(bytes([i]) * 1000)
        paths.append(str(p))
    return paths


@pytest.fixture
def reads(monkeypatch):
    """The files :func:`filehash.file_sha256` reads, in order."""
    seen = []
    real = filehash.file_sha256

    def counting(path):
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(filehash, "file_sha256", counting)
    return seen


def test_hashes_are_the_files_sha256(tmp_path, files):
    got = HashCache(tmp_path / "c.sqlite").hashes(files)
    assert got == {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in files}


def test_an_unchanged_stat_reads_nothing_and_a_touch_reads_once(tmp_path, files, reads):
    cache = tmp_path / "c.sqlite"
    first = HashCache(cache).hashes(files)
    assert sorted(reads) == sorted(files)
    reads.clear()
    assert HashCache(cache).hashes(files) == first and reads == []  # a new process: the cache is on disk
    os.utime(files[2], ns=(10**18, 10**18))  # touch: same bytes, new time
    assert HashCache(cache).hashes(files) == first and reads == [files[2]]
    reads.clear()
    assert HashCache(cache).hashes(files) == first and reads == []


def test_a_changed_byte_with_the_old_time_changes_the_hash(tmp_path, files):
    cache = tmp_path / "c.sqlite"
    before = HashCache(cache).hashes(files)
    st = os.stat(files[1])
    with open(files[1], "r+b") as f:
        f.write(b"\xff")
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p or rsync -a would leave it
    after = HashCache(cache).hashes(files)
    assert after[files[1]] != before[files[1]]
    assert {p: h for p, h in after.items() if p != files[1]} == {p: h for p, h in before.items() if p != files[1]}


def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path, files, reads):
    cache = tmp_path / "c.sqlite"
    cache.write_bytes(b"not a database at all" * 100)
    got = HashCache(cache).hashes(files)
    assert got == HashCache(None).hashes(files)


def test_headers_are_probed_again_only_when_the_stat_changed(tmp_path, files):
    probed = []

    def probe(path):
        probed.append(path)
        return None if path == files[0] else [os.path.getsize(path)]  # files[0]: an unreadable header

    cache = tmp_path / "c.sqlite"
    first = HashCache(cache).headers("size", files, probe)
    assert first[files[0]] is None and first[files[1]] == [1000] and len(probed) == 5
    probed.clear()
    assert HashCache(cache).headers("size", files, probe) == first
    assert probed == [files[0]]  # an unreadable header is not remembered
    probed.clear()
    os.utime(files[3], ns=(10**18, 10**18))
    assert HashCache(cache).headers("size", files, probe) == first and probed == [files[0], files[3]]
    probed.clear()
    HashCache(cache).headers("other", files[1:2], probe)  # another probe's values are its own
    assert probed == [files[1]]
