"""Stores that changed on disk, temporary files of other writers, and two runs on one results folder.

- A store whose bytes changed after deepself wrote it (one sample's chunk overwritten) is found
  where it is read, moved aside to ``<name>.corrupt`` (nothing deleted), and the error says to run
  again; a truncated one likewise (issue 23, item 3; the whole two-run rebuild is in
  tests/workflow/test_workflow.py).
- ``atomic_path`` removes a temporary file only when its writer is gone: another live writer's
  file, on this host or another, stays (item 7).
- The workflow's lock (``deepself.io.lock.RunLock``): a second run on the same results folder is
  refused, naming the first run's process and host; a dead run's lock is taken over (item 7).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path
from deepself.io.lock import LOCK_NAME, RunLock
from deepself.io.store import CorruptStore, create_store, open_store
from deepself.signal.stages import filter_store


def _store(path, n=6):
    x = np.random.default_rng(0).standard_normal((n, 1, 400)).astype(np.float32)
    meta = {"kind": "signal", "modality": "main", "sample_rate": 100}
    with create_store(path, n, (1, 400), meta) as writer:
        writer.write([f"s{i}" for i in range(n)], x)
    return x


def test_a_store_with_one_sample_overwritten_is_found_and_moved_aside(tmp_path):
    path = tmp_path / "raw.h5"
    x = _store(path)
    with h5py.File(path, "r+") as h5:  # one sample's chunk changed in place, attributes untouched
        h5["x"][3] = x[3] + 1.0
    with pytest.raises(CorruptStore, match=r"raw\.h5: its content does not match the fingerprint.*moved to "
                                           r"raw\.h5\.corrupt.*run again"):
        open_store(path)
    assert not path.exists() and (tmp_path / "raw.h5.corrupt").exists()  # kept, not deleted


def test_a_stage_reading_a_changed_store_stops_and_names_it(tmp_path):
    src = tmp_path / "raw.h5"
    x = _store(src)
    with h5py.File(src, "r+") as h5:
        h5["x"][0] = -x[0]
    with pytest.raises(DeepselfError, match="raw.h5: its content does not match"):
        filter_store(src, tmp_path / "filtered.h5", [1.0, 20.0], 4)
    assert not (tmp_path / "filtered.h5").exists()


def test_a_truncated_store_is_moved_aside(tmp_path):
    path = tmp_path / "spec.h5"
    _store(path)
    os.truncate(path, 3000)
    with pytest.raises(CorruptStore, match="not a readable HDF5 store.*moved to spec.h5.corrupt"):
        open_store(path)
    assert (tmp_path / "spec.h5.corrupt").stat().st_size == 3000


def test_an_intact_store_opens_and_verifying_can_be_skipped(tmp_path):
    path = tmp_path / "raw.h5"
    x = _store(path)
    with open_store(path) as store:
        np.testing.assert_array_equal(store.read(), x)
    with h5py.File(path, "r+") as h5:
        h5["x"][1] = 0.0
    with open_store(path, verify=False) as store:  # the caller's choice: read as it is
        assert store.read().shape == x.shape


# --- temporary files of other writers ---------------------------------------------------------------

@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_atomic_path_leaves_a_live_writers_temporary_file(tmp_path, live_pid):
    final = tmp_path / "out.csv"
    theirs = tmp_path / f".out.csv.tmp-{socket.gethostname()}-{live_pid}"
    other_host = tmp_path / f".out.csv.tmp-another-host.example-{_dead_pid()}"
    theirs.write_text("being written")
    other_host.write_text("being written elsewhere")
    with atomic_path(final) as tmp:
        tmp.write_text("mine")
    assert final.read_text() == "mine"
    assert theirs.read_text() == "being written" and other_host.exists()


def test_atomic_path_removes_a_dead_writers_temporary_file(tmp_path):
    final = tmp_path / "out.csv"
    dead = tmp_path / f".out.csv.tmp-{socket.gethostname()}-{_dead_pid()}"
    old_style = tmp_path / f".out.csv.tmp-{_dead_pid()}"  # the name an earlier deepself used
    dead.write_text("left by kill -9")
    old_style.write_text("left by kill -9")
    with atomic_path(final) as tmp:
        tmp.write_text("mine")
    assert not dead.exists() and not old_style.exists()


# --- one run at a time on a results folder ----------------------------------------------------------

def test_a_second_run_is_refused_naming_the_first(tmp_path, live_pid):
    (tmp_path / LOCK_NAME).write_text(f'{{"pid": {live_pid}, "host": "{socket.gethostname()}"}}')
    with pytest.raises(DeepselfError, match=rf"another deepself run \(process {live_pid} on this host\)"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_NAME).exists()


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text('{"pid": 1, "host": "node17.cluster"}')
    with pytest.raises(DeepselfError, match=r"process 1 on host node17.cluster.*remove .*\.deepself\.lock"):
        RunLock(tmp_path).acquire()


def test_a_dead_runs_lock_is_taken_over_and_freed(tmp_path):
    (tmp_path / LOCK_NAME).write_text(f'{{"pid": {_dead_pid()}, "host": "{socket.gethostname()}"}}')
    lock = RunLock(tmp_path)
    lock.acquire()
    assert f'"pid": {os.getpid()}' in (tmp_path / LOCK_NAME).read_text()
    other = subprocess.run([sys.executable, "-c", f"from deepself.io.lock import RunLock; RunLock({str(tmp_path)!r})"
                            ".acquire()"], capture_output=True, text=True)  # the same folder, another process
    assert other.returncode != 0 and f"process {os.getpid()} on this host" in other.stderr
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
