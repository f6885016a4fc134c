"""Hydra sweeper that tunes a run's settings with Optuna's ask-and-tell interface (``hydra/sweeper=optuna``)."""
