"""PANNs Cnn6/10/14: the paper's layouts, and official-layout checkpoints through the weights path."""

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.models.panns import PANN


def _official(name, n_mels=64):
    """A checkpoint shaped like the Zenodo files: {"model": state_dict} with the extractor's buffers."""
    torch.manual_seed(1)
    state = PANN(name, n_mels, 64).state_dict()
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.randn(513, 1, 1024)
    state["logmel_extractor.melW"] = torch.randn(513, n_mels)
    return {"model": state, "iteration": 660000}, state


@pytest.mark.parametrize("name,blocks,width,kernel", [("cnn6", 4, 512, 5), ("cnn10", 4, 512, 3),
                                                      ("cnn14", 6, 2048, 3)])
def test_layouts_follow_the_paper(name, blocks, width, kernel):
    model = create_model("panns", n_chans=1, n_freqs=64, n_times=100, n_outputs=10, name=name)
    assert sum(1 for n, _ in model.named_children() if n.startswith("conv_block")) == blocks
    assert model.conv_block1.conv1.kernel_size == (kernel, kernel)
    assert isinstance(model.bn0, nn.BatchNorm2d) and model.bn0.num_features == 64
    assert (model.fc1.in_features, model.fc_audioset.out_features) == (width, 10)


def test_forward_matches_the_papers_pooling():
    torch.manual_seed(0)
    model = create_model("panns", n_chans=1, n_freqs=32, n_times=48, n_outputs=3, name="cnn6").eval()
    x = torch.randn(2, 1, 32, 48)
    h = model.bn0(x.transpose(2, 3).transpose(1, 3)).transpose(1, 3)
    for i in range(1, 5):
        h = getattr(model, f"conv_block{i}")(h)
    assert h.shape == (2, 512, 3, 2)  # (B, C, T / 16, mel / 16)
    h = h.mean(3)
    expected = model.fc_audioset(F.relu(model.fc1(h.max(2).values + h.mean(2))))
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_official_checkpoint_loads_and_the_head_is_replaced(tmp_path):
    checkpoint, state = _official("cnn14")
    torch.save(checkpoint, tmp_path / "Cnn14_mAP=0.431.pth")
    model = create_model("panns", n_chans=1, n_freqs=64, n_times=64, n_outputs=5, name="cnn14",
                         weights=str(tmp_path / "Cnn14_mAP=0.431.pth"))
    own = model.state_dict()
    for key in ("bn0.running_var", "conv_block6.conv2.weight", "conv_block3.bn1.bias", "fc1.weight"):
        assert torch.equal(own[key], state[key])
    assert model.fc_audioset.out_features == 5
    kept = create_model("panns", n_chans=1, n_freqs=64, n_times=64, n_outputs=527, name="cnn14",
                        weights=str(tmp_path / "Cnn14_mAP=0.431.pth"), keep_head=True)
    assert torch.equal(kept.fc_audioset.weight, state["fc_audioset.weight"])


def test_partial_checkpoint_loads_conv_blocks_and_logs_what_is_missing(tmp_path, caplog):
    _, state = _official("cnn10", n_mels=96)
    partial = {k: v for k, v in state.items() if k.startswith("conv_block")}
    torch.save(partial, tmp_path / "blocks.pth")
    with caplog.at_level(logging.INFO, logger="deepself.models.backbone"):
        model = create_model("panns", n_chans=2, n_freqs=96, n_times=64, n_outputs=4, name="cnn10",
                             weights=str(tmp_path / "blocks.pth"))
    assert "loaded conv_block1 (12), conv_block2 (12), conv_block3 (12), conv_block4 (12)" in caplog.text
    assert "initial values kept: bn0 (4), fc1 (2), fc_audioset (2)" in caplog.text
    assert torch.equal(model.conv_block4.conv2.weight, state["conv_block4.conv2.weight"])
    assert torch.allclose(model.conv_block1.conv1.weight, state["conv_block1.conv1.weight"].repeat(1, 2, 1, 1) / 2)
    out = model(torch.randn(3, 2, 96, 64))
    out.sum().backward()
    assert out.shape == (3, 4) and torch.isfinite(model.conv_block1.conv1.weight.grad).all()


def test_missing_file_and_default_say_where_to_download(tmp_path):
    with pytest.raises(DeepselfError, match=r"panns cnn14 loads a local checkpoint only; download "
                                            r"Cnn14_mAP=0.431.pth from https://zenodo.org/record/3987831"):
        create_model("panns", n_chans=1, n_freqs=64, n_times=64, n_outputs=2, name="cnn14", weights="DEFAULT")
    with pytest.raises(DeepselfError, match=r"panns cnn6 needs the weights file .*Cnn6.pth, which does not exist; "
                                            r"download Cnn6_mAP=0.343.pth from .*3987831"):
        create_model("panns", n_chans=1, n_freqs=64, n_times=64, n_outputs=2, name="cnn6",
                     weights=str(tmp_path / "Cnn6.pth"))


def test_wrong_checkpoint_or_mel_bins_are_named(tmp_path):
    checkpoint, _ = _official("cnn10")
    torch.save(checkpoint, tmp_path / "Cnn10.pth")
    with pytest.raises(DeepselfError, match="trained on 64 Mel bins, the feature has 128"):
        create_model("panns", n_chans=1, n_freqs=128, n_times=64, n_outputs=2, name="cnn10",
                     weights=str(tmp_path / "Cnn10.pth"))
    with pytest.raises(DeepselfError, match="does not fit panns cnn14: 20 keys missing"):
        create_model("panns", n_chans=1, n_freqs=64, n_times=64, n_outputs=2, name="cnn14",
                     weights=str(tmp_path / "Cnn10.pth"))
    with pytest.raises(DeepselfError, match="cnn14 pools frequency and time by 32, the input is 64 x 20"):
        create_model("panns", n_chans=1, n_freqs=64, n_times=20, n_outputs=2, name="cnn14")


def test_mean_adapter_and_frozen_backbone():
    model = create_model("panns", n_chans=3, n_freqs=32, n_times=32, n_outputs=2, name="cnn6", in_adapt="mean",
                         train_mode="freeze")
    assert model.conv_block1.conv1.in_channels == 1
    [group] = model.parameter_groups(1e-3)
    head = [model.fc1.weight, model.fc1.bias, model.fc_audioset.weight, model.fc_audioset.bias]
    assert {id(p) for p in group["params"]} == {id(p) for p in head}  # what forward_head runs
    assert not model.conv_block2.conv1.weight.requires_grad and not model.train().bn0.training
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)


def test_aisfx_pooling_is_aisfx_s_network():
    """Max pooling after blocks 1-3, none after block 4, mean over frequency then max over time, no fc1."""
    torch.manual_seed(0)
    model = create_model("panns", n_chans=1, n_freqs=96, n_times=216, n_outputs=10, name="cnn10",
                         pooling="aisfx").eval()
    assert model.fc1 is None and "fc1.weight" not in model.state_dict()
    x = torch.randn(2, 1, 96, 216)
    h = model.bn0(x.transpose(2, 3).transpose(1, 3)).transpose(1, 3)
    for i in range(1, 5):
        block = getattr(model, f"conv_block{i}")
        h = F.relu(block.bn2(block.conv2(F.relu(block.bn1(block.conv1(h))))))
        h = F.max_pool2d(h, 2) if i < 4 else h
    assert h.shape == (2, 512, 27, 12)  # (B, C, T / 8, mel / 8): the fourth block does not pool
    expected = h.mean(3).max(2).values
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), expected)
        torch.testing.assert_close(model.forward_head(expected, pre_logits=True), expected)
        torch.testing.assert_close(model(x), model.fc_audioset(expected))


def test_aisfx_pooling_ignores_a_files_fc1_and_cnn10_pooling_keeps_it(tmp_path):
    checkpoint, state = _official("cnn10", n_mels=96)
    torch.save(checkpoint, tmp_path / "Cnn10.pth")
    aisfx = create_model("panns", n_chans=1, n_freqs=96, n_times=64, n_outputs=3, name="cnn10", pooling="aisfx",
                         weights=str(tmp_path / "Cnn10.pth"))
    assert torch.equal(aisfx.conv_block4.conv2.weight, state["conv_block4.conv2.weight"])
    panns = create_model("panns", n_chans=1, n_freqs=96, n_times=64, n_outputs=3, name="cnn10",
                         weights=str(tmp_path / "Cnn10.pth"))
    assert torch.equal(panns.fc1.weight, state["fc1.weight"])
    x = torch.rand(2, 1, 96, 64)
    with torch.no_grad():
        pre = panns.eval().forward_head(panns.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pre, F.relu(panns.fc1(panns.forward_features(x))))
