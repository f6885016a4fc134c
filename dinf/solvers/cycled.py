"""What a moving grid and a refined grid share: a solving solver run in cycles of its own steps.

``CycledGrid`` wraps least squares or Gauss–Newton (``inner``) and runs its steps in at most
``cycles`` cycles, each ending when the inner solver converges (least squares: after its one
solve) or after the inner solver's own step budget; the subclass changes the grid between
cycles (``MovingGrid`` moves its cells, ``RefiningGrid`` splits them). Every other question of
the solver protocol is the inner solver's.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from omegaconf import DictConfig

from dinf.solvers.base import SolveSolver


class CycledGrid(SolveSolver):
    """``inner``'s steps in at most ``cycles`` cycles (module docstring)."""

    def __init__(self, inner: SolveSolver, cycles: int):
        super().__init__()
        from dinf.solvers.gauss_newton import GaussNewton

        self.inner, self.cycles = inner, int(cycles)
        self.iterative = isinstance(inner, GaussNewton)  # several steps a cycle; least squares solves in one
        self.prefix = inner.prefix
        self.cycle = 0  # the cycle now running (0: none begun)
        self.steps = 0  # inner steps in this cycle
        self.total_steps = 0  # inner steps over all cycles (the run's training step)
        self.max_steps = 1  # inner steps a cycle at most (set from the trainer)
        self.history: List[Dict[str, Any]] = []  # per cycle: its step, unknowns, η (``dinf.app.adaptation``)

    @staticmethod
    def wraps(solver: Any) -> bool:
        """Whether a moving or refined grid can wrap ``solver``: one that solves (least squares,
        Gauss–Newton)."""
        from dinf.solvers.gauss_newton import GaussNewton
        from dinf.solvers.least_squares import LeastSquares

        return isinstance(solver, (GaussNewton, LeastSquares))

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        self.inner.check(field, problem)

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        """The inner solver's steps a cycle, ``cycles`` times."""
        self.max_steps = int(self.inner.trainer_steps(trainer)["max_steps"])
        return {"max_steps": self.max_steps * self.cycles, "val_check_interval": 1}

    def warm_up(self) -> None:
        self.inner.warm_up()

    def resume(self) -> None:
        self.inner.resume()

    def warm_started(self) -> None:
        self.inner.warm_started()

    def inner_step(self, field: torch.nn.Module, problem: torch.nn.Module,
                   generator: torch.Generator) -> Tuple[Dict[str, Any], bool]:
        """One step of the inner solver: its info (``converged`` left to the caller, the cycle
        added) and whether the cycle is over."""
        if self.cycle == 0:
            self.cycle = 1
        info = dict(self.inner.solve(field, problem, generator))
        self.steps += 1
        self.total_steps += 1
        done = info.get("converged", not self.iterative) or self.steps >= self.max_steps
        info["converged"] = False
        info["adapt_cycle"] = self.cycle
        return info, done
