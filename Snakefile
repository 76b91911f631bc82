# The workflow lives in workflow/Snakefile; including it this way keeps its `rule all` the default target.
workflow.include("workflow/Snakefile", overwrite_default_target=True)
