"""Hyperparameter search: search spaces, the Optuna study and the Ray Tune backend."""
