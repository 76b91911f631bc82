"""``deepself init``: from a sample sheet to a commented, valid config.

The sheet and its files' headers are surveyed (:mod:`.survey`); the preset picks features and
models for each kind of data (:mod:`.presets` for sensor/EEG signals, :mod:`.media` for audio and
images); cross-validation comes from the sheet; a ``select`` fusion goes over every model; the
cost of each model is estimated (:mod:`.budget`) and, with a budget, the plan shrinks to fit.
The config is validated as ``deepself check-config`` does before it is written, atomically, and
never over an existing file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from deepself.errors import DeepselfError
from deepself.setup_config import budget as costs
from deepself.setup_config.media import audio_part, image_part
from deepself.setup_config.presets import PRESETS, Part, plan_cv, sensor_part
from deepself.setup_config.survey import survey_sheet
from deepself.setup_config.yamlout import dump

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_budget(text: str) -> float:
    """Seconds of a duration: ``90``, ``90s``, ``10m``, ``1h``, ``1h30m``.

    Raises
    ------
    DeepselfError
        Naming the text when it is not such a duration, or is zero.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise DeepselfError(f"--budget {text!r}: give a duration such as 90s, 10m, 1h or 1h30m")
    hours, minutes, secs = (float(g or 0) for g in match.groups())
    total = 3600 * hours + 60 * minutes + secs
    if total <= 0:
        raise DeepselfError(f"--budget {text!r}: must be more than 0 seconds")
    return total


def init_config(sheet: str, out: str | os.PathLike, preset: str = "good", budget_s: float | None = None,
                sample_rate: float | None = None, weights_dir: str = "data/weights", cores: int | None = None,
                timing: str = "measure") -> tuple[Path, list[str]]:
    """Write the config of ``sheet`` to ``out``; return its path and the lines that report the plan.

    Parameters
    ----------
    sheet
        The sample sheet, as the config will name it (relative to the folder snakemake runs in).
    preset
        ``fast`` (the cheapest strong models), ``good`` (adds a network) or ``best`` (more of them).
    budget_s
        Wall seconds that ``snakemake --cores CORES`` should take; the plan shrinks to fit them.
    sample_rate
        Hz of sensor files (text and ``.npy`` carry none; without it the config says 1 Hz).
    weights_dir
        Where the pretrained networks' weights files are looked for.
    cores
        Cores snakemake will use (default: this machine's).
    timing
        ``measure``: time a few batches of each network here; ``stored``: use stored figures.

    Raises
    ------
    DeepselfError
        If ``out`` exists, the preset is unknown, or the sheet or its files cannot be used.
    """
    out = Path(out)
    if out.exists():
        raise DeepselfError(f"{out}: already exists; deepself init never overwrites a config: give another --out, "
                            f"or remove {out} first")
    if preset not in PRESETS:
        raise DeepselfError(f"--preset {preset!r}: not one of {', '.join(PRESETS)}")
    survey = survey_sheet(sheet)
    cv, cv_why, folds = plan_cv(survey)
    folds.cores = cores or os.cpu_count() or 1
    part = _plan(survey, preset, sample_rate, weights_dir)
    if timing == "measure":
        folds.slowdown = costs.slowdown()
    for plan in part.plans:
        if plan.family != "rocket":
            plan.seconds = costs.measure_seconds(plan, len(survey.classes)) if timing == "measure" \
                else costs.stored_seconds(plan)
            plan.timing = "measured here" if timing == "measure" else "stored figure"
    plans, dropped = part.plans, []
    if budget_s is not None:
        plans, dropped = costs.fit_budget(part.plans, folds, budget_s)
    config, notes = _config(out, sheet, survey, cv, part, plans)
    notes[("cv",)] = cv_why
    report = _report(plans, folds, budget_s, dropped)
    header = _header(sheet, survey, preset, out) + report + part.warnings + ([""] if part.warnings else [])
    text = dump(config, notes, header)
    _validate(config)
    if out.exists():
        raise DeepselfError(f"{out}: appeared while deepself init ran; not overwritten")
    from deepself.io.atomic import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out, report + [f"warning: {w}" for w in part.warnings]


def _plan(survey, preset: str, sample_rate, weights_dir: str) -> Part:
    whole = Part()
    for m in survey.modalities:
        if m.kind == "sensor":
            part = sensor_part(m, survey, preset, sample_rate)
        elif m.kind == "audio":
            part = audio_part(m, survey, preset, weights_dir)
        else:
            part = image_part(m, survey, preset, weights_dir)
        whole.modalities.update(part.modalities)
        whole.features.update(part.features)
        whole.plans += part.plans
        whole.warnings += part.warnings
        for path, lines in part.notes.items():
            whole.note(path, *lines)
    return whole


def _config(out: Path, sheet: str, survey, cv: dict, part: Part, plans) -> tuple[dict, dict]:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", out.stem).lstrip("._-") or "experiment"
    used = {p.spec["feature"] for p in plans}
    features = {k: v for k, v in part.features.items() if k in used}
    modalities_used = {f["modality"] for f in features.values()}
    config = {"experiment": name,
              "data": {"sheet": str(sheet),
                       "modalities": {k: v for k, v in part.modalities.items() if k in modalities_used}},
              "cv": cv, "features": features, "models": {p.name: p.spec for p in plans}}
    notes = dict(part.notes)  # those of what the budget left out are never written: dump writes the config's keys
    notes[("data", "sheet")] = [f"{survey.n} samples of {len(survey.classes)} classes ("
                                + ", ".join(f"{k} {v}" for k, v in list(survey.classes.items())[:12])
                                + (", ..." if len(survey.classes) > 12 else "") + "); relative to the folder "
                                "snakemake runs in"]
    for plan in plans:
        notes[("models", plan.name)] = plan.why + plan.changes
    if len(plans) > 1:
        config["fusions"] = {"select": {"models": [p.name for p in plans], "method": "select"}}
        notes[("fusions", "select")] = [
            "ensemble selection (deepself/scoring/selection.py) on each fold's out-of-sample predictions of the "
            "training part: it starts at the best member and adds only what raises UAR, so weak members cost time, not accuracy"]
    return config, notes


def _header(sheet: str, survey, preset: str, out: Path) -> list[str]:
    kinds = " and ".join(sorted(survey.kinds))
    return [f"Written by `deepself init {sheet} --out {out} --preset {preset}` from {survey.n} {kinds} samples. "
            "Every choice is explained beside it; edit freely, then check it with `deepself check-config "
            f"{out}` and run it with `snakemake --cores all --configfile {out}`.", ""]


def _report(plans, folds, budget_s, dropped: list[str]) -> list[str]:
    """The estimate per model and in all, as printed and as the config's header says it."""
    lines = [f"Estimated on this machine's CPU, snakemake --cores {folds.cores} (a cost model: "
             "deepself/setup_config/budget.py" + (f"; stored figures x {folds.slowdown:.2g}, this machine's time for "
                                                   "a LITE step over theirs" if folds.slowdown != 1 else "") + "):"]
    for plan in plans:
        jobs = costs.job_seconds(plan, folds)
        step = f"{plan.seconds[0] * 1e3:.3g} ms a training step, " if plan.family == "network" else ""
        timed = "" if plan.family == "rocket" else \
            f", per input {step}{plan.seconds[1] * 1e3:.3g} ms forward ({plan.timing})"
        lines.append(f"  {plan.name}: {len(jobs)} job{'s' * (len(jobs) > 1)}, {sum(jobs):.0f} s{timed}")
    wall = costs.wall_seconds(plans, folds, int(len(plans) > 1))
    total = sum(s for p in plans for s in costs.job_seconds(p, folds))
    lines.append(f"  total: training jobs {total:.0f} s of CPU; the workflow about {wall:.0f} s of wall time"
                 + (f" (budget {budget_s:.0f} s)" if budget_s else ""))
    return lines + [f"  {d}" for d in dropped] + [""]


def _validate(config: dict) -> None:
    """The checks of ``deepself check-config``: the schema, the sheet, every file, the classes and folds."""
    from deepself.config import validate_config
    from deepself.io.preflight import preflight

    valid = validate_config(config)
    preflight(valid["data"], valid["cv"])
