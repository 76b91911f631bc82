"""Threads and the gpu resource of training jobs come from config, whatever the rule's shape."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def dry_run(tmp_path: Path, train: dict, models: dict, *args: str) -> str:
    config = yaml.safe_load(TINY.read_text())
    config["train"].update(train)
    for name, extra in models.items():
        config["models"][name]["train"] = extra
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(path), "--cores", "4", "--dry-run", "--printshellcmds", *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def jobs(output: str, rule_prefix: str) -> list[str]:
    """The text of every job of rules starting with ``rule_prefix`` in a dry run's output."""
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", output)
    return [b for b in blocks if re.match(rf"(?:local)?rule {rule_prefix}\w*:", b)]


@pytest.mark.parametrize("threads", [1, 3])
def test_train_threads_reach_both_rule_shapes(tmp_path, threads):
    # fnn: a job per fold (rule train); cnn: all folds in one job (rule train_folds)
    out = dry_run(tmp_path, {"threads": threads, "gpu": 0}, {"cnn": {"folds_per_job": 3}})
    grouped = jobs(out, "train_folds")
    per_fold = [b for b in jobs(out, "train") if re.match(r"(?:local)?rule train:", b)]
    assert len(per_fold) == 3 and len(grouped) == 1
    for block in per_fold + grouped:
        assert f"--threads {threads} " in block
        if threads > 1:  # a dry run lists threads above 1 only
            assert re.search(rf"threads: {threads}\b", block), block
        assert not re.search(r"resources: .*gpu=[1-9]", block), block


@pytest.mark.parametrize("gpu", [0, 1, "auto"])
def test_gpu_resource_from_config(tmp_path, gpu):
    out = dry_run(tmp_path, {"gpu": gpu}, {"cnn": {"folds_per_job": 3}})
    blocks = [b for b in jobs(out, "train") if " train " in b]
    # auto: 1 only where snakemake's machine has an NVIDIA GPU; the machines that run these tests have none
    expected = int(bool(list(Path("/proc/driver/nvidia/gpus").glob("*")))) if gpu == "auto" else gpu
    assert len(blocks) == 4 and all(re.search(rf"gpu={expected}\b", b) for b in blocks), blocks[0]


def test_the_slurm_profiles_training_resources_reach_every_training_rule(tmp_path):
    """profiles/slurm sets them once, for rule train; the rules of groups of folds, named by their
    groups (train_folds, train_folds_1_2, train_folds_3 here), take them too."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    expected = profile["set-resources"]["train"]
    out = dry_run(tmp_path, {"gpu": 1}, {"cnn": {"folds_per_job": 2}, "fnn": {"folds_per_job": 3}},
                  "--profile", str(REPO / "profiles" / "slurm"))
    blocks = jobs(out, "train")
    assert sorted(re.match(r"rule (\w+):", b)[1] for b in blocks) == ["train_folds", "train_folds_1_2", "train_folds_3"]
    for block in blocks:
        resources = dict(item.split("=", 1) for item in re.search(r"resources: (.*)", block)[1].split(", "))
        assert {key: resources.get(key) for key in expected} == {key: str(value) for key, value in expected.items()}, block


def test_resume_interval_is_passed_and_kept_out_of_the_spec(tmp_path):
    out = dry_run(tmp_path, {"resume_every_s": 42}, {})
    blocks = [b for b in jobs(out, "train") if " train " in b]
    assert blocks and all("--resume-every-s 42 " in b for b in blocks)
    assert all("resume_every_s" not in b.split("--spec", 1)[1].split("--threads")[0] for b in blocks)


def test_snakemake_never_runs_more_threads_than_cores(tmp_path):
    """Three one-thread jobs that become ready together, after a first job, under --cores 1: one at a time.

    Snakemake 9.10 to 9.15 started two of them at once (its issue 3913), which on a CPU-only machine
    makes training jobs thrash; pyproject.toml asks for a version without that.
    """
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: expand("o{i}.txt", i=range(3))\n'
        'rule first:\n    output: "s.txt"\n    shell: "touch {output}"\n'
        'rule one:\n    input: "s.txt"\n    output: "o{i}.txt"\n'
        '    shell: "date +%s.%N > {output}; sleep 1; date +%s.%N >> {output}"\n')
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path),
                             "--snakefile", str(tmp_path / "Snakefile")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    spans = sorted(tuple(map(float, (tmp_path / f"o{i}.txt").read_text().split())) for i in range(3))
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans


@pytest.mark.parametrize("gpu_here, gpu, expected", [
    (True, "auto", sys.maxsize),  # one job trains all of a model's folds: they would queue for the GPU anyway
    (True, 1, sys.maxsize),
    (True, 0, 1),  # jobs that take no GPU unit train side by side on the cores
    (False, "auto", 1),  # a CPU-only machine
    (False, 1, 1),  # a cluster's login node submitting GPU jobs: one job per fold, on as many nodes
])
def test_folds_per_job_auto_groups_folds_only_on_a_local_gpu(monkeypatch, gpu_here, gpu, expected):
    from deepself import config

    monkeypatch.setattr(config.scheduling, "local_gpu", lambda: gpu_here)
    assert config.training_folds_per_job({"folds_per_job": "auto", "gpu": gpu}) == expected
    assert config.training_folds_per_job({"folds_per_job": 2, "gpu": gpu}) == 2  # a number is kept as given


def test_folds_per_job_auto_is_a_job_per_fold_without_a_gpu(tmp_path):
    if list(Path("/proc/driver/nvidia/gpus").glob("*")):
        pytest.skip("this machine has an NVIDIA GPU: auto groups the folds here")
    out = dry_run(tmp_path, {"folds_per_job": "auto", "gpu": 1}, {})
    assert not jobs(out, "train_folds") and len(jobs(out, "train")) == 6  # 2 models x 3 folds


def test_folds_per_job_auto_groups_the_folds_of_a_fitted_head_everywhere(monkeypatch):
    """A rocket's or a probe's folds fit in seconds after a long start-up: one job for all, even on a CPU."""
    from deepself import config

    monkeypatch.setattr(config.scheduling, "local_gpu", lambda: False)
    assert config.training_folds_per_job({"folds_per_job": "auto", "gpu": "auto"}, fitted_head=True) == sys.maxsize
    assert config.training_folds_per_job({"folds_per_job": 1, "gpu": "auto"}, fitted_head=True) == 1


def test_the_job_graph_knows_a_fitted_head_as_the_trainer_does():
    """config.fits_a_head (no torch, for the job graph) agrees with training.data.fits_a_head (the builders) on every arch."""
    from deepself import config
    from deepself.training import data as training_data
    from deepself.models import list_models

    for arch in list_models():
        for args in ({}, {"train_mode": "probe"}):
            model = {"arch": arch, "args": args}
            assert config.fits_a_head(model) == training_data.fits_a_head(model), (arch, args)
