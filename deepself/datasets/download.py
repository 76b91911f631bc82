"""Fetch public data sets from their official homes into the layouts the adapters read.

``deepself data download esc10|bonn|fer2013 --root DIR``: each data set has its module,
:mod:`deepself.datasets.esc10`, :mod:`deepself.datasets.bonn` and :mod:`deepself.datasets.fer2013`;
the archive installers share :func:`install`, the steps below.

``--url`` (or the variables in :data:`URL_ENV`) points at a mirror or a ``file://`` copy;
``--from`` installs from archives or folders already on disk, without a network. Nothing is
written to ROOT before every file has passed its check: archives are fetched and files are
extracted into a folder beside ROOT, and moved in only at the end. When ROOT already holds every
file with the right checksum, nothing is done (``--force`` installs again).
"""

from __future__ import annotations

import contextlib
import hashlib
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

URL_ENV = {"esc10": "DEEPSELF_ESC10_URL", "bonn": "DEEPSELF_BONN_URL"}

TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    """A file inside an archive or a folder: where it came from (for messages) and how to read it."""

    origin: str
    name: str
    open: Callable[[], IO[bytes]]


def install(root: Path, dataset: str, *, present: Callable[[], bool], urls: Callable[[], list[tuple[str, str]]],
            stage: Callable[[dict[str, _Member], Path], dict[str, Path]],
            sources: Iterable[str | os.PathLike] | None = None, force: bool = False) -> int:
    """The steps of every archive installer: skip what is present, fetch or take ``sources``, check, move in.

    Parameters
    ----------
    root : Path
        The folder to fill (created if missing).
    dataset : str
        The data set's name (``esc10``, ``bonn``), as messages and :data:`URL_ENV` give it.
    present : callable
        Whether ``root`` already holds every file (asked unless ``force``).
    urls : callable
        ``(address, file name)`` of each archive to download when there are no ``sources``.
    stage : callable
        ``(members, staging folder)`` to ``{path under root: checked copy in the staging folder}``;
        ``members`` are the files of the archives by lower-case base name (:func:`_members`).
    sources : iterable of path, optional
        Archives or folders already on disk: nothing is downloaded.
    force : bool
        Install even when ``root`` already holds every file.

    Returns
    -------
    int
        The number of files written; 0 when they were already present.
    """
    if not force and present():
        return 0
    with _staging(root) as staging, contextlib.ExitStack() as stack:
        if sources:
            archives = [(Path(s), str(s)) for s in sources]
        else:
            archives = [(_fetch(url, staging / ".archives" / name, dataset, root), url) for url, name in urls()]
        return _move_in(stage(_members(archives, stack), staging), root)


def _checksums(name: str, algorithm: str) -> dict[str, str]:
    return json.loads((resources.files("deepself") / "data" / name).read_text())[algorithm]


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


def _run(args) -> None:
    # the data sets' modules import this one's steps
    from deepself.datasets.bonn import download_bonn
    from deepself.datasets.esc10 import download_esc10
    from deepself.datasets.fer2013 import install_fer2013

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
