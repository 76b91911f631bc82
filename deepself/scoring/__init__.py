"""Scoring stage: UAR, late fusion of the folds' predictions, and the cross-validation report.

- :mod:`~deepself.scoring.metrics`: UAR and per-class recall from the confusion matrix;
- :mod:`~deepself.scoring.predictions`: the predictions frame (``predictions.csv``), built, read and checked;
- :mod:`~deepself.scoring.selection`: the weights of a fusion's members in one fold (ensemble selection);
- :mod:`~deepself.scoring.fusion`: the fuse stage (``deepself fuse``) and the weights it writes;
- :mod:`~deepself.scoring.bootstrap`: bootstrap intervals, paired tests and the comparisons made;
- :mod:`~deepself.scoring.plots`, :mod:`~deepself.scoring.tables`: the report's figures and its markdown;
- :mod:`~deepself.scoring.report`: the report stage (``deepself report``).

Nothing here imports torch: the fuse and report jobs start in the time of pandas.
"""
