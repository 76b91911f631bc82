"""Copy one finished experiment's per-fold predictions and report tables into benchmarks/results/,
and print its section of benchmarks/RESULTS.md: the report's tables as the run wrote them, plus
how it was run.

    .venv/bin/python benchmarks/collect_results.py bonn --config config/bonn.yaml --wall "14 min 3 s"
        [--results results] [--device "2 CPU cores"] [--commit abc1234] [--command "..."] [--note "..."]

The tables are the run's own ``report/report.md`` (nothing is recomputed here); per fold it copies
``models/<model>/fold<k>/{predictions.csv,summary.json}`` and ``fusions/<fusion>/fold<k>/predictions.csv``,
and ``report/{summary,uar_per_fold,per_class,comparisons}.csv``. The tables sit between the lines
``<!-- report: <experiment> -->`` and ``<!-- end of report: <experiment> -->``.

    .venv/bin/python benchmarks/collect_results.py bonn --config config/bonn.yaml --rereport

remakes the report from the predictions already copied to ``benchmarks/results/bonn/`` (no training,
no run: after the report itself changed), rewrites the report CSVs there and replaces the tables
between those two lines in RESULTS.md. The systems, their order and the fusions' members are those
of the copied ``report/summary.csv`` (the config may have gained models since the run); the config
gives the ``report`` settings; the training-set sizes of the corrected resampled t-test come from
the copied ``summary.json`` files (``n_train + n_dev``: every sample outside the held-out fold).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT_CSVS = ("summary.csv", "uar_per_fold.csv", "per_class.csv", "comparisons.csv")


def collect(experiment: str, results: Path, out: Path) -> list[Path]:
    """Copy what backs the tables of ``results/<experiment>`` into ``out/<experiment>``; the copied files."""
    src = results / experiment
    if not (src / "report" / "report.md").is_file():
        sys.exit(f"collect_results: {src / 'report' / 'report.md'} does not exist: run the workflow first")
    dst = out / experiment
    if dst.exists():
        shutil.rmtree(dst)
    copied = []
    wanted = [*src.glob("models/*/fold*/predictions.csv"), *src.glob("models/*/fold*/summary.json"),
              *src.glob("fusions/*/fold*/predictions.csv"),
              *(src / "report" / name for name in REPORT_CSVS)]
    for path in sorted(wanted):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied.append(target)
    return copied


def _markers(experiment: str) -> tuple[str, str]:
    return f"<!-- report: {experiment} -->", f"<!-- end of report: {experiment} -->"


def report_block(experiment: str, report_md: Path) -> str:
    """The report without its title, its sections one level down (they sit under the experiment's), marked."""
    report = report_md.read_text().split("\n", 2)[2].strip().replace("\n## ", "\n### ")
    begin, end = _markers(experiment)
    # the blank line ends the last table before the marker on every Markdown reader
    return f"{begin}\n{report}\n\n{end}"


def section(experiment: str, results: Path, args) -> str:
    report = report_block(experiment, results / experiment / "report" / "report.md")
    summaries = [json.loads(p.read_text()) for p in sorted((results / experiment).glob("models/*/fold*/summary.json"))]
    devices = sorted({s["device"] for s in summaries})
    train_s = sum(s["seconds"] for s in summaries)
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=ROOT).stdout.strip()
    command = args.command or f"snakemake --cores all --configfile {args.config}"
    lines = [f"- command: `{command}`",
             f"- config: [`{args.config}`](../{args.config}); commit `{commit}`",
             f"- device: {args.device} (training jobs ran on: {', '.join(devices)})",
             f"- wall time (ingest to report): {args.wall}; training jobs together: {train_s / 60:.1f} min",
             f"- per-fold predictions: [`benchmarks/results/{experiment}/`](results/{experiment}/)"]
    if args.note:
        lines.append(f"- {args.note}")
    return "\n".join(lines) + "\n\n" + report + "\n"


def systems_of(src: Path) -> dict[str, dict]:
    """The systems of a copied experiment (``deepself.scoring.report.make_report``'s argument), in the order, with
    the kinds and fusion members, that its ``report/summary.csv`` gives: what the run reported, whatever
    its config has become since."""
    with open(src / "report" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    systems = {}
    for row in rows:
        stage = "models" if row["kind"] == "model" else "fusions"
        paths = sorted((src / stage / row["system"]).glob("fold*/predictions.csv"),
                       key=lambda p: (len(p.parent.name), p.parent.name))
        if not paths:
            sys.exit(f"collect_results: {src / stage / row['system']}/fold*/predictions.csv: none, but "
                     f"{src / 'report' / 'summary.csv'} lists {row['kind']} {row['system']!r}")
        systems[row["system"]] = {"kind": row["kind"], "predictions": [str(p) for p in paths]}
        if row["kind"] == "fusion":
            systems[row["system"]]["models"] = row["models"].split("+")
    return systems


def rereport(experiment: str, config_path: str, copies: Path, results_md: Path) -> None:
    """Remake the report of ``copies/<experiment>`` and put its tables into ``results_md`` in place."""
    from deepself.config import load_config
    from deepself.scoring.report import make_report

    src = copies / experiment
    systems = systems_of(src)
    train_size = {}
    for path in src.glob("models/*/fold*/summary.json"):
        fold = json.loads(path.read_text())
        size = fold["n_train"] + fold["n_dev"]
        if train_size.setdefault(fold["fold"], size) != size:
            sys.exit(f"collect_results: {path}: fold {fold['fold']} trained on {size} samples, another model's "
                     f"summary.json says {train_size[fold['fold']]}")
    settings = load_config(config_path)["report"]
    with tempfile.TemporaryDirectory() as tmp:
        make_report(systems, tmp, experiment, train_size=train_size, resamples=settings["bootstrap_resamples"],
                    seed=settings["seed"], confidence=settings["confidence"])
        for name in REPORT_CSVS:
            shutil.copy2(Path(tmp) / name, src / "report" / name)
        block = report_block(experiment, Path(tmp) / "report.md")
    text = results_md.read_text()
    begin, end = _markers(experiment)
    if text.count(begin) != 1 or text.count(end) != 1:
        sys.exit(f"collect_results: {results_md}: needs exactly one line {begin} and one {end} around the tables")
    head, rest = text.split(begin, 1)
    results_md.write_text(head + block + rest.split(end, 1)[1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("--config", required=True, help="the config file the run used")
    parser.add_argument("--wall", help="wall time of the run as measured, e.g. '14 min 3 s' (needed without "
                                       "--rereport)")
    parser.add_argument("--rereport", action="store_true",
                        help="remake the report from the copy in --out and replace its tables in --results-md")
    parser.add_argument("--results-md", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--device", default="2 CPU cores, no GPU")
    parser.add_argument("--commit", default=None, help="the commit the run used (default: HEAD)")
    parser.add_argument("--command", default=None, help="the command as run (default: snakemake --cores all ...)")
    parser.add_argument("--note", default=None)
    args = parser.parse_args(argv)
    if args.rereport:
        rereport(args.experiment, args.config, args.out, args.results_md)
        print(f"{args.results_md}: tables of {args.experiment} remade from {args.out / args.experiment}")
        return
    if args.wall is None:
        parser.error("--wall is needed to collect a run (only --rereport goes without it)")
    copied = collect(args.experiment, args.results, args.out)
    print(section(args.experiment, args.results, args))
    print(f"<!-- {len(copied)} files copied to {args.out / args.experiment} -->")


if __name__ == "__main__":
    main()
