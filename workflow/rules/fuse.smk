rule fuse:
    input:
        predictions=lambda w: [
            f"{R}/models/{m}/fold{w.fold}/predictions.csv"
            for m in C["fusions"][w.fusion]["models"]
        ],
        summaries=lambda w: [
            f"{R}/models/{m}/fold{w.fold}/summary.json"
            for m in C["fusions"][w.fusion]["models"]
        ],
    output:
        f"{R}/fusions/{{fusion}}/fold{{fold}}/predictions.csv",
    params:
        method=lambda w: C["fusions"][w.fusion]["method"],
        top=lambda w: (f" --top {C['fusions'][w.fusion]['top']}" if C["fusions"][w.fusion].get("top") else ""),
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/fuse/{{fusion}}/fold{{fold}}.log",
    shell:
        "deepself --log {log:q} fuse --predictions {input.predictions:q} --summaries {input.summaries:q}"
        " --method {params.method:q}{params.top} --out {output:q}"
