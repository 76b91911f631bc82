"""The HDF5 store: atomic writes, a content fingerprint computed while writing, compression; ingest streams into it."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile

from deepself.errors import DeepselfError
from deepself.io import ingest as ingest_module
from deepself.io.ingest import ingest
from deepself.io.store import create_store, fingerprint_of, open_store

META = {"kind": "signal", "layout": "CT", "modality": "main", "sample_rate": 100.0}


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    return [f"s{i}" for i in range(7)], rng.standard_normal((7, 2, 50)).astype(np.float32)


def write(path, ids, x, meta=META, block=3, compression=None):
    with create_store(path, len(ids), x.shape[1:], meta, compression) as writer:
        for start in range(0, len(ids), block):
            writer.write(ids[start : start + block], x[start : start + block])
    return path


def fingerprint(path):
    with open_store(path) as store:
        return store.fingerprint


def test_fingerprint_is_recorded_and_matches_the_content(tmp_path, samples):
    path = write(tmp_path / "a.h5", *samples)
    recorded = fingerprint(path)
    assert recorded.startswith("sha256:") and len(recorded) == 7 + 64
    assert fingerprint_of(path) == recorded
    with open_store(path) as store:
        assert store.ids == samples[0] and store.meta == META
        np.testing.assert_array_equal(store.read(), samples[1])


@pytest.mark.parametrize("block, compression", [(1, None), (7, None), (2, "gzip"), (4, "lzf")])
def test_fingerprint_depends_on_the_content_only(tmp_path, samples, block, compression):
    """Not on how the samples were cut into blocks, nor on the compression."""
    reference = fingerprint(write(tmp_path / "ref.h5", *samples))
    assert fingerprint(write(tmp_path / "b.h5", *samples, block=block, compression=compression)) == reference


def test_fingerprint_changes_with_a_value_an_id_or_the_meta(tmp_path, samples):
    ids, x = samples
    seen = {fingerprint(write(tmp_path / "ref.h5", ids, x))}
    changed = x.copy()
    changed[4, 1, 7] = np.nextafter(changed[4, 1, 7], np.float32(np.inf))  # one ulp
    seen.add(fingerprint(write(tmp_path / "value.h5", ids, changed)))
    seen.add(fingerprint(write(tmp_path / "id.h5", ids[:-1] + ["s7"], x)))
    seen.add(fingerprint(write(tmp_path / "order.h5", ids[::-1], x[::-1])))
    seen.add(fingerprint(write(tmp_path / "meta.h5", ids, x, meta={**META, "sample_rate": 200.0})))
    assert len(seen) == 5


def test_exception_mid_write_leaves_no_file(tmp_path, samples):
    ids, x = samples
    path = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        with create_store(path, len(ids), x.shape[1:], META) as writer:
            writer.write(ids[:3], x[:3])
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(tmp_path, samples):
    ids, x = samples
    path = write(tmp_path / "out.h5", ids, x)
    before = fingerprint(path)
    with pytest.raises(RuntimeError, match="3 of 7 samples written"):
        with create_store(path, len(ids), x.shape[1:], {"other": 1}) as writer:
            writer.write(ids[:3], x[:3])
    assert fingerprint(path) == before and fingerprint_of(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_writer_refuses_wrong_shapes_and_too_many_samples(tmp_path, samples):
    ids, x = samples
    with pytest.raises(ValueError, match="shape"):
        with create_store(tmp_path / "a.h5", 7, x.shape[1:], META) as writer:
            writer.write(ids[:2], x[:2, :, :40])
    with pytest.raises(ValueError, match="holds 2 samples"):
        with create_store(tmp_path / "b.h5", 2, x.shape[1:], META) as writer:
            writer.write(ids[:3], x[:3])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_layout_is_one_chunk_per_sample_with_optional_compression(tmp_path, samples, compression):
    path = write(tmp_path / "a.h5", *samples, compression=compression)
    with h5py.File(path, "r") as h5:
        assert h5["x"].chunks == (1, 2, 50)
        assert h5["x"].compression == compression
    with open_store(path) as store:
        np.testing.assert_array_equal(store.read(["s5", "s1"]), samples[1][[5, 1]])


def test_unknown_compression_is_refused_before_writing(tmp_path, samples):
    with pytest.raises(DeepselfError, match="^compression: 'zstd' is not one of none, gzip, lzf"):
        write(tmp_path / "a.h5", *samples, compression="zstd")
    assert list(tmp_path.iterdir()) == []


def test_empty_store_has_a_fingerprint(tmp_path):
    path = write(tmp_path / "empty.h5", [], np.zeros((0, 2, 5), np.float32), compression="gzip")
    assert fingerprint(path) == fingerprint_of(path)


# --- ingest streams into a store ----------------------------------------------------------------

SPEC = {"column": "path", "kind": "auto", "sample_rate": None, "resample": None, "length_s": None,
        "image_size": None, "image_mode": None, "filter": None}


def make_sheet(tmp_path, paths):
    sheet = tmp_path / "samples.csv"
    pd.DataFrame({"id": [f"s{i}" for i in range(len(paths))], "label": "a", "fold": "1",
                  "path": [str(p) for p in paths]}).to_csv(sheet, index=False)
    return sheet


@pytest.fixture
def wavs(tmp_path):
    rng = np.random.default_rng(1)
    signals = [(0.1 * rng.standard_normal((n, 2))).astype(np.float32) for n in (800, 1000, 900)]
    paths = []
    for i, signal in enumerate(signals):
        paths.append(tmp_path / f"clip{i}.wav")
        soundfile.write(paths[-1], signal, 8000, subtype="FLOAT")
    return paths, signals


@pytest.fixture
def count_reads(monkeypatch):
    reads = []
    read_signal = ingest_module.readers.read_signal

    def counting(path, *args):
        reads.append(str(path))
        return read_signal(path, *args)

    monkeypatch.setattr(ingest_module.readers, "read_signal", counting)
    return reads


@pytest.mark.parametrize("spec, length", [({}, 1000), ({"length_s": 0.1}, 800), ({"resample": 4000}, 500)])
def test_ingest_reads_each_audio_file_once(tmp_path, wavs, count_reads, spec, length):
    """Shapes come from the audio headers; every file is decoded once, to be written."""
    paths, signals = wavs
    out = tmp_path / "raw.h5"
    meta = ingest(make_sheet(tmp_path, paths), "main", {**SPEC, **spec}, out)
    assert sorted(count_reads) == sorted(map(str, paths))
    assert meta["n_samples"] == length and meta["n_channels"] == 2
    with open_store(out) as store:
        assert store.x.shape == (3, 2, length)
        assert store.fingerprint == fingerprint_of(out)
        if "resample" not in spec:
            first = signals[0].T[:, :length]
            np.testing.assert_array_equal(store.read(["s0"])[0, :, : first.shape[1]], first)


def write_table(path, values):
    np.savetxt(path, values, delimiter=",")
    return path


def test_ingest_of_text_tables_reads_them_twice_only_without_a_fixed_length(tmp_path, count_reads):
    rng = np.random.default_rng(2)
    paths = [write_table(tmp_path / f"t{i}.csv", rng.standard_normal((n, 3))) for i, n in enumerate((60, 80, 70))]
    sheet = make_sheet(tmp_path, paths)
    ingest(sheet, "main", {**SPEC, "sample_rate": 100.0}, tmp_path / "padded.h5")
    assert len(count_reads) == 6
    count_reads.clear()
    ingest(sheet, "main", {**SPEC, "sample_rate": 100.0, "length_s": 0.5}, tmp_path / "fixed.h5")
    assert len(count_reads) == 4  # the first file twice (its channels), the others once
    with open_store(tmp_path / "padded.h5") as padded, open_store(tmp_path / "fixed.h5") as fixed:
        np.testing.assert_array_equal(fixed.read(), padded.read()[..., :50])


def test_ingest_failing_on_a_late_file_leaves_no_store(tmp_path):
    rng = np.random.default_rng(3)
    paths = [write_table(tmp_path / "a.csv", rng.standard_normal((60, 3))),
             write_table(tmp_path / "b.csv", rng.standard_normal((60, 2)))]
    out = tmp_path / "raw.h5"
    with pytest.raises(DeepselfError, match="sample 's1' has 2 channels, sample 's0' has 3"):
        ingest(make_sheet(tmp_path, paths), "main", {**SPEC, "sample_rate": 100.0, "length_s": 0.5}, out)
    assert not out.exists() and not list(tmp_path.glob(".raw.h5*"))


def test_ingest_names_a_rate_mismatch_before_writing(tmp_path, wavs):
    paths, _ = wavs
    soundfile.write(tmp_path / "other.wav", np.zeros((900, 2), np.float32), 16000)
    out = tmp_path / "raw.h5"
    with pytest.raises(DeepselfError, match="sample 's3' has sample rate 16000 Hz, sample 's0' has 8000 Hz"):
        ingest(make_sheet(tmp_path, [*paths, tmp_path / "other.wav"]), "main", SPEC, out)
    assert not out.exists()


def test_ingest_meta_is_json(tmp_path, wavs):
    meta = ingest(make_sheet(tmp_path, wavs[0]), "main", SPEC, tmp_path / "raw.h5")
    assert json.loads(json.dumps(meta)) == meta
