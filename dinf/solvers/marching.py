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
import datetime
import logging
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
from omegaconf import DictConfig

from dinf.errors import ConfigError, check
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
        # trainer.max_time in seconds: the march is one training step, so Lightning cannot stop it
        # between windows; it stops itself after the window that crosses the budget.
        self.budget_s: Optional[float] = None
        self._started = 0.0
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
        self.budget_s = seconds_of(trainer.get("max_time"))
        return {"max_steps": 1, "val_check_interval": 1}

    def warm_up(self) -> None:
        self.inner.warm_up()

    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """Solve the windows in order; returns the summed timings, sizes and losses (each window's
        seconds stay in ``window_seconds``)."""
        totals: Dict[str, Any] = {}
        seconds: List[float] = []
        windows = list(field.windows)
        self._started = time.perf_counter()
        for k, (f, p) in enumerate(zip(windows, self.problems)):
            if k > 0 and self._spent():
                log.warning("trainer.max_time (%.0f s) reached after %d of %d windows: windows %d to %d are not "
                            "solved and score as such (trainer.max_time=null marches them all)",
                            self.budget_s, k, len(windows), k + 1, len(windows))
                break
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
        totals["windows_solved"] = len(seconds)
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
            if self._spent():
                log.warning("trainer.max_time (%.0f s) reached during %s, after %d Gauss–Newton step(s)",
                            self.budget_s, problem.name, step + 1)
                break
        return {**info, **sums, "solves": step + 1}

    def _spent(self) -> bool:
        """Whether the march has used ``trainer.max_time``."""
        return self.budget_s is not None and time.perf_counter() - self._started >= self.budget_s


def _jet_of(field: WindowedField, k: int, jet_order: int):
    """``(x, order) -> jet`` of solved window ``k``'s solution at float64 points, in its field's
    precision. It asks for the problem's ``jet_order`` (what the run warmed up: the fused CPU
    kernel compiles per order, and a first compile inside a window would count as training)."""
    dtype = next((p.dtype for p in field.windows[k].parameters() if p.is_floating_point()), torch.float32)

    def source(x: torch.Tensor, order: int):
        with torch.enable_grad():
            return field.window_jet(k, x.to(dtype), max(order, jet_order))

    return source


def seconds_of(max_time: Any) -> Optional[float]:
    """Lightning's ``max_time`` (``"DD:HH:MM:SS"``, a mapping of days/hours/minutes/seconds, or
    None) in seconds."""
    if max_time is None:
        return None
    if isinstance(max_time, str):
        parts = [float(v) for v in max_time.split(":")]
        check(len(parts) == 4, "trainer.max_time", f"write DD:HH:MM:SS (as 00:00:05:00), got {max_time!r}")
        return ((parts[0] * 24 + parts[1]) * 60 + parts[2]) * 60 + parts[3]
    if hasattr(max_time, "items"):
        return datetime.timedelta(**{str(k): float(v) for k, v in max_time.items()}).total_seconds()
    return float(max_time.total_seconds()) if hasattr(max_time, "total_seconds") else float(max_time)
