"""Typed schema of the Optuna sweeper; registered as ``hydra/sweeper=dinf_optuna``."""
# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.dinf_optuna.optuna_sweeper.OptunaSweeper"
    # One Optuna study per entry: {name: {overrides: [model=siren, ...], params: {key: spec}}}.
    # A spec is {low: a, high: b} (int when both are ints; log: true, step: s optional) or {choices: [...]}.
    studies: Dict[str, Any] = field(default_factory=dict)
    # A search space for one study of the command line's settings (used when `studies` is empty).
    params: Dict[str, Any] = field(default_factory=dict)
    # Trials per study, the default trial included.
    n_trials: int = 8
    # Trials of each study launched together per round (the launcher may run them at once).
    n_jobs: int = 1
    # minimize | maximize: the run's metric (PINNacle's l2re: minimize).
    direction: str = "minimize"
    # The metric tuned: its final value in the run's metrics.json; null: the run's primary metric.
    metric: Optional[str] = None
    # Trial 0 of each study runs the config's own values of its parameters (the defaults).
    enqueue_defaults: bool = True
    # No new round starts after this many seconds of sweeping (null: none); rounds give every study a trial.
    timeout_s: Optional[float] = None
    # An Optuna sampler, built by hydra.utils.instantiate.
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0})


# Discovery imports this module in every Hydra app, so the schema is usable without a search path.
ConfigStore.instance().store(group="hydra/sweeper", name="dinf_optuna", node=OptunaSweeperConf, provider="dinf_optuna")
