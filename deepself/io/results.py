"""An experiment's results folder, ``<results>/<experiment>``: ``deepself results-dir`` prints it,
``deepself clean`` removes it and nothing else.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from deepself.errors import DeepselfError

# the one folder name `deepself clean` removes under results: as the schema's names, in full
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _experiment_folder(config_path: str) -> Path:
    """``<results>/<experiment>`` of a valid config: the one folder ``deepself clean`` may remove.

    Raises
    ------
    DeepselfError
        When the config is not valid, or its experiment is not a plain folder name (letters,
        digits, ``_ . -``, not starting with ``.`` or ``-``).
    """
    from deepself.config import load_config

    try:
        config = load_config(config_path)
    except DeepselfError as err:
        raise DeepselfError(str(err) if str(err).startswith(str(config_path)) else f"{config_path}: {err}") from None
    name = config["experiment"]
    if not _EXPERIMENT_NAME.fullmatch(name):  # the schema's pattern lets a final line break through
        raise DeepselfError(f"{config_path}: config key experiment: {name!r} must be letters, digits, '_', '.' "
                            "or '-' (the name of one folder under results)")
    return Path(config["results"]) / name


def _results_dir(args) -> None:
    print(_experiment_folder(args.config))


def _clean(args) -> None:
    folder = _experiment_folder(args.config)
    if folder.is_symlink():
        folder.unlink()  # the link only, never what it points to
        print(f"removed the link {folder}")
        return
    if not folder.exists():
        print(f"{folder}: nothing to remove")
        return
    if not folder.is_dir():
        raise DeepselfError(f"{args.config}: {folder} is a file, not an experiment's folder; not removed")
    _refuse_to_remove_home(folder, args.config)
    _refuse_what_the_workflow_did_not_write(folder, args.config)
    shutil.rmtree(folder)
    print(f"removed {folder}")


# What the workflow writes into results/<experiment>/ (README, "Where results go"); `make report` adds
# report.html, a run the lock; stores moved aside by deepself.io.store end in .corrupt
EXPERIMENT_ENTRIES = {"samples.csv", "config.json", "report.html", ".deepself.lock", "data", "raw", "filtered",
                      "features", "models", "fusions", "report", "logs", "benchmarks"}


def _refuse_what_the_workflow_did_not_write(folder: Path, config_path: str) -> None:
    """Refuse a folder holding anything the workflow does not write there: it is not (only) an experiment's."""
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in EXPERIMENT_ENTRIES)
    if foreign:
        raise DeepselfError(f"{config_path}: {folder} holds {', '.join(foreign[:3])}"
                            f"{' and more' if len(foreign) > 3 else ''}, which the workflow does not write; not "
                            "removed: it is not (only) an experiment's results folder. Remove it by hand if you "
                            "are sure")


def _refuse_to_remove_home(folder: Path, config_path: str) -> None:
    """Refuse a folder that holds the current folder or the user's home: no experiment's results do."""
    target = folder.resolve()
    for what, place in (("the current folder", Path.cwd), ("your home folder", Path.home)):
        try:
            kept = place().resolve()
        except (OSError, RuntimeError):
            continue
        if target == kept or target in kept.parents:
            raise DeepselfError(f"{config_path}: {folder} holds {what} ({kept}); not removed: set results and "
                                "experiment to the experiment's own folder")


def add_parser(subparsers) -> None:
    """Register ``results-dir CONFIG`` and ``clean CONFIG``."""
    p = subparsers.add_parser("results-dir", help="print the results folder of a config's experiment "
                                                  "(<results>/<experiment>), after validating the config")
    p.add_argument("config")
    p.set_defaults(run=_results_dir)

    p = subparsers.add_parser("clean", help="remove the results folder of a config's experiment, and nothing else")
    p.add_argument("config")
    p.set_defaults(run=_clean)
