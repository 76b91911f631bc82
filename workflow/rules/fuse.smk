rule fuse:
    input:
        predictions=lambda w: fusion_files(w.fusion, w.fold, "predictions.csv"),
        summaries=lambda w: fusion_files(w.fusion, w.fold, "summary.json"),
        # method select learns its weights on the models' development predictions, never the held-out labels
        dev_predictions=lambda w: (
            fusion_files(w.fusion, w.fold, "dev_predictions.csv")
            if C["fusions"][w.fusion]["method"] == "select"
            else []
        ),
    output:
        predictions=f"{R}/fusions/{{fusion}}/fold{{fold}}/predictions.csv",
        # each model's weight in this fold: `deepself predict --fusion` applies the same ones
        weights=f"{R}/fusions/{{fusion}}/fold{{fold}}/weights.json",
    params:
        method=lambda w: C["fusions"][w.fusion]["method"],
        options=lambda w: fuse_options(w.fusion),
        dev=lambda w: " --dev-predictions " if C["fusions"][w.fusion]["method"] == "select" else "",
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/fuse/{{fusion}}/fold{{fold}}.log",
    shell:
        "deepself --log {log:q} fuse --predictions {input.predictions:q} --summaries {input.summaries:q}"
        " --method {params.method:q}{params.options}{params.dev}{input.dev_predictions:q} --out {output.predictions:q}"
