"""Use after training: apply trained models to new files, and export one as a portable bundle.

- :mod:`~deepself.deploy.replay`: one file as a checkpoint's model input, replaying its store's steps;
- :mod:`~deepself.deploy.experiment`: an experiment folder's config, models, fold checkpoints and weights;
- :mod:`~deepself.deploy.predict`: ``deepself predict``;
- :mod:`~deepself.deploy.export`: ``deepself export`` (ONNX and ``preprocessing.json``).

The command line imports these modules for every subcommand: they import numpy, torch and the
stages in the functions that use them.
"""
