"""Train a neural field on a differential equation: ``python train.py pde=poisson model=dinf``.

Only Hydra is imported before the arguments are read: ``--help`` and a mistyped key answer in
about a second, and torch, Lightning and W&B load once a run starts.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from dinf.app import cli
from dinf.errors import ConfigError, NonFiniteLossError

log = logging.getLogger("train")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> Optional[float]:
    from dinf.app.tracking import run_info

    info = run_info()
    try:
        cli.check_run_config(cfg)
        cli.announce(info)
        from dinf.app.run import train  # torch, Lightning: seconds, so after the line above

        metrics = train(cfg)
    except Exception as e:
        if info["multirun"]:
            # One failing job must not stop the sweep: its metrics.json says why it failed.
            log.exception("job failed: %s", e)
            return None
        if isinstance(e, (ConfigError, NonFiniteLossError)):
            sys.exit(f"error: {e}")
        raise
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


if __name__ == "__main__":
    cli.run(main)
