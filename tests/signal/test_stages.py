"""Filter and feature stages: results equal to the functions, kept when still valid, rebuilt when not."""

import logging

import h5py
import numpy as np
import pytest

from deepself.errors import DeepselfError
from deepself.io.store import create_store, fingerprint_of, open_store
from deepself.signal import features, stages
from deepself.signal.filtering import bandpass
from deepself.signal.params import check_params

SAMPLE_RATE = 8000.0
LOGMEL = {"kind": "logmel", "n_fft": 512, "hop_length": 256, "n_mels": 24}
META = {"kind": "signal", "layout": "CT", "modality": "main", "sample_rate": SAMPLE_RATE,
        "n_channels": 2, "n_samples": 2000}


def make_store(path, seed=0, n=5):
    x = np.random.default_rng(seed).standard_normal((n, 2, 2000)).astype(np.float32)
    with create_store(path, n, x.shape[1:], META) as writer:
        writer.write([f"s{i}" for i in range(n)], x)
    return x


@pytest.fixture
def src(tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "BLOCK", 2)  # several blocks, one short
    path = tmp_path / "raw.h5"
    return path, make_store(path)


@pytest.fixture
def no_compute(monkeypatch):
    """Make any feature or filter computation fail: a cache hit must not compute."""
    def fail(*args, **kwargs):
        raise AssertionError("computed although the result was cached")

    monkeypatch.setattr(stages.features, "compute", fail)
    monkeypatch.setattr(stages.filtering, "bandpass", fail)


def test_feature_store_holds_each_channels_map_and_says_how_it_was_made(src, tmp_path):
    path, x = src
    out = tmp_path / "logmel.h5"
    meta = stages.feature_store(path, out, "mel", {**LOGMEL, "modality": None})
    with open_store(out) as store:
        params = check_params("logmel", {k: v for k, v in LOGMEL.items() if k != "kind"},
                              SAMPLE_RATE, 2000, "k")
        expected = features.compute("logmel", x, SAMPLE_RATE, params, backend="reference")
        assert store.x.shape == (5, 2, 24, 1 + 2000 // 256) == expected.shape
        np.testing.assert_allclose(store.read(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        assert store.meta == meta
        assert meta["feature_params"] == params and meta["layout"] == "CFT"
        assert meta["input_fingerprint"] == fingerprint_of(path)
        assert store.fingerprint == fingerprint_of(out)


def test_second_run_is_a_cache_hit(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    first = stages.feature_store(path, out, "mel", LOGMEL)
    stamp = out.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="deepself"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stages.features, "compute", lambda *a, **k: pytest.fail("computed on a cache hit"))
            assert stages.feature_store(path, out, "mel", LOGMEL) == first
    assert "cache hit" in caplog.text
    assert out.stat().st_mtime_ns == stamp


def test_resolved_parameters_hit_the_cache_of_their_defaults(src, tmp_path, monkeypatch, caplog):
    """A config that spells out the defaults (or a stored parameter set) asks for the same map."""
    path, _ = src
    out = tmp_path / "logmel.h5"
    meta = stages.feature_store(path, out, "mel", LOGMEL)
    monkeypatch.setattr(stages.features, "compute", lambda *a, **k: pytest.fail("computed on a cache hit"))
    with caplog.at_level(logging.INFO, logger="deepself"):
        stages.feature_store(path, out, "mel", {"kind": "logmel", **meta["feature_params"]})
    assert "cache hit" in caplog.text


def rebuilds(path, out, spec, caplog, **kwargs):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself"):
        meta = stages.feature_store(path, out, "mel", spec, **kwargs)
    assert "cache hit" not in caplog.text
    return meta


def test_changed_parameters_rebuild(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    stages.feature_store(path, out, "mel", LOGMEL)
    meta = rebuilds(path, out, {**LOGMEL, "n_mels": 16}, caplog)
    assert "stale" in caplog.text and "feature_params" in caplog.text
    with open_store(out) as store:
        assert store.x.shape[2] == 16
        assert store.meta["feature_params"]["n_mels"] == 16 == meta["feature_params"]["n_mels"]


def test_changed_input_rebuilds(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    stages.feature_store(path, out, "mel", LOGMEL)
    x = make_store(path, seed=1)
    rebuilds(path, out, LOGMEL, caplog)
    assert "input_fingerprint" in caplog.text
    with open_store(out) as store:
        p = store.meta["feature_params"]
        np.testing.assert_allclose(store.read(), features.compute("logmel", x, SAMPLE_RATE, p), rtol=0, atol=0)


def test_foreign_files_are_rebuilt_not_read(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    out.write_text("not hdf5")
    rebuilds(path, out, LOGMEL, caplog)
    assert "not a usable store" in caplog.text
    with h5py.File(out, "w") as h5:  # an HDF5 file with the right parameters but no fingerprint
        h5["x"] = np.zeros((5, 2, 24, 8), np.float32)
        h5["id"] = [f"s{i}".encode() for i in range(5)]
        h5.attrs["meta"] = "{}"
    rebuilds(path, out, LOGMEL, caplog)
    assert "not a usable store" in caplog.text and "fingerprint" in caplog.text
    with open_store(out) as store:
        assert store.fingerprint == fingerprint_of(out)


def test_other_compression_rebuilds_and_is_recorded(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    stages.feature_store(path, out, "mel", LOGMEL)
    plain = fingerprint_of(out)
    rebuilds(path, out, LOGMEL, caplog, compression="gzip")
    assert "compression" in caplog.text
    with open_store(out) as store:
        assert store.compression == "gzip" and store.fingerprint == plain


def test_cache_false_rebuilds(src, tmp_path, caplog):
    path, _ = src
    out = tmp_path / "logmel.h5"
    stages.feature_store(path, out, "mel", LOGMEL)
    rebuilds(path, out, LOGMEL, caplog, cache=False)


def test_bad_compression_names_the_key_before_any_work(src, tmp_path, no_compute):
    path, _ = src
    with pytest.raises(DeepselfError, match=r"^features\.mel\.compression: 'bz2'"):
        stages.feature_store(path, tmp_path / "f.h5", "mel", LOGMEL, compression="bz2")
    with pytest.raises(DeepselfError, match=r"^eeg\.filter\.compression: 'bz2'"):
        stages.filter_store(path, tmp_path / "g.h5", [100.0, 1000.0], 4, key="eeg.filter", compression="bz2")
    assert not (tmp_path / "f.h5").exists() and not (tmp_path / "g.h5").exists()


def test_bad_parameter_fails_before_any_work(src, tmp_path, no_compute):
    path, _ = src
    with pytest.raises(DeepselfError, match=r"^features\.mel\.n_fft:"):
        stages.feature_store(path, tmp_path / "f.h5", "mel", {**LOGMEL, "n_fft": 4096})


def test_interrupted_feature_stage_leaves_the_old_result(src, tmp_path, monkeypatch):
    path, _ = src
    out = tmp_path / "logmel.h5"
    stages.feature_store(path, out, "mel", LOGMEL)
    before = fingerprint_of(out)
    compute = stages.features.compute
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return compute(*args, **kwargs)

    monkeypatch.setattr(stages.features, "compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stages.feature_store(path, out, "mel", {**LOGMEL, "n_mels": 16})
    assert fingerprint_of(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logmel.h5", "raw.h5"]


def test_filter_store_equals_bandpass_and_caches(src, tmp_path, caplog):
    path, x = src
    out = tmp_path / "filtered.h5"
    meta = stages.filter_store(path, out, [100.0, 1000.0], 4, compression="lzf")
    with open_store(out) as store:
        np.testing.assert_array_equal(store.read(), bandpass(x, SAMPLE_RATE, [100.0, 1000.0], 4))
        assert store.compression == "lzf" and meta["input_fingerprint"] == fingerprint_of(path)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself"):
        stages.filter_store(path, out, [100.0, 1000.0], 4, compression="lzf")
        assert "cache hit" in caplog.text
        caplog.clear()
        stages.filter_store(path, out, [100.0, 2000.0], 4, compression="lzf")
        assert "cache hit" not in caplog.text and "filter" in caplog.text
    with open_store(out) as store:
        assert store.meta["filter"] == {"band": [100.0, 2000.0], "order": 4}


def test_features_of_a_filtered_store_record_the_filtered_input(src, tmp_path):
    path, _ = src
    filtered = tmp_path / "filtered.h5"
    stages.filter_store(path, filtered, [100.0, 1000.0], 4)
    meta = stages.feature_store(filtered, tmp_path / "f.h5", "mel", LOGMEL)
    assert meta["input_fingerprint"] == fingerprint_of(filtered) != fingerprint_of(path)
    assert meta["filter"] == {"band": [100.0, 1000.0], "order": 4}
