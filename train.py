"""Train a neural field on a differential equation: ``python train.py pde=poisson model=dinf``."""
from __future__ import annotations

import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from dinf.errors import ConfigError
from dinf.run import train
from dinf.solver import NonFiniteLossError


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> Optional[float]:
    try:
        metrics = train(cfg)
    except (ConfigError, NonFiniteLossError) as e:
        sys.exit(f"error: {e}")
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


if __name__ == "__main__":
    main()
