"""One run of the workflow at a time on a results folder: deepself's own lock, beside the results.

Snakemake locks its working directory (``.snakemake/locks``), not the output folders: two runs with
different ``--directory`` (or from two checkouts) writing into one ``results/<experiment>`` would
overwrite each other's files. The workflow takes this lock when it starts jobs and frees it when
it ends; a second run meanwhile stops with the first run's process id and host.

The lock is a small JSON file, created with ``O_EXCL`` (atomic on local file systems and on NFS
v3+). A lock whose run has ended without freeing it (kill -9, a power cut) is taken over when its
process is gone from this host; a lock of another host is never taken over, as its process
cannot be checked from here: the error says which file to remove once that run is over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from deepself.errors import DeepselfError

LOCK_NAME = ".deepself.lock"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (signal 0 tests it without touching it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, run by another user
        return True
    return True


class RunLock:
    """The lock of one results folder (``<folder>/.deepself.lock``), held by this process."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(os.path.abspath(folder)) / LOCK_NAME
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}
        self.held = False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`DeepselfError` naming the run that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a second try after removing a dead run's lock
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder == self.owner:
                    self.held = True
                    return
                if holder is not None and not self._gone(holder):
                    raise DeepselfError(self._busy_message(holder)) from None
                self.path.unlink(missing_ok=True)  # its run ended without freeing it
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({**self.owner, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cwd": os.getcwd()}, f)
            self.held = True
            return
        raise DeepselfError(f"{self.path}: could not take the lock of this results folder; try again")

    def release(self) -> None:
        """Free the lock if this process holds it (another run's lock is never removed)."""
        if self.held and self._holder() == self.owner:
            self.path.unlink(missing_ok=True)
        self.held = False

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
            return {"pid": int(data["pid"]), "host": str(data["host"])}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            # being written this instant, or damaged: a lock younger than a minute is respected
            young = time.time() - self.path.stat().st_mtime < 60 if self.path.exists() else False
            return {"pid": -1, "host": "?"} if young else None

    def _gone(self, holder: dict) -> bool:
        return holder["host"] == socket.gethostname() and not process_alive(holder["pid"])

    def _busy_message(self, holder: dict) -> str:
        where = "this host" if holder["host"] == socket.gethostname() else f"host {holder['host']}"
        return (f"{self.path.parent}: another deepself run (process {holder['pid']} on {where}) is writing "
                f"these results; wait for it to finish, or give this run another results folder or experiment "
                f"name. If that run is over (its host went down), remove {self.path}")
