"""The training stage: one model on one cross-validation fold, from the samples to the fold's files.

- :mod:`~deepself.training.fold`: :func:`~deepself.training.fold.train_fold_on` (and
  :func:`~deepself.training.fold.train_fold`), a fold top to bottom;
- :mod:`~deepself.training.data`: the job's samples read once, and each fold's split;
- :mod:`~deepself.training.loop`: the model's set-up, an epoch, evaluation;
- :mod:`~deepself.training.optim`: the optimiser and the schedule;
- :mod:`~deepself.training.resume`: ``resume.pt`` and SIGTERM;
- :mod:`~deepself.training.outputs`: the fold's files;
- :mod:`~deepself.training.probe` and :mod:`~deepself.training.ridge`: heads fitted on frozen features;
- :mod:`~deepself.training.augment`: augmentation; :mod:`~deepself.training.windows`: windows of long
  recordings (cut the same way by training, ``predict`` and ``export``).

Nothing is imported here: ``predict`` and ``export`` import :mod:`~deepself.training.windows` alone,
without the trainer.
"""
