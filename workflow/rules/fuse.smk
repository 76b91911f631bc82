def _fusion_files(fusion, fold, name):
    return [f"{R}/models/{m}/fold{fold}/{name}" for m in C["fusions"][fusion]["models"]]


def _fuse_options(fusion):
    spec = C["fusions"][fusion]
    options = f" --top {spec['top']}" if spec.get("top") else ""
    if spec["method"] == "select":
        options += f" --rounds {spec['rounds']}"
    return options


rule fuse:
    input:
        predictions=lambda w: _fusion_files(w.fusion, w.fold, "predictions.csv"),
        summaries=lambda w: _fusion_files(w.fusion, w.fold, "summary.json"),
        # method select learns its weights on the models' development predictions, never the held-out labels
        dev_predictions=lambda w: (
            _fusion_files(w.fusion, w.fold, "dev_predictions.csv")
            if C["fusions"][w.fusion]["method"] == "select"
            else []
        ),
    output:
        predictions=f"{R}/fusions/{{fusion}}/fold{{fold}}/predictions.csv",
        # each model's weight in this fold: `deepself predict --fusion` applies the same ones
        weights=f"{R}/fusions/{{fusion}}/fold{{fold}}/weights.json",
    params:
        method=lambda w: C["fusions"][w.fusion]["method"],
        options=lambda w: _fuse_options(w.fusion),
        dev=lambda w: " --dev-predictions " if C["fusions"][w.fusion]["method"] == "select" else "",
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/fuse/{{fusion}}/fold{{fold}}.log",
    shell:
        "deepself --log {log:q} fuse --predictions {input.predictions:q} --summaries {input.summaries:q}"
        " --method {params.method:q}{params.options}{params.dev}{input.dev_predictions:q} --out {output.predictions:q}"
