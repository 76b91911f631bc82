"""Fetch public data sets from their official homes into the layouts the adapters read.

``deepself data download esc10|bonn|fer2013 --root DIR``:

``esc10``
    The ESC-50 repository's archive (:data:`ESC50_URL`, all 2,000 ESC-50 clips); the 400 clips that
    ``meta/esc50.csv`` marks ``esc10=True`` are written as ``ROOT/<NNN - Class name>/<fold>-<freesound
    id>-<take>.wav``, with the class folders of the original ESC-10 release (``"001 - Dog bark"``),
    so results compare with runs on that release. Verified: the MD5 of every clip and of
    ``meta/esc50.csv`` against the values soundata publishes (``esc50_index.json`` of soundata
    0.1.3, ESC-50 2.0.0; kept in ``deepself/data/esc10_md5.json``). Not verified: the archive as a
    whole. soundata also gives an MD5 for it (``7771e4b9d86d0945acce719c7a59305a``), but the archive
    is generated from the repository's moving ``master`` branch and changes with every commit to
    it, while the clips do not. A ROOT that holds all 400 clips as the ESC-10 release's ``.ogg``
    files counts as present; only their names are checked (no checksums are published for them).
``bonn``
    The University of Bonn's five zip files, one per set (:data:`BONN_URLS`), written
    as ``ROOT/{Z,O,N,F,S}/`` with the files' own names (set N's are ``N001.TXT``). Bonn publishes no
    checksum; every one of the 500 files is checked against a SHA-256 manifest of the official files
    (``deepself/data/bonn_sha256.json``), the zips themselves are not.
``fer2013``
    Needs a Kaggle login, so it is not downloaded: :func:`install_fer2013` says where to get
    ``fer2013.csv`` and converts it to ``ROOT/{train,dev}/<emotion>/*.jpg``.

``--url`` (or the variables in :data:`URL_ENV`) points at a mirror or a ``file://`` copy;
``--from`` installs from archives or folders already on disk, without a network. Nothing is
written to ROOT before every file has passed its check: archives are fetched and files are
extracted into a folder beside ROOT, and moved in only at the end. When ROOT already holds every
file with the right checksum, nothing is done (``--force`` installs again).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from deepself.errors import DeepselfError

log = logging.getLogger(__name__)

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
BONN_PAGE = "https://www.ukbonn.de/epileptologie/arbeitsgruppen/ag-lehnertz-neurophysik/downloads/"
BONN_URLS = {
    "Z": "https://www.ukbonn.de/site/assets/files/21874/z.zip",
    "O": "https://www.ukbonn.de/site/assets/files/21872/o.zip",
    "N": "https://www.ukbonn.de/site/assets/files/21871/n.zip",
    "F": "https://www.ukbonn.de/site/assets/files/21870/f.zip",
    "S": "https://www.ukbonn.de/site/assets/files/21875/s.zip",
}
FER2013_PAGE = ("https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-"
                "recognition-challenge/data")
URL_ENV = {"esc10": "DEEPSELF_ESC10_URL", "bonn": "DEEPSELF_BONN_URL"}

# ESC-50's class numbers (the last part of its file names) to the category in meta/esc50.csv and
# the class folder of the original ESC-10 release.
ESC10_CLASSES = {
    0: ("dog", "001 - Dog bark"), 10: ("rain", "002 - Rain"), 11: ("sea_waves", "003 - Sea waves"),
    20: ("crying_baby", "004 - Baby cry"), 38: ("clock_tick", "005 - Clock tick"),
    21: ("sneezing", "006 - Person sneeze"), 40: ("helicopter", "007 - Helicopter"),
    41: ("chainsaw", "008 - Chainsaw"), 1: ("rooster", "009 - Rooster"),
    12: ("crackling_fire", "010 - Fire crackling"),
}
# FER-2013's emotion codes; Kaggle's Usage column to the imagefolder split (PrivateTest stays out).
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_SPLITS = {"Training": "train", "PublicTest": "dev"}

TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    """A file inside an archive or a folder: where it came from (for messages) and how to read it."""

    origin: str
    name: str
    open: Callable[[], IO[bytes]]


def download_esc10(root: str | os.PathLike, *, url: str | None = None,
                   sources: Iterable[str | os.PathLike] | None = None, force: bool = False,
                   checksums: dict[str, str] | None = None) -> int:
    """Install ESC-10 from the ESC-50 archive as ``root/<NNN - Class name>/<fold>-<id>-<take>.wav``.

    Parameters
    ----------
    root : str or os.PathLike
        The folder to fill (created if missing).
    url : str, optional
        The archive's address; default ``$DEEPSELF_ESC10_URL`` or :data:`ESC50_URL`.
    sources : iterable of path, optional
        ``ESC-50-master.zip`` or its extracted folder, already on disk: nothing is downloaded.
    force : bool
        Install even when ``root`` already holds every clip.
    checksums : dict of str to str, optional
        Archive path (``"audio/1-100032-A-0.wav"``, ``"meta/esc50.csv"``) to MD5; default the
        pinned ones of ``deepself/data/esc10_md5.json``.

    Returns
    -------
    int
        The number of files written; 0 when they were already present.

    Raises
    ------
    DeepselfError
        If the archive cannot be fetched or read, a file is missing from it or has another
        checksum (nothing is then written to ``root``), or ``root`` cannot be written.
    """
    root = Path(root)
    checksums = checksums or _checksums("esc10_md5.json", "md5")
    clips = {path: md5 for path, md5 in checksums.items() if path.startswith("audio/")}
    if not force and _esc10_present(root, clips):
        return 0
    with _staging(root) as staging, contextlib.ExitStack() as stack:
        if sources:
            archives = [(Path(s), str(s)) for s in sources]
        else:
            archive_url = url or os.environ.get(URL_ENV["esc10"]) or ESC50_URL
            archives = [(_fetch(archive_url, staging / ".archives" / "ESC-50-master.zip", "esc10", root), archive_url)]
        members = _members(archives, stack)
        meta = _member(members, "meta/esc50.csv")
        listed = {f"audio/{row['filename']}": row["category"] for row in
                  _read_esc50_csv(_staged_copy(meta, staging / ".meta.csv", checksums["meta/esc50.csv"], "md5"))
                  if row["esc10"] == "True"}
        if set(listed) != set(clips):
            odd = sorted(set(listed) ^ set(clips))
            raise DeepselfError(f"{meta.origin}: the ESC-10 clips of meta/esc50.csv are not the {len(clips)} "
                                f"pinned ones ({len(odd)} differ, e.g. {odd[0]})")
        staged = {}
        for path, md5 in clips.items():
            target = _esc10_target(path)
            category = ESC10_CLASSES[_esc50_class(path)][0]
            if listed[path] != category:
                raise DeepselfError(f"{meta.origin}: meta/esc50.csv gives {path} the category {listed[path]!r}; "
                                    f"its name says class {_esc50_class(path)} ({category})")
            staged[target] = _staged_copy(_member(members, path), staging / target, md5, "md5")
        return _move_in(staged, root)


def download_bonn(root: str | os.PathLike, *, url: str | None = None,
                  sources: Iterable[str | os.PathLike] | None = None, force: bool = False,
                  checksums: dict[str, str] | None = None) -> int:
    """Install the University of Bonn EEG sets as ``root/{Z,O,N,F,S}/<file>``.

    Parameters
    ----------
    root : str or os.PathLike
        The folder to fill (created if missing).
    url : str, optional
        Where the zips are: a template with ``{set}`` (``Z``...) or ``{set_lower}`` (``z``...), e.g.
        ``https://mirror/bonn/{set}.zip``, or a folder address to which ``/{set}.zip`` is added.
        Default ``$DEEPSELF_BONN_URL`` or the University's own addresses, :data:`BONN_URLS`.
    sources : iterable of path, optional
        The zips (any case: ``Z.zip``, ``z.zip``) or folders holding them or the extracted
        files, already on disk: nothing is downloaded.
    force : bool
        Install even when ``root`` already holds every file.
    checksums : dict of str to str, optional
        ``"<set>/<file>"`` to SHA-256; default the manifest ``deepself/data/bonn_sha256.json``.

    Returns
    -------
    int
        The number of files written; 0 when they were already present.

    Raises
    ------
    DeepselfError
        If a zip cannot be fetched or read, a file is missing or has another checksum (nothing is
        then written to ``root``), or ``root`` cannot be written.

    References
    ----------
    R. G. Andrzejak et al., "Indications of nonlinear deterministic and finite-dimensional
    structures in time series of brain electrical activity", Phys. Rev. E 64, 061907 (2001).
    """
    root = Path(root)
    checksums = checksums or _checksums("bonn_sha256.json", "sha256")
    if not force and _all_present(root, checksums, "sha256"):
        return 0
    with _staging(root) as staging, contextlib.ExitStack() as stack:
        if sources:
            archives = [(Path(s), str(s)) for s in sources]
        else:
            template = url or os.environ.get(URL_ENV["bonn"])
            if template and "{" not in template:
                template = template.rstrip("/") + "/{set}.zip"
            archives = []
            for letter in dict.fromkeys(path.split("/")[0] for path in checksums):
                set_url = template.format(set=letter, set_lower=letter.lower()) if template else BONN_URLS[letter]
                archives.append((_fetch(set_url, staging / ".archives" / f"{letter}.zip", "bonn", root), set_url))
        members = _members(archives, stack)
        staged = {target: _staged_copy(_member(members, Path(target).name), staging / target, sha256, "sha256")
                  for target, sha256 in checksums.items()}
        return _move_in(staged, root)


def install_fer2013(root: str | os.PathLike, source: str | os.PathLike | None = None, *,
                    force: bool = False) -> int:
    """Convert Kaggle's ``fer2013.csv`` to ``root/{train,dev}/<emotion>/<Usage>_<row>.jpg``.

    FER-2013 is only on Kaggle behind a login, so it is never downloaded here. ``Training`` rows go
    to ``train`` (28,709), ``PublicTest`` rows to ``dev`` (3,589); ``PrivateTest`` rows, the
    challenge's held-out test, are left out. ``<row>`` is the row's 0-based index in the CSV.

    Parameters
    ----------
    root : str or os.PathLike
        The folder to fill (created if missing).
    source : str or os.PathLike, optional
        ``fer2013.csv`` (columns ``emotion``, ``pixels``, ``Usage``: 48 x 48 grey levels, space
        separated) or Kaggle's ``fer2013.tar.gz`` holding it. None raises the manual steps.
    force : bool
        Convert even when ``root`` already holds every image.

    Returns
    -------
    int
        The number of images written; 0 when they were already present.

    Raises
    ------
    DeepselfError
        Without ``source`` (the message gives the steps), or if a row is malformed (nothing is then
        written to ``root``).

    References
    ----------
    I. J. Goodfellow et al., "Challenges in representation learning: a report on three machine
    learning contests", ICONIP 2013 (the ICML 2013 workshop challenge).
    """
    if source is None:
        raise DeepselfError(
            "fer2013 needs a Kaggle login, so deepself cannot download it. Sign in, accept the rules and "
            f"download the data of {FER2013_PAGE} (fer2013.tar.gz, holding fer2013/fer2013.csv with the columns "
            f"emotion, pixels, Usage), then run `deepself data download fer2013 --root {root} --from fer2013.tar.gz` "
            f"(or the extracted fer2013.csv). It writes {root}/{{train,dev}}/<emotion>/*.jpg (Training -> train, "
            "PublicTest -> dev, PrivateTest left out), the layout of the imagefolder adapter"
        )
    from PIL import Image  # imported here: the CLI loads this module for every command

    root, source = Path(root), Path(source)
    with contextlib.ExitStack() as stack:
        images = {f"{FER2013_SPLITS[usage]}/{FER2013_EMOTIONS[emotion]}/{usage}_{index:05d}.jpg": pixels
                  for index, (emotion, pixels, usage) in enumerate(_read_fer2013_csv(_fer2013_text(source, stack),
                                                                                     source))
                  if usage in FER2013_SPLITS}
    if not force and images and all((root / target).is_file() for target in images):
        return 0
    with _staging(root) as staging:
        staged = {}
        for target, pixels in images.items():
            staged[target] = staging / target
            staged[target].parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(staged[target], format="JPEG", quality=95)
        return _move_in(staged, root)


def _checksums(name: str, algorithm: str) -> dict[str, str]:
    return json.loads((resources.files("deepself") / "data" / name).read_text())[algorithm]


def _esc50_class(path: str) -> int:
    return int(Path(path).stem.rsplit("-", 1)[1])


def _esc10_target(path: str) -> str:
    """``audio/<fold>-<id>-<take>-<class>.wav`` of ESC-50 to ``<NNN - Class name>/<fold>-<id>-<take>.wav``."""
    stem, _ = Path(path).stem.rsplit("-", 1)
    return f"{ESC10_CLASSES[_esc50_class(path)][1]}/{stem}.wav"


def _esc10_present(root: Path, clips: dict[str, str]) -> bool:
    """Every clip as checked ``.wav``, or all of them as the ESC-10 release's ``.ogg`` (no checksums for those)."""
    targets = {_esc10_target(path): md5 for path, md5 in clips.items()}
    if targets and all((root / target).with_suffix(".ogg").is_file() for target in targets):
        log.info("%s: holds every ESC-10 clip as the ESC-10 release's Ogg files (names checked; no checksums "
                 "are published for them)", root)
        return True
    return _all_present(root, targets, "md5")


def _all_present(root: Path, checksums: dict[str, str], algorithm: str) -> bool:
    for target, expected in checksums.items():
        path = root / target
        if not path.is_file() or _hash_file(path, algorithm) != expected:
            return False
    return True


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _staging(root: Path):
    """A fresh folder beside ``root`` for downloads and extracted files, removed at the end."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        # Leftovers of a run that was killed (kill -9 skips the cleanup below).
        for stale in root.parent.glob(f".{root.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = root.parent / f".{root.name}.partial-{os.getpid()}"
        staging.mkdir()
    except OSError as err:
        raise DeepselfError(f"{root}: cannot write beside it ({err})") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch(url: str, dest: Path, dataset: str, root: Path) -> Path:
    """Download ``url`` to ``dest``, or raise a DeepselfError that says how to install without a network."""
    # the network modules here: every `deepself` command imports this module (its subcommand), few download
    import http.client
    import urllib.error
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (compatible; deepself)"})
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
            expected = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out, _CHUNK)
            received = out.tell()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        hint = ("the zips Z.zip ... S.zip or a folder holding them" if dataset == "bonn"
                else "ESC-50-master.zip or its extracted folder")
        raise DeepselfError(
            f"could not download {url} ({reason}). Set another address with --url or ${URL_ENV[dataset]}, or "
            f"fetch the files on a machine with internet and install them without a network: "
            f"deepself data download {dataset} --root {root} --from PATH ({hint})"
        ) from None
    if expected is not None and int(expected) != received:
        raise DeepselfError(f"{url}: the download stopped after {received} of {expected} bytes; run it again")
    return dest


def _members(archives: list[tuple[Path, str]], stack: contextlib.ExitStack) -> dict[str, _Member]:
    """The files of zips and folders (zips inside folders too), by lower-case base name; first one wins.

    ``archives`` pairs each zip or folder with the name messages give it (its URL when downloaded).
    """
    members: dict[str, _Member] = {}

    def add(origin: str, name: str, opener: Callable[[], IO[bytes]]) -> None:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if "__MACOSX/" not in name and not base.startswith("._"):
            members.setdefault(base.lower(), _Member(origin, name, opener))

    def add_zip(path: Path, origin: str) -> None:
        try:
            archive = stack.enter_context(zipfile.ZipFile(path))
        except (zipfile.BadZipFile, OSError) as err:
            raise DeepselfError(f"{origin}: not a readable zip file ({err})") from None
        for info in archive.infolist():
            if not info.is_dir():
                add(origin, info.filename, lambda info=info: archive.open(info))

    for archive, origin in archives:
        if archive.is_dir():
            for path in sorted(archive.rglob("*")):
                if path.suffix.lower() == ".zip":
                    add_zip(path, str(path))
                elif path.is_file():
                    add(origin, str(path.relative_to(archive)), lambda path=path: open(path, "rb"))
        elif archive.is_file():
            add_zip(archive, origin)
        else:
            raise DeepselfError(f"--from {archive}: no such file or folder")
    return members


def _member(members: dict[str, _Member], path: str) -> _Member:
    base = path.rsplit("/", 1)[-1]
    if base.lower() not in members:
        origins = sorted({m.origin for m in members.values()}) or ["the given archives"]
        raise DeepselfError(f"{', '.join(origins)}: holds no {base} (expected {path})")
    return members[base.lower()]


def _staged_copy(member: _Member, dest: Path, expected: str, algorithm: str) -> Path:
    """Copy ``member`` to ``dest`` and check its checksum; a mismatch names the file and both values."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.new(algorithm)
    try:
        with member.open() as src, open(dest, "wb") as out:
            for block in iter(lambda: src.read(_CHUNK), b""):
                digest.update(block)
                out.write(block)
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DeepselfError(f"{member.origin}: cannot read {member.name} ({err})") from None
    if digest.hexdigest() != expected:
        raise DeepselfError(
            f"{member.origin}: {member.name} has {algorithm.upper()} {digest.hexdigest()}, expected {expected}: "
            f"the file is damaged or not the official one; nothing was installed"
        )
    return dest


def _move_in(staged: dict[str, Path], root: Path) -> int:
    """Rename the checked files into ``root``: one rename each, within one file system."""
    try:
        for target, path in staged.items():
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, root / target)
    except OSError as err:
        raise DeepselfError(f"{root}: cannot write ({err})") from None
    log.info("%d files written to %s", len(staged), root)
    return len(staged)


def _read_esc50_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"filename", "category", "esc10"} - set(rows[0] if rows else ())
    if missing:
        raise DeepselfError(f"meta/esc50.csv: no column {min(missing)}")
    return rows


def _fer2013_text(source: Path, stack: contextlib.ExitStack) -> IO[str]:
    """``fer2013.csv`` as text, from the CSV itself or from Kaggle's ``fer2013.tar.gz``."""
    import tarfile

    try:
        if source.suffix.lower() == ".csv":
            return stack.enter_context(open(source, newline=""))
        archive = stack.enter_context(tarfile.open(source))
        member = next((m for m in archive.getmembers() if m.name.endswith("fer2013.csv")), None)
        if member is None:
            raise DeepselfError(f"--from {source}: holds no fer2013.csv")
        return io.TextIOWrapper(stack.enter_context(archive.extractfile(member)), newline="")
    except (OSError, tarfile.TarError) as err:
        raise DeepselfError(f"--from {source}: not a readable CSV or tar file ({err})") from None


def _read_fer2013_csv(text: IO[str], source: Path):
    """Yield ``(emotion, 48 x 48 uint8 image, usage)`` per row; column names as in fer2013.csv or icml_face_data.csv."""
    import numpy as np

    reader = csv.reader(text)
    header = [name.strip().lower() for name in next(reader, [])]
    if not {"emotion", "pixels", "usage"} <= set(header):
        raise DeepselfError(f"{source}: the header is {header}, not emotion, pixels, Usage")
    columns = [header.index(name) for name in ("emotion", "pixels", "usage")]
    for line, row in enumerate(reader, start=2):
        emotion, pixels, usage = (row[c].strip() for c in columns)
        values = pixels.split()
        if (not emotion.isdigit() or int(emotion) >= len(FER2013_EMOTIONS) or len(values) != 48 * 48
                or not all(v.isdigit() and int(v) < 256 for v in values)):
            raise DeepselfError(f"{source}, line {line}: emotion {emotion!r} is not 0-6, or the pixels are not "
                                f"2304 grey levels 0-255 ({len(values)} values)")
        yield int(emotion), np.array(values, dtype=np.int64).astype(np.uint8).reshape(48, 48), usage


def _run(args) -> None:
    if args.dataset == "fer2013":
        if args.url:
            raise DeepselfError("data download fer2013: --url cannot be used (Kaggle needs a login); use --from")
        if args.sources and len(args.sources) > 1:
            raise DeepselfError("data download fer2013: --from takes one file, fer2013.csv or fer2013.tar.gz")
        written = install_fer2013(args.root, args.sources[0] if args.sources else None, force=args.force)
    else:
        install = download_esc10 if args.dataset == "esc10" else download_bonn
        written = install(args.root, url=args.url, sources=args.sources, force=args.force)
    print(f"{args.dataset}: {written} files written to {args.root}" if written
          else f"{args.dataset}: already present in {args.root} (--force installs again)")


def add_parser(subparsers) -> None:
    """Register ``data download {esc10|bonn|fer2013} --root DIR [--url URL | --from PATH...] [--force]``."""
    p = subparsers.add_parser("data", help="public data sets in the layouts of the adapters")
    sub = p.add_subparsers(dest="data_command", required=True)
    q = sub.add_parser("download", help="fetch a data set from its official home, check it, lay it out under --root",
                       description=__doc__.splitlines()[0])
    q.add_argument("dataset", choices=["esc10", "bonn", "fer2013"])
    q.add_argument("--root", required=True, help="the folder to fill, e.g. data/bonn")
    source = q.add_mutually_exclusive_group()
    source.add_argument("--url", help="a mirror or file:// address instead of the official one "
                                      "(bonn: a template with {set}, or a folder holding {set}.zip)")
    source.add_argument("--from", dest="sources", nargs="+", metavar="PATH",
                        help="install from archives or folders on disk instead of downloading")
    q.add_argument("--force", action="store_true", help="install again even if ROOT already holds the data")
    q.set_defaults(run=_run)
