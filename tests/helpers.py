"""Composing the project's Hydra config in tests."""
from __future__ import annotations

from pathlib import Path
from typing import List

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

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
    "vtk=false",  # the tests of dinf.app.vtk ask for it
]


def compose_cfg(overrides: List[str] = (), tiny: bool = True) -> DictConfig:
    """The config with ``overrides`` on top of TINY (a TINY entry for the same key gives way)."""
    keys = {override_key(o) for o in overrides}
    base = [o for o in TINY if override_key(o) not in keys] if tiny else []
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=base + list(overrides))


def build_spec(spec: dict, overrides: List[str] = ()):
    """``(problem, field, solver)`` of the config with ``overrides`` and ``pde`` replaced by the
    problem mapping ``spec`` (its ``_target_``, ``in_dim`` and ``out_dim`` included)."""
    from dinf.app.run import build

    cfg = compose_cfg(list(overrides))
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(spec)
    return build(cfg)


def solve_steps(problem, field, solver, steps: int) -> dict:
    """Up to ``steps`` of a solve solver's steps (seeded), until one reports ``converged``; the
    last step's info."""
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        info = solver.solve(field, problem, gen)
        if info["converged"]:
            break
    return info


def assert_refused(cfg: DictConfig, key: str, words: str) -> None:
    """Building the run of ``cfg`` stops with one line: a ``ConfigError`` at ``key`` that says ``words``."""
    import pytest

    from dinf.app.run import build
    from dinf.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        build(cfg)
    assert e.value.key == key and words in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def killed_in_cycle_two(monkeypatch, solver_class, cfg: DictConfig, output_dir) -> dict:
    """Run ``cfg`` into ``output_dir``, killed as ``solver_class`` (a moving or refined grid) ends
    its second cycle, after the first cycle's change of grid; the method comes back unpatched.
    Returns the solver's state in the last checkpoint."""
    import pytest

    from dinf.app.run import train

    calls = {"n": 0}
    real = solver_class._after_cycle

    def killed(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(solver_class, "_after_cycle", killed)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, output_dir=str(output_dir))
    monkeypatch.setattr(solver_class, "_after_cycle", real)
    saved = torch.load(Path(output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return saved["dinf"]["solver"]
