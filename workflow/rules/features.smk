rule features:
    input:
        lambda w: signal_store(C["features"][w.feature]["modality"]),
    output:
        f"{R}/features/{{feature}}.h5",
    params:
        spec=lambda w: as_json(C["features"][w.feature]),
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/features/{{feature}}.log",
    shell:
        "deepself --log {log:q} features --input {input:q} --name {wildcards.feature:q}"
        " --spec {params.spec:q} --out {output:q}"
