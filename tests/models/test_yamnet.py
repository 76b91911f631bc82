"""YAMNet in PyTorch against Google's TFLite file: the weights import, the front end, the network.

The TFLite file runs its DFT, Mel and convolution products as hybrid int8 kernels, which quantise
their inputs (activations) to 8 bits as well as their weights; the PyTorch network computes in
float32 with the dequantised weights. So the two agree to the activations' quantisation, not to
float rounding. Measured on the loudest window of the first clip of each ESC-10 class
(ai-edge-litert 2.3.0), and asserted with a margin:

- front end: Mel energies within 2.1% of the window's peak (asserted: 3%);
- network, fed the file's own log-Mel patch: embeddings within 3.3% of their largest value
  (asserted: 4%), the 521 scores within 0.026 (asserted: 0.03);
- end to end, waveform in: embeddings' cosine similarity 0.77 to 0.9995 (asserted: >= 0.75), the
  top class the same on 8 of the 10 windows (asserted: >= 8), scores within 0.43. Quiet Mel
  bins are where they part: the file's int8 inputs round them to zero, and ``log(mel + 0.001)``
  then differs by several units there (the clock tick, mostly quiet, differs most); the float
  network computes what YAMNet's float TensorFlow model computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.signal import features
from deepself.models.weights import tflite_interpreter, yamnet_state_dict

SHARED = Path(__file__).resolve().parents[3] / "shared"
TFLITE = SHARED / "models" / "yamnet" / "yamnet.tflite"
ESC10 = SHARED / "data" / "esc10"
# YAMNet's front end as deepself's logmel feature (config/esc10.yaml's yamnet feature).
FRONT_END = {"n_fft": 512, "win_length": 400, "hop_length": 160, "center": False, "window_at": "start", "power": 1.0,
             "n_mels": 64, "fmin": 125.0, "fmax": 7500.0, "htk": True, "norm": None, "log": "offset",
             "log_offset": 0.001}
WINDOW, SAMPLE_RATE = 15600, 16000


def test_patches_are_96_frames_every_48():
    torch.manual_seed(0)
    model = create_model("yamnet", n_chans=1, n_freqs=64, n_times=498, n_outputs=3, train_mode="probe").eval()
    x = torch.randn(2, 1, 64, 498)
    with torch.no_grad():
        patches = model.patch_embeddings(x)
        assert patches.shape == (2, 9, 1024)  # a 5-s clip: 9 patches, as 9 TFLite windows hop 7680
        torch.testing.assert_close(patches[:, 4], model.patch_embeddings(x[..., 192:288])[:, 0])
        torch.testing.assert_close(model.forward_features(x), patches.mean(1))
        torch.testing.assert_close(model(x), model.get_classifier()(patches.mean(1)))
    assert [p for g in model.parameter_groups(0.1) for p in g["params"]] == list(model.fc.parameters())


def test_too_short_maps_and_other_mel_counts_are_refused(tmp_path):
    with pytest.raises(DeepselfError, match="patches are 96 frames"):
        create_model("yamnet", n_chans=1, n_freqs=64, n_times=95, n_outputs=3)
    torch.save(create_model("yamnet", n_chans=1, n_freqs=64, n_times=96, n_outputs=521,
                            keep_head=True).state_dict(), tmp_path / "y.pth")
    with pytest.raises(DeepselfError, match="read 64 Mel bands, the feature has 96"):
        create_model("yamnet", n_chans=1, n_freqs=96, n_times=96, n_outputs=3, weights=str(tmp_path / "y.pth"))


def test_a_missing_reader_names_the_pip_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_litert(name, *args, **kwargs):
        if name.startswith("ai_edge_litert"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_litert)
    with pytest.raises(DeepselfError, match=r"pip install ai-edge-litert"):
        tflite_interpreter(TFLITE)


@pytest.fixture(scope="module")
def tflite():
    pytest.importorskip("ai_edge_litert", reason="the TFLite reader ai-edge-litert is not installed "
                                                 "(pip install ai-edge-litert)")
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} is absent (Google's yamnet.tflite)")
    interpreter = tflite_interpreter(TFLITE, preserve_all_tensors=True)
    return interpreter, {d["name"]: d["index"] for d in interpreter.get_tensor_details()}


@pytest.fixture(scope="module")
def yamnet_file(tflite, tmp_path_factory):
    from deepself.cli import main

    out = tmp_path_factory.mktemp("yamnet") / "yamnet.pth"
    assert main(["weights", "import", "yamnet", "--from", str(TFLITE), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def windows():
    """The loudest of the 0.975-s windows (every 0.48 s) of the first clip of each ESC-10 class, at 16 kHz."""
    if not ESC10.is_dir():
        pytest.skip(f"{ESC10} is absent (ESC-10 clips)")
    import librosa

    out = []
    for clip in [sorted(d.glob("*.ogg"))[0] for d in sorted(ESC10.iterdir()) if d.is_dir()]:
        y = librosa.load(clip, sr=SAMPLE_RATE)[0].astype(np.float32)
        cuts = [y[i : i + WINDOW] for i in range(0, len(y) - WINDOW + 1, 7680)]
        out.append(max(cuts, key=lambda w: float(np.square(w).mean())))
    return out


def _run(tflite, window):
    interpreter, names = tflite
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window[None])
    interpreter.invoke()
    return (interpreter.get_tensor(names["Identity_1"]).T.copy(),  # (64 mels, 96 frames)
            interpreter.get_tensor(names["yamnet_frames/global_average_pooling2d/Mean"])[0],
            interpreter.get_tensor(names["Identity"])[0])


def test_import_dequantises_the_int8_weights(tflite, yamnet_file):
    interpreter, names = tflite
    state = torch.load(yamnet_file, weights_only=True)
    detail = interpreter.get_tensor_details()[names["yamnet_frames/layer2/pointwise_conv/Conv2D"]]
    int8 = interpreter.get_tensor(detail["index"])
    assert int8.dtype == np.int8
    scales = detail["quantization_parameters"]["scales"]
    expected = torch.from_numpy(int8.astype(np.float32) * scales[:, None, None, None]).permute(0, 3, 1, 2)
    # layer 2's pointwise convolution is features.2 (features.0: layer 1; features.1: layer 2's depthwise)
    assert torch.equal(state["features.2.0.weight"], expected)
    assert state["fc.weight"].shape == (521, 1024)
    assert set(state) == set(yamnet_state_dict(interpreter))


def test_front_end_network_and_scores_match_the_tflite_file(tflite, yamnet_file, windows):
    model = create_model("yamnet", n_chans=1, n_freqs=64, n_times=96, n_outputs=521, weights=str(yamnet_file),
                         keep_head=True).eval()
    cosines, same_top = [], 0
    for window in windows:
        patch, embedding, scores = _run(tflite, window)
        mel = features.compute("logmel", window[None], SAMPLE_RATE, FRONT_END)
        assert mel.shape == (1, 64, 96)
        energy, file_energy = np.exp(mel[0]) - 0.001, np.exp(patch) - 0.001
        assert np.abs(energy - file_energy).max() <= 0.03 * file_energy.max()
        with torch.no_grad():
            own_patch = torch.from_numpy(patch)[None, None]
            e = model.forward_features(own_patch)[0].numpy()
            s = torch.sigmoid(model(own_patch))[0].numpy()
            e_end_to_end = model.forward_features(torch.from_numpy(mel)[None])[0].numpy()
            s_end_to_end = torch.sigmoid(model.forward_head(torch.from_numpy(e_end_to_end)[None]))[0].numpy()
        assert np.abs(e - embedding).max() <= 0.04 * np.abs(embedding).max()
        assert np.abs(s - scores).max() <= 0.03
        cosines.append(e_end_to_end @ embedding / np.linalg.norm(e_end_to_end) / np.linalg.norm(embedding))
        same_top += int(s_end_to_end.argmax() == scores.argmax())
    assert min(cosines) >= 0.75 and same_top >= 8
