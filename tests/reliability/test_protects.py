"""Nothing lost, nothing run (issue 23): what `make clean`, `make report` and the command line protect.

Guards, test by test:

- ``test_results_dir_prints_the_experiments_folder``: ``deepself results-dir CONFIG`` validates the
  config and prints ``<results>/<experiment>``, the folder ``make report`` writes into.
- ``test_a_config_with_shell_code_or_no_experiment_is_refused``: ``experiment: "$(touch pwned)"``,
  ``""`` and a name with a line break are refused by ``results-dir`` and ``clean`` with one error
  line naming the config and the key, exit 1; nothing runs and nothing is removed.
- ``test_clean_removes_one_experiments_folder_only``: ``deepself clean`` removes
  ``<results>/<experiment>`` and keeps the other experiments, the results folder and the cache.
- ``test_clean_refuses_a_folder_holding_what_the_workflow_does_not_write``: a folder with any
  entry the workflow does not write (``results: /`` with ``experiment: home``) is not removed.
- ``test_clean_never_removes_the_current_folder``: a results folder and experiment that name the
  folder the command runs in (or one above it) are refused.
- ``test_makefile_lets_the_shell_read_no_config_text``: the Makefile expands no config value
  (no ``$(shell ...)`` reading the YAML, no ``rm -rf``); ``report`` and ``clean`` go through
  ``deepself results-dir`` / ``deepself clean`` with CONFIG quoted.
- ``test_make_clean_and_report_run_no_code_from_a_config``: the real ``make clean`` and
  ``make report`` (on a scratch copy of the Makefile, with stand-ins for snakemake) on the configs
  above: no ``pwned`` file, nothing removed; a good config, even in a file named with a quote and a
  space, cleans its own experiment only and reports into it.
- ``test_error_lines_are_one_line_each_ending_with_a_line_break``: ``deepself: error:`` lines, on
  the terminal and in the ``--log`` file, are one line each, ending with ``\\n``, also for a JSON
  argument that does not parse (which the log missed).
- ``test_ctrl_c_leaves_one_line_and_exit_status_130``: a subcommand interrupted by Ctrl-C writes
  ``deepself: interrupted`` once to the terminal and the log, no traceback, exit 130.
- ``test_ctrl_c_in_a_fold_leaves_one_line_in_the_folds_log``: the same line in the fold's own log.

The export's guards (a user's folder is never replaced) are in tests/test_export.py, the report's
(labels no font draws) in tests/test_report.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import deepself.cli
from deepself.cli import _fold_log, main

REPO = Path(__file__).resolve().parents[2]
GOOD = {"experiment": "exp_a", "data": {"adapter": "sheet", "sheet": "samples.csv"},
        "features": {"f": {"kind": "raw"}}, "models": {"m": {"arch": "fnn", "feature": "f"}}}
BAD_EXPERIMENTS = {"shell code": "$(touch pwned)", "empty": "", "line break": "exp_a\n"}


def _config(folder: Path, name: str = "config.yaml", **changes) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({**GOOD, **changes}))
    return path


def _results(folder: Path) -> Path:
    """results/ with two experiments and the shared cache, one file in each."""
    for sub in ("exp_a", "exp_b", ".deepself-cache"):
        (folder / "results" / sub).mkdir(parents=True)
        (folder / "results" / sub / ("filehashes.sqlite" if sub.startswith(".") else "samples.csv")).write_text(sub)
    return folder / "results"


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_results_dir_prints_the_experiments_folder(here, capsys):
    assert main(["results-dir", str(_config(here))]) == 0
    assert capsys.readouterr().out == "results/exp_a\n"
    assert main(["results-dir", str(_config(here, results="out/all"))]) == 0
    assert capsys.readouterr().out == "out/all/exp_a\n"


@pytest.mark.parametrize("command", ["results-dir", "clean"])
@pytest.mark.parametrize("case", list(BAD_EXPERIMENTS))
def test_a_config_with_shell_code_or_no_experiment_is_refused(here, capsys, command, case):
    _results(here)
    before = _files(here)
    config = _config(here, "bad.yaml", experiment=BAD_EXPERIMENTS[case])
    assert main([command, str(config)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"deepself: error: {config}: config key experiment: ") and err.count("\n") == 1
    assert "must be letters, digits" in err
    assert _files(here) == sorted([*before, "bad.yaml"])


def test_clean_removes_one_experiments_folder_only(here, capsys):
    results = _results(here)
    assert main(["clean", str(_config(here))]) == 0
    assert capsys.readouterr().out == "removed results/exp_a\n"
    assert sorted(p.name for p in results.iterdir()) == [".deepself-cache", "exp_b"]
    assert main(["clean", str(_config(here))]) == 0
    assert capsys.readouterr().out == "results/exp_a: nothing to remove\n"


def test_clean_never_removes_the_current_folder(here, capsys, monkeypatch):
    (here / "work" / "project").mkdir(parents=True)
    config = _config(here, results=str(here), experiment="work")
    monkeypatch.chdir(here / "work" / "project")
    assert main(["clean", str(config)]) == 1
    assert "holds the current folder" in capsys.readouterr().err
    assert (here / "work" / "project").is_dir()


def test_clean_refuses_a_folder_holding_what_the_workflow_does_not_write(here, capsys):
    """``results: /`` with ``experiment: home`` names a folder that is no experiment's: never removed."""
    results = _results(here)
    (results / "exp_a" / "thesis.tex").write_text("months of work")
    assert main(["clean", str(_config(here))]) == 1
    err = capsys.readouterr().err
    assert "results/exp_a holds thesis.tex, which the workflow does not write; not removed" in err
    assert (results / "exp_a" / "thesis.tex").read_text() == "months of work"


def test_makefile_lets_the_shell_read_no_config_text():
    text = (REPO / "Makefile").read_text()
    assert "$(shell" not in text and "safe_load" not in text and "rm -rf" not in text
    recipes = {line.split(":")[0]: i for i, line in enumerate(text.splitlines()) if line[:1].isalpha() and ":" in line}
    lines = text.splitlines()
    clean = lines[recipes["clean"] + 1]
    assert clean.strip() == "$(BIN)/deepself clean $(QCONFIG)"
    assert "$(BIN)/deepself results-dir $(QCONFIG)" in lines[recipes["report"] + 1]
    assert "QCONFIG = '$(subst ','\\'',$(CONFIG))'" in text


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _make_copy(folder: Path) -> Path:
    """The Makefile in ``folder`` with an up-to-date .venv stamp, and bin/ with deepself and stand-ins."""
    shutil.copy(REPO / "Makefile", folder / "Makefile")
    (folder / "pyproject.toml").write_text("")
    (folder / ".venv").mkdir()
    stamp = folder / ".venv" / ".installed"
    stamp.write_text("")
    os.utime(folder / "pyproject.toml", (0, 0))
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "deepself", f'#!/bin/sh\nexec "{sys.executable}" -m deepself "$@"\n')
    _executable(bin_dir / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # what the old Makefile ran
    _executable(bin_dir / "snakemake", '#!/bin/sh\nprintf "%s\\n" "$@" > snakemake-args.txt\n')
    return bin_dir


def _make(folder: Path, target: str, config: str) -> subprocess.CompletedProcess:
    # not a make that runs these tests (`make test CONFIG=...`) passing its variables down
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run(["make", "--no-print-directory", "-C", str(folder), target, f"CONFIG={config}",
                           f"BIN={folder / 'bin'}"], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_clean_and_report_run_no_code_from_a_config(tmp_path):
    _make_copy(tmp_path)
    _results(tmp_path)
    for case, experiment in BAD_EXPERIMENTS.items():
        config = _config(tmp_path, "bad.yaml", experiment=experiment)
        for target in ("clean", "report"):
            before = _files(tmp_path)
            done = _make(tmp_path, target, str(config))
            assert done.returncode != 0, (case, target, done.stdout, done.stderr)
            assert "config key experiment" in done.stderr, (case, target, done.stderr)
            assert not (tmp_path / "pwned").exists(), (case, target)
            assert _files(tmp_path) == before, (case, target)
    # a good config in a file whose name a shell would split or end at the quote
    good = _config(tmp_path, "my config's.yaml")
    done = _make(tmp_path, "report", str(good))
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "snakemake-args.txt").read_text().splitlines()
    assert args == ["--configfile", str(good), "--report", "results/exp_a/report.html"]
    done = _make(tmp_path, "clean", str(good))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [".deepself-cache", "exp_b"]


def test_error_lines_are_one_line_each_ending_with_a_line_break(here, capsys, monkeypatch):
    log = here / "logs" / "job.log"

    def two_line_error(args):
        raise deepself.cli.DeepselfError("samples.csv: row 3\nhas no label\n")

    monkeypatch.setattr(deepself.cli, "_check_config", two_line_error)
    assert main(["--log", str(log), "check-config", "c.yaml"]) == 1
    line = "deepself: error: samples.csv: row 3 has no label\n"
    assert capsys.readouterr().err == line
    assert log.read_text().endswith(line)
    # a JSON argument that does not parse: the same line, in the log too
    assert main(["--log", str(log), "sheet", "--data", "{not json", "--cv", "{}", "--work-dir", ".",
                 "--out", "s.csv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deepself: error: a JSON argument of `deepself sheet` is not valid JSON")
    assert err.endswith("\n") and err.count("\n") == 1
    assert log.read_text().endswith(err)


def test_ctrl_c_leaves_one_line_and_exit_status_130(here, capsys, monkeypatch):
    log = here / "job.log"

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(deepself.cli, "_check_config", interrupted)
    try:
        status = main(["--log", str(log), "check-config", "c.yaml"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped deepself.cli.main (a traceback per job)")
    assert status == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "deepself: interrupted\n")
    assert log.read_text().endswith("deepself: interrupted\n")
    assert "Traceback" not in log.read_text()


def test_ctrl_c_in_a_fold_leaves_one_line_in_the_folds_log(tmp_path):
    path = tmp_path / "fold1.log"
    with pytest.raises(KeyboardInterrupt), _fold_log(str(path)):
        raise KeyboardInterrupt
    assert path.read_text() == "deepself: interrupted\n"
