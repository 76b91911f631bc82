"""Windows of recordings: starts, cutting against slicing, aggregation, statistics of the windows."""

import numpy as np
import pytest
import torch

from deepself.training import windows
from deepself.errors import DeepselfError
from deepself.inference import normalizer


def test_starts_cover_the_recording_and_end_with_it():
    assert windows.starts(10, 4, 3).tolist() == [0, 3, 6]  # 6 + 4 == 10: no extra window
    assert windows.starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # the last one ends with the recording
    assert windows.starts(4, 4, 1).tolist() == [0]
    with pytest.raises(DeepselfError, match="rec.wav: 3 frames, shorter than one window of 4"):
        windows.starts(3, 4, 1, what="rec.wav")


def test_plan_converts_seconds_to_frames_of_the_store():
    signal = {"kind": "signal", "sample_rate": 173.61}
    spec = {"kind": "signal", "sample_rate": 173.61, "feature_params": {"hop_length": 32}}
    assert windows.frame_rate(signal) == 173.61 and windows.frame_rate(spec) == pytest.approx(173.61 / 32)
    plan = windows.Plan.from_config({"length_s": 4.0, "hop_s": 2.0, "eval_hop_s": None}, windows.frame_rate(signal))
    assert (plan.length, plan.hop, plan.eval_hop, plan.aggregate) == (694, 347, 347, "mean")
    with pytest.raises(DeepselfError, match="images"):
        windows.frame_rate({"kind": "image"})


def test_index_keeps_every_window_of_a_recording_together():
    recording, start = windows.index(np.array([5, 2]), 11, 4, 3)
    assert recording.tolist() == [5] * 4 + [2] * 4
    assert start.tolist() == [0, 3, 6, 7] * 2


@pytest.mark.parametrize("shape", [(3, 2, 20), (3, 2, 5, 20)])
def test_cut_equals_slicing(shape):
    x = torch.randn(shape)
    recording, start = np.array([2, 0, 2]), np.array([0, 7, 16])
    out = windows.cut(x, recording, start, 4)
    assert out.shape == (3, *shape[1:-1], 4)
    for i, (r, s) in enumerate(zip(recording, start)):
        assert torch.equal(out[i], x[r, ..., s : s + 4])


def test_windows_cut_lazily_batch_by_batch():
    x = torch.randn(4, 1, 30)
    recording, start = windows.index(np.arange(4), 30, 8, 5)
    view = windows.Windows(x, recording, start, 8)
    assert view.shape == (len(recording), 1, 8)
    part = view.subset(np.array([1, 3]))
    assert len(part) == 2 and torch.equal(part[0:2][1], x[recording[3], :, start[3] : start[3] + 8])
    assert torch.equal(view[torch.tensor([0, 6])], windows.cut(x, recording[[0, 6]], start[[0, 6]], 8))


def test_jitter_stays_inside_the_recording_and_moves_windows():
    start = windows.starts(50, 10, 8)
    moved = windows.jitter(start, 8, 50, 10, torch.Generator().manual_seed(0))
    assert (moved >= start).all() and (moved - start < 8).all() and (moved + 10 <= 50).all()
    assert (moved != start).any()


def test_aggregate_mean_and_log_mean_per_recording():
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6]])
    recording = np.array([7, 7, 3, 3])
    order, mean = windows.aggregate(proba, recording, "mean")
    assert order.tolist() == [7, 3]  # in the order recordings come
    np.testing.assert_allclose(mean, [[0.7, 0.3], [0.3, 0.7]])
    _, geometric = windows.aggregate(proba, recording, "log_mean")
    expected = np.sqrt(proba[:2].prod(axis=0))
    np.testing.assert_allclose(geometric[0], expected / expected.sum())
    np.testing.assert_allclose(geometric.sum(axis=1), 1.0)
    with pytest.raises(DeepselfError, match="windows.aggregate"):
        windows.aggregate(proba, recording, "max")


@pytest.mark.parametrize("layout,shape", [("CT", (5, 2, 40)), ("CFT", (5, 2, 3, 40))])
def test_normalizer_of_windows_equals_that_of_the_materialised_windows(layout, shape):
    x = torch.randn(shape) * 3 + 1
    recording, start = windows.index(np.array([0, 2, 4]), 40, 12, 5)
    view = windows.Windows(x, recording, start, 12)
    stats = windows.normalizer(view, "feature", layout, batch_size=4)
    reference = normalizer(view[np.arange(len(view))].numpy(), "feature", layout)
    assert torch.allclose(stats["mean"], reference["mean"], atol=1e-6)
    assert torch.allclose(stats["std"], reference["std"], atol=1e-6)
    assert windows.normalizer(view, "sample", layout) == {"mode": "sample"}


def test_samples_windows_and_embeddings_are_one_type_of_inputs():
    from deepself.training.windows import Inputs, Windows

    x = torch.arange(2 * 1 * 10, dtype=torch.float32).reshape(2, 1, 10)
    view = Windows(x, np.array([0, 1, 1]), np.array([0, 2, 6]), 4)
    for inputs in (x, view, torch.zeros(3, 5)):
        assert isinstance(inputs, Inputs)
        assert inputs[0:2].shape[0] == 2 and inputs[torch.tensor([1])].shape[0] == 1
    assert torch.equal(view[np.array([2, 0])], torch.stack([x[1, :, 6:10], x[0, :, 0:4]]))
