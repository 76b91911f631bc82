"""Inputs that are read clearly or refused clearly (issue 23): nothing misread in silence.

Each lettered item of the issue and the tests that hold it (each failed before the fix):

==== ============================================= ===========================================================
item what                                          test
==== ============================================= ===========================================================
A    a (channels, time) .npy is not read as        test_a_channels_first_npy_is_refused_before_any_job,
     (time, channels)                              test_a_channels_first_npy_is_refused_by_ingest
                                                   (with every file (2, 800): stored as 800 channels before)
B    a sheet with a UTF-8 byte-order mark          test_a_sheet_with_a_byte_order_mark_reads_as_without_one
C    a sheet without rows, or without label        test_a_sheet_without_rows_or_label_is_one_line
D    ``lr: 1e-3`` (a string to YAML 1.1)           test_a_number_yaml_reads_as_text_is_taken_as_the_number,
                                                   test_the_warnings_before_any_job_reach_the_console (snakemake)
E    audio at another rate than ``sample_rate``    test_audio_at_another_rate_than_sample_rate_is_resampled_to_it
F    one long recording among short ones           test_one_long_recording_among_short_ones_is_warned_before_any_job,
                                                   test_ingest_warns_of_padding_text_tables_far_beyond_the_median,
                                                   test_the_warnings_before_any_job_reach_the_console
G    more Mel bands than the FFT fills             test_too_many_mel_bands_are_refused_naming_the_most_that_work,
                                                   test_empty_mel_filters_are_those_librosa_warns_of,
                                                   test_validating_the_shipped_configs_imports_no_heavy_library
H    an unknown window or wavelet                  test_an_unknown_window_or_wavelet_is_refused_by_check_config,
                                                   test_the_schema_lists_the_windows_and_wavelets_the_features_take,
                                                   test_n_fft_has_one_minimum_in_the_schema_and_the_code
I    ``data.labels`` renaming an absent label      test_a_label_renamed_but_absent_from_the_sheet_is_warned_about,
                                                   test_the_warnings_before_any_job_reach_the_console
J    a directory listed in the sheet               test_a_directory_in_the_sheet_is_named_a_directory
==== ============================================= ===========================================================

As in test_bad_input.py, a refusal is one ``deepself: error:`` line naming the file, sample or key
and the fix, with exit status 1 and no file left behind.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from test_bad_input import AUDIO, CONFIG, REPO, assert_refused, deepself, run_ingest, wav  # noqa: F401

from deepself.config import load_config, load_schema, validate_config
from deepself.errors import DeepselfError
from deepself.io.ingest import ingest
from deepself.io.preflight import preflight
from deepself.io.sheet import build_sheet
from deepself.io.store import open_store
from deepself.signal.params import check_params

ROWS = [{"id": f"s{i}", "path": f"s{i}.wav", "label": "ab"[i % 2]} for i in range(8)]


def write_config(folder: Path, rows: list[dict] | None = None, sheet_text: str | None = None, data: dict | None = None,
                 **top) -> Path:
    """sheet.csv (``rows``, wavs made for missing paths, or ``sheet_text`` as it is) and c.yaml using it."""
    if sheet_text is None:
        for row in rows:
            if not (folder / row["path"]).exists():
                wav(folder / row["path"], seed=len(row["path"]))
        pd.DataFrame(rows).to_csv(folder / "sheet.csv", index=False)
    else:
        (folder / "sheet.csv").write_text(sheet_text)
    config = {**CONFIG, "data": {"adapter": "sheet", "sheet": str(folder / "sheet.csv"), **(data or {})},
              "cv": {"folds": 2}, **top}
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    return folder / "c.yaml"


def sensor_rows(folder: Path, shapes: list[tuple[int, ...]]) -> list[dict]:
    """A .npy file of each shape, labelled a, b, a, b, ..."""
    rows = []
    for i, shape in enumerate(shapes):
        np.save(folder / f"n{i}.npy", np.random.default_rng(i).standard_normal(shape).astype(np.float32))
        rows.append({"path": f"n{i}.npy", "label": "ab"[i % 2]})
    return rows


SENSOR_DATA = {"modalities": {"main": {"column": "path", "sample_rate": 100}}}


# --- A: (channels, time) arrays -------------------------------------------------------------------

WIDE = "n3.npy: array of shape (2, 800) would be 2 samples of 800 channels; a 2-D .npy is (time, channels)"


def test_a_channels_first_npy_is_refused_before_any_job(deepself, tmp_path):
    rows = sensor_rows(tmp_path, [(800, 2)] * 3 + [(2, 800)] + [(800, 2)] * 4)
    config = write_config(tmp_path, rows, data=SENSOR_DATA)
    assert_refused(deepself("check-config", config), WIDE, "save it transposed, np.save(path, x.T)")
    np.save(tmp_path / "n3.npy", np.zeros((800, 2), np.float32))  # (time, channels), as the error says
    assert deepself("check-config", config).returncode == 0


@pytest.mark.parametrize("wide", ["one", "every"])
def test_a_channels_first_npy_is_refused_by_ingest(deepself, tmp_path, wide):
    """Every file (2, 800): before, ingest stored 800 channels of 2 samples, and a model trained on them."""
    rows = sensor_rows(tmp_path, [(800, 2) if wide == "one" else (2, 800)] * 3 + [(2, 800)])
    files = [tmp_path / row["path"] for row in rows]
    spec = {**AUDIO, "sample_rate": 100}
    words = WIDE if wide == "one" else WIDE.replace("n3.npy", "n0.npy")
    assert_refused(run_ingest(deepself, tmp_path, files, spec), words, "np.save(path, x.T)")
    assert_refused(run_ingest(deepself, tmp_path, files, {**spec, "length_s": 1.0}), words)


# --- B, C, J: the sample sheet ----------------------------------------------------------------------

@pytest.mark.parametrize("first", ["path", "id"])
def test_a_sheet_with_a_byte_order_mark_reads_as_without_one(tmp_path, first):
    rows = [{first: row[first], **{k: v for k, v in row.items() if k != first}, "id": f"clip{i}"}
            for i, row in enumerate(ROWS)]  # ids that are not the files' names
    write_config(tmp_path, rows)
    text = (tmp_path / "sheet.csv").read_text()
    assert text.startswith(first)
    (tmp_path / "sheet.csv").write_text(text, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    config = validate_config({**CONFIG, "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv")},
                              "cv": {"folds": 2}})
    assert preflight(config["data"], config["cv"]).folds == ["1", "2"]
    sheet = build_sheet(config["data"], config["cv"], tmp_path)
    assert list(sheet["id"]) == [f"clip{i}" for i in range(8)] and set(sheet["label"]) == {"a", "b"}


@pytest.mark.parametrize("text, words", [
    ("path,label\n", ["sheet.csv: has a header row (path, label) but no samples; add a row per sample"]),
    ("path,label\n,\n,\n", ["sheet.csv: has a header row (path, label) but no samples"]),
    ("path\n" + "".join(f"s{i}.wav\n" for i in range(8)),
     ["sheet.csv: sample sheet has no column 'label' (columns: path); add a label column"]),
    ("label;file\n" + "".join(f"ab;s{i}.wav\n" for i in range(8)),
     ["sheet.csv: sample sheet has no column 'path' (columns: label, file); add it, or set "
      "data.modalities.main.column to the column"]),
], ids=["header-only", "header-and-empty-rows", "no-label", "no-path-column"])
def test_a_sheet_without_rows_or_label_is_one_line(deepself, tmp_path, text, words):
    for i in range(8):
        wav(tmp_path / f"s{i}.wav")
    assert_refused(deepself("check-config", write_config(tmp_path, sheet_text=text)), *words)


@pytest.mark.parametrize("folder", ["s3", "s3.wav"], ids=["plain-folder", "folder-named-like-a-file"])
def test_a_directory_in_the_sheet_is_named_a_directory(deepself, tmp_path, folder):
    (tmp_path / folder).mkdir()
    rows = [dict(row, path=folder) if row["id"] == "s3" else row for row in ROWS]
    assert_refused(deepself("check-config", write_config(tmp_path, rows)),
                   f"sheet.csv: sample 's3': '{tmp_path / folder}' (column 'path') is a directory, not a file")
    files = [wav(tmp_path / "s0.wav"), tmp_path / folder]  # a file replaced by a folder after the sheet stage
    assert_refused(run_ingest(deepself, tmp_path, files, AUDIO), f"{folder}: is a directory, not a file")


# --- D: numbers that YAML 1.1 reads as text ------------------------------------------------------------

@pytest.mark.parametrize("text, path, value", [
    ("train: {lr: 1e-3}", ["train", "lr"], 0.001),
    ("models: {m: {arch: fnn, feature: f, train: {lr: 5E-4, weight_decay: 1e-2}}}", ["models", "m", "train", "lr"],
     0.0005),
    ("features: {f: {kind: logmel, fmin: 2e1, amin: 1e-8}}", ["features", "f", "fmin"], 20.0),
    ("data: {adapter: digits, modalities: {main: {column: path, resample: 8e3}}}",
     ["data", "modalities", "main", "resample"], 8000.0),
], ids=["train", "a-model's-train", "feature", "modality"])
def test_a_number_yaml_reads_as_text_is_taken_as_the_number(deepself, tmp_path, text, path, value):
    config = {"experiment": "x", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
              "models": {"m": {"arch": "fnn", "feature": "f"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config) + text + "\n")
    raw = yaml.safe_load((tmp_path / "c.yaml").read_text())
    for part in path[:-1]:
        raw = raw[part]
    assert isinstance(raw[path[-1]], str), "YAML 1.1 reads it as text"
    loaded = load_config(tmp_path / "c.yaml")
    for part in path[:-1]:
        loaded = loaded[part]
    assert loaded[path[-1]] == value and isinstance(loaded[path[-1]], float)
    assert deepself("check-config", tmp_path / "c.yaml").returncode == 0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config) + "train: {lr: 1e-3x}\n")  # not a number: refused
    assert_refused(deepself("check-config", tmp_path / "c.yaml"), "config key train.lr: '1e-3x' is not of type")


# --- E: sample_rate is the rate the model sees ----------------------------------------------------------

def test_audio_at_another_rate_than_sample_rate_is_resampled_to_it(tmp_path, caplog):
    files = []
    for i in range(4):
        sf.write(tmp_path / f"s{i}.wav", np.random.default_rng(i).standard_normal(1600).astype(np.float32), 16000)
        files.append(tmp_path / f"s{i}.wav")
    pd.DataFrame({"id": [f.stem for f in files], "label": list("abab"), "fold": list("1122"),
                  "path": [str(f) for f in files]}).to_csv(tmp_path / "samples.csv", index=False)
    with caplog.at_level(logging.INFO, logger="deepself"):
        meta = ingest(tmp_path / "samples.csv", "main", {**AUDIO, "sample_rate": 8000}, tmp_path / "raw.h5")
    assert meta["sample_rate"] == 8000 and meta["n_samples"] == 800
    said = [r.getMessage() for r in caplog.records if "resampled" in r.getMessage()]
    assert said == ["data.modalities.main: 4 of 4 files are at 16000 Hz, not sample_rate 8000 Hz: resampled to "
                    "8000 Hz (set data.modalities.main.resample: 8000 to say so and silence this, or sample_rate to "
                    "their rate to keep it)"]
    assert caplog.records[[r.getMessage() for r in caplog.records].index(said[0])].levelno == logging.WARNING
    with open_store(tmp_path / "raw.h5") as store:
        assert store.x.shape == (4, 1, 800)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself"):  # resample says so itself: nothing to warn of
        assert ingest(tmp_path / "samples.csv", "main", {**AUDIO, "resample": 8000}, tmp_path / "r.h5")[
            "sample_rate"] == 8000
    assert not [r for r in caplog.records if "resampled" in r.getMessage()]


# --- F: one long recording pads every other -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["audio", "npy"])
def test_one_long_recording_among_short_ones_is_warned_before_any_job(tmp_path, caplog, kind):
    if kind == "audio":
        rows = [{"id": f"s{i}", "path": f"s{i}.wav", "label": "ab"[i % 2]} for i in range(8)]
        for i, row in enumerate(rows):
            wav(tmp_path / row["path"], n=16000 if i == 5 else 800)  # 2 s among 0.1 s, at 8 kHz
        data, rate = {}, 8000
    else:
        rows = sensor_rows(tmp_path, [(200 if i == 5 else 10, 3) for i in range(8)])  # 2 s among 0.1 s, at 100 Hz
        data, rate = SENSOR_DATA, 100
    write_config(tmp_path, rows)
    config = validate_config({**CONFIG, "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv"), **data},
                              "cv": {"folds": 2}})
    with caplog.at_level(logging.WARNING, logger="deepself"):
        preflight(config["data"], config["cv"])
    sid = "s5" if kind == "audio" else "n5"
    channels = 1 if kind == "audio" else 3
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [f"data.modalities.main: recordings of 0.1 to 2 s, median 0.1 s: ingest zero-pads every one to "
                      f"the longest, sample '{sid}' (2 s, 20x the median) (8 x {channels} x {2 * rate} float32 = "
                      f"{8 * channels * 2 * rate * 4 / 1000:.3g} KB in the store, and every feature map and training "
                      "batch padded alike); set data.modalities.main.length_s to crop or pad every recording to that "
                      "many seconds (e.g. 0.1), or split the long recordings into pieces of the usual length"]
    caplog.clear()
    config["data"]["modalities"]["main"]["length_s"] = 0.1
    with caplog.at_level(logging.WARNING, logger="deepself"):
        preflight(config["data"], config["cv"])
    assert not caplog.records, "with length_s nothing is padded to the longest"


def test_ingest_warns_of_padding_text_tables_far_beyond_the_median(tmp_path, caplog):
    """Text tables have no header to measure before any job: ingest, which reads them, says it."""
    files = []
    for i in range(6):
        np.savetxt(tmp_path / f"t{i}.csv", np.ones((100 if i == 2 else 10, 2)), delimiter=",")
        files.append(tmp_path / f"t{i}.csv")
    pd.DataFrame({"id": [f.stem for f in files], "label": list("ababab"), "fold": list("112233"),
                  "path": [str(f) for f in files]}).to_csv(tmp_path / "samples.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="deepself"):
        ingest(tmp_path / "samples.csv", "main", {**AUDIO, "sample_rate": 10}, tmp_path / "raw.h5")
    assert [r.getMessage() for r in caplog.records] == [
        "data.modalities.main: signals of 10 to 100 samples (median 10) are zero-padded to the longest, sample 't2' "
        "(10 s, 10x the median): 6 x 2 x 100 float32 = 4.8e-06 GB; set data.modalities.main.length_s to crop or pad "
        "every recording to that many seconds (e.g. 1), or split the long recordings into pieces of the usual length"]


@pytest.mark.parametrize("command", ["check-config", "snakemake"])
def test_the_warnings_before_any_job_reach_the_console(tmp_path, command):
    """In their own process, `deepself check-config` and a dry run of the workflow (while it is parsed) show
    the warnings of items F and I on the terminal (stderr); the dry run also takes ``lr: 1e-3`` (item D)."""
    for i, row in enumerate(ROWS):
        wav(tmp_path / row["path"], n=8000 if i == 1 else 800)
    config = write_config(tmp_path, ROWS, data={"labels": {"a": "alpha", "bee": "beta"}})
    config.write_text(config.read_text() + "train: {lr: 1e-3}\n")
    if command == "check-config":
        argv = [sys.executable, "-m", "deepself", "check-config", str(config)]
    else:
        argv = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
                str(tmp_path), "--cores", "1", "--configfile", str(config)]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data.labels renames 'bee', which no sample has (the sheet's labels: 'a', 'b')" in result.stderr
    assert "data.modalities.main: recordings of 0.1 to 1 s, median 0.1 s" in result.stderr


# --- G: Mel bands that no FFT bin falls in --------------------------------------------------------------

def test_too_many_mel_bands_are_refused_naming_the_most_that_work(deepself, tmp_path):
    modality = {"column": "path", "kind": "sensor", "sample_rate": 1000}
    config = {"experiment": "x", "data": {"adapter": "digits", "modalities": {"main": modality}},
              "features": {"mel": {"kind": "logmel", "n_fft": 64, "hop_length": 16, "n_mels": 128}},
              "models": {"m": {"arch": "fnn", "feature": "mel"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert_refused(deepself("check-config", tmp_path / "c.yaml"),
                   "config key features.mel.n_mels: 128 Mel bands from 0 to 500 Hz leave 65 of them empty (no FFT bin "
                   "falls inside; n_fft 64 at 1000 Hz puts bins 15.625 Hz apart): set n_mels to at most 62, or raise "
                   "n_fft")
    config["features"]["mel"]["n_mels"] = 62
    validate_config(config)
    # the same check in the features job, where the rate comes from the store
    with pytest.raises(DeepselfError, match=r"^features\.mel\.n_mels: 63 Mel bands .*at most 62"):
        check_params("logmel", {"n_fft": 64, "hop_length": 16, "n_mels": 63}, 1000, 4000, "features.mel")


MEL_CASES = [  # (sample rate, n_fft, n_mels, fmin, fmax, htk): some with empty filters, some without
    (16000, 256, 128, 0.0, 8000.0, True), (16000, 256, 128, 0.0, 8000.0, False), (8000, 512, 64, 125.0, 3800.0, True),
    (44100, 2048, 512, 20.0, 22050.0, False), (22050, 1024, 256, 0.0, 11025.0, True),
    (173.61, 64, 40, 0.5, 40.0, False),
    (1000, 64, 63, 0.0, 500.0, False), (16000, 400, 80, 50.0, 7600.0, True),
]


@pytest.mark.parametrize("norm", ["slaney", None, 1.0])
@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax, htk", MEL_CASES)
def test_empty_mel_filters_are_those_librosa_warns_of(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    import librosa

    from deepself.signal.mel import empty_mel_filters

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        weights = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    warned = any("Empty filters" in str(w.message) for w in caught)
    empty = empty_mel_filters(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    assert bool(len(empty)) == warned
    lower_edge_at_0 = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)[:-2] == 0  # not counted
    np.testing.assert_array_equal(empty, np.flatnonzero((weights.max(axis=1) == 0) & ~lower_edge_at_0))


def test_validating_the_shipped_configs_imports_no_heavy_library():
    """The checks while the workflow is parsed (Mel bands, windows, wavelets) import no torch, librosa, scipy, ..."""
    code = ("import glob, sys\nfrom deepself.config import load_config\n"
            "for path in sorted(glob.glob('config/*.yaml')) + ['tests/configs/tiny.yaml']:\n    load_config(path)\n"
            "print(sorted(m for m in ('torch', 'librosa', 'scipy', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


# --- H: windows and wavelets, from the schema -----------------------------------------------------------

@pytest.mark.parametrize("feature, words", [
    ({"kind": "spectrogram", "window": "hanning2"},
     "config key features.f.window: 'hanning2' is not one of ['barthann'"),
    ({"kind": "scalogram", "wavelet": "db4"}, "config key features.f.wavelet: 'db4' is not one of ['cgau1'"),
    ({"kind": "scalogram", "wavelet": "cmor1.5"}, "config key features.f.wavelet: 'cmor1.5' is not one of"),
])
def test_an_unknown_window_or_wavelet_is_refused_by_check_config(deepself, tmp_path, feature, words):
    """Audio without sample_rate: the rate is unknown before ingest, and still the name is checked."""
    config = write_config(tmp_path, ROWS, features={"f": feature}, models={"m": {"arch": "fnn", "feature": "f"}})
    assert_refused(deepself("check-config", config), words)


def _wavelet_schema() -> dict:
    scalogram = next(b for b in load_schema()["definitions"]["feature"]["allOf"]
                     if b["if"]["properties"]["kind"].get("const") == "scalogram")
    return scalogram["then"]["properties"]["wavelet"]


def test_the_schema_lists_the_windows_and_wavelets_the_features_take():
    import librosa
    import pywt
    import scipy.signal.windows

    windows = load_schema()["definitions"]["stft_params"]["window"]["enum"]
    by_name_alone = []
    for name in sorted(set(scipy.signal.windows.__all__) - {"get_window"}):
        try:
            librosa.filters.get_window(name, 64)  # what the features (reference and torch) window with
        except ValueError:  # needs a parameter: ("kaiser", 8.0), which a config cannot give
            continue
        by_name_alone.append(name)
    assert sorted(windows) == by_name_alone
    wavelet = _wavelet_schema()
    names, pattern = wavelet["anyOf"][0]["enum"], re.compile(wavelet["anyOf"][1]["pattern"])
    assert names == pywt.wavelist(kind="continuous")
    for name in ["cmor1.5-1.0", "shan0.5-2", "fbsp1-1.5-1.0", "fbsp2-1-0.5"]:
        assert pattern.match(name)
        pywt.ContinuousWavelet(name)
    for name in ["cmor1.5", "fbsp1.5-1.0", "morl1-1", "cmor-1-1", "db4"]:
        assert not pattern.match(name)


def test_n_fft_has_one_minimum_in_the_schema_and_the_code():
    """The code allowed n_fft 1, the schema 2: the schema decides for both now."""
    with pytest.raises(DeepselfError, match=r"^features\.s\.n_fft: 1 is less than the minimum of 2"):
        check_params("spectrogram", {"n_fft": 1, "hop_length": 1}, 8000, 800, "features.s")
    assert check_params("spectrogram", {"n_fft": 256.0}, 8000, 800, "features.s")["n_fft"] == 256


# --- I: data.labels renaming a label the sheet lacks ----------------------------------------------------

def test_a_label_renamed_but_absent_from_the_sheet_is_warned_about(tmp_path, caplog):
    write_config(tmp_path, ROWS)
    config = validate_config({**CONFIG, "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv"),
                                                 "labels": {"a": "alpha", "B": "beta", "c": "beta"}},
                              "cv": {"folds": 2}})
    with caplog.at_level(logging.WARNING, logger="deepself"):
        preflight(config["data"], config["cv"])
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'sheet.csv'}: data.labels renames 'B' and 'c', which no sample has (the sheet's labels: 'a', "
        "'b'): check its spelling, or remove it"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deepself"):
        build_sheet(config["data"], config["cv"], tmp_path)
    assert "data.labels" not in caplog.text, "said once, before any job, not again by the sheet stage"
