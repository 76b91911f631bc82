"""kill -9 during each stage, then run again: the workflow finishes with the results of an uninterrupted run.

The tiny config runs twice: once uninterrupted, once as a chain of interrupted runs. Each run of the
chain is started, watched, and its whole process group (snakemake and its jobs) killed with SIGKILL
as soon as the target stage is under way: a store half written (ingest, features: the temporary
file of :func:`deepself.io.atomic.atomic_path` is there), a training job past its first epoch (its
``resume.pt`` is there, its outputs are not), a fusion job started (its log is open), the report
half drawn (some of its files are there). The next run of the chain is the rerun of the previous
kill (``rerun-incomplete`` comes from ``profiles/default``); the last one runs to the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"

# Stage -> true once its first job is under way, read from results/tiny.
UNDER_WAY = {
    "ingest": lambda R: any(R.glob("raw/.*.h5.tmp-*")),
    "features": lambda R: any(R.glob("features/.*.h5.tmp-*")),
    "train": lambda R: any(R.glob("models/*/fold*/resume.pt")),
    "fuse": lambda R: any(R.glob("logs/fuse/*/fold*.log")),
    "report": lambda R: (R / "report").is_dir() and any((R / "report").iterdir()),
}
# What a stage leaves when it is complete: the kill must come before it.
DONE = {
    "ingest": lambda R: all((R / "raw" / f"{m}.h5").exists() for m in ("accel", "gyro")),
    "features": lambda R: (R / "features" / "gyro_spec.h5").exists(),
    "train": lambda R: len(list(R.glob("models/*/fold*/predictions.csv"))) == 6,
    "fuse": lambda R: len(list(R.glob("fusions/both/fold*/predictions.csv"))) == 3,
    "report": lambda R: (R / "report" / "report.md").exists(),
}


def snakemake_command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", "--configfile", str(workdir / "tiny.yaml")]


def unlock(workdir: Path) -> None:
    """What a user runs after a kill -9: snakemake's lock of the working directory outlives the process."""
    result = subprocess.run(snakemake_command(workdir) + ["--unlock"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def run_and_kill(workdir: Path, stage: str, timeout: float = 600) -> bool:
    """Run the workflow; SIGKILL its process group once ``stage`` is under way. False if the kill came too late."""
    results = workdir / "results" / "tiny"
    unlock(workdir)
    with open(workdir / f"run-{stage}.log", "w") as log:
        proc = subprocess.Popen(snakemake_command(workdir), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while not UNDER_WAY[stage](results):
                assert proc.poll() is None, f"the run ended before {stage} was under way"
                assert time.monotonic() < deadline, f"{stage} not under way after {timeout} s"
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    time.sleep(0.2)
    assert living(proc.pid) == [], "jobs of the killed run survived it"
    return not DONE[stage](results)


def living(group: int) -> list[str]:
    """Processes of the process group ``group`` that are not zombies (orphans a container may not reap)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _, pgid = text.rsplit(")", 1)[1].split()[:3]
        if int(pgid) == group and state != "Z":
            found.append(text.split(")")[0] + ")")
    return found


def run_to_end(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir), cwd=REPO, capture_output=True, text=True, timeout=900)


def result_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    results = workdir / "results" / "tiny"
    paths = [*sorted(results.glob("models/*/fold*/predictions.csv")),
             *sorted(results.glob("fusions/*/fold*/predictions.csv"))]
    paths.append(results / "report" / "summary.csv")
    return {str(p.relative_to(results)): pd.read_csv(p) for p in paths}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, pd.DataFrame]:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    shutil.copy(TINY, workdir / "tiny.yaml")
    result = run_to_end(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result_tables(workdir)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """The chain of killed runs, then one to the end; returns its working directory."""
    for _ in range(3):
        # An ingest job writes the tiny stores in some 20 ms: a kill may land after the rename; start again then.
        workdir = tmp_path_factory.mktemp("interrupted")
        shutil.copy(TINY, workdir / "tiny.yaml")
        if run_and_kill(workdir, "ingest"):
            break
    else:
        pytest.fail("three kills in a row came after ingest had finished")
    for stage in list(UNDER_WAY)[1:]:
        assert run_and_kill(workdir, stage), f"{stage} had finished when it was killed"
    unlock(workdir)
    result = run_to_end(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_killed_in_every_stage_the_rerun_ends_as_an_uninterrupted_run(uninterrupted, interrupted):
    resumed = result_tables(interrupted)
    assert sorted(resumed) == sorted(uninterrupted)
    assert len(resumed) == 6 + 3 + 1
    for name, frame in uninterrupted.items():
        numeric = frame.select_dtypes("number").columns
        pd.testing.assert_frame_equal(resumed[name].drop(columns=numeric), frame.drop(columns=numeric), obj=name)
        np.testing.assert_allclose(resumed[name][numeric].to_numpy(float), frame[numeric].to_numpy(float),
                                   atol=1e-6, rtol=0, err_msg=name)
    # the interrupted training job resumed rather than starting over
    logs = "\n".join(p.read_text() for p in (interrupted / "results" / "tiny" / "logs" / "train").rglob("*.log"))
    assert "resuming after epoch" in logs


def test_a_rerun_leaves_no_temporary_files(interrupted):
    left = sorted(str(p.relative_to(interrupted)) for p in (interrupted / "results").rglob(".*.tmp-*"))
    assert left == []
