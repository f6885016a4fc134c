"""Composing the project's Hydra config in tests."""
from __future__ import annotations

from pathlib import Path
from typing import List

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from dinf.app.tracking import override_key

CONF = str(Path(__file__).resolve().parents[1] / "conf")

# Tiny, CPU-only, no logger: seconds per run.
TINY = [
    "grid=small",
    "pde.resolution=32",
    "pde.batch_size=1024",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "~logger",
    "checkpoint.registry=null",
]


def compose_cfg(overrides: List[str] = (), tiny: bool = True) -> DictConfig:
    """The config with ``overrides`` on top of TINY (a TINY entry for the same key gives way)."""
    keys = {override_key(o) for o in overrides}
    base = [o for o in TINY if override_key(o) not in keys] if tiny else []
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=base + list(overrides))
