"""`deepself init`: a sheet in, a commented config that `deepself check-config` accepts out."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from deepself.cli import main
from deepself.errors import DeepselfError
from deepself.setup_config import init_config, parse_budget
from deepself.setup_config.budget import Folds, ModelPlan, fit_budget, wall_seconds


def _sheet(folder, rows, name="sheet.csv"):
    pd.DataFrame(rows).to_csv(folder / name, index=False)
    return str(folder / name)


def sensor_sheet(folder, n=15, length=120, channels=2, fold=None):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(length)
        x = np.sin(t * (0.1 + 0.1 * (i % 3)))[:, None] + rng.normal(0, 0.3, (length, channels))
        np.save(folder / f"r{i}.npy", x.astype(np.float32))
        rows.append({"path": f"r{i}.npy", "label": "abc"[i % 3], **({"fold": fold(i)} if fold else {})})
    return _sheet(folder, rows)


def audio_sheet(folder, n=10, rate=8000, seconds=0.5):
    import soundfile

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(int(rate * seconds)) / rate
        tone = np.sin(2 * np.pi * (300 + 400 * (i % 2)) * t)
        soundfile.write(folder / f"c{i}.wav", tone + rng.normal(0, 0.1, len(t)), rate)
        rows.append({"path": f"c{i}.wav", "label": ["dog", "rain"][i % 2]})
    return _sheet(folder, rows)


def image_sheet(folder, n=10):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L").save(folder / f"im{i}.png")
        rows.append({"path": f"im{i}.png", "label": "xy"[i % 2], "fold": "test" if i < 4 else "train"})
    return _sheet(folder, rows)


SHEETS = {"sensor": sensor_sheet, "audio": audio_sheet, "image": image_sheet}


def init(tmp_path, sheet, *extra):
    out = tmp_path / "out" / "my.yaml"
    code = main(["init", sheet, "--out", str(out), "--timing", "stored", "--cores", "2",
                 "--weights-dir", str(tmp_path / "no_weights"), *extra])
    return code, out


@pytest.mark.parametrize("kind", SHEETS)
def test_init_writes_a_config_that_check_config_accepts(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out = init(tmp_path, SHEETS[kind](tmp_path))
    assert code == 0
    printed = capsys.readouterr().out
    assert main(["check-config", str(out)]) == 0
    config = yaml.safe_load(out.read_text())
    assert config["data"]["modalities"]["main"]["kind"] == kind
    assert config["fusions"]["select"]["method"] == "select"
    assert config["fusions"]["select"]["models"] == list(config["models"])
    lines = out.read_text().splitlines()
    for name in config["models"]:  # every model's choice explained right above it
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  {name}:"))
        assert lines[at - 1].startswith("  # ")
        assert re.search(rf"^  {re.escape(name)}: \d+ jobs?, \d+ s", printed, re.MULTILINE)
    assert "the workflow about" in printed


def test_sensor_choices_follow_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = sensor_sheet(tmp_path, length=4097, channels=1)
    out, _ = init_config(sheet, tmp_path / "bonn.yaml", sample_rate=173.61, timing="stored", cores=2)
    config, text = yaml.safe_load(out.read_text()), out.read_text()
    assert set(config["models"]) == {"minirocket", "multirocket", "hydra", "lite"}
    assert config["data"]["modalities"]["main"]["sample_rate"] == 173.61
    assert config["models"]["lite"]["windows"]["length_s"] == pytest.approx(512 / 173.61, abs=1e-5)
    assert "windows" not in config["models"]["minirocket"]  # 4,097 samples: the rocket takes them whole
    assert "windows of 2.95 s (512 samples, as config/bonn.yaml): recordings are 23.6 s, 4,097 samples at 173.61 Hz" \
        in " ".join(line.strip("# ") for line in text.splitlines())
    assert config["cv"]["folds"] == 5

    fast, _ = init_config(sheet, tmp_path / "fast.yaml", preset="fast", sample_rate=173.61, timing="stored")
    assert set(yaml.safe_load(fast.read_text())["models"]) == {"minirocket", "multirocket", "hydra"}


def test_an_official_split_becomes_test_folds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = sensor_sheet(tmp_path, n=30, fold=lambda i: "TEST" if i % 2 else "train")
    out, report = init_config(sheet, tmp_path / "c.yaml", timing="stored")
    cv = yaml.safe_load(out.read_text())["cv"]
    assert cv["folds"] == "from_sheet" and cv["test_folds"] == ["TEST"]
    assert any("--sample-rate" in line for line in report)  # .npy carries no rate: said, and 1 Hz written


def test_audio_without_weights_says_so_and_picks_what_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, _ = init_config(audio_sheet(tmp_path), tmp_path / "a.yaml", weights_dir="nowhere", timing="stored")
    config, text = yaml.safe_load(out.read_text()), out.read_text()
    assert set(config["models"]) == {"cnn", "minirocket"}  # no probes; short clips: a rocket on the waveform
    assert "panns left out: its weights, nowhere/panns_aisfx_cnn10.pth, are missing" in text
    assert "yamnet left out" in text


def test_audio_probes_when_their_weights_are_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    for name in ("panns_aisfx_cnn10.pth", "yamnet.pth"):
        (tmp_path / "w" / name).write_bytes(b"")  # only looked for: nothing reads them before training
    out, _ = init_config(audio_sheet(tmp_path), tmp_path / "a.yaml", preset="fast", weights_dir="w", timing="stored")
    config = yaml.safe_load(out.read_text())
    assert set(config["models"]) == {"panns", "yamnet", "minirocket"}
    assert config["data"]["modalities"]["main16k"] == {"column": "path", "kind": "audio", "resample": 16000,
                                                      "length_s": 0.975}  # YAMNet's shortest input
    assert config["models"]["yamnet"]["args"] == {"weights": "w/yamnet.pth", "train_mode": "probe"}


def test_init_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out" / "my.yaml"
    out.parent.mkdir()
    out.write_text("mine\n")
    code, _ = init(tmp_path, sensor_sheet(tmp_path))
    assert code == 1
    assert f"{out}: already exists" in capsys.readouterr().err
    assert out.read_text() == "mine\n"


@pytest.mark.parametrize("change, message", [
    (lambda df, d: df.drop(columns="label"), "the sheet has no label column"),
    (lambda df, d: df.assign(path=["x.unknown"] * len(df)), "no column lists files"),
    (lambda df, d: df.assign(path=[*df["path"][:-1], "gone.npy"]), "sample 'row 16': file"),
    (lambda df, d: (d / "r.bak").write_text("x") and df.assign(path=[*df["path"][:-1], "r.bak"]),
     "sample 'row 16' (column 'path'):"),
    (lambda df, d: df.assign(label=["a"] * 13 + ["b"] * 2), "class 'b' has 2 samples"),
])
def test_a_bad_sheet_is_a_clear_error(tmp_path, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    sheet = sensor_sheet(tmp_path)
    change(pd.read_csv(sheet), tmp_path).to_csv(sheet, index=False)
    with pytest.raises(DeepselfError, match=re.escape(message)) as err:
        init_config(sheet, tmp_path / "c.yaml", timing="stored")
    assert "sheet.csv" in str(err.value)
    assert not (tmp_path / "c.yaml").exists()


def test_parse_budget():
    assert [parse_budget(t) for t in ("90", "90s", "10m", "1h30m", "0.5h")] == [90, 90, 600, 5400, 1800]
    for bad in ("", "ten", "5d", "0m"):
        with pytest.raises(DeepselfError, match="--budget"):
            parse_budget(bad)


def _plans():
    rocket = ModelPlan("multirocket", {"arch": "multirocket", "args": {"n_kernels": 10000}}, [], "rocket", (1, 1000))
    net = ModelPlan("lite", {"arch": "lite", "train": {"epochs": 160}}, [], "network", (1, 1000),
                    seconds=(1e-3, 3e-4))
    return [rocket, net]


def test_a_budget_shrinks_the_costliest_models_first():
    folds = Folds(n=1000, held_out=5, train_share=0.8, dev_fraction=0.2, cores=2)
    full = wall_seconds(_plans(), folds, 1)
    plans, dropped = fit_budget(_plans(), folds, full * 0.6)
    assert wall_seconds(plans, folds, 1) <= full * 0.6
    lite = next(p for p in plans if p.name == "lite")
    assert lite.spec["train"]["epochs"] < 160 and lite.changes[0].startswith("budget: epochs 160 -> 80")
    assert not dropped

    plans, dropped = fit_budget(_plans(), folds, 30)  # too small for both even at their smallest
    assert len(plans) == 1 and dropped[0].startswith("budget: ")
    assert plans[0].changes[-1].startswith("over budget")


def test_the_budget_is_written_beside_the_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, report = init_config(sensor_sheet(tmp_path, n=60, length=2000), tmp_path / "c.yaml", budget_s=40,
                              timing="stored", cores=2)
    text = out.read_text()
    assert "budget: " in text and "(budget 40 s)" in "\n".join(report)
    models = yaml.safe_load(text)["models"]
    assert "lite left out" in text if "lite" not in models else models["lite"]["train"]["epochs"] < 150
