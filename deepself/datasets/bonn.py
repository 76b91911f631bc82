"""The University of Bonn EEG sets: ``deepself data download bonn --root DIR``.

The University of Bonn's five zip files, one per set (:data:`BONN_URLS`), written
as ``ROOT/{Z,O,N,F,S}/`` with the files' own names (set N's are ``N001.TXT``). Bonn publishes no
checksum; every one of the 500 files is checked against a SHA-256 manifest of the official files
(``deepself/data/bonn_sha256.json``), the zips themselves are not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from deepself.datasets.download import URL_ENV, _Member, _all_present, _checksums, _member, _staged_copy, install

BONN_PAGE = "https://www.ukbonn.de/epileptologie/arbeitsgruppen/ag-lehnertz-neurophysik/downloads/"
BONN_URLS = {
    "Z": "https://www.ukbonn.de/site/assets/files/21874/z.zip",
    "O": "https://www.ukbonn.de/site/assets/files/21872/o.zip",
    "N": "https://www.ukbonn.de/site/assets/files/21871/n.zip",
    "F": "https://www.ukbonn.de/site/assets/files/21870/f.zip",
    "S": "https://www.ukbonn.de/site/assets/files/21875/s.zip",
}


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
    return install(root, "bonn", present=lambda: _all_present(root, checksums, "sha256"),
                   urls=lambda: _set_urls(url, checksums),
                   stage=lambda members, staging: _stage(members, staging, checksums), sources=sources, force=force)


def _stage(members: dict[str, _Member], staging: Path, checksums: dict[str, str]) -> dict[str, Path]:
    """Every file of ``checksums``, found by its base name, checked and copied into ``staging``."""
    return {target: _staged_copy(_member(members, Path(target).name), staging / target, sha256, "sha256")
            for target, sha256 in checksums.items()}


def _set_urls(url: str | None, checksums: dict[str, str]) -> list[tuple[str, str]]:
    """``(address, "<set>.zip")`` of each set that ``checksums`` lists: ``url`` or ``$DEEPSELF_BONN_URL`` as a
    template (a folder address gets ``/{set}.zip``), else the University's own :data:`BONN_URLS`."""
    template = url or os.environ.get(URL_ENV["bonn"])
    if template and "{" not in template:
        template = template.rstrip("/") + "/{set}.zip"
    return [(template.format(set=letter, set_lower=letter.lower()) if template else BONN_URLS[letter], f"{letter}.zip")
            for letter in dict.fromkeys(path.split("/")[0] for path in checksums)]
