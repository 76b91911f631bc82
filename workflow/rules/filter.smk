rule bandpass:
    input:
        f"{R}/raw/{{modality}}.h5",
    output:
        f"{R}/filtered/{{modality}}.h5",
    params:
        spec=lambda w: as_json(C["data"]["modalities"][w.modality]["filter"]),
        key=lambda w: f"data.modalities.{w.modality}.filter",
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/filter/{{modality}}.log",
    shell:
        "deepself --log {log:q} filter --input {input:q} --spec {params.spec:q} --key {params.key:q}"
        " --out {output:q}"
