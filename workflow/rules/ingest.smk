rule sheet:
    input:
        [C["data"]["sheet"]] if C["data"]["adapter"] == "sheet" else [],
    output:
        f"{R}/samples.csv",
    params:
        data=as_json(C["data"]),
        cv=as_json(C["cv"]),
        work_dir=f"{R}/data",
        # the listed files: a file added to or removed from an adapter's folder reruns the sheet
        listing=PLAN.listing,
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/sheet.log",
    shell:
        "deepself --log {log:q} sheet --data {params.data:q} --cv {params.cv:q}"
        " --work-dir {params.work_dir:q} --out {output:q}"


rule ingest:
    input:
        sheet=f"{R}/samples.csv",
    output:
        f"{R}/raw/{{modality}}.h5",
    params:
        spec=lambda w: as_json(C["data"]["modalities"][w.modality]),
        # size and modification time of every file of the modality: an edited or replaced file
        # changes it, and Snakemake reruns a job whose params changed (deepself.io.preflight.preflight)
        files=lambda w: PLAN.digests.get(w.modality, ""),
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/ingest/{{modality}}.log",
    shell:
        "deepself --log {log:q} ingest --sheet {input.sheet:q} --modality {wildcards.modality:q}"
        " --spec {params.spec:q} --out {output:q}"
