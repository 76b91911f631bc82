"""The workflow on a real SLURM cluster through profiles/slurm.

`scripts/slurm-local.sh start` makes this machine a one-node SLURM cluster (installing slurm and
munge with apt-get where they are missing). On it a copy of tests/configs/tiny.yaml runs through
profiles/slurm, adapted to that node as a user would adapt it to theirs (`node_profile`), while the
same config runs locally beside it. One training job is cancelled with scancel after its second
epoch and snakemake is run again; a third run follows. Shown: every job of the DAG was a SLURM job,
the cancelled one continued from its last epoch, every prediction equals the local run's, and the
third run has nothing to do. The module is skipped where it cannot start SLURM (not root, neither
slurm nor apt-get, or the daemons fail).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
CLUSTER = REPO / "scripts" / "slurm-local.sh"
# Held while a test run uses the machine's one cluster, so that a second run waits for it instead of
# having the cluster stopped under it.
LOCK = Path(os.environ.get("DEEPSELF_SLURM_DIR", "/tmp/deepself-slurm") + ".lock")

# The model whose fold 1 is cancelled trains this many epochs (a few seconds), so that the job is
# still running when scancel reaches it; the other model keeps tiny's 3 epochs.
EPOCHS = 250
CANCELLED = ("cnn", "1")
# Training threads of both runs: CPU training gives the same numbers only with the same threads.
THREADS = 1


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: slurmd runs as root (and apt-get installs slurm)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "slurm is not installed and there is no apt-get to install it"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def cluster():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        already_up = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode == 0
        started = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=1200)
        if started.returncode != 0:
            pytest.skip(f"SLURM could not be started: {started.stderr.strip()[-1500:]}")
        # A test run stopped from outside (timeout, CI) still kills its snakemake runs and stops the cluster.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            if not already_up:
                subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, timeout=120)


def node_profile(directory: Path) -> Path:
    """profiles/slurm with what this node needs changed, written to ``directory``."""
    profile = yaml.safe_load(PROFILE.read_text())
    # The node has 2 CPUs and no accounting database: memory that fits, job states from
    # squeue (sacct would answer nothing), status checks sooner than a cluster's 40 s.
    for resources in profile["set-resources"].values():
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], 2000)
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 10
    # Keep every job's SLURM log: the evidence that it ran as a SLURM job.
    profile["slurm-keep-successful-logs"] = True
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


def snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(config), *args]


def start(cmd: list[str], out: Path) -> subprocess.Popen:
    with open(out, "w") as fh:
        return subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, out: Path, timeout: float) -> tuple[int, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode, out.read_text()


def cancel_after_epoch(workdir: Path, proc: subprocess.Popen, epoch: int = 2, timeout: float = 480) -> str:
    """scancel the training job of CANCELLED once its log shows ``epoch``; its SLURM job id."""
    model, fold = CANCELLED
    log = workdir / "results" / "tiny" / "logs" / "train" / model / f"fold{fold}.log"
    job_logs = workdir / ".snakemake" / "slurm_logs" / "rule_train" / f"{model}_{fold}"
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        epochs = [int(e) for e in re.findall(r"epoch +(\d+)/", log.read_text())] if log.exists() else []
        if epochs and max(epochs) >= epoch:
            (job_log,) = job_logs.glob("*.log")
            subprocess.run(["scancel", job_log.stem], check=True)
            return job_log.stem
        time.sleep(0.1)
    raise AssertionError(f"training job {model} fold {fold} never reached epoch {epoch}")


def slurm_jobs(workdir: Path) -> list[tuple[str, str, str]]:
    """(rule, wildcards, SLURM job id) of every job log the plugin wrote."""
    root = workdir / ".snakemake" / "slurm_logs"
    jobs = []
    for path in sorted(root.glob("rule_*/**/*.log")):
        rule_dir, *wildcards, _ = path.relative_to(root).parts
        jobs.append((rule_dir.removeprefix("rule_"), "/".join(wildcards), path.stem))
    return jobs


def squeue() -> dict[str, dict[str, str]]:
    """Every job SLURM still knows (finished ones included): id -> state, comment, GRES."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%b"], check=True,
                         capture_output=True, text=True).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return {r[0]: {"state": r[1], "comment": r[2], "gres": r[3]} for r in rows}


def job_counts(output: str) -> Counter:
    table = output.split("Job stats:")[1].split("total")[0]
    return Counter({m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)})


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm")
    config = yaml.safe_load(TINY.read_text())
    # Predictions are compared number for number: train on the CPU in both runs (the node's
    # stand-in GPUs, or a real one, would otherwise draw training onto CUDA).
    config["train"]["device"] = "cpu"
    config["train"]["threads"] = THREADS  # the node's 2 CPUs (the CPUs of a training job come from config)
    config["models"][CANCELLED[0]]["train"] = {"epochs": EPOCHS}
    profile = node_profile(base / "profile")
    workdirs = {}
    for name in ("local", "slurm"):
        workdirs[name] = base / name
        workdirs[name].mkdir()
        (workdirs[name] / "tiny.yaml").write_text(yaml.safe_dump(config))

    def cmd(name, *args):
        return snakemake_cmd(workdirs[name], workdirs[name] / "tiny.yaml", *args)

    procs = {"local": start(cmd("local", "--cores", "2", "--resources", "gpu=2"), base / "local.out"),
             "first": start(cmd("slurm", "--profile", str(profile)), base / "first.out")}
    try:
        cancelled = cancel_after_epoch(workdirs["slurm"], procs["first"])
        outputs = {"first": finish(procs["first"], base / "first.out", 600)}
        for run in ("second", "third"):
            procs[run] = start(cmd("slurm", "--profile", str(profile)), base / f"{run}.out")
            outputs[run] = finish(procs[run], base / f"{run}.out", 600)
        outputs["local"] = finish(procs["local"], base / "local.out", 600)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return {"workdirs": workdirs, "outputs": outputs, "cancelled": cancelled}


def test_the_run_with_a_cancelled_job_fails_and_the_rerun_finishes(runs):
    outputs = runs["outputs"]
    assert outputs["first"][0] != 0, "the run with a cancelled job should fail"
    assert f"SLURM-job '{runs['cancelled']}' failed" in outputs["first"][1]
    assert outputs["second"][0] == 0, outputs["second"][1][-3000:]


def test_every_job_ran_as_a_slurm_job(runs):
    jobs = slurm_jobs(runs["workdirs"]["slurm"])
    dag = job_counts(runs["outputs"]["local"][1])
    # Rules without a command (`all`) run in snakemake itself; every other job is an sbatch job,
    # the cancelled training job twice (it was submitted again by the second run).
    slurm_output = "".join(runs["outputs"][run][1] for run in ("first", "second", "third"))
    run_locally = set(re.findall(r"^localrule (\w+):", slurm_output, flags=re.M))
    expected = Counter({rule: n for rule, n in dag.items() if rule not in run_locally}) + Counter(train=1)
    assert Counter(rule for rule, _, _ in jobs) == expected
    assert sum(expected.values()) == 15 + 1  # tiny's 16 jobs but `all`, and the resubmitted one
    known = squeue()
    for rule, wildcards, job_id in jobs:
        assert job_id in known, f"SLURM has no job {job_id} ({rule} {wildcards})"
        job = known[job_id]
        assert job["comment"] == f"rule_{rule}" + (f"_wildcards_{wildcards}" if wildcards else "")
        expected_state = "CANCELLED" if job_id == runs["cancelled"] else "COMPLETED"
        assert job["state"] == expected_state, (rule, wildcards, job)
        # profiles/slurm asks for one GPU for training, none for the rest
        assert job["gres"].endswith("gpu:1") if rule == "train" else "gpu" not in job["gres"], (rule, job)


def test_cancelled_training_continued_from_its_last_epoch(runs):
    model, fold = CANCELLED
    exp = runs["workdirs"]["slurm"] / "results" / "tiny"
    log = (exp / "logs" / "train" / model / f"fold{fold}.log").read_text()
    resumed = re.search(r"resuming after epoch (\d+) of (\d+)", log)
    assert resumed, log[-2000:]
    assert 1 <= int(resumed[1]) < EPOCHS and int(resumed[2]) == EPOCHS
    history = pd.read_csv(exp / "models" / model / f"fold{fold}" / "history.csv")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
    assert not (exp / "models" / model / f"fold{fold}" / "resume.pt").exists()


def test_results_equal_the_local_run(runs):
    assert runs["outputs"]["local"][0] == 0, runs["outputs"]["local"][1][-3000:]
    local, slurm = (runs["workdirs"][n] / "results" / "tiny" for n in ("local", "slurm"))
    files = sorted(p.relative_to(local) for p in local.glob("*/*/fold*/predictions.csv"))
    assert len(files) == 9  # 2 models and 1 fusion, 3 folds each
    for name in files + [Path("report/summary.csv"), Path("report/uar_per_fold.csv")]:
        pd.testing.assert_frame_equal(pd.read_csv(slurm / name), pd.read_csv(local / name), check_exact=True,
                                      obj=str(name))


def test_third_run_has_nothing_to_do(runs):
    rc, out = runs["outputs"]["third"]
    assert rc == 0, out[-3000:]
    assert "Nothing to be done" in out
    assert "submitted with SLURM jobid" not in out
