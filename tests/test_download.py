"""Tests of deepself.datasets (download, esc10, bonn, fer2013) on small archives made here; nothing reaches the network."""

from __future__ import annotations

import csv
import hashlib
import http.server
import re
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from deepself.cli import main
from deepself.datasets import bonn, download, esc10, fer2013
from deepself.datasets.adapters import sheet_bonn, sheet_esc10, sheet_imagefolder
from deepself.errors import DeepselfError

SHARED_BONN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bonn"
CLOSED_PORT = "http://127.0.0.1:9"
BONN_SETS = ("Z", "O", "N", "F", "S")
# (ESC-50 file name, category, esc10): two ESC-10 classes over two folds, and one clip outside ESC-10.
ESC50_ROWS = [
    ("1-100032-A-0.wav", "dog", "True"), ("2-114280-A-0.wav", "dog", "True"),
    ("1-17367-A-10.wav", "rain", "True"), ("2-101676-A-10.wav", "rain", "True"),
    ("1-100038-A-14.wav", "chirping_birds", "False"),
]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def leftovers(root: Path) -> list[Path]:
    return list(root.parent.glob(f".{root.name}.partial-*"))


@pytest.fixture
def esc50_zip(tmp_path):
    """``ESC-50-master.zip`` shaped like GitHub's archive, and the MD5s of its files."""
    folder = tmp_path / "src" / "ESC-50-master"
    (folder / "audio").mkdir(parents=True)
    (folder / "meta").mkdir()
    rng = np.random.default_rng(0)
    with open(folder / "meta" / "esc50.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for name, category, esc10 in ESC50_ROWS:
            fold, source, take, target = Path(name).stem.split("-")
            writer.writerow([name, fold, target, category, esc10, source, take])
            sf.write(folder / "audio" / name, 0.1 * rng.standard_normal(4410), 44100, subtype="PCM_16")
    archive = tmp_path / "ESC-50-master.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent))
    checksums = {"meta/esc50.csv": md5(folder / "meta" / "esc50.csv")}
    checksums.update({f"audio/{name}": md5(folder / "audio" / name) for name, _, esc10 in ESC50_ROWS
                      if esc10 == "True"})
    return archive, checksums


@pytest.fixture
def bonn_zips(tmp_path):
    """Five small zips shaped like Bonn's (``Z.zip`` holds ``Z001.txt``...; set N's files upper case)."""
    folder = tmp_path / "zips"
    folder.mkdir()
    rng = np.random.default_rng(1)
    checksums = {}
    for letter in BONN_SETS:
        with zipfile.ZipFile(folder / f"{letter.lower()}.zip", "w") as zf:
            for index in (1, 2):
                name = f"{letter}{index:03d}.{'TXT' if letter == 'N' else 'txt'}"
                data = "".join(f"{v}\r\n" for v in rng.integers(-500, 500, 64)).encode()
                zf.writestr(name, data)
                checksums[f"{letter}/{name}"] = hashlib.sha256(data).hexdigest()
    return folder, checksums


def test_esc10_from_file_url_has_the_adapters_layout(esc50_zip, tmp_path):
    archive, checksums = esc50_zip
    root = tmp_path / "data" / "esc10"
    written = esc10.download_esc10(root, url=archive.as_uri(), checksums=checksums)
    assert written == 4
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav")) == [
        "001 - Dog bark/1-100032-A.wav", "001 - Dog bark/2-114280-A.wav",
        "002 - Rain/1-17367-A.wav", "002 - Rain/2-101676-A.wav",
    ]
    sheet = sheet_esc10(root)
    assert list(sheet["id"]) == ["1-100032-A", "1-17367-A", "2-101676-A", "2-114280-A"]
    assert list(sheet["label"]) == ["Dog bark", "Rain", "Rain", "Dog bark"]
    assert list(sheet["fold"]) == ["1", "1", "2", "2"]
    assert list(sheet["group"]) == ["100032", "17367", "101676", "114280"]
    assert leftovers(root) == []


def test_esc10_already_present_is_a_no_op(esc50_zip, tmp_path):
    archive, checksums = esc50_zip
    root = tmp_path / "esc10"
    esc10.download_esc10(root, sources=[archive], checksums=checksums)
    clip = root / "001 - Dog bark" / "1-100032-A.wav"
    before = clip.stat().st_mtime_ns
    # the closed port shows that nothing is fetched
    assert esc10.download_esc10(root, url=f"{CLOSED_PORT}/x.zip", checksums=checksums) == 0
    assert clip.stat().st_mtime_ns == before
    assert esc10.download_esc10(root, sources=[archive], checksums=checksums, force=True) == 4


def test_esc10_release_ogg_files_count_as_present(esc50_zip, tmp_path):
    _, checksums = esc50_zip
    root = tmp_path / "esc10"
    for path in checksums:
        if path.startswith("audio/"):
            target = (root / esc10._esc10_target(path)).with_suffix(".ogg")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"ogg")
    assert esc10.download_esc10(root, url=f"{CLOSED_PORT}/x.zip", checksums=checksums) == 0


def test_esc10_checksum_mismatch_names_file_and_values_and_writes_nothing(esc50_zip, tmp_path):
    archive, checksums = esc50_zip
    expected = "0" * 32
    checksums = {**checksums, "audio/2-101676-A-10.wav": expected}
    root = tmp_path / "esc10"
    with pytest.raises(DeepselfError) as err:
        esc10.download_esc10(root, url=archive.as_uri(), checksums=checksums)
    message = str(err.value)
    assert message.startswith(archive.as_uri())
    assert "2-101676-A-10.wav" in message and expected in message
    assert md5_of_member(archive, "ESC-50-master/audio/2-101676-A-10.wav") in message
    assert not root.exists() and leftovers(root) == []


def md5_of_member(archive: Path, name: str) -> str:
    with zipfile.ZipFile(archive) as zf:
        return hashlib.md5(zf.read(name)).hexdigest()


def test_esc10_csv_that_disagrees_with_the_pinned_clips_is_refused(esc50_zip, tmp_path):
    archive, checksums = esc50_zip
    checksums = {**checksums, "audio/3-1-A-0.wav": "0" * 32}
    with pytest.raises(DeepselfError, match="not the 5 pinned"):
        esc10.download_esc10(tmp_path / "esc10", sources=[archive], checksums=checksums)


def test_pinned_esc10_checksums_cover_ten_classes_of_40_clips_in_5_folds():
    checksums = download._checksums("esc10_md5.json", "md5")
    clips = [path for path in checksums if path.startswith("audio/")]
    assert len(clips) == 400 and "meta/esc50.csv" in checksums
    targets = [esc10._esc10_target(path) for path in clips]
    classes = [t.split("/")[0] for t in targets]
    assert sorted(set(classes)) == sorted(d for _, d in esc10.ESC10_CLASSES.values())
    assert all(classes.count(c) == 40 for c in set(classes))
    assert sorted({t.split("/")[1][0] for t in targets}) == ["1", "2", "3", "4", "5"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in checksums.values())


def test_unreachable_url_fails_quickly_with_the_offline_route(tmp_path):
    root = tmp_path / "esc10"
    start = time.monotonic()
    with pytest.raises(DeepselfError) as err:
        esc10.download_esc10(root, url=f"{CLOSED_PORT}/ESC-50-master.zip")
    assert time.monotonic() - start < 10
    assert f"{CLOSED_PORT}/ESC-50-master.zip" in str(err.value) and "--from" in str(err.value)
    assert not root.exists() and leftovers(root) == []


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Announces 100,000 bytes, sends 1,000 and hangs up: an interrupted download."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_interrupted_download_leaves_nothing(bonn_zips, tmp_path):
    _, checksums = bonn_zips
    server = http.server.HTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = tmp_path / "bonn"
    try:
        with pytest.raises(DeepselfError, match=r"127\.0\.0\.1"):
            bonn.download_bonn(root, url=f"http://127.0.0.1:{server.server_port}/{{set}}.zip",
                                   checksums=checksums)
    finally:
        server.shutdown()
        server.server_close()
    assert not root.exists() and leftovers(root) == []


def test_bonn_from_zips_has_the_adapters_layout(bonn_zips, tmp_path):
    folder, checksums = bonn_zips
    root = tmp_path / "bonn"
    assert bonn.download_bonn(root, sources=[folder], checksums=checksums) == 10
    sheet = sheet_bonn(root)
    assert sorted(sheet["label"].value_counts().items()) == [(s, 2) for s in sorted(BONN_SETS)]
    assert (root / "N" / "N001.TXT").is_file() and (root / "Z" / "Z002.txt").is_file()
    assert bonn.download_bonn(root, url=f"{CLOSED_PORT}/{{set}}.zip", checksums=checksums) == 0


def test_bonn_url_template_and_folder_address(bonn_zips, tmp_path):
    folder, checksums = bonn_zips
    assert bonn.download_bonn(tmp_path / "a", url=folder.as_uri() + "/{set_lower}.zip", checksums=checksums) == 10
    upper = tmp_path / "upper"
    upper.mkdir()
    for letter in BONN_SETS:
        (folder / f"{letter.lower()}.zip").rename(upper / f"{letter}.zip")
    assert bonn.download_bonn(tmp_path / "b", url=upper.as_uri(), checksums=checksums) == 10


def test_bonn_checksum_mismatch_leaves_root_as_it_was(bonn_zips, tmp_path):
    folder, checksums = bonn_zips
    root = tmp_path / "bonn"
    (root / "S").mkdir(parents=True)
    (root / "S" / "S001.txt").write_bytes(b"old\r\n")
    expected = "f" * 64
    with pytest.raises(DeepselfError) as err:
        bonn.download_bonn(root, sources=[folder / "s.zip", folder], checksums={**checksums, "S/S002.txt": expected})
    assert "S002.txt" in str(err.value) and expected in str(err.value) and "s.zip" in str(err.value)
    assert [p.relative_to(root).as_posix() for p in root.rglob("*")] == ["S", "S/S001.txt"]
    assert (root / "S" / "S001.txt").read_bytes() == b"old\r\n"
    assert leftovers(root) == []


def test_bonn_missing_file_is_named(bonn_zips, tmp_path):
    folder, checksums = bonn_zips
    with pytest.raises(DeepselfError, match="holds no Z003.txt"):
        bonn.download_bonn(tmp_path / "bonn", sources=[folder], checksums={**checksums, "Z/Z003.txt": "0" * 64})


@pytest.mark.skipif(not SHARED_BONN.is_dir(), reason="the Bonn EEG copy at ../shared/data/bonn is not on this machine")
def test_pinned_bonn_manifest_matches_the_official_files():
    pinned = download._checksums("bonn_sha256.json", "sha256")
    local = {p.relative_to(SHARED_BONN).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in SHARED_BONN.rglob("*") if p.is_file()}
    assert len(pinned) == 500
    assert local == pinned


@pytest.mark.skipif(not SHARED_BONN.is_dir(), reason="the Bonn EEG copy at ../shared/data/bonn is not on this machine")
def test_bonn_from_official_files_with_the_pinned_manifest_via_cli(tmp_path, capsys):
    zips = tmp_path / "zips"
    zips.mkdir()
    for letter in BONN_SETS:
        with zipfile.ZipFile(zips / f"{letter.lower()}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((SHARED_BONN / letter).iterdir()):
                zf.write(path, path.name)
    root = tmp_path / "data" / "bonn"
    args = ["data", "download", "bonn", "--root", str(root), "--url", zips.as_uri() + "/{set_lower}.zip"]
    assert main(args) == 0
    assert "500 files written" in capsys.readouterr().out
    sheet = sheet_bonn(root)
    assert len(sheet) == 500 and set(sheet["label"].value_counts()) == {100}
    assert main(args) == 0
    assert "already present" in capsys.readouterr().out


def test_cli_reports_a_network_failure_without_a_traceback(tmp_path, capsys):
    assert main(["data", "download", "bonn", "--root", str(tmp_path / "b"), "--url", f"{CLOSED_PORT}/"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deepself: error: could not download") and "Traceback" not in err


def fer2013_csv(path: Path) -> list[np.ndarray]:
    # smooth images survive JPEG nearly unchanged, so the test can compare pixels
    images = [np.full((48, 48), 40 * i + 20, dtype=np.uint8) for i in range(5)]
    rows = [(3, "Training"), (0, "Training"), (6, "PublicTest"), (4, "PrivateTest"), (3, "Training")]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for (emotion, usage), image in zip(rows, images):
            writer.writerow([emotion, " ".join(map(str, image.ravel())), usage])
    return images


@pytest.mark.parametrize("packed", [False, True], ids=["csv", "tar.gz"])
def test_fer2013_csv_to_imagefolder(tmp_path, packed):
    source = tmp_path / "fer2013.csv"
    images = fer2013_csv(source)
    if packed:
        with tarfile.open(tmp_path / "fer2013.tar.gz", "w:gz") as tar:
            tar.add(source, arcname="fer2013/fer2013.csv")
        source = tmp_path / "fer2013.tar.gz"
    root = tmp_path / "fer2013"
    assert fer2013.install_fer2013(root, source) == 4
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg")) == [
        "dev/neutral/PublicTest_00002.jpg", "train/angry/Training_00001.jpg",
        "train/happy/Training_00000.jpg", "train/happy/Training_00004.jpg",
    ]
    written = np.asarray(Image.open(root / "train" / "angry" / "Training_00001.jpg"))
    assert written.shape == (48, 48)
    assert np.abs(written.astype(int) - images[1]).max() <= 2
    sheet = sheet_imagefolder(root)
    assert sorted(set(sheet["fold"])) == ["dev", "train"] and len(sheet) == 4
    assert fer2013.install_fer2013(root, source) == 0


def test_fer2013_without_a_file_gives_the_manual_steps(tmp_path, capsys):
    assert main(["data", "download", "fer2013", "--root", str(tmp_path / "fer")]) == 1
    err = capsys.readouterr().err
    assert "kaggle.com" in err and "fer2013.csv" in err and "--from" in err and "train,dev" in err
    assert not (tmp_path / "fer").exists()


def test_fer2013_bad_row_is_named(tmp_path):
    source = tmp_path / "fer2013.csv"
    source.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(DeepselfError, match="line 2"):
        fer2013.install_fer2013(tmp_path / "fer", source)
    assert not (tmp_path / "fer").exists()
