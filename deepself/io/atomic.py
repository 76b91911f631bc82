"""Write a file under a temporary name beside it and rename it when complete: :func:`atomic_path`.

Every stage writes its results this way, so an interrupted stage never leaves a file that looks
finished. The module needs only the standard library: the workflow's parsing and the jobs that
write CSV or JSON import it without h5py or numpy (the HDF5 stores of :mod:`deepself.io.store`
use it too).
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
from pathlib import Path
from typing import Iterator

from deepself.io.lock import process_alive


def _temporary_name(final: Path) -> Path:
    """The writer's temporary file beside ``final``: its host and process id name its owner."""
    return final.with_name(f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def _owner_gone(tmp: Path, final: Path) -> bool:
    """Whether the temporary file ``tmp`` of ``final`` belongs to a process of this host that has ended.

    A file of another host, or of a process that still runs here, is another writer's: it is never
    removed. Names without an owner (an older deepself wrote ``.<name>.tmp-<pid>``) count as
    this host's.
    """
    owner = tmp.name[len(f".{final.name}.tmp-"):]
    host, _, pid = owner.rpartition("-")
    if host and host != socket.gethostname():
        return False
    try:
        return not process_alive(int(pid))
    except ValueError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name carries the writer's host and process id. Temporary files left by a writer
    that was killed (kill -9 skips the cleanup below) are removed here, but only those whose
    owner is gone: a process of this host that has ended. Another run's file, on this host or
    another, is left alone (two runs on one results folder are refused by the workflow's lock,
    :mod:`deepself.io.lock`, before they get here).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(final)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        if stale != tmp and _owner_gone(stale, final):
            stale.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
