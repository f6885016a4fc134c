"""Train a neural field on a differential equation: ``python train.py pde=poisson model=dinf``."""
from __future__ import annotations

import logging
import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from dinf.errors import ConfigError
from dinf.run import train
from dinf.solver import NonFiniteLossError
from dinf.tracking import run_info

log = logging.getLogger("train")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> Optional[float]:
    try:
        metrics = train(cfg)
    except Exception as e:
        if run_info()["multirun"]:
            # One failing job must not stop the sweep: its metrics.json says why it failed.
            log.exception("job failed: %s", e)
            return None
        if isinstance(e, (ConfigError, NonFiniteLossError)):
            sys.exit(f"error: {e}")
        raise
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


if __name__ == "__main__":
    main()
