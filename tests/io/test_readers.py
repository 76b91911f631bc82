"""Tests of deepself.io.readers: every reader on tiny seeded files, and every bad file it must refuse."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile
from PIL import Image

from deepself.errors import DeepselfError
from deepself.io.readers import kind_of, read_signal
from deepself.io.readers.image import read_image

SR = 8000


@pytest.fixture
def stereo() -> np.ndarray:
    """(time, channels) like soundfile: a 440 Hz sine and seeded noise, 0.25 s."""
    rng = np.random.default_rng(0)
    t = np.arange(SR // 4) / SR
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * rng.standard_normal(t.size)], axis=1)


def write_text(path, text: str):
    path.write_bytes(text.encode())
    return path


# kind_of ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, kind",
    [("a.wav", "audio"), ("b.FLAC", "audio"), ("c.ogg", "audio"), ("N001.TXT", "sensor"),
     ("d.csv", "sensor"), ("e.tsv", "sensor"), ("f.npy", "sensor"), ("g.PNG", "image"),
     ("h.jpeg", "image"), ("i.bmp", "image")],
)
def test_kind_of_matches_extension_in_any_case(name, kind):
    assert kind_of(name) == kind


def test_kind_of_unknown_extension_names_file_and_accepted():
    with pytest.raises(DeepselfError, match=r"clip\.mp3: unknown file type '\.mp3'.*\.wav.*\.npy.*\.png"):
        kind_of("clip.mp3")


# audio ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext, subtype, tolerance", [(".wav", "FLOAT", 0.0), (".wav", "PCM_16", 1 / 32768),
                                                      (".flac", "PCM_24", 1 / 2**23)])
def test_lossless_audio_round_trips_as_channels_by_time(tmp_path, stereo, ext, subtype, tolerance):
    path = tmp_path / f"sine{ext}"
    soundfile.write(path, stereo, SR, subtype=subtype)
    signal, rate = read_signal(path)
    assert signal.dtype == np.float32
    assert signal.shape == (2, stereo.shape[0])
    assert rate == SR
    np.testing.assert_allclose(signal, stereo.T, atol=tolerance + 1e-7)


def test_ogg_vorbis_keeps_shape_rate_and_waveform(tmp_path, stereo):
    path = tmp_path / "sine.ogg"
    soundfile.write(path, stereo, SR, format="OGG", subtype="VORBIS")
    signal, rate = read_signal(path)
    assert signal.shape == (2, stereo.shape[0])
    assert rate == SR
    # Lossy: the sine must still be there, on channel 0 and not channel 1.
    assert np.corrcoef(signal[0], stereo[:, 0])[0, 1] > 0.95
    assert abs(np.corrcoef(signal[1], stereo[:, 0])[0, 1]) < 0.2


def test_mono_audio_is_one_channel(tmp_path, stereo):
    path = tmp_path / "mono.wav"
    soundfile.write(path, stereo[:, 0], SR)
    assert read_signal(path)[0].shape == (1, stereo.shape[0])


@pytest.mark.parametrize("ext", [".wav", ".ogg", ".flac"])
def test_garbage_audio_cannot_be_decoded(tmp_path, ext):
    path = tmp_path / f"noise{ext}"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    with pytest.raises(DeepselfError, match=rf"noise\{ext}: cannot be decoded as audio"):
        read_signal(path)


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_truncated_audio_is_refused(tmp_path, stereo, ext):
    whole = tmp_path / f"whole{ext}"
    soundfile.write(whole, stereo, SR)
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DeepselfError, match=rf"cut\{ext}: cannot be decoded as audio"):
        read_signal(cut)


def test_audio_without_frames_holds_no_samples(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros((0, 1)), SR)
    with pytest.raises(DeepselfError, match=r"silent\.wav: holds no samples"):
        read_signal(path)


def test_nan_in_float_wav_names_channel_and_sample(tmp_path, stereo):
    stereo = stereo.copy()
    stereo[7, 1] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, stereo, SR, subtype="FLOAT")
    with pytest.raises(DeepselfError, match=r"nan\.wav: channel 1, sample 7: nan is not a finite number"):
        read_signal(path)


# text -------------------------------------------------------------------------------------------

def test_csv_with_header_is_channels_by_time(tmp_path):
    rng = np.random.default_rng(2)
    table = rng.normal(size=(50, 3)).round(6)
    lines = ["acc_x,acc_y,acc_z"] + [",".join(f"{v:.6f}" for v in row) for row in table]
    path = write_text(tmp_path / "imu.csv", "\n".join(lines) + "\n")
    signal, rate = read_signal(path)
    assert rate is None
    assert signal.dtype == np.float32
    np.testing.assert_allclose(signal, table.T, rtol=1e-6)


def test_bonn_like_column_with_crlf_and_blank_tail(tmp_path):
    values = np.random.default_rng(3).integers(-500, 500, size=4097)
    path = write_text(tmp_path / "N001.TXT", "".join(f"{v}\r\n" for v in values) + "\r\n")
    signal, _ = read_signal(path)
    assert signal.shape == (1, 4097)
    np.testing.assert_array_equal(signal[0], values)


@pytest.mark.parametrize(
    "name, text",
    [("tab.tsv", "time\tx\n0\t1.5\n1\t-2\n"), ("semi.csv", "0;1.5\r\n1;-2\r\n"),
     ("spaces.txt", "  0   1.5\n 1 -2  \n"), ("mac.txt", "0 1.5\r1 -2\r"), ("tabs_spaced.tsv", "0 \t 1.5\n1\t-2\n")],
)
def test_separators_and_line_ends_are_detected(tmp_path, name, text):
    signal, _ = read_signal(write_text(tmp_path / name, text))
    np.testing.assert_array_equal(signal, [[0, 1], [1.5, -2]])


@pytest.mark.parametrize(
    "text, reason",
    [("a,b\n1,2\n3,x\n", r"line 3, column 2: 'x' is not a number"),
     ("1,2\n3,4,5\n", r"line 2: 3 columns, but the rows above have 2"),
     ("1.5,2\n3\n6,7\n", r"line 2: 1 columns, but the rows above have 2"),
     ("1,2\n\n3,\n", r"line 3, column 2: empty cell"),
     ("1,2\n3,4\n5,nan\n", r"line 3, column 2: 'nan' is not a finite number"),
     ("1 2\r\n3 -inf\r\n", r"line 2, column 2: '-inf' is not a finite number"),
     ("x,y\n", r"holds no samples"),
     ("\n \n", r"holds no samples")],
)
def test_bad_text_names_file_line_and_reason(tmp_path, text, reason):
    path = write_text(tmp_path / "bad_table.csv", text)
    with pytest.raises(DeepselfError, match=r"bad_table\.csv: " + reason):
        read_signal(path)


# npy --------------------------------------------------------------------------------------------

def test_npy_1d_is_one_channel_and_2d_is_time_by_channels(tmp_path):
    one = np.arange(10, dtype=np.int16)
    two = np.random.default_rng(4).normal(size=(20, 3))
    np.save(tmp_path / "one.npy", one)
    np.save(tmp_path / "two.npy", two)
    signal, rate = read_signal(tmp_path / "one.npy")
    assert rate is None and signal.dtype == np.float32
    np.testing.assert_array_equal(signal, one[None, :])
    np.testing.assert_allclose(read_signal(tmp_path / "two.npy")[0], two.T, rtol=1e-6)


@pytest.mark.parametrize(
    "array, reason",
    [(np.zeros((2, 3, 4)), r"array has 3 dimensions, shape \(2, 3, 4\)"),
     (np.zeros(0), r"holds no samples"),
     (np.array([[0.0, 1.0], [2.0, np.inf]]), r"channel 1, sample 1: inf is not a finite number"),
     (np.array(["a", "b"]), r"array of dtype <U1 is not real numbers")],
)
def test_bad_npy_names_file_and_reason(tmp_path, array, reason):
    np.save(tmp_path / "bad_array.npy", array)
    with pytest.raises(DeepselfError, match=r"bad_array\.npy: " + reason):
        read_signal(tmp_path / "bad_array.npy")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DeepselfError, match=r"objects\.npy: cannot be read as a \.npy array"):
        read_signal(tmp_path / "objects.npy")


# files that are not there, or empty --------------------------------------------------------------

@pytest.mark.parametrize("name", ["gone.wav", "gone.csv", "gone.npy"])
def test_missing_file(tmp_path, name):
    with pytest.raises(DeepselfError, match=re.escape(f"{name}: no such file")):
        read_signal(tmp_path / name)


@pytest.mark.parametrize("name", ["void.wav", "void.ogg", "void.txt", "void.npy", "void.png"])
def test_zero_byte_file_is_empty(tmp_path, name):
    path = tmp_path / name
    path.touch()
    reader = read_image if name.endswith(".png") else read_signal
    with pytest.raises(DeepselfError, match=re.escape(f"{name}: empty file")):
        reader(path)


def test_read_signal_refuses_an_image(tmp_path):
    with pytest.raises(DeepselfError, match=r"face\.png: is an image"):
        read_signal(tmp_path / "face.png")


# images -----------------------------------------------------------------------------------------

@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, size=(6, 9, 3), dtype=np.uint8)


def test_grey_png_is_one_channel_in_unit_range(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    assert image.dtype == np.float32 and image.shape == (1, 6, 9)
    np.testing.assert_allclose(image[0], grey / 255.0, atol=1e-7)


def test_rgb_png_is_channels_first(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    image = read_image(tmp_path / "colour.png")
    assert image.shape == (3, 6, 9)
    np.testing.assert_allclose(image, rgb.transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_rgba_and_palette_become_rgb(tmp_path, rgb):
    alpha = np.full((6, 9, 1), 128, dtype=np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(tmp_path / "alpha.png")
    np.testing.assert_allclose(read_image(tmp_path / "alpha.png"), rgb.transpose(2, 0, 1) / 255.0, atol=1e-7)

    palette = Image.fromarray(rgb).quantize(colors=8)
    palette.save(tmp_path / "palette.png")
    expected = np.asarray(palette.convert("RGB")).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(read_image(tmp_path / "palette.png"), expected, atol=1e-7)


def test_jpeg_is_close_to_what_was_written(tmp_path):
    smooth = np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "photo.JPG", quality=95)
    image = read_image(tmp_path / "photo.JPG")
    assert image.shape == (3, 32, 32)
    assert np.abs(image - smooth.transpose(2, 0, 1) / 255.0).mean() < 0.02


def test_mode_forces_grey_or_rgb(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    Image.fromarray(rgb[..., 1]).save(tmp_path / "grey.png")
    luma = np.asarray(Image.fromarray(rgb).convert("L")) / 255.0
    np.testing.assert_allclose(read_image(tmp_path / "colour.png", mode="L")[0], luma, atol=1e-7)
    grey_as_rgb = read_image(tmp_path / "grey.png", mode="RGB")
    assert grey_as_rgb.shape == (3, 6, 9)
    np.testing.assert_allclose(grey_as_rgb, np.repeat(rgb[None, ..., 1] / 255.0, 3, axis=0), atol=1e-7)


def test_size_is_height_width_bilinear(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    image = read_image(tmp_path / "colour.png", size=(4, 12))
    assert image.shape == (3, 4, 12)
    expected = np.asarray(Image.fromarray(rgb).resize((12, 4), Image.Resampling.BILINEAR)) / 255.0
    np.testing.assert_allclose(image, expected.transpose(2, 0, 1), atol=1e-7)


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    assert image.shape == (1, 1, 3)
    np.testing.assert_allclose(image[0, 0], [0.0, 32768 / 65535, 1.0], atol=1e-6)


def test_not_an_image(tmp_path):
    path = write_text(tmp_path / "fake.png", "this is text, not pixels\n")
    with pytest.raises(DeepselfError, match=r"fake\.png: cannot be decoded as an image"):
        read_image(path)


def test_truncated_png_is_refused(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DeepselfError, match=r"cut\.png: cannot be decoded as an image"):
        read_image(tmp_path / "cut.png")


@pytest.mark.parametrize("kwargs, reason", [({"mode": "CMYK"}, "image mode must be"),
                                            ({"size": (0, 4)}, "image size must be"),
                                            ({"size": (4,)}, "image size must be"),
                                            ({"size": 48}, "image size must be")])
def test_bad_image_options(tmp_path, rgb, kwargs, reason):
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    with pytest.raises(DeepselfError, match=rf"colour\.png: {reason}"):
        read_image(tmp_path / "colour.png", **kwargs)


def test_missing_image(tmp_path):
    with pytest.raises(DeepselfError, match=r"absent\.png: no such file"):
        read_image(tmp_path / "absent.png")
