"""Recurrent and convolutional-recurrent networks: sequence axis, readout, directions, CRNN reshaping."""

import pytest
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models import create_model


@pytest.mark.parametrize("arch,cell", [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_the_sequence_is_time_with_channels_and_bins_as_features(arch, cell):
    raw = create_model(arch, n_chans=3, n_freqs=None, n_times=20, n_outputs=2, hidden=8, layers=2)
    maps = create_model(arch, n_chans=2, n_freqs=5, n_times=20, n_outputs=2, hidden=8, bidirectional=True)
    assert isinstance(raw.head.rnn, cell) and raw.head.rnn.input_size == 3 and raw.head.rnn.num_layers == 2
    assert maps.head.rnn.input_size == 10 and maps.head.fc.in_features == 16


def test_last_readout_uses_the_final_step_of_each_direction():
    torch.manual_seed(0)
    model = create_model("gru", n_chans=2, n_freqs=None, n_times=12, n_outputs=3, hidden=4, bidirectional=True)
    model.eval()
    x = torch.randn(2, 2, 12)
    _, h_n = model.head.rnn(x.transpose(1, 2))
    expected = model.head.fc(torch.cat([h_n[0], h_n[1]], dim=1))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_mean_readout_averages_over_time():
    torch.manual_seed(0)
    model = create_model("lstm", n_chans=1, n_freqs=None, n_times=10, n_outputs=2, hidden=3, readout="mean").eval()
    x = torch.randn(2, 1, 10)
    out, _ = model.head.rnn(x.transpose(1, 2))
    assert torch.allclose(model(x), model.head.fc(out.mean(1)), atol=1e-6)


def test_a_late_step_changes_a_last_readout():
    torch.manual_seed(0)
    model = create_model("gru", n_chans=1, n_freqs=None, n_times=30, n_outputs=2, hidden=6).eval()
    x = torch.randn(1, 1, 30)
    y = x.clone()
    y[..., -1] += 3.0
    assert not torch.allclose(model(x), model(y))


def test_crnn_2d_pools_frequency_only_and_keeps_time():
    model = create_model("crnn", n_chans=1, n_freqs=32, n_times=50, n_outputs=4, conv="2d", channels=[4, 8],
                         cell="lstm", hidden=5)
    assert model.output_sizes == [(4, 16, 50), (8, 8, 50)]
    assert isinstance(model.head.rnn, nn.LSTM) and model.head.rnn.input_size == 8 * 8
    seen = []
    model.head.rnn.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    assert model(torch.randn(2, 1, 32, 50)).shape == (2, 4)
    assert seen == [(2, 50, 64)]  # (B, T', C' * F')


def test_crnn_2d_pool_time_and_1d_front_end():
    coarse = create_model("crnn", n_chans=1, n_freqs=32, n_times=50, n_outputs=2, conv="2d", channels=[4],
                          pool_time=True)
    assert coarse.output_sizes == [(4, 16, 25)]
    one_d = create_model("crnn", n_chans=3, n_freqs=4, n_times=40, n_outputs=2, channels=[6, 6])
    assert one_d.features[0].in_channels == 12 and one_d.output_sizes == [(6, 20), (6, 10)]
    assert one_d.head.rnn.input_size == 6 and isinstance(one_d.head.rnn, nn.GRU)
    assert one_d(torch.randn(2, 3, 4, 40)).shape == (2, 2)


def test_crnn_errors_name_the_key():
    with pytest.raises(DeepselfError, match="model args conv: 2d needs a feature map"):
        create_model("crnn", n_chans=1, n_freqs=None, n_times=40, n_outputs=2, conv="2d")
    with pytest.raises(DeepselfError, match="model args cell"):
        create_model("crnn", n_chans=1, n_freqs=None, n_times=40, n_outputs=2, cell="transformer")
    with pytest.raises(DeepselfError, match="model args readout"):
        create_model("gru", n_chans=1, n_freqs=None, n_times=40, n_outputs=2, readout="first")
