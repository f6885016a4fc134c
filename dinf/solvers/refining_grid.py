"""A locally refined grid (``grid.adapt: h``): solve, estimate the error per cell, split the cells that hold most of it, solve again.

The run's ∂∞-Grid starts uniform. ``RefiningGrid`` wraps the solving solver (least squares or
Gauss–Newton) and, once its steps on the current grid converge:

1. computes the error indicator on the leaf cells of the grid (``dinf.pdes.indicator``, per level
   on its own lattice, the leaves only; ``dinf.fields.refined`` for the cells);
2. marks the fewest leaves whose η_K² sum to a fraction ``theta`` of the total (Dörfler marking);
   a leaf already ``max_levels`` levels finer than the starting grid is not split;
3. splits them (``RefinedField.refine``): a finer level, active over the marked cells only,
   so the unknowns grow where the error is. The refined field equals the solved one exactly, and
   the next solve starts there (Gauss–Newton) on points drawn anew, with 16 a cell in every
   finer cell as well (``EquationProblem.sample(refined=…)``).

It stops after ``cycles`` solves, when nothing can be split, when the marked cells are too
many for a local feature (``spread``): the error is then everywhere, and splitting half the grid
costs what a finer uniform grid would; or when the last split raised η more than ``RISE``-fold:
the grid and solution before it come back (Burgers' shock: a split raised η from 1.7e-4 to
2.4e-4 and the error from 9.3e-5 to 2.8e-4). The refined cells are in the
checkpoint (``state``): a killed run resumes on the grid it had reached.

On a graded grid (``grid.focus``) the cells split are the graded ones. Around a moving grid
(``grid.adapt: rh``, ``mover``) the first cycle is the moving grid's whole run (its estimate,
solves and moves); the cells it settled on are then split as above, their maps fixed.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import torch

from dinf.errors import ConfigError, check
from dinf.fields.refined import dorfler, refined_field
from dinf.fields.warped import edges_of
from dinf.pdes.indicator import leaf_indicator, leaf_total
from dinf.solvers.base import SolveSolver
from dinf.solvers.cycled import CycledGrid
from dinf.solvers.least_squares import layout, read_back, write_back

log = logging.getLogger(__name__)
KEY = "grid.refine"
# η this many times the last solve's ends the run on the last grid: Burgers' rose 37–41 % at its
# first split, the L-shape's up to 15 % at a split, its error falling (against the lowest η so far,
# 18 solves of the L-shape stopped at its ninth: 1.2e-5, where the 13th had 4.9e-6).
RISE = 1.25


class RefiningGrid(CycledGrid):
    """``inner`` on ``field`` (a ∂∞-Grid, possibly behind ``MappedField``), splitting leaf cells
    between converged solves (module docstring). ``theta``: Dörfler's fraction of η²;
    ``max_levels``: finer levels at most; ``cycles``: solves at most (the first included);
    ``spread``: stop where the marked leaves outnumber ``spread · leaves^((d−1)/d)`` (a feature of
    codimension one or more — a layer, a shock, a corner — holds a few grid lines' worth of cells;
    more means the error is everywhere: Poisson2d-C marked 443 of 4 096 cells, and four cycles
    took its error from 3.0e-5 to 3.4e-5 while the unknowns grew 7.5-fold)."""

    def __init__(self, inner: SolveSolver, field: torch.nn.Module, problem: Any, theta: float = 0.5,
                 max_levels: int = 4, cycles: int = 5, spread: float = 4.0):
        from dinf.solvers.moving_grid import MovingGrid

        mover = inner if isinstance(inner, MovingGrid) else None  # rh: it runs the first cycle
        inner = mover.inner if mover is not None else inner
        if not self.wraps(inner):
            raise ConfigError("grid.adapt", f"a refined grid works with solver=gauss_newton or least_squares (or auto "
                                            f"where it picks one), not {inner.name}; SIREN and the MLPs adapt their "
                                            "points instead (solver.resample=rar_d)")
        check(0 < float(theta) <= 1, f"{KEY}.theta", f"must be in (0, 1] (the share of η² marked), got {theta!r}")
        check(int(max_levels) >= 1, f"{KEY}.max_levels", f"must be >= 1 (finer levels at most), got {max_levels!r}")
        check(int(cycles) >= 1, f"{KEY}.cycles", f"must be >= 1 (solves at most), got {cycles!r}")
        check(float(spread) > 0, f"{KEY}.spread", f"must be > 0, got {spread!r}")
        super().__init__(inner, cycles)
        self.field, self.problem = field, problem
        self.refined = refined_field(field)
        if self.refined is None:
            raise ConfigError("grid.adapt", "h needs the grid inside a RefinedField (the run builds it)")
        self.theta, self.max_levels, self.spread = float(theta), int(max_levels), float(spread)
        self.mover = mover
        self.moved = mover is None  # the moving grid's run is over (or there is none)
        self.name = f"{inner.name} on a {'moving, then ' if mover else ''}refined grid"
        self.last: Optional[Dict[str, Any]] = None  # the last solve's {"eta", "cycle", "cells", "z", "bias"}

    def trainer_steps(self, trainer: Any) -> Dict[str, Any]:
        """The inner solver's steps a cycle; the moving grid's steps in the first (rh)."""
        out = super().trainer_steps(trainer)
        if self.mover is not None:
            out["max_steps"] += int(self.mover.trainer_steps(trainer)["max_steps"]) - self.max_steps
        return out

    def state(self) -> Dict[str, Any]:
        """The refined cells, the cycle and its steps, the history, the moving grid's state (plain
        lists: a checkpoint loads with ``weights_only``)."""
        return {"cells": self.refined.state(), "cycle": self.cycle, "steps": self.steps,
                "total_steps": self.total_steps, "history": [dict(h) for h in self.history],
                "moved": self.moved, "mover": self.mover.state() if self.mover is not None else None,
                "last": None if self.last is None else {**self.last, "z": torch.as_tensor(self.last["z"]),
                                                        "bias": torch.as_tensor(self.last["bias"])}}

    def load_state(self, state: Dict[str, Any]) -> None:
        """Rebuild the finer levels (and the moving grid's maps) on the run's grid, before its
        weights load."""
        if not state:
            return
        if self.mover is not None and state.get("mover"):
            self.mover.load_state(state["mover"])
            self.moved = bool(state["moved"])
        self.refined.load(state["cells"])
        self.cycle, self.steps, self.total_steps = int(state["cycle"]), int(state["steps"]), int(state["total_steps"])
        self.history = [dict(h) for h in state["history"]]
        last = state.get("last")
        self.last = None if last is None else {**last, "z": last["z"].numpy(), "bias": last["bias"].numpy()}
        log.info("refined grid: resumed in cycle %d of %d, on the grid it had reached (%d finer levels)",
                 self.cycle, self.cycles, self.refined.refined)

    # --- one training step -----------------------------------------------------------------------
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        if not self.moved:  # rh: the moving grid's run is the first cycle
            self.cycle = max(self.cycle, 1)
            info = dict(self.mover.solve(field, problem, generator))
            self.total_steps += 1
            if info.get("converged"):
                self.moved = True
                # The moving grid's solves, the last of which the refined grid's first row describes
                # (unless it was undone: then both stay).
                rows = self.mover.history
                self.history = [dict(h) for h in (rows if rows and rows[-1].get("rejected") else rows[:-1])]
                info["converged"] = False
                info.update(self._after_cycle(field, problem))
            self.info = info
            return info
        info, done = self.inner_step(field, problem, generator)
        if done:
            info.update(self._after_cycle(field, problem))
        self.info = info
        return info

    # --- the pieces --------------------------------------------------------------------------------
    def _after_cycle(self, field: torch.nn.Module, problem: Any) -> Dict[str, Any]:
        """Estimate on the leaves; stop, or split the marked ones and go on."""
        r = self.refined
        with torch.enable_grad():
            etas = leaf_indicator(problem, field, r.leaf_lattices(), edges_of=edges_of(field, problem.bounds))
        total = leaf_total(etas)
        unknowns = sum(r.level_sizes()) * field.out_dim
        out: Dict[str, Any] = {"indicator": total, "adapt_unknowns": unknowns}
        entry = {"cycle": self.cycle, "step": self.total_steps, "unknowns": unknowns, "eta": total, "split": 0}
        self.history.append(entry)
        if self.last is not None and total > RISE * self.last["eta"]:
            last = self.last
            r.load(last["cells"])
            write_back(field, last["z"], layout(field), last["bias"])
            self.inner._state = None
            entry["rejected"] = True
            log.info("refined grid: cycle %d: η = %.3g, above %g × the last solve's (%.3g): back to its grid and "
                     "solution; done", self.cycle, total, RISE, last["eta"])
            out.update(converged=True, indicator=last["eta"], adapt_unknowns=sum(r.level_sizes()) * field.out_dim)
            return out
        z, bias = read_back(field)
        self.last = {"eta": total, "cycle": self.cycle, "cells": r.state(), "z": z, "bias": bias}
        if self.cycle >= self.cycles:
            log.info("refined grid: cycle %d: η = %.3g on %d unknowns; done (grid.refine.cycles = %d)",
                     self.cycle, total, unknowns, self.cycles)
            out["converged"] = True
            return out
        marked = dorfler([(ids, e) for ids, e, _ in etas], self.theta, levels=self.max_levels)
        count, leaves = sum(len(m) for m in marked.values()), sum(len(ids) for ids, _, _ in etas)
        if count > self.spread * leaves ** ((field.in_dim - 1) / field.in_dim):
            log.info("refined grid: cycle %d: η = %.3g on %d unknowns; %d of %d cells hold θ = %g of η², more than "
                     "grid.refine.spread × cells^((d−1)/d) = %.0f: the error is spread over the domain (a uniformly "
                     "finer grid serves such a problem), no cell is split; done", self.cycle, total, unknowns, count,
                     leaves, self.theta, self.spread * leaves ** ((field.in_dim - 1) / field.in_dim))
            out["converged"] = True
            return out
        if not marked:
            log.info("refined grid: cycle %d: η = %.3g on %d unknowns; no cell can be split (grid.refine.max_levels "
                     "= %d); done", self.cycle, total, unknowns, self.max_levels)
            out["converged"] = True
            return out
        entry["split"] = r.refine(marked)
        self.inner._state = None
        if hasattr(self.inner, "cold_start"):
            self.inner.cold_start = False  # from the solution: the refined field equals it
        log.info("refined grid: cycle %d: η = %.3g on %d unknowns; %d cells split (θ = %g), now %d unknowns, "
                 "%d finer levels", self.cycle, total, unknowns, entry["split"], self.theta,
                 sum(r.level_sizes()) * field.out_dim, r.refined)
        self.cycle += 1
        self.steps = 0
        return out

