"""Hydra launcher that runs a multirun's jobs on a local pool of GPUs (``hydra/launcher=devices``)."""
