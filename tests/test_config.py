"""Config validation: every shipped config validates, defaults are filled, bad keys are named."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import pytest
import yaml

from deepself.config import load_config, load_schema, validate_config
from deepself.errors import DeepselfError
from deepself.signal import features

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")) + [REPO / "tests/configs/tiny.yaml"],
                         ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    for model in config["models"].values():
        assert set(model["train"]) == set(load_schema()["definitions"]["train"]["properties"])


def test_bonn_experiments_after_bonn_is_the_config_of_the_results_run():
    """The exploratory Bonn models live in bonn_experiments.yaml, whose data, folds and training defaults
    are bonn.yaml's: given after bonn.yaml (Snakemake merges config files in order), it adds its models to
    bonn's and changes none of them, which is the config of benchmarks/RESULTS.md's 5-class run."""
    from snakemake.utils import update_config

    bonn, experiments = (yaml.safe_load((REPO / "config" / name).read_text())
                         for name in ("bonn.yaml", "bonn_experiments.yaml"))
    for key in ("data", "cv", "train"):
        assert experiments[key] == bonn[key], key
    assert all(experiments["features"][name] == bonn["features"][name] for name in experiments["features"])
    merged = copy.deepcopy(bonn)
    update_config(merged, experiments)
    update_config(merged, {"experiment": "bonn"})
    merged, alone = validate_config(merged), validate_config(bonn)
    assert {name: merged["models"][name] for name in alone["models"]} == alone["models"]
    assert set(merged["models"]) - set(alone["models"]) == {"crnn_xl", *(f"crnn_long_s{k}" for k in range(1, 5))}
    for k in range(1, 5):
        seed = merged["models"][f"crnn_long_s{k}"]
        assert seed == {**merged["models"]["crnn_long"], "train": {**merged["models"]["crnn_long"]["train"], "seed": k}}
    seeds = merged["fusions"]["crnn_long_seeds"]
    assert seeds["models"] == ["crnn_long"] + [f"crnn_long_s{k}" for k in range(1, 5)] and seeds["method"] == "mean"
    assert {name: merged["fusions"][name] for name in alone["fusions"]} == alone["fusions"]


def test_defaults_are_filled_and_overrides_merged():
    config = copy.deepcopy(TINY)
    config["models"]["cnn"]["train"] = {"lr": 0.1}
    out = validate_config(config)
    assert out["models"]["cnn"]["train"]["lr"] == 0.1
    assert out["models"]["cnn"]["train"]["epochs"] == TINY["train"]["epochs"]
    assert out["models"]["fnn"]["train"]["lr"] == TINY["train"]["lr"]
    assert out["models"]["cnn"]["args"]["kernel"] == 3
    assert out["data"]["modalities"]["accel"]["filter"]["order"] == 4
    assert out["cv"]["dev_fraction"] == 0.2
    assert config["models"]["cnn"]["train"] == {"lr": 0.1}, "the input config is not modified"


@pytest.mark.parametrize("change, message", [
    (lambda c: c["train"].update(lrr=1), "config key train.lrr: unknown key"),
    (lambda c: c["train"].update(lr="fast"), "config key train.lr: 'fast' is not of type 'number'"),
    (lambda c: c["models"]["cnn"]["args"].update(chanels=[4]), "config key models.cnn.args.chanels: unknown key"),
    (lambda c: c["models"]["cnn"].update(arch="cnn9"), "config key models.cnn.arch: 'cnn9' is not one of"),
    (lambda c: c["models"]["fnn"].update(train={"epochs": 0}), "config key models.fnn.train.epochs: 0 is less than"),
    (lambda c: c["models"]["fnn"].update(feature="mfcc"), "config key models.fnn.feature: 'mfcc' is not a feature"),
    (lambda c: c["features"]["gyro_spec"].update(n_mels=3), "config key features.gyro_spec.n_mels: unknown key"),
    (lambda c: c["features"]["gyro_spec"].update(modality="eeg"), "config key features.gyro_spec.modality: 'eeg'"),
    (lambda c: c["features"].update(mel={"kind": "logmel", "log": "ln"}), "config key features.mel.log: 'ln' is not one of"),
    (lambda c: c["features"].update(mel={"kind": "logmel", "log_gain": 0}), "config key features.mel.log_gain: 0 is less than"),
    (lambda c: c["fusions"]["both"].update(models=["fnn", "svm"]), "config key fusions.both.models: 'svm'"),
    (lambda c: c["fusions"]["both"].update(top=3), "config key fusions.both.top: 3 is more than the 2 models"),
    (lambda c: c["fusions"]["both"].update(top=0), "config key fusions.both.top: 0 is less than"),
    (lambda c: c["cv"].update(folds=1), "config key cv.folds"),
    (lambda c: c["data"]["modalities"]["accel"].update(filter={"band": [1]}), "data.modalities.accel.filter.band"),
    (lambda c: c.pop("experiment"), "config key experiment: missing"),
    (lambda c: c.update(experiment="a b"), "config key experiment: 'a b' must be"),
    (lambda c: c["data"].update(root=None), "config key data.root: missing"),
])
def test_bad_config_names_the_key(change, message):
    config = copy.deepcopy(TINY)
    change(config)
    with pytest.raises(DeepselfError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_config(config)


@pytest.mark.parametrize("kind", ["spectrogram", "logmel", "scalogram"])
def test_schema_defaults_equal_the_function_defaults(kind):
    """The schema documents the defaults; the feature functions must agree with it."""
    schema = load_schema()["definitions"]["feature"]["allOf"]
    branch = next(b for b in schema if b["if"]["properties"]["kind"].get("const") == kind)["then"]
    documented = {k: v["default"] for k, v in branch["properties"].items() if "default" in v and k != "modality"}
    signature = {k: p.default for k, p in inspect.signature(features.FEATURES[kind]).parameters.items()
                 if p.kind is p.KEYWORD_ONLY and k in documented}
    assert signature == {k: documented[k] for k in signature}
    missing = set(documented) - set(signature)
    assert not missing, f"schema keys without a parameter: {missing}"


def test_config_readme_lists_every_key_as_the_schema_says():
    """config/README.md's table is generated from the schema; regenerate with `deepself config-doc`."""
    from deepself.config import DOC_BEGIN, DOC_END, schema_markdown

    text = (REPO / "config" / "README.md").read_text()
    assert text.split(DOC_BEGIN)[1].split(DOC_END)[0] == "\n" + schema_markdown()


def test_check_config_command(tmp_path, capsys):
    from deepself.cli import main

    assert main(["check-config", str(REPO / "config" / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "modles": {}}))
    assert main(["check-config", str(bad)]) == 1
    assert "config key modles: unknown key" in capsys.readouterr().err


def test_config_readme_says_required_only_of_required_keys():
    """A key without a default is `required` in the table only where the schema requires it, else `unset`."""
    from deepself.config import schema_markdown

    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[2] for line in schema_markdown().splitlines()
            if line.startswith("| `")}
    assert rows["fusions.<name>.top"] == "unset"
    assert rows["experiment"] == "required" and rows["models.<name>.arch"] == "required"


def test_seeds_make_members_and_their_mean_fusion():
    """``seeds: 3`` trains three members with consecutive seeds, fuses them by their mean, and a fusion
    that lists the model lists its members; the validated config validates to itself."""
    config = validate_config({
        "experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}}, "train": {"seed": 7},
        "models": {"a": {"arch": "fnn", "feature": "f"}, "lite": {"arch": "lite", "feature": "f", "seeds": 3},
                   "b": {"arch": "fnn", "feature": "f"}},
        "fusions": {"all": {"models": ["a", "lite"], "method": "select"}}})
    assert list(config["models"]) == ["a", "lite_s0", "lite_s1", "lite_s2", "b"]
    assert [config["models"][f"lite_s{k}"]["train"]["seed"] for k in range(3)] == [7, 8, 9]
    assert config["fusions"]["lite"] == {"models": ["lite_s0", "lite_s1", "lite_s2"], "method": "mean", "rounds": 25}
    assert config["fusions"]["all"]["models"] == ["a", "lite_s0", "lite_s1", "lite_s2"]
    assert validate_config(config) == config
    with pytest.raises(DeepselfError, match="models.lite.seeds: its member lite_s1 is already a model"):
        validate_config({**config, "models": {"lite": {"arch": "lite", "feature": "f", "seeds": 2},
                                              "lite_s1": {"arch": "fnn", "feature": "f"}}, "fusions": {}})
