"""Hyperparameter tuning engine: search spaces, strategies (Optuna samplers and pruners), the
study in the metadata database, and plots. Pure work: the tuning service drives it."""
