"""An experiment's config: validated once, at the edge, against the shipped JSON schema.

- :mod:`deepself.config.schema`: the schema (``deepself/schemas/config.schema.yaml``), read once,
  its default-filling validator, its errors said as one line, the keys of each feature kind.
- :mod:`deepself.config.validate`: :func:`validate_config` and :func:`load_config`.
- :mod:`deepself.config.checks`: what the schema cannot say (seeds, names, references,
  augmentations, signal settings).
- :mod:`deepself.config.doc`: the table of config keys in config/README.md (``deepself config-doc``).
- :mod:`deepself.config.scheduling`: GPU units and folds per training job, for the job graph.

Nothing here imports torch, librosa, scipy or matplotlib: snakemake imports it to parse the workflow.
"""

from deepself.config.checks import (AUGMENT_FITS, AUGMENT_LAYOUTS, AUGMENTATIONS, FEATURE_LAYOUTS, known_rate,
                                   unfit_augmentations)
from deepself.config.doc import DOC_BEGIN, DOC_END, schema_markdown, write_config_doc
from deepself.config.scheduling import (FITTED_HEAD_ARCHS, fits_a_head, local_gpu, training_folds_per_job,
                                        training_gpu_units)
from deepself.config.schema import SCHEMA, check_feature_schema, feature_schema, load_schema
from deepself.config.validate import load_config, validate_config

__all__ = [
    "AUGMENT_FITS", "AUGMENT_LAYOUTS", "AUGMENTATIONS", "DOC_BEGIN", "DOC_END", "FEATURE_LAYOUTS", "FITTED_HEAD_ARCHS",
    "SCHEMA",
    "check_feature_schema", "feature_schema", "fits_a_head", "known_rate", "load_config", "load_schema",
    "local_gpu", "schema_markdown", "training_folds_per_job", "training_gpu_units", "unfit_augmentations",
    "validate_config", "write_config_doc",
]
