"""Inputs and caches you can trust (issue 13): nothing stale, nothing silently wrong.

Each numbered item of the issue and the test that holds it (each failed before the fix):

==== ======================================== ==============================================================
item what                                     test
==== ======================================== ==============================================================
1    an edited or replaced file reruns ingest test_an_edited_or_replaced_file_reruns_ingest_and_what_follows
2    spaces and shell characters everywhere   test_spaces_and_shell_characters_in_folders_files_and_folds,
                                              test_every_shell_argument_is_quoted,
                                              test_a_fold_name_that_cannot_be_a_file_name_is_named
3    decimal commas                           test_a_decimal_comma_column_is_never_two_integer_columns
4    non-finite values                        test_a_huge_signal_value_gives_a_finite_map_or_names_the_sample,
                                              test_fusion_refuses_empty_or_non_finite_probabilities,
                                              tests/test_trainer_options.py::
                                              test_non_finite_probabilities_are_never_written
5    too few classes or samples               test_one_class_is_refused_before_any_job,
                                              test_a_class_too_small_for_the_folds_is_named_with_its_count
6    labels and ids                           test_labels_differing_in_case_are_warned_about,
                                              test_the_same_file_under_two_ids_is_refused,
                                              test_folds_1_and_1_0_are_one_fold_and_empty_rows_are_skipped,
                                              test_a_duplicate_id_names_its_rows
7    a fold column with numbered folds        test_a_fold_column_ignored_by_numbered_folds_is_warned_about
8    cv.dev_fraction 0                        test_dev_fraction_zero_is_valid_and_needs_no_dev_split
                                              (the training side: tests/test_trainer_options.py::
                                              test_no_development_split_trains_every_epoch_and_keeps_the_last)
10   one line, never a traceback              test_a_bad_sample_sheet_is_one_line, test_a_tab_in_the_config_is_one_line
11   checks before any job                    test_settings_the_config_decides_are_checked_before_any_job,
                                              test_a_missing_sample_rate_is_caught_by_check_config
12   the schema ships in the package          test_a_wheel_install_validates_a_config
==== ======================================== ==============================================================

Item 9 (``predict``) is tested in tests/test_predict.py: test_a_recording_of_another_length_warns_what_was_done,
test_files_may_follow_options, test_the_output_has_the_columns_of_predictions_csv,
test_an_audio_model_given_an_array_names_the_rate_it_expects, test_out_of_the_wrong_kind_is_one_clear_error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from test_bad_input import AUDIO, CONFIG, REPO, assert_refused, deepself, files_in, samples_csv, wav  # noqa: F401

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.scoring.fusion import fuse_fold
from deepself.io.preflight import preflight
from deepself.io.sheet import build_sheet
from deepself.io.store import create_store, open_store
from deepself.signal.stages import feature_store


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "1", "--configfile", str(config)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def sheet_config(folder: Path, rows: list[dict], **top) -> dict:
    """A validated config of the sample sheet ``rows`` (written as sheet.csv; wavs made for missing paths)."""
    for row in rows:
        if not (folder / row["path"]).exists():
            wav(folder / row["path"], seed=len(row["path"]))
    pd.DataFrame(rows).to_csv(folder / "sheet.csv", index=False)
    return validate_config({**CONFIG, "data": {"adapter": "sheet", "sheet": str(folder / "sheet.csv")}, **top})


ROWS = [{"id": f"s{i}", "path": f"s{i}.wav", "label": "ab"[i % 2]} for i in range(12)]


# --- 1 and 2: a workflow in folders with spaces, files and folds with shell characters ------------

FOLDS = ["set A", "it's $HOME & ;"]
FEATURES = "my results/q/features/spec.h5"


@pytest.fixture(scope="module")
def spaced_run(tmp_path_factory):
    """Sheet, ingest and a feature map of 12 wavs, run by snakemake in folders named with spaces."""
    workdir = tmp_path_factory.mktemp("work dir")
    data = workdir / "my data"
    data.mkdir()
    rows = []
    for i in range(12):
        name = f"clip {i} 'x' $(y).wav"
        wav(data / name, n=2000, seed=i)
        rows.append({"path": name, "label": "ab"[i % 2], "fold": FOLDS[i % 2] if i < 8 else "3.0"})
    pd.DataFrame(rows).to_csv(data / "sheet.csv", index=False)
    config = workdir / "c.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "q", "results": "my results", "data": {"adapter": "sheet", "sheet": "my data/sheet.csv"},
        "cv": {"folds": "from_sheet"}, "features": {"spec": {"kind": "spectrogram", "n_fft": 256}},
        "models": {"m": {"arch": "fnn", "feature": "spec"}},
        "fusions": {"f": {"models": ["m", "m"]}}}))
    result = snakemake(workdir, config, FEATURES)
    return workdir, config, result


def test_spaces_and_shell_characters_in_folders_files_and_folds(spaced_run):
    workdir, _, result = spaced_run
    assert result.returncode == 0, result.stderr[-3000:]
    sheet = pd.read_csv(workdir / "my results" / "q" / "samples.csv", dtype=str)
    assert sorted(sheet["fold"].unique()) == sorted([*FOLDS, "3"])
    with open_store(workdir / FEATURES) as store:
        assert len(store.ids) == 12 and np.isfinite(store.read()).all()


def test_every_shell_argument_is_quoted(spaced_run):
    """The dry run's commands of sheet, ingest, features and fuse split into the intended arguments."""
    workdir, config, _ = spaced_run
    result = snakemake(workdir, config, "--forceall", "-n", "--printshellcmds")
    assert result.returncode == 0, result.stderr[-3000:]
    commands = [shlex.split(line.split("Shell command: ", 1)[1]) for line in result.stdout.splitlines()
                if "Shell command: deepself " in line]
    stages = {c[3]: c for c in commands}
    for stage in ("sheet", "ingest", "features", "fuse"):
        argv = stages[stage]
        assert argv[1] == "--log" and argv[2].startswith("my results/q/logs/"), argv
        out = argv[argv.index("--out") + 1]
        assert out.startswith("my results/q/"), argv
    fused = [c[c.index("--out") + 1] for c in commands if c[3] == "fuse"]
    assert sorted(fused) == sorted(f"my results/q/fusions/f/fold{fold}/predictions.csv" for fold in [*FOLDS, "3"])


def test_an_edited_or_replaced_file_reruns_ingest_and_what_follows(spaced_run):
    workdir, config, result = spaced_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in snakemake(workdir, config, "-n", FEATURES).stdout
    clip = workdir / "my data" / "clip 3 'x' $(y).wav"
    # a replacement with an older modification time (cp -p, rsync -a, tar): newer-than checks miss it
    before = clip.stat()
    sf.write(clip, np.zeros(2000, np.float32), 8000)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns - 10**12))
    dry = snakemake(workdir, config, "-n", FEATURES).stdout
    assert re.search(r"rule ingest:.*?reason: Params have changed", dry, re.S), dry[-3000:]
    assert "rule features:" in dry
    again = snakemake(workdir, config, FEATURES)
    assert again.returncode == 0, again.stderr[-3000:]
    with open_store(workdir / FEATURES) as store:
        silent = store.read([store.ids[[i for i, s in enumerate(store.ids) if s.startswith("clip 3")][0]]])
    assert silent.max() == silent.min(), "the new, silent clip's map is flat"
    assert "Nothing to be done" in snakemake(workdir, config, "-n", FEATURES).stdout


def test_touching_every_data_file_reruns_nothing(spaced_run):
    """Ingest follows the files' content (a SHA-256 per file, cached by stat), not their times."""
    workdir, config, result = spaced_run
    assert result.returncode == 0, result.stderr[-3000:]
    for clip in (workdir / "my data").glob("*.wav"):
        clip.touch()
    dry = snakemake(workdir, config, "-n", FEATURES)
    assert "Nothing to be done" in dry.stdout, dry.stdout[-3000:]


@pytest.mark.parametrize("damage", ["truncate", "overwrite a sample"])
def test_a_damaged_store_is_found_and_rebuilt_in_two_runs(spaced_run, damage):
    """The stage reading a damaged store moves it aside and stops; the next run rebuilds it and what follows."""
    workdir, config, result = spaced_run
    assert result.returncode == 0, result.stderr[-3000:]
    raw = workdir / "my results" / "q" / "raw" / "main.h5"
    with open_store(workdir / FEATURES) as store:
        expected = store.read()
    if damage == "truncate":
        os.truncate(raw, raw.stat().st_size // 2)
    else:
        import h5py

        with h5py.File(raw, "r+") as h5:  # one sample's chunk, the fingerprint attribute untouched
            h5["x"][2] = h5["x"][2] * 0.5
    first = snakemake(workdir, config, FEATURES)
    assert first.returncode != 0
    assert "main.h5" in first.stderr and "moved to main.h5.corrupt" in first.stderr, first.stderr[-3000:]
    second = snakemake(workdir, config, FEATURES)
    assert second.returncode == 0, second.stderr[-3000:]
    assert re.search(r"rule ingest:", second.stdout + second.stderr)
    with open_store(workdir / FEATURES) as store:
        np.testing.assert_array_equal(store.read(), expected)  # rebuilt from the data, as before
    assert "Nothing to be done" in snakemake(workdir, config, "-n", FEATURES).stdout


def test_a_fold_name_that_cannot_be_a_file_name_is_named(tmp_path):
    rows = [dict(row, fold="a/b" if i % 2 else "c") for i, row in enumerate(ROWS)]
    config = sheet_config(tmp_path, rows, cv={"folds": "from_sheet"})
    with pytest.raises(DeepselfError, match=r"sheet.csv: fold name 'a/b' cannot be used; a fold name is printable"):
        preflight(config["data"], config["cv"])


# --- 3: decimal commas -------------------------------------------------------------------------

def test_a_decimal_comma_column_is_never_two_integer_columns(deepself, tmp_path):
    for i in range(4):
        (tmp_path / f"t{i}.txt").write_text("".join(f"0,{126 + i + k:04d}\n" for k in range(20)))
    files = [tmp_path / f"t{i}.txt" for i in range(4)]
    spec = {**AUDIO, "sample_rate": 50}
    sheet = samples_csv(tmp_path, files)
    out = tmp_path / "raw" / "main.h5"
    result = deepself("ingest", "--sheet", sheet, "--modality", "main", "--spec", json.dumps(spec), "--out", out)
    assert_refused(result, "t0.txt: line '0,0126' reads as 2 columns (comma separator, decimal point) or as 1 column "
                           "(decimal comma); set data.modalities.main.separator and data.modalities.main.decimal")
    assert not out.exists()
    result = deepself("ingest", "--sheet", sheet, "--modality", "main", "--spec",
                      json.dumps({**spec, "decimal": "comma"}), "--out", out)
    assert result.returncode == 0, result.stderr
    with open_store(out) as store:
        assert store.meta["n_channels"] == 1
        np.testing.assert_allclose(store.read(["t0"])[0, 0, :2], [0.0126, 0.0127], rtol=1e-6)


# --- 4: non-finite values --------------------------------------------------------------------------

@pytest.mark.parametrize("log", [True, False])
def test_a_huge_signal_value_gives_a_finite_map_or_names_the_sample(tmp_path, log):
    x = np.random.default_rng(0).standard_normal((3, 1, 1024)).astype(np.float32)
    x[1, 0, 500] = 1e30
    with create_store(tmp_path / "raw.h5", 3, (1, 1024), {"kind": "signal", "layout": "CT", "modality": "main",
                                                          "sample_rate": 8000.0}) as writer:
        writer.write(["quiet", "loud", "other"], x)
    spec = {"kind": "spectrogram", "n_fft": 256, "log": log, "top_db": None}
    if log:
        feature_store(tmp_path / "raw.h5", tmp_path / "spec.h5", "spec", spec)
        with open_store(tmp_path / "spec.h5") as store:
            maps = store.read()
        assert np.isfinite(maps).all() and maps[1].max() > 500  # dB of a 1e60 power
    else:
        with pytest.raises(DeepselfError, match=r"raw.h5: sample 'loud': its spectrogram map \(features.spec\) is not "
                                                r"finite \(its signal reaches 1e\+30.*set features.spec.log: true"):
            feature_store(tmp_path / "raw.h5", tmp_path / "spec.h5", "spec", spec)
        assert not (tmp_path / "spec.h5").exists()


@pytest.mark.parametrize("cell", ["", "nan", "inf"])
def test_fusion_refuses_empty_or_non_finite_probabilities(tmp_path, cell):
    paths = []
    for model in ("a", "b"):
        folder = tmp_path / "models" / model / "fold1"
        folder.mkdir(parents=True)
        frame = pd.DataFrame({"id": ["s1", "s2"], "fold": "1", "label": "x", "pred": "x", "p_x": ["0.6", "0.7"],
                              "p_y": ["0.4", cell if model == "b" else "0.3"]})
        frame.to_csv(folder / "predictions.csv", index=False)
        (folder / "summary.json").write_text(json.dumps({"dev_uar": 0.5}))
        paths.append(folder)
    out = tmp_path / "fused.csv"
    with pytest.raises(DeepselfError, match=r"fold1/predictions.csv: model 'b', fold '1', sample 's2': a class "
                                            r"probability is empty or not finite"):
        fuse_fold([str(p / "predictions.csv") for p in paths], [str(p / "summary.json") for p in paths], "mean", out)
    assert not out.exists()


# --- 5, 6, 7: classes, labels, ids, folds ------------------------------------------------------------

def test_one_class_is_refused_before_any_job(tmp_path):
    config = sheet_config(tmp_path, [dict(row, label="a") for row in ROWS])
    with pytest.raises(DeepselfError, match=r"sheet.csv: every sample has label 'a'; a classifier needs samples of "
                                            "at least two classes"):
        preflight(config["data"], config["cv"])


@pytest.mark.parametrize("n_b, cv, words", [
    (3, {"folds": 5}, "class 'b' has 3 samples; cv.folds 5 needs at least 5 (one in each fold)"),
    (2, {"folds": 2}, "class 'b' has 2 samples; with cv.folds 2 a fold's training part holds 1 of them, and the "
                      "development split (cv.dev_fraction 0.2) needs 2"),
])
def test_a_class_too_small_for_the_folds_is_named_with_its_count(tmp_path, n_b, cv, words):
    rows = [dict(row, label="a") for row in ROWS] + [{"id": f"b{i}", "path": f"b{i}.wav", "label": "b"}
                                                     for i in range(n_b)]
    config = sheet_config(tmp_path, rows, cv=cv)
    with pytest.raises(DeepselfError, match=re.escape(words)):
        preflight(config["data"], config["cv"])


def test_labels_differing_in_case_are_warned_about(tmp_path, caplog):
    rows = [dict(row, label={"a": "Cat", "b": "cat "}[row["label"]]) for row in ROWS]
    config = sheet_config(tmp_path, rows, cv={"folds": 2})
    with caplog.at_level(logging.WARNING, logger="deepself"):
        build_sheet(config["data"], config["cv"], tmp_path)
    assert "labels 'Cat' and 'cat ' differ only in case or surrounding spaces" in caplog.text


def test_the_same_file_under_two_ids_is_refused(tmp_path):
    config = sheet_config(tmp_path, ROWS + [{"id": "copy", "path": "./s3.wav", "label": "b"}])
    with pytest.raises(DeepselfError, match=r"sheet.csv: samples 's3' and 'copy' have the same file '.*s3.wav'"):
        preflight(config["data"], config["cv"])


def test_folds_1_and_1_0_are_one_fold_and_empty_rows_are_skipped(tmp_path):
    rows = [dict(row, fold=["1", "1.0", "2", " 2.0"][i % 4]) for i, row in enumerate(ROWS)]
    config = sheet_config(tmp_path, rows, cv={"folds": "from_sheet"})
    with open(tmp_path / "sheet.csv", "a") as fh:
        fh.write(",,,\n,,,\n")  # a spreadsheet's trailing empty rows
    assert preflight(config["data"], config["cv"]).folds == ["1", "2"]
    sheet = build_sheet(config["data"], config["cv"], tmp_path)
    assert len(sheet) == 12 and sorted(sheet["fold"].unique()) == ["1", "2"]


def test_a_duplicate_id_names_its_rows(tmp_path):
    config = sheet_config(tmp_path, [dict(row, id="s1") if row["id"] == "s9" else row for row in ROWS])
    with pytest.raises(DeepselfError, match=r"duplicate sample id 's1' on rows 3 and 11 \(row 1 is the header\)"):
        preflight(config["data"], config["cv"])


def test_a_fold_column_ignored_by_numbered_folds_is_warned_about(tmp_path, caplog):
    config = sheet_config(tmp_path, [dict(row, fold=str(i % 3)) for i, row in enumerate(ROWS)], cv={"folds": 2})
    with caplog.at_level(logging.WARNING, logger="deepself"):
        build_sheet(config["data"], config["cv"], tmp_path)
    assert "the sheet's fold column is ignored, cv.folds is 2: to use it, set cv.folds: from_sheet" in caplog.text


# --- 8: cv.dev_fraction 0 ------------------------------------------------------------------------------

def test_dev_fraction_zero_is_valid_and_needs_no_dev_split(tmp_path):
    rows = ROWS[:4]  # 2 per class: 2 folds leave 1 of each in training, enough without a development split
    config = sheet_config(tmp_path, rows, cv={"folds": 2, "dev_fraction": 0})
    assert config["cv"]["dev_fraction"] == 0
    assert len(build_sheet(config["data"], config["cv"], tmp_path)) == 4
    with pytest.raises(DeepselfError, match="cv.dev_fraction: 1 is greater than or equal to the maximum of 1"):
        validate_config({**CONFIG, "cv": {"dev_fraction": 1}})
    with pytest.raises(DeepselfError, match="models.m.train.patience: needs a development split, and "
                                            "cv.dev_fraction is 0"):
        validate_config({"experiment": "z", "data": {"adapter": "digits"}, "cv": {"dev_fraction": 0},
                         "features": {"f": {"kind": "image"}}, "train": {"patience": 3},
                         "models": {"m": {"arch": "fnn", "feature": "f"}}})
    with pytest.raises(DeepselfError, match="fusions.w.method: weighted weighs by development UAR, and "
                                            "cv.dev_fraction is 0"):
        validate_config({"experiment": "z", "data": {"adapter": "digits"}, "cv": {"dev_fraction": 0},
                         "features": {"f": {"kind": "image"}}, "fusions": {"w": {"models": ["m", "n"],
                                                                                 "method": "weighted"}},
                         "models": {"m": {"arch": "fnn", "feature": "f"}, "n": {"arch": "fnn", "feature": "f"}}})
    with pytest.raises(DeepselfError, match="fusions.s.method: select learns its weights from the development "
                                            "predictions, and cv.dev_fraction is 0"):
        validate_config({"experiment": "z", "data": {"adapter": "digits"}, "cv": {"dev_fraction": 0},
                         "features": {"f": {"kind": "image"}}, "fusions": {"s": {"models": ["m", "n"],
                                                                                 "method": "select"}},
                         "models": {"m": {"arch": "fnn", "feature": "f"}, "n": {"arch": "fnn", "feature": "f"}}})


# --- 10 and 11: one line, and before any job -------------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda d: (d / "empty.csv").write_bytes(b"") and None or d / "empty.csv",
     ["empty.csv: empty file (0 bytes); a sample sheet needs a header row"]),
    (lambda d: d, ["is a folder, not a sample sheet; give the CSV or TSV file"]),
    (lambda d: Path("no/such/sheet.csv"),
     ["no/such/sheet.csv: no such sample sheet (looked for ", "/no/such/sheet.csv; relative paths are resolved "
      "against the working folder)"]),
])
def test_a_bad_sample_sheet_is_one_line(deepself, tmp_path, make, words):
    sheet = make(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "data": {"adapter": "sheet", "sheet": str(sheet)}}))
    line = assert_refused(deepself("check-config", config), *words)
    if not Path(sheet).is_absolute():
        assert str(Path.cwd() / sheet) in line


def test_a_tab_in_the_config_is_one_line(deepself, tmp_path):
    (tmp_path / "c.yaml").write_text("experiment: x\nmodels:\n\tm: {arch: fnn, feature: f}\n")
    assert_refused(deepself("check-config", tmp_path / "c.yaml"),
                   "c.yaml: line 3, column 1: not valid YAML (found character '\\t' that cannot start any token); "
                   "indent with spaces")


@pytest.mark.parametrize("modality, features, words", [
    ({"filter": {"band": [40, 0.5]}}, {}, "config key data.modalities.main.filter.band: [40, 0.5] Hz is not a band "
                                          "with 0 < low < high"),
    ({"kind": "sensor", "sample_rate": 100, "filter": {"band": [1, 60]}}, {},
     "config key data.modalities.main.filter.band: [1, 60] Hz is not a band with 0 < low < high < the Nyquist "
     "frequency 50 Hz"),
    ({"resample": 8000}, {"mel": {"kind": "logmel", "fmax": 6000}},
     "config key features.mel.fmax: 6000 Hz is above the Nyquist frequency 4000 Hz"),
    ({"kind": "sensor", "sample_rate": 100, "length_s": 2}, {"s": {"kind": "spectrogram", "n_fft": 512}},
     "config key features.s.n_fft: 512 is longer than the signal (200 samples)"),
])
def test_settings_the_config_decides_are_checked_before_any_job(modality, features, words):
    with pytest.raises(DeepselfError, match=re.escape(words)):
        validate_config({**CONFIG, "data": {"adapter": "digits", "modalities": {"main": {"column": "path",
                                                                                          **modality}}},
                         "features": {"f": {"kind": "raw"}, **features}})


def test_a_missing_sample_rate_is_caught_by_check_config(deepself, tmp_path):
    rows = []
    for i in range(8):
        (tmp_path / f"r{i}.csv").write_text("1.5\n2.5\n")
        rows.append({"path": f"r{i}.csv", "label": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv")},
                                      "cv": {"folds": 2}}))
    assert_refused(deepself("check-config", config), "config key data.modalities.main.sample_rate: missing, and ",
                   "r0.csv holds a sensor signal")


# --- 12: the schema ships in the wheel ------------------------------------------------------------

def test_a_wheel_install_validates_a_config(tmp_path):
    """Build the wheel from a copy of the sources, install it alone into a fresh venv, check a config there."""
    source = tmp_path / "src"
    shutil.copytree(REPO / "deepself", source / "deepself", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("deepself-*.whl"))
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the wheel's own files, unpacked; its dependencies (jsonschema, yaml, ...) from the test's environment
    # through a path entry that comes after them (no .pth of that environment runs: no editable deepself)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True, capture_output=True, timeout=600)
    others = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "zz_test_deps.pth").write_text("\n".join(others) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"experiment": "w", "data": {"adapter": "digits"},
                                      "features": {"px": {"kind": "image"}},
                                      "models": {"m": {"arch": "fnn", "feature": "px"}}}))
    check = subprocess.run(
        [python, "-c", "import sys, deepself, deepself.cli; print(deepself.__file__); "
                       "sys.exit(deepself.cli.main(['check-config', sys.argv[1], '--show']))", str(config)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    location, shown = check.stdout.split("\n", 1)
    assert location.startswith(site), location
    assert json.loads(shown)["cv"]["dev_fraction"] == 0.2, "defaults come from the wheel's schema"
