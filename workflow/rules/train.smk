rule train:
    input:
        sheet=f"{R}/samples.csv",
        data=lambda w: model_input(w.model),
    output:
        predictions=f"{R}/models/{{model}}/fold{{fold}}/predictions.csv",
        summary=f"{R}/models/{{model}}/fold{{fold}}/summary.json",
        history=f"{R}/models/{{model}}/fold{{fold}}/history.csv",
        checkpoint=f"{R}/models/{{model}}/fold{{fold}}/checkpoint.pt",
    params:
        spec=lambda w: train_spec(w.model),
        out_dir=lambda w, output: os.path.dirname(output.predictions),
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/train/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}/fold{{fold}}.tsv"
    shell:
        "deepself --log {log} train --sheet {input.sheet:q} --input {input.data:q} --fold {wildcards.fold}"
        " --spec {params.spec:q} --threads {threads} --out-dir {params.out_dir:q}"
