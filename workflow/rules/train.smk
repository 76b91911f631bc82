# A job per model and fold; for a model with train.folds_per_job > 1 (or auto on a GPU machine:
# common.smk's folds_per_job), a job per model and group of
# folds instead, which trains them in turn in one process (saving a job's start-up per fold) and
# writes the same files. A rule's outputs cannot be a function of its wildcards, so each group of
# folds has its own rule below; every output has exactly one rule, as each rule's model wildcard
# takes only the models that it trains. Threads, the gpu resource and the resume interval come
# from each model's train settings (train_threads, train_gpu, resume_every_s in common.smk).
FOLD_GROUPS = {}
for _model in MODELS:
    if folds_per_job(_model) > 1:
        for _folds in fold_groups(_model):
            FOLD_GROUPS.setdefault(_folds, []).append(_model)
# A profile sets the cluster resources of training once, for rule train (profiles/slurm: set-resources:
# train:). They hold for the rules of groups of folds as well, whose names follow the groups and so
# cannot be listed in a profile ahead; a profile's set-resources for one of those names still wins.
PROFILE_TRAIN_RESOURCES = workflow.resource_settings.overwrite_resources.get("train", {})


rule train:
    input:
        sheet=f"{R}/samples.csv",
        data=lambda w: model_input(w.model),
    output:
        predictions=f"{R}/models/{{model}}/fold{{fold}}/predictions.csv",
        # what the kept model was chosen on (the development split, or a fitted head's cross-validated
        # predictions of the training part; the header alone without a development split): select fusions learn on it
        dev_predictions=f"{R}/models/{{model}}/fold{{fold}}/dev_predictions.csv",
        summary=f"{R}/models/{{model}}/fold{{fold}}/summary.json",
        history=f"{R}/models/{{model}}/fold{{fold}}/history.csv",
        checkpoint=f"{R}/models/{{model}}/fold{{fold}}/checkpoint.pt",
    wildcard_constraints:
        model=one_of([m for m in MODELS if folds_per_job(m) == 1]),
    params:
        spec=lambda w: train_spec(w.model),
        out_dir=lambda w, output: os.path.dirname(output.predictions),
        resume_every_s=resume_every_s,
    threads: train_threads
    resources:
        gpu=train_gpu,
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/train/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}/fold{{fold}}.tsv"
    shell:
        "deepself --log {log:q} train --sheet {input.sheet:q} --input {input.data:q} --fold {wildcards.fold:q}"
        " --spec {params.spec:q} --threads {threads} --resume-every-s {params.resume_every_s}"
        " --out-dir {params.out_dir:q}"


for _folds, _models in FOLD_GROUPS.items():
    # "1-3": the group's folds are consecutive in FOLDS, so its first and last name it
    _label = _folds[0] if len(_folds) == 1 else f"{_folds[0]}-{_folds[-1]}"
    _name = "train_folds" if list(_folds) == FOLDS else re.sub(r"\W", "_", f"train_folds_{_label}")

    rule:
        name:
            _name
        input:
            sheet=f"{R}/samples.csv",
            data=lambda w: model_input(w.model),
        output:
            predictions=[f"{R}/models/{{model}}/fold{f}/predictions.csv" for f in _folds],
            dev_predictions=[f"{R}/models/{{model}}/fold{f}/dev_predictions.csv" for f in _folds],
            summaries=[f"{R}/models/{{model}}/fold{f}/summary.json" for f in _folds],
            histories=[f"{R}/models/{{model}}/fold{f}/history.csv" for f in _folds],
            checkpoints=[f"{R}/models/{{model}}/fold{f}/checkpoint.pt" for f in _folds],
        wildcard_constraints:
            model=one_of(_models),
        params:
            folds=list(_folds),
            spec=lambda w: train_spec(w.model),
            out_dirs=lambda w, output: [os.path.dirname(p) for p in output.predictions],
            resume_every_s=resume_every_s,
        threads: train_threads
        resources:
            gpu=train_gpu,
        conda:
            "../../environment.yml"
        log:
            job=f"{R}/logs/train/{{model}}/folds{_label}.log",
            folds=[f"{R}/logs/train/{{model}}/fold{f}.log" for f in _folds],
        benchmark:
            f"{R}/benchmarks/train/{{model}}/folds{_label}.tsv"
        shell:
            "deepself --log {log.job:q} train --sheet {input.sheet:q} --input {input.data:q}"
            " --fold {params.folds:q} --fold-log {log.folds:q} --spec {params.spec:q} --threads {threads}"
            " --resume-every-s {params.resume_every_s} --out-dir {params.out_dirs:q}"

    workflow.get_rule(_name).resources.update(PROFILE_TRAIN_RESOURCES)
    workflow.get_rule(_name).resources.update(workflow.resource_settings.overwrite_resources.get(_name, {}))
