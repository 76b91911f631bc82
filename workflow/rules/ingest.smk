rule sheet:
    input:
        [C["data"]["sheet"]] if C["data"]["adapter"] == "sheet" else [],
    output:
        f"{R}/samples.csv",
    params:
        data=as_json(C["data"]),
        cv=as_json(C["cv"]),
        work_dir=f"{R}/data",
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/sheet.log",
    shell:
        "deepself --log {log} sheet --data {params.data:q} --cv {params.cv:q}"
        " --work-dir {params.work_dir:q} --out {output:q}"


rule ingest:
    input:
        sheet=f"{R}/samples.csv",
    output:
        f"{R}/raw/{{modality}}.h5",
    params:
        spec=lambda w: as_json(C["data"]["modalities"][w.modality]),
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/ingest/{{modality}}.log",
    shell:
        "deepself --log {log} ingest --sheet {input.sheet:q} --modality {wildcards.modality}"
        " --spec {params.spec:q} --out {output:q}"
