"""Marching in time: a solving solver applied window after window (``solver.windows``).

Each window ``[t_k, t_{k+1}]`` has its own field and its own problem (``dinf.pdes.windows``);
``solve`` fits them in order, handing each solved field to the next window's initial value, and
the run sees their ``WindowedField`` as one solution. A window's solve is the inner solver's
(least squares: one sparse solve per window; Gauss–Newton: its steps on each window until they
converge or ``max_solves`` / ``trainer.max_steps`` is reached), so the cost grows with the number
of windows rather than with the space-time grid's size.
"""
from __future__ import annotations

import copy
import logging
import time
from typing import Any, Dict, List, Sequence

import torch
from omegaconf import DictConfig

from dinf.errors import ConfigError
from dinf.fields.windowed import WindowedField
from dinf.pdes.windows import KEY, Handover
from dinf.solvers.base import SolveSolver

log = logging.getLogger(__name__)


class Marching(SolveSolver):
    """``inner`` (least squares: one solve a window; Gauss–Newton: its steps to convergence) on
    each window of a ``WindowedField``, in time order; ``problems[k]`` is window ``k``'s problem
    and ``handovers[k]`` its initial-value tables. The run takes one training step: all windows."""

    def __init__(self, inner: SolveSolver, problems: Sequence[Any], handovers: Sequence[List[Handover]]):
        super().__init__()
        from dinf.solvers.gauss_newton import GaussNewton
        from dinf.solvers.least_squares import LeastSquares

        if not isinstance(inner, (LeastSquares, GaussNewton)):
            raise ConfigError(KEY, f"marching in time windows works with least squares and Gauss–Newton so far "
                              f"(solver=least_squares or gauss_newton), not {inner.name}")
        self.inner, self.problems, self.handovers = inner, list(problems), [list(h) for h in handovers]
        self.iterative = isinstance(inner, GaussNewton)
        self.steps = 1  # solves a window (Gauss–Newton: set from the trainer's steps)
        count = len(self.problems)
        self.name = f"{inner.name}, {count} time window{'' if count == 1 else 's'}"
        self.prefix = inner.prefix

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        if not isinstance(field, WindowedField) or len(field.windows) != len(self.problems):
            raise ConfigError(KEY, f"needs one field per window ({len(self.problems)})")
        for f, p in zip(field.windows, self.problems):
            self.inner.check(f, p)

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        """One training step marches through every window; an iterative solver takes at most its
        own step count (``max_solves`` or ``trainer.max_steps``) on each."""
        self.steps = self.inner.trainer_steps(trainer)["max_steps"] if self.iterative else 1
        return {"max_steps": 1, "val_check_interval": 1}

    def warm_up(self) -> None:
        self.inner.warm_up()

    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """Solve the windows in order; returns the summed timings, sizes and losses (each window's
        seconds stay in ``window_seconds``)."""
        totals: Dict[str, Any] = {}
        seconds = []
        windows = list(field.windows)
        for k, (f, p) in enumerate(zip(windows, self.problems)):
            if k > 0:
                source = _jet_of(field, k - 1, self.problems[k - 1].jet_order)
                for table in self.handovers[k]:
                    table.source = source
            start = time.perf_counter()
            info = self._solve_window(f, p, generator)
            seconds.append(time.perf_counter() - start)
            parts = ", ".join(f"{what} {info[k_]:.1f} s" for what, k_ in (("assembly", "assemble_s"), ("solve", "solve_s"))
                              if k_ in info)
            log.info("window %d/%d, %s: %.1f s (%s), loss %.3g", k + 1, len(windows), p.name, seconds[-1], parts,
                     info.get("loss", float("nan")))
            for key, value in info.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
                else:
                    totals[key] = value
        totals["windows"] = len(windows)
        self.window_seconds = seconds
        self.info = totals
        return totals

    def _solve_window(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator
                      ) -> Dict[str, Any]:
        """One window's solve: the inner solver's, repeated (from a fresh copy, so no state carries
        over from the previous window) until it converges for an iterative one."""
        if not self.iterative:
            return self.inner.solve(field, problem, generator)
        solver = copy.copy(self.inner)
        solver._state = None
        info: Dict[str, Any] = {}
        sums: Dict[str, float] = {}
        for step in range(self.steps):
            info = solver.solve(field, problem, generator)
            for k in ("assemble_s", "solve_s", "line_search_s"):
                sums[k] = sums.get(k, 0.0) + info.get(k, 0.0)
            if info.get("converged"):
                break
        return {**info, **sums, "solves": step + 1}


def _jet_of(field: WindowedField, k: int, jet_order: int):
    """``(x, order) -> jet`` of solved window ``k``'s solution at float64 points, in its field's
    precision. It asks for the problem's ``jet_order`` (what the run warmed up: the fused CPU
    kernel compiles per order, and a first compile inside a window would count as training)."""
    dtype = next((p.dtype for p in field.windows[k].parameters() if p.is_floating_point()), torch.float32)

    def source(x: torch.Tensor, order: int):
        with torch.enable_grad():
            return field.window_jet(k, x.to(dtype), max(order, jet_order))

    return source
