"""The config schema's `model` definition is the registry's: same archs, same keys, same defaults,
generated from the builders' signatures (and the models README's table with them); a validated
config reaches the models."""

from collections.abc import Sequence
from typing import Annotated, Literal

import jsonschema
import pytest
import torch
from torch import nn

from deepself.config import load_schema, validate_config
from deepself.models import create_model, hyperparameters, list_models, registry, schema_gen
from deepself.models.registry import Length, Range

MODEL = load_schema()["definitions"]["model"]


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _args_schema(arch):
    """The `args` properties of the one if/then branch that applies to ``arch``."""
    branches = [b["then"]["properties"]["args"] for b in MODEL["allOf"]
                if jsonschema.Draft7Validator(b["if"]).is_valid({"arch": arch})]
    assert len(branches) == 1, f"{arch}: {len(branches)} schema branches"
    assert branches[0]["additionalProperties"] is False
    return branches[0]["properties"]


def test_the_arch_enum_is_the_registry():
    assert sorted(MODEL["properties"]["arch"]["enum"]) == list_models()


@pytest.mark.parametrize("arch", list_models())
def test_schema_keys_and_defaults_equal_the_builder_signature(arch):
    schema = _args_schema(arch)
    builder = hyperparameters(arch)
    assert set(schema) == set(builder)
    for key, prop in schema.items():
        assert prop.get("description"), f"{arch}.{key} has no description"
        assert "default" in prop, f"{arch}.{key} has no default"
        assert prop["default"] == _plain(builder[key]), f"{arch}.{key}"
        jsonschema.Draft7Validator(prop).validate(prop["default"])


def test_the_schema_and_the_models_table_are_generated_from_the_builders():
    """Run `deepself config-doc` when this fails: a builder's signature or docstring changed."""
    for path, render in ((schema_gen.SCHEMA, schema_gen.rendered_schema),
                         (schema_gen.README, schema_gen.rendered_readme)):
        text = path.read_text()
        assert render(text) == text, f"{path} differs from the model builders"


@pytest.mark.parametrize("arch", list_models())
def test_every_key_has_the_description_of_its_builder_docstring(arch):
    documented = schema_gen.parameter_docs(registry.builder(arch).__doc__)
    for key, prop in _args_schema(arch).items():
        assert " ".join(prop["description"].split()) == documented[key]
    assert "%(" not in registry.builder(arch).__doc__  # every shared entry was filled in


def test_annotations_give_the_schema_of_the_per_layer_keys():
    positive = Annotated[int, Range(1)]
    per_layer = positive | list[positive | list[positive]]
    assert schema_gen.type_schema(per_layer) == {
        "type": ["integer", "array"], "minimum": 1,
        "items": {"type": ["integer", "array"], "minimum": 1, "items": {"type": "integer", "minimum": 1}}}
    assert schema_gen.type_schema(Annotated[Sequence[positive], Length(2, 2)] | None) == {
        "type": ["array", "null"], "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}
    assert schema_gen.type_schema(Literal["a", "b"]) == {"enum": ["a", "b"]}
    assert schema_gen.type_schema(Annotated[float, Range(0, 1)]) == {"type": "number", "minimum": 0, "maximum": 1}


def test_a_union_one_schema_cannot_say_is_refused():
    with pytest.raises(ValueError, match="disagree on 'minimum'"):
        schema_gen.type_schema(Annotated[int, Range(1)] | list[Annotated[int, Range(0)]] | Annotated[float, Range(0)])


def test_a_key_without_annotation_default_or_description_is_refused(monkeypatch):
    def build(n_chans, n_freqs, n_times, n_outputs, *, width: int = 3, depth=2):
        """A model.

        Parameters
        ----------
        width
            Its width.
        """

    monkeypatch.setitem(registry._MODELS, "undocumented", build)
    with pytest.raises(ValueError, match="parameter depth needs an annotation"):
        schema_gen.args_schema("undocumented")


def test_a_validated_config_reaches_the_models():
    config = validate_config({
        "experiment": "models",
        "data": {"sheet": "samples.csv"},
        "features": {"mel": {"kind": "logmel"}, "raw": {"kind": "raw"}},
        "models": {
            "fnn": {"arch": "fnn", "feature": "raw", "args": {"hidden": 16, "layers": 3, "activation": "elu"}},
            "cnn1d": {"arch": "cnn1d", "feature": "raw", "args": {"channels": [6], "kernel": 5, "padding": 2,
                                                                   "pool": 4, "pool_type": "avg"}},
            "cnn2d": {"arch": "cnn2d", "feature": "mel", "args": {"channels": [4, 8], "kernel": [[3, 5], 3],
                                                                   "padding": [[1, 2], 1], "pool": [1, [2, 4]]}},
            "cnn3d": {"arch": "cnn3d", "feature": "mel"},
            "gru": {"arch": "gru", "feature": "raw", "args": {"hidden": 7, "layers": 2, "bidirectional": True,
                                                               "readout": "mean", "dropout": 0.1}},
            "lstm": {"arch": "lstm", "feature": "mel"},
            "crnn": {"arch": "crnn", "feature": "mel", "args": {"conv": "2d", "channels": [4, 8], "cell": "lstm",
                                                                 "hidden": 5}},
            "tv": {"arch": "torchvision", "feature": "mel", "args": {"name": "mobilenet_v3_small",
                                                                      "train_mode": "lower_lr",
                                                                      "backbone_lr_scale": 0.5}},
            "panns": {"arch": "panns", "feature": "mel", "args": {"name": "cnn6", "in_adapt": "mean"}},
        },
    })
    built = {}
    for name, spec in config["models"].items():
        shape = {"n_chans": 3, "n_freqs": None, "n_times": 64} if spec["feature"] == "raw" else {
            "n_chans": 2, "n_freqs": 32, "n_times": 48}
        built[name] = create_model(spec["arch"], **shape, n_outputs=4, **spec["args"])
        assert set(spec["args"]) == set(hyperparameters(spec["arch"]))  # every default was filled in

    linears = [m for m in built["fnn"].net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 16, 16, 4]
    assert isinstance(built["fnn"].net[2], nn.ELU)
    assert built["cnn1d"].output_sizes == [(6, 16)] and isinstance(built["cnn1d"].features[-1], nn.AvgPool1d)
    assert built["cnn2d"].output_sizes == [(4, 32, 48), (8, 16, 12)]
    assert built["cnn2d"].features[0].kernel_size == (3, 5)
    assert built["cnn3d"].output_sizes == [(8, 2, 16, 24), (16, 2, 8, 12)]
    rnn = built["gru"].head.rnn
    assert (rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bidirectional, rnn.dropout) == (3, 7, 2, True, 0.1)
    assert built["gru"].head.fc.in_features == 14 and built["gru"].head.readout == "mean"
    assert isinstance(built["lstm"].head.rnn, nn.LSTM) and built["lstm"].head.rnn.input_size == 64
    assert built["crnn"].output_sizes == [(4, 16, 48), (8, 8, 48)]
    assert isinstance(built["crnn"].head.rnn, nn.LSTM) and built["crnn"].head.rnn.input_size == 64
    assert built["tv"].net.features[0][0].in_channels == 2 and built["tv"].get_classifier().out_features == 4
    assert [g["lr"] for g in built["tv"].parameter_groups(0.01)] == [0.005, 0.01]
    assert built["panns"].conv_block1.conv1.kernel_size == (5, 5) and built["panns"].fc_audioset.out_features == 4
    for name, model in built.items():
        x = torch.randn(2, 3, 64) if config["models"][name]["feature"] == "raw" else torch.randn(2, 2, 32, 48)
        assert model(x).shape == (2, 4), name


@pytest.mark.parametrize("args,message", [
    ({"arch": "gru", "args": {"hiden": 8}}, "models.m.args.hiden: unknown key"),
    ({"arch": "torchvision", "args": {"name": "resnet9"}}, "models.m.args.name: 'resnet9' is not one of"),
    ({"arch": "panns", "args": {"resize": [224, 224]}}, "models.m.args.resize: unknown key"),
    ({"arch": "cnn2d", "args": {"kernel": [3, 0]}}, "models.m.args.kernel.1: 0 is less than the minimum of 1"),
    ({"arch": "crnn", "args": {"conv": "3d"}}, "models.m.args.conv: '3d' is not one of"),
])
def test_bad_model_args_name_the_key(args, message):
    from deepself.errors import DeepselfError

    with pytest.raises(DeepselfError, match=message.replace("(", r"\(")):
        validate_config({"experiment": "x", "data": {"sheet": "s.csv"}, "features": {"mel": {"kind": "logmel"}},
                         "models": {"m": {"feature": "mel", **args}}})
