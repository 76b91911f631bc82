"""Copy one finished experiment's per-fold predictions and report tables into benchmarks/results/,
and print its section of benchmarks/RESULTS.md: the report's tables as the run wrote them, plus
how it was run.

    .venv/bin/python benchmarks/collect_results.py bonn --config config/bonn.yaml --wall "14 min 3 s"
        [--results results] [--device "2 CPU cores"] [--commit abc1234] [--command "..."] [--note "..."]

The tables are the run's own ``report/report.md`` (nothing is recomputed here); per fold it copies
``models/<model>/fold<k>/{predictions.csv,summary.json}`` and ``fusions/<fusion>/fold<k>/predictions.csv``,
and ``report/{summary,uar_per_fold,per_class}.csv``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
              *(src / "report" / name for name in ("summary.csv", "uar_per_fold.csv", "per_class.csv"))]
    for path in sorted(wanted):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied.append(target)
    return copied


def section(experiment: str, results: Path, args) -> str:
    # the report without its title, its sections one level down (they sit under the experiment's)
    report = (results / experiment / "report" / "report.md").read_text().split("\n", 2)[2].strip()
    report = report.replace("\n## ", "\n### ")
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("--config", required=True, help="the config file the run used")
    parser.add_argument("--wall", required=True, help="wall time of the run as measured, e.g. '14 min 3 s'")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--device", default="2 CPU cores, no GPU")
    parser.add_argument("--commit", default=None, help="the commit the run used (default: HEAD)")
    parser.add_argument("--command", default=None, help="the command as run (default: snakemake --cores all ...)")
    parser.add_argument("--note", default=None)
    args = parser.parse_args(argv)
    copied = collect(args.experiment, args.results, args.out)
    print(section(args.experiment, args.results, args))
    print(f"<!-- {len(copied)} files copied to {args.out / args.experiment} -->")


if __name__ == "__main__":
    main()
