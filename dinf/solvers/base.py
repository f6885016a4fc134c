"""The solver protocol: every way of fitting a field to a problem answers the same few questions.

A run builds one solver (``conf/solver/<name>.yaml``; ``solver=auto`` picks one) and asks it:
does it apply to this field and problem (``check``: a one-line ``ConfigError`` if not), what
Lightning's step count becomes (``trainer_steps``), what to prepare before the clock starts
(``warm_up``), and then either

* ``GradientSolver``: an optimizer (and schedule) that ``dinf.app.module`` steps on fresh
  batches of collocation points (Adam, L-BFGS); or
* ``SolveSolver``: ``solve(field, problem, generator)``, called once per training step, which
  writes the field's parameters and returns what it logs (least squares: the whole solve;
  Gauss–Newton and Newton: one damped step each; the classical methods: one solve per
  refinement, on a field of their own, ``ClassicalSolver.result_field``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, Optional

import torch
from omegaconf import DictConfig

from dinf.errors import ConfigError
from dinf.fields.warped import sample_for
from dinf.solvers.resampling import ResidualResampler


class Solver(ABC):
    """What every solver answers (see the module docstring)."""

    name = "solver"  # for the run's first lines: "least squares", "Gauss–Newton", …

    @abstractmethod
    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        """Raise a one-line ``ConfigError`` unless this solver applies to ``field`` and ``problem``."""

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        """Lightning's step settings for this solver (empty: the trainer config's own, validating
        at least once)."""
        steps, every = trainer.get("max_steps", -1), trainer.get("val_check_interval")
        if isinstance(every, int) and 0 < steps < every:  # a short run still validates, at its last step
            return {"val_check_interval": steps}
        return {}

    def warm_up(self) -> None:
        """One-time work (compilations, library handles) kept out of the training time."""

    def state(self) -> Dict[str, Any]:
        """What a resumed run needs of the solver beyond the field's parameters (a moving grid's
        maps); saved in every checkpoint."""
        return {}

    def load_state(self, state: Dict[str, Any]) -> None:
        """Take back what ``state`` gave, from a checkpoint."""


class GradientSolver(Solver):
    """A torch optimizer stepped by ``dinf.app.module`` on fresh batches: ``optim`` is a partial
    taking the parameters, ``scheduler`` an optional partial taking the optimizer (stepped once
    per training step)."""

    def __init__(self, optim: Callable[..., torch.optim.Optimizer], scheduler: Optional[Callable[..., Any]] = None,
                 name: str = "gradient descent", resample: Optional[str] = None, resample_every: int = 250,
                 resample_k: float = 1.0, resample_c: float = 1.0, resample_pool: int = 65536):
        """``resample``: None (fresh uniform points each step) or ``rar_d`` (``dinf.solvers.resampling``,
        with its ``resample_*`` settings)."""
        self.optim, self.scheduler, self.name = optim, scheduler, name
        self.resampler = None if resample is None else ResidualResampler(
            resample, resample_every, resample_k, resample_c, resample_pool)

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        """Any field and problem (a config-file problem for residual-based points); the optimizer
        is built once on the field's parameters so that a bad value (``lr=-1``) stops the run
        here, under its key, rather than inside Lightning."""
        if self.resampler is not None:
            self.resampler.check_problem(problem)
        try:
            self.optim(field.parameters())
        except (ValueError, TypeError) as e:
            raise ConfigError("optim.lr" if "learning rate" in str(e) else "optim", str(e)) from None

    def batch(self, field: torch.nn.Module, problem: Any, n: int, generator: torch.Generator, step: int) -> Any:
        """The collocation points of training step ``step``: fresh ones from the problem (spread
        over a graded field's cells), their interior drawn by the residual where ``resample`` asks."""
        if self.resampler is None:
            return sample_for(field, problem, n, generator)
        return self.resampler.batch(field, problem, n, generator, step, sample_for)


class SolveSolver(Solver):
    """A solver that sets the field's parameters itself, one ``solve`` per training step.

    ``prefix`` names its logged quantities (``train/<prefix>_<key>``); ``independent_solves``:
    each solve starts afresh and its point on the error-against-time curve is its own time
    (a classical refinement sequence), not the run's running total; ``warm_start_steps``:
    Adam steps (rate ``warm_start_lr``) before the first solve."""

    prefix = "lsq"
    independent_solves = False
    warm_start_steps = 0
    warm_start_lr = 1e-2

    def __init__(self) -> None:
        self.info: Dict[str, Any] = {}

    @abstractmethod
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """Write the field's new parameters; return ``loss``, ``loss_zero`` (the starting loss),
        timings and sizes, and ``converged`` where the solver can tell."""

    def resume(self) -> None:
        """The run continues from a checkpoint: start from the field as it is."""

    def warm_started(self) -> None:
        """Adam steps ran before the first solve: start from the field they left."""
