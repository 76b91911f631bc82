"""The whole DAG on the tiny config: it finishes, scores every sample once, caches, and fails cleanly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2"]
    if config is not None:
        cmd += ["--configfile", str(config)]
    return subprocess.run(cmd + list(args), cwd=REPO, capture_output=True, text=True, timeout=900)


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Rule name -> job count from the 'Job stats' table of a dry run."""
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    config = workdir / "tiny.yaml"
    shutil.copy(TINY, config)
    result = snakemake(workdir, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def test_tiny_dag_writes_the_report(tiny_run):
    from PIL import Image

    workdir, _ = tiny_run
    report = workdir / "results" / "tiny" / "report"
    for name in ["uar.png", "uar_ci.png", "curves.png", "confusion_fnn.png", "confusion_cnn.png",
                 "confusion_both.png"]:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(report / name) as image:
            assert min(image.size) >= 200, name
    summary = pd.read_csv(report / "summary.csv", keep_default_na=False).set_index("system")
    assert list(summary.index) == ["fnn", "cnn", "both"]
    assert summary["n_folds"].eq(3).all() and summary["n_samples"].eq(80).all()
    # the means and spreads of the per-fold UARs (checked against the predictions below), and of the
    # per-class recalls: a fold's UAR is the mean of its classes' recalls
    per_fold = pd.read_csv(report / "uar_per_fold.csv").groupby("system", sort=False)["uar"]
    per_class = pd.read_csv(report / "per_class.csv")
    assert per_class.groupby("system")["support"].sum().eq(80).all()
    np.testing.assert_allclose(summary["uar_mean"], per_fold.mean()[summary.index], atol=1e-5)
    np.testing.assert_allclose(summary["uar_sd"], per_fold.std(ddof=1)[summary.index], atol=1e-5)
    np.testing.assert_allclose(summary["uar_mean"], per_class.groupby("system")["recall_fold_mean"].mean()[
        summary.index], atol=1e-5)
    assert (summary["uar_ci_low"] <= summary["uar_mean"]).all()
    assert (summary["uar_mean"] <= summary["uar_ci_high"]).all()
    # three epochs of the CNN on the gyroscope's spectrogram reach about 0.6 on 4 activities, inputs and
    # labels kept together through the DAG; mixed up anywhere, they score chance (0.25, sd about 0.05)
    assert (summary.loc[["cnn", "both"], "uar_mean"] > 0.45).all()
    text = (report / "report.md").read_text()
    for system, row in summary.iterrows():
        uar = f"{100 * row['uar_mean']:.1f} ± {100 * row['uar_sd']:.1f}"
        interval = f"[{100 * row['uar_ci_low']:.1f}, {100 * row['uar_ci_high']:.1f}]"
        assert f"| {system} | {row['kind']} | {row['models']} | {uar} | {interval} | 3 | 80 |" in text, system


def test_every_sample_is_held_out_exactly_once(tiny_run):
    workdir, _ = tiny_run
    exp = workdir / "results" / "tiny"
    sheet = pd.read_csv(exp / "samples.csv", dtype=str)
    assert len(sheet) == 80
    for system in ["models/fnn", "models/cnn", "fusions/both"]:
        frames = [pd.read_csv(p, dtype={"fold": str}) for p in sorted((exp / system).glob("fold*/predictions.csv"))]
        assert len(frames) == 3
        preds = pd.concat(frames)
        assert sorted(preds["id"]) == sorted(sheet["id"])
        probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        # the held-out fold of each prediction is the sample's own fold
        merged = preds.merge(sheet[["id", "fold"]], on="id", suffixes=("", "_sheet"))
        assert (merged["fold"] == merged["fold_sheet"]).all()


def test_report_uar_matches_the_predictions(tiny_run):
    from sklearn.metrics import balanced_accuracy_score

    workdir, _ = tiny_run
    exp = workdir / "results" / "tiny"
    per_fold = pd.read_csv(exp / "report" / "uar_per_fold.csv", dtype={"fold": str})
    for _, row in per_fold.iterrows():
        stage = "models" if row["kind"] == "model" else "fusions"
        preds = pd.read_csv(exp / stage / row["system"] / f"fold{row['fold']}" / "predictions.csv")
        assert row["uar"] == pytest.approx(balanced_accuracy_score(preds["label"], preds["pred"]), abs=1e-6)


def test_rerun_has_nothing_to_do(tiny_run):
    workdir, config = tiny_run
    result = snakemake(workdir, "-n", config=config)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def _dry_run_changed(tiny_run, tmp_path, change, *args):
    """Dry-run the finished tiny workflow with its config changed by ``change(config)``: its output."""
    workdir, config = tiny_run
    changed = yaml.safe_load(config.read_text())
    change(changed)
    config_changed = tmp_path / "changed.yaml"
    config_changed.write_text(yaml.safe_dump(changed))
    result = snakemake(workdir, "-n", *args, config=config_changed)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_changing_one_model_reruns_only_that_model(tiny_run, tmp_path):
    out = _dry_run_changed(tiny_run, tmp_path, lambda c: c["models"]["cnn"].update(train={"lr": 0.01}))
    counts = job_counts(out)
    assert counts == {"train": 3, "fuse": 3, "report": 1, "all": 1}
    assert all(f"models/cnn/fold{k}/checkpoint.pt" in out for k in "123")
    assert "model=cnn" in out and "model=fnn" not in out  # the train jobs' wildcards: cnn's only


def test_fusion_top_reruns_only_the_fusion_and_reaches_its_command(tiny_run, tmp_path):
    out = _dry_run_changed(tiny_run, tmp_path, lambda c: c["fusions"]["both"].update(top=1), "-p")
    assert job_counts(out) == {"fuse": 3, "report": 1, "all": 1}
    assert out.count("--method weighted --top 1 --out") == 3


def test_changing_a_feature_reruns_its_models_not_ingest(tiny_run, tmp_path):
    out = _dry_run_changed(tiny_run, tmp_path, lambda c: c["features"]["gyro_spec"].update(n_fft=32))
    counts = job_counts(out)
    assert counts == {"features": 1, "train": 3, "fuse": 3, "report": 1, "all": 1}


def _copy_of_run(tiny_run, tmp_path):
    workdir, config = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)  # times kept: Snakemake sees the same finished run
    return copy, copy / config.name


def test_a_missing_checkpoint_is_made_again(tiny_run, tmp_path):
    """predict and export read checkpoint.pt: a run brings back any missing output, not only the report's inputs."""
    workdir, config = _copy_of_run(tiny_run, tmp_path)
    (workdir / "results" / "tiny" / "models" / "cnn" / "fold1" / "checkpoint.pt").unlink()
    result = snakemake(workdir, "-n", config=config)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    assert "Nothing to be done" not in out
    assert job_counts(out)["train"] == 1 and "models/cnn/fold1/checkpoint.pt" in out


def test_a_second_run_on_the_same_results_is_refused(tiny_run, tmp_path):
    """Another run writing the results (a live process, as its lock names it) stops this one before any job."""
    import socket

    workdir, config = _copy_of_run(tiny_run, tmp_path)
    (workdir / "results" / "tiny" / "models" / "fnn" / "fold2" / "history.csv").unlink()  # a job to run
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = workdir / "results" / "tiny" / ".deepself.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        assert snakemake(workdir, "-n", config=config).returncode == 0  # a dry run writes nothing: no lock
        result = snakemake(workdir, config=config)
        assert result.returncode != 0
        assert f"another deepself run (process {holder.pid} on this host)" in result.stderr, result.stderr[-2000:]
        assert not (workdir / "results" / "tiny" / "models" / "fnn" / "fold2" / "history.csv").exists()
        assert lock.exists()  # not ours to remove
    finally:
        holder.kill()
        holder.wait()


def test_html_report(tiny_run):
    workdir, config = tiny_run
    result = snakemake(workdir, "--report", str(workdir / "report.html"), config=config)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir / "report.html").stat().st_size > 10_000


def test_lint_passes():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", str(TINY)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


# --- bad input: one clear message naming it, non-zero exit, no partial output -------------------------

def _sheet_config(tmp_path: Path, sheet: str, **changes) -> Path:
    config = {
        "experiment": "bad",
        "data": {"adapter": "sheet", "sheet": sheet, "modalities": {"main": {"column": "path"}}},
        "cv": {"folds": 2},
        "features": {"spec": {"kind": "spectrogram", "n_fft": 64}},
        "train": {"epochs": 1},
        "models": {"cnn": {"arch": "cnn2d", "feature": "spec", "args": {"channels": [2]}}},
    }
    config.update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _wav_sheet(tmp_path: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        sf.write(tmp_path / f"s{i}.wav", rng.standard_normal(800).astype(np.float32) * 0.1, 8000)
        rows.append({"path": f"s{i}.wav", "label": "ab"[i % 2]})
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame(rows).to_csv(sheet, index=False)
    return sheet


def _assert_clean_failure(result, workdir: Path, *needles: str, finished: tuple[str, ...] = ()):
    """Non-zero exit, the message on the terminal, and no file but logs and earlier stages' outputs."""
    assert result.returncode != 0
    text = result.stdout + result.stderr
    for needle in needles:
        assert needle in text, text[-3000:]
    results = workdir / "results" / "bad"
    left = sorted(str(p.relative_to(results)) for p in results.rglob("*")
                  if p.is_file() and "logs" not in p.parts) if results.exists() else []
    assert left == sorted(finished)


def test_misspelt_config_key_stops_at_once(tmp_path):
    config = _sheet_config(tmp_path, str(_wav_sheet(tmp_path)), train={"epochz": 1})
    result = snakemake(tmp_path, config=config)
    _assert_clean_failure(result, tmp_path, "config key train.epochz: unknown key")


def test_missing_sample_file_is_named(tmp_path):
    sheet = _wav_sheet(tmp_path)
    (tmp_path / "s3.wav").unlink()
    result = snakemake(tmp_path, config=_sheet_config(tmp_path, str(sheet)))
    _assert_clean_failure(result, tmp_path, "sample 's3'", "s3.wav", "does not exist")


def test_unreadable_audio_is_named(tmp_path):
    sheet = _wav_sheet(tmp_path)
    (tmp_path / "s5.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    result = snakemake(tmp_path, config=_sheet_config(tmp_path, str(sheet)))
    _assert_clean_failure(result, tmp_path, "s5.wav", "cannot be decoded as audio", finished=("samples.csv",))


def test_sheet_without_label_column_is_named(tmp_path):
    sheet = _wav_sheet(tmp_path)
    frame = pd.read_csv(sheet).rename(columns={"label": "class"})
    frame.to_csv(sheet, index=False)
    result = snakemake(tmp_path, config=_sheet_config(tmp_path, str(sheet)))
    _assert_clean_failure(result, tmp_path, "sheet.csv", "no column 'label'")



# --- train.folds_per_job: several folds trained in turn by one job, the same files --------------------

def _tiny_with(tmp_path: Path, train: dict, models: dict | None = None) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config["train"].update(train)
    for model, overrides in (models or {}).items():
        config["models"][model]["train"] = overrides
    path = tmp_path / "tiny_changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("train, models, expected", [
    ({"folds_per_job": 3}, None, {"train_folds": 2}),
    ({"folds_per_job": 10}, None, {"train_folds": 2}),  # above the count of folds: all in one job
    ({"folds_per_job": 2}, None, {"train_folds_1_2": 2, "train_folds_3": 2}),
    ({"folds_per_job": 3}, {"cnn": {"folds_per_job": 1}}, {"train_folds": 1, "train": 3}),
])
def test_folds_per_job_sets_the_training_jobs(tmp_path, train, models, expected):
    result = snakemake(tmp_path, "-n", config=_tiny_with(tmp_path, train, models))
    assert result.returncode == 0, result.stderr[-2000:]
    counts = job_counts(result.stdout + result.stderr)
    assert {rule: n for rule, n in counts.items() if rule.startswith("train")} == expected
    assert counts["fuse"] == 3 and counts["report"] == 1


@pytest.mark.parametrize("train, models, message", [
    ({"folds_per_job": 0}, None, "config key train.folds_per_job: 0 must be an integer of at least 1 or 'auto'"),
    ({}, {"fnn": {"folds_per_job": 1.5}}, "config key models.fnn.train.folds_per_job: 1.5 must be an integer of at least 1 or 'auto'"),
])
def test_bad_folds_per_job_is_named(tmp_path, train, models, message):
    result = snakemake(tmp_path, "-n", config=_tiny_with(tmp_path, train, models))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def _assert_same_predictions(a: Path, b: Path):
    expected, got = pd.read_csv(a, dtype={"fold": str}), pd.read_csv(b, dtype={"fold": str})
    assert got[["id", "fold", "label", "pred"]].equals(expected[["id", "fold", "label", "pred"]])
    probs = [c for c in expected.columns if c.startswith("p_")]
    np.testing.assert_allclose(got[probs].to_numpy(), expected[probs].to_numpy(), rtol=0, atol=1e-6)


def test_one_job_per_model_writes_what_the_per_fold_jobs_write(tiny_run, tmp_path):
    per_fold, _ = tiny_run
    result = snakemake(tmp_path, config=_tiny_with(tmp_path, {"folds_per_job": 3}))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr)["train_folds"] == 2
    for model in ["fnn", "cnn"]:
        for fold in "123":
            out = tmp_path / "results" / "tiny" / "models" / model / f"fold{fold}"
            assert sorted(p.name for p in out.iterdir()) == [
                "checkpoint.pt", "dev_predictions.csv", "history.csv", "predictions.csv",
                "summary.json"]  # no resume.pt left
            _assert_same_predictions(per_fold / "results" / "tiny" / "models" / model / f"fold{fold}" /
                                     "predictions.csv", out / "predictions.csv")
            fold_log = (tmp_path / "results" / "tiny" / "logs" / "train" / model / f"fold{fold}.log").read_text()
            assert f"fold {fold}: best epoch" in fold_log
            assert not re.search(rf"fold (?!{fold}:)\w+: best epoch", fold_log)  # only its own fold
    assert (tmp_path / "results" / "tiny" / "report" / "summary.csv").exists()


def test_train_command_trains_several_folds_and_resumes_each(tiny_run, tmp_path):
    """`deepself train --fold 3 1 9`: folds 3 and 1 written as the workflow's per-fold jobs wrote them,
    9 (no such fold) fails in its own log; the finished folds keep resume.pt, so the job started
    again (its outputs deleted, as Snakemake does) rebuilds them without training an epoch."""
    from deepself.config import validate_config

    exp = tiny_run[0] / "results" / "tiny"
    config = validate_config(yaml.safe_load(TINY.read_text()))
    spec = {"name": "fnn", **config["models"]["fnn"], "classes": config["data"]["classes"],
            "dev_fraction": config["cv"]["dev_fraction"], "cv_seed": config["cv"]["seed"]}
    spec["train"] = {k: v for k, v in spec["train"].items() if k != "folds_per_job"}

    def train(*folds):
        cmd = [sys.executable, "-m", "deepself", "--log", str(tmp_path / "job.log"), "train",
               "--sheet", str(exp / "samples.csv"), "--input", str(exp / "filtered" / "accel.h5"),
               "--spec", json.dumps(spec), "--threads", "2", "--fold", *folds,
               "--out-dir", *[str(tmp_path / f"fold{f}") for f in folds],
               "--fold-log", *[str(tmp_path / f"fold{f}.log") for f in folds]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    result = train("3", "1", "9")
    assert result.returncode == 1
    assert "fold '9' has no samples" in result.stderr
    assert "fold '9' has no samples" in (tmp_path / "fold9.log").read_text()
    for fold in "31":
        assert "best epoch" in (tmp_path / f"fold{fold}.log").read_text()
        _assert_same_predictions(exp / "models" / "fnn" / f"fold{fold}" / "predictions.csv",
                                 tmp_path / f"fold{fold}" / "predictions.csv")
        assert (tmp_path / f"fold{fold}" / "resume.pt").exists()
        for name in ["checkpoint.pt", "dev_predictions.csv", "history.csv", "predictions.csv", "summary.json"]:
            (tmp_path / f"fold{fold}" / name).unlink()

    result = train("3", "1")
    assert result.returncode == 0, result.stderr
    for fold in "31":
        log = (tmp_path / f"fold{fold}.log").read_text()
        assert "resuming after epoch 3 of 3" in log and "epoch   1/3" not in log
        _assert_same_predictions(exp / "models" / "fnn" / f"fold{fold}" / "predictions.csv",
                                 tmp_path / f"fold{fold}" / "predictions.csv")
        assert not (tmp_path / f"fold{fold}" / "resume.pt").exists()


def test_train_command_needs_an_out_dir_per_fold(capsys):
    from deepself.cli import main

    assert main(["train", "--sheet", "s.csv", "--input", "x.h5", "--spec", "{}", "--fold", "1", "2",
                 "--out-dir", "a"]) == 1
    assert "2 folds need as many --out-dir (got 1)" in capsys.readouterr().err
