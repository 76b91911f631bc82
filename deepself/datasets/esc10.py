"""ESC-10, from the ESC-50 archive: ``deepself data download esc10 --root DIR``.

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
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from deepself.datasets.download import URL_ENV, _Member, _all_present, _checksums, _member, _staged_copy, install
from deepself.errors import DeepselfError

log = logging.getLogger(__name__)

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"

# ESC-50's class numbers (the last part of its file names) to the category in meta/esc50.csv and
# the class folder of the original ESC-10 release.
ESC10_CLASSES = {
    0: ("dog", "001 - Dog bark"), 10: ("rain", "002 - Rain"), 11: ("sea_waves", "003 - Sea waves"),
    20: ("crying_baby", "004 - Baby cry"), 38: ("clock_tick", "005 - Clock tick"),
    21: ("sneezing", "006 - Person sneeze"), 40: ("helicopter", "007 - Helicopter"),
    41: ("chainsaw", "008 - Chainsaw"), 1: ("rooster", "009 - Rooster"),
    12: ("crackling_fire", "010 - Fire crackling"),
}


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
    return install(root, "esc10", present=lambda: _esc10_present(root, clips),
                   urls=lambda: [(url or os.environ.get(URL_ENV["esc10"]) or ESC50_URL, "ESC-50-master.zip")],
                   stage=lambda members, staging: _stage(members, staging, checksums, clips),
                   sources=sources, force=force)


def _stage(members: dict[str, _Member], staging: Path, checksums: dict[str, str],
           clips: dict[str, str]) -> dict[str, Path]:
    """The ESC-10 clips that ``meta/esc50.csv`` lists, checked and copied into ``staging``, by place under ROOT."""
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
    return staged


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


def _read_esc50_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"filename", "category", "esc10"} - set(rows[0] if rows else ())
    if missing:
        raise DeepselfError(f"meta/esc50.csv: no column {min(missing)}")
    return rows
