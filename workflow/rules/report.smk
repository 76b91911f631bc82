rule report:
    input:
        predictions=[p for s in SYSTEMS for p in predictions(s)],
        histories=[f"{R}/models/{m}/fold{f}/history.csv" for m in MODELS for f in FOLDS],
        sheet=f"{R}/samples.csv",
    output:
        summary=report(f"{R}/report/summary.csv", caption="../report/summary.rst", category="UAR"),
        per_fold=report(f"{R}/report/uar_per_fold.csv", caption="../report/per_fold.rst", category="UAR"),
        per_class=report(f"{R}/report/per_class.csv", caption="../report/per_class.rst", category="Per class"),
        comparisons=report(
            f"{R}/report/comparisons.csv", caption="../report/comparisons.rst", category="Comparisons"
        ),
        uar_plot=report(f"{R}/report/uar.png", caption="../report/uar.rst", category="UAR"),
        uar_ci_plot=report(f"{R}/report/uar_ci.png", caption="../report/uar_ci.rst", category="UAR"),
        curves=report(f"{R}/report/curves.png", caption="../report/curves.rst", category="Training"),
        markdown=f"{R}/report/report.md",
        config=f"{R}/config.json",
        confusion=[
            report(
                f"{R}/report/confusion_{s}.png",
                caption="../report/confusion.rst",
                category="Confusion matrices",
                labels={"system": s},
            )
            for s in SYSTEMS
        ],
    params:
        systems=json.dumps(report_systems()),
        out_dir=lambda w, output: os.path.dirname(output.summary),
        experiment=C["experiment"],
        resamples=C["report"]["bootstrap_resamples"],
        seed=C["report"]["seed"],
        confidence=C["report"]["confidence"],
        config=as_json(C),
    conda:
        "../../environment.yml"
    log:
        f"{R}/logs/report.log",
    shell:
        "deepself --log {log:q} report --systems {params.systems:q} --experiment {params.experiment:q}"
        " --sheet {input.sheet:q} --resamples {params.resamples:q} --seed {params.seed:q}"
        " --confidence {params.confidence:q}"
        " --config {params.config:q} --config-out {output.config:q} --out-dir {params.out_dir:q}"
