"""Convolutional networks: per-layer and per-axis geometry, sizes computed at build time, errors naming the layer."""

import pytest
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models import create_model


def _outputs(model, x):
    return model.features(x).shape[1:]


def test_cnn1d_on_signals_and_on_maps_folds_rows_into_channels():
    signal = create_model("cnn1d", n_chans=3, n_freqs=None, n_times=50, n_outputs=2, channels=[4, 8], kernel=5,
                          padding=2, pool=[2, 5])
    assert signal.output_sizes == [(4, 25), (8, 5)]
    assert _outputs(signal, torch.zeros(2, 3, 50)) == (8, 5)
    maps = create_model("cnn1d", n_chans=2, n_freqs=6, n_times=50, n_outputs=2, channels=[4])
    assert maps.features[0].in_channels == 12
    assert maps(torch.zeros(2, 2, 6, 50)).shape == (2, 2)


def test_cnn2d_per_layer_and_per_axis_values():
    model = create_model("cnn2d", n_chans=1, n_freqs=40, n_times=100, n_outputs=3, channels=[4, 8],
                         kernel=[[3, 7], 3], stride=[1, [1, 2]], padding=[[1, 3], 0], pool=[[2, 1], 2],
                         pool_type="avg")
    # layer 1: 40 x 100 -> conv 40 x 100 -> pool (2, 1) 20 x 100; layer 2: conv (3, stride (1, 2), pad 0)
    # 18 x 49 -> pool 2: 9 x 24
    assert model.output_sizes == [(4, 20, 100), (8, 9, 24)]
    assert _outputs(model, torch.zeros(2, 1, 40, 100)) == (8, 9, 24)
    assert any(isinstance(m, nn.AvgPool2d) for m in model.modules())
    assert model.features[0].kernel_size == (3, 7)


def test_cnn3d_treats_stacked_maps_as_a_volume():
    model = create_model("cnn3d", n_chans=4, n_freqs=16, n_times=20, n_outputs=2)
    assert model.output_sizes == [(8, 4, 8, 10), (16, 4, 4, 5)]
    assert _outputs(model, torch.zeros(2, 1, 4, 16, 20)) == (16, 4, 4, 5)
    assert model(torch.zeros(2, 4, 16, 20)).shape == (2, 2)


def test_flattened_head_sees_the_last_map():
    model = create_model("cnn2d", n_chans=1, n_freqs=8, n_times=12, n_outputs=2, channels=[3], global_pool=False,
                         hidden=[5])
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3 * 4 * 6, 5), (5, 2)]


@pytest.mark.parametrize("arch,kind,args,message", [
    ("cnn2d", "2d", {"channels": [4, 8], "kernel": 5, "padding": 0, "pool": 1},
     r"conv layer 2 \(kernel 5 x 5, stride 1 x 1, padding 0 x 0\) shrinks the input of 2 x 8 to -2 x 4"),
    ("cnn2d", "2d", {"channels": [4, 8, 16], "pool": 2}, r"pooling 2 x 2 after conv layer 3 shrinks 1 x 3 to 0 x 1"),
    ("cnn1d", "1d", {"channels": [4], "kernel": 9, "padding": 0}, "conv layer 1"),
    ("cnn3d", "2d", {"pool": 2}, "pooling 2 x 2 x 2 after conv layer 1 shrinks 1 x 6 x 12 to 0 x 3 x 6"),
    ("cnn2d", "2d", {"channels": [4, 8], "kernel": [3, 3, 3]}, "model args kernel: 3 values for 2 layers"),
    ("cnn2d", "2d", {"channels": [4], "kernel": [[3, 3, 3]]}, "model args kernel: layer 1 has 3 values for 2 axes"),
])
def test_a_geometry_that_shrinks_to_nothing_fails_at_build_time(arch, kind, args, message):
    shape = {"n_chans": 1, "n_freqs": None, "n_times": 8} if kind == "1d" else {"n_chans": 1, "n_freqs": 6,
                                                                                 "n_times": 12}
    if arch == "cnn2d" and args.get("kernel") == 5:
        shape = {"n_chans": 1, "n_freqs": 6, "n_times": 12}
    with pytest.raises(DeepselfError, match=message):
        create_model(arch, n_outputs=2, **shape, **args)
