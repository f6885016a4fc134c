"""A moving grid (``grid.adapt: r``): solve, estimate the error per cell, move the cells to it, solve again.

The run's field is a grid seen through per-axis monotone maps (``WarpedField`` with
``AxisMonitorMap``s, uniform at first). ``MovingGrid`` wraps the solving solver (Gauss–Newton or
least squares) and, once its steps on the current grid converge (or reach ``max_solves``):

1. computes the error indicator on the grid's cells (``dinf.pdes.indicator``);
2. keeps this grid and solution as the best so far while the indicator falls; where it rose, puts
   the best back and stops (on Burgers' shock a second move pulls too many cells into the shock
   and the error rises with the estimate: ``docs/guide/adaptivity.md``);
3. otherwise remaps each adapted axis by equidistributing the indicator of the equations
   (``AxisMonitorMap.equidistribute``: cells small where it is large, the largest at most
   ``ratio`` times the smallest); the next step moves the cells, fits the solution onto them
   (``dinf.solvers.transfer.fit_values``) and solves on from there (so a cycle's last step is
   validated and checkpointed on the grid it solved on). A remap whose cells would
   vary less than ``min_ratio``-fold is not made: the grid stays, and the loop ends.

``coarsen`` > 1 first finds the features on a grid ``coarsen`` times coarser along every axis (the
whole of the first training step; its own copy of the random state): its solve costs a fraction
of a fine one, its indicator is taken on the fine grid's cells, and the fine solve then starts on
a moved grid (from zero: the coarse field is a poorer start than none on Burgers). Every other step is one step of the inner solver, validated and checkpointed as usual;
the maps and the best grid are in the checkpoint (``state``), so a killed run resumes on the grid
it had reached.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from dinf.errors import ConfigError, check
from dinf.fields.base import innermost
from dinf.fields.monitor_map import AxisMonitorMap
from dinf.fields.warped import WarpedField, sample_for
from dinf.pdes.indicator import cell_indicator
from dinf.solvers.base import SolveSolver
from dinf.solvers.cycled import CycledGrid
from dinf.solvers.least_squares import read_back, write_back, layout
from dinf.solvers.transfer import fit_values

log = logging.getLogger(__name__)
KEY = "grid.adapt"


class MovingGrid(CycledGrid):
    """``inner`` on ``field`` (a ``WarpedField`` whose ``axes`` this moves), remapping ``axes``
    between converged solves (module docstring). ``coarse``: builds the coarse field of the first
    estimate (None: the first solve is on the fine, uniform grid). ``cycles``: solves on the fine
    grid at most (the first included); ``ratio``, ``floor``, ``smoothing``, ``power``: the
    monitor's (``AxisMonitorMap.equidistribute``)."""

    def __init__(self, inner: SolveSolver, field: WarpedField, problem: Any, axes: Sequence[int],
                 coarse: Optional[Callable[[], WarpedField]] = None, cycles: int = 3, ratio: float = 6.0,
                 floor: float = 0.1, smoothing: float = 4.0, power: float = 0.5, min_ratio: float = 1.5,
                 coarsen: int = 1):
        if not self.wraps(inner):
            raise ConfigError(KEY, f"a moving grid works with solver=gauss_newton or least_squares (or auto where it "
                                   f"picks one), not {inner.name}; SIREN and the MLPs adapt their points instead "
                                   "(solver.resample=rar_d)")
        check(int(cycles) >= 1, f"{KEY}", f"grid.moving.cycles must be >= 1, got {cycles!r}")
        check(float(ratio) >= 1, f"{KEY}", f"grid.moving.ratio must be >= 1, got {ratio!r}")
        check(float(smoothing) > 0, f"{KEY}", f"grid.moving.smoothing must be > 0, got {smoothing!r}")
        check(float(power) > 0, f"{KEY}", f"grid.moving.power must be > 0, got {power!r}")
        check(float(floor) >= 0, f"{KEY}", f"grid.moving.floor must be >= 0, got {floor!r}")
        check(float(min_ratio) >= 1, f"{KEY}", f"grid.moving.min_ratio must be >= 1, got {min_ratio!r}")
        super().__init__(inner, cycles)
        self.field, self.problem = field, problem
        self.axes, self.coarse = list(axes), coarse
        self.ratio, self.floor = float(ratio), float(floor)
        self.smoothing, self.power, self.min_ratio = float(smoothing), float(power), float(min_ratio)
        self.coarsen = int(coarsen) if coarse is not None else 1
        coords = getattr(problem, "coords", None) or [str(a) for a in range(field.in_dim)]
        self.name = f"{inner.name} on a moving grid ({', '.join(coords[a] for a in self.axes)})"
        self.estimated = coarse is None  # the coarse estimate is done (or not asked for)
        self.best: Optional[Dict[str, Any]] = None  # {"eta", "z", "bias", "maps"} of the best grid so far
        self.etas: List[float] = []
        self.pending: Optional[Dict[int, AxisMonitorMap]] = None  # maps the next step moves the cells to

    def state(self) -> Dict[str, Any]:
        """What a resumed run needs: the maps, the cycle, the best grid."""
        # Plain floats, lists and tensors: Lightning reloads a checkpoint with torch.load(weights_only=True).
        best = None if self.best is None else {
            "eta": float(self.best["eta"]), "z": torch.as_tensor(self.best["z"]),
            "bias": torch.as_tensor(self.best["bias"]), "maps": _maps_state(self.best["maps"])}
        return {"maps": _maps_state(self.field.axes), "cycle": self.cycle, "cycles": self.cycles,
                "estimated": self.estimated, "steps": self.steps, "etas": [float(e) for e in self.etas], "best": best,
                "total_steps": self.total_steps, "history": [dict(h) for h in self.history],
                "pending": None if self.pending is None else _maps_state(self.pending)}

    def load_state(self, state: Dict[str, Any]) -> None:
        if not state:
            return
        self.field.axes = _maps_of(state["maps"])
        self.cycle, self.estimated, self.steps = int(state["cycle"]), bool(state["estimated"]), int(state["steps"])
        self.cycles = int(state.get("cycles", self.cycles))  # an even estimate leaves one
        self.etas = list(state["etas"])
        self.total_steps = int(state.get("total_steps", 0))
        self.history = [dict(h) for h in state.get("history", [])]
        self.pending = _maps_of(state["pending"]) if state.get("pending") else None
        best = state.get("best")
        self.best = None if best is None else {"eta": best["eta"], "z": best["z"].numpy(), "bias": best["bias"].numpy(),
                                               "maps": _maps_of(best["maps"])}
        log.info("moving grid: resumed in cycle %d of %d, on the grid it had reached", self.cycle, self.cycles)

    # --- one training step -----------------------------------------------------------------------
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """One inner step (the first also runs the coarse estimate); after a converged cycle, the
        estimate and the move (or the stop)."""
        if not self.estimated:
            self._estimate(problem, generator)
        if self.pending is not None:
            self._move(field, problem, generator)
        info, done = self.inner_step(field, problem, generator)
        if done:
            info.update(self._after_cycle(field, problem, generator))
        self.info = info
        return info

    # --- the pieces --------------------------------------------------------------------------------
    def _estimate(self, problem: Any, generator: torch.Generator) -> None:
        """Solve on the coarse grid, then move the fine grid's cells by its indicator."""
        coarse = self.coarse()
        solver = copy.copy(self.inner)
        solver._state = None
        solver.cold_start = True
        # 16 points a coarse cell, as least squares' default: the estimate locates, it does not score.
        solver.points = min(self.inner.points or 1 << 62, 16 * _cells_total(coarse))
        # Its own copy of the random state: the fine solve then draws the points it would draw
        # without the estimate, so a grid the estimate leaves even solves as the uniform one does.
        own = torch.Generator()
        own.set_state(generator.get_state())
        steps = 0
        for steps in range(1, self.max_steps + 1):
            info = solver.solve(coarse, problem, own)
            if info.get("converged", not self.iterative):
                break
        # On the fine grid's cells: the coarse field's residual locates a feature to a fine cell,
        # where the coarse cells would place it anywhere within one of theirs.
        ind = self._indicator(coarse, problem, _cells(self.field))
        maps = self._remap(ind, self.smoothing * self.coarsen)
        self.estimated = True
        what = " × ".join(map(str, _cells(coarse)))
        if maps is None:
            self.cycles = 1  # an even estimate: one solve on the even grid
            log.info("moving grid: estimate on %s cells, %d solve(s), η = %.3g: even enough (the cells would vary "
                     "less than %g-fold); the cells stay", what, steps, ind.total, self.min_ratio)
            return
        self.field.axes = maps
        log.info("moving grid: estimate on %s cells, %d solve(s), η = %.3g; cells moved (%s)",
                 what, steps, ind.total, self._describe(self.field))

    def _after_cycle(self, field: WarpedField, problem: Any, generator: torch.Generator) -> Dict[str, Any]:
        """Estimate; keep the best grid; stop, or move the cells and go on."""
        ind = self._indicator(field, problem)
        eta = ind.total
        self.etas.append(eta)
        out: Dict[str, Any] = {"indicator": eta}
        entry = {"cycle": self.cycle, "step": self.total_steps, "unknowns": layout(field).nodes * field.out_dim,
                 "eta": eta}
        self.history.append(entry)
        if self.best is not None and not eta < self.best["eta"]:
            entry["rejected"] = True
            z, bias = self.best["z"], self.best["bias"]
            field.axes = dict(self.best["maps"])
            write_back(field, z, layout(field), bias)
            log.info("moving grid: cycle %d: η = %.3g, not below %.3g: back to cycle %d's grid and solution; done",
                     self.cycle, eta, self.best["eta"], self.cycle - 1)
            out.update(converged=True, indicator=self.best["eta"])
            return out
        z, bias = read_back(field)
        self.best = {"eta": eta, "z": z, "bias": bias, "maps": dict(field.axes)}
        if self.cycle >= self.cycles:
            log.info("moving grid: cycle %d: η = %.3g; done (grid.moving.cycles = %d)", self.cycle, eta, self.cycles)
            out["converged"] = True
            return out
        new_maps = self._remap(ind, self.smoothing * self.coarsen)  # as wide as the estimate's
        if new_maps is None:
            log.info("moving grid: cycle %d: η = %.3g, even enough (the cells would vary less than %g-fold); done",
                     self.cycle, eta, self.min_ratio)
            out["converged"] = True
            return out
        # The move waits for the next step: this step's validation and checkpoint are the solve's.
        self.pending = new_maps
        self.cycle += 1
        self.steps = 0
        log.info("moving grid: cycle %d: η = %.3g; the cells move (%s) at the next step", self.cycle - 1, eta,
                 self._describe(field, new_maps))
        return out

    def _move(self, field: WarpedField, problem: Any, generator: torch.Generator) -> None:
        """Move the cells to the pending maps and fit the solution onto them."""
        old_maps, new_maps = dict(field.axes), self.pending
        self.pending = None
        field.axes = new_maps
        batch = sample_for(field, problem, self.inner.points or 16 * _cells_total(field), generator)
        x = batch.data["x64"].double() if "x64" in batch.data else batch.x.double()
        dtype = next(p.dtype for p in field.parameters())
        with torch.no_grad():
            field.axes = old_maps
            values = field(x.to(dtype))
            field.axes = new_maps
        misfit = fit_values(field, x, values, backend=getattr(self.inner, "backend", "auto"))
        self.inner._state = None
        self.inner.cold_start = False  # from the solution fitted onto the moved grid
        log.info("moving grid: cells moved, the solution fitted onto them (misfit %.2g)", misfit)

    def _indicator(self, field: WarpedField, problem: Any, cells: Optional[List[int]] = None):
        """η_K of ``field`` on its own cells (or ``cells`` per axis, through its maps)."""
        edges = field.cell_edges(cells or _cells(field), problem.bounds)
        with torch.enable_grad():
            return cell_indicator(problem, field, edges)

    def _remap(self, ind: Any, smoothing: float) -> Optional[Dict[int, AxisMonitorMap]]:
        """Maps equidistributing the indicator of the equations (all of it where they have none):
        per axis, its square summed over the other axes, per unit length. None where every axis'
        cells would vary less than ``min_ratio``-fold: the indicator is even, a move would gain
        little and cost a solve (Poisson2d-C's estimate gives 1.3)."""
        maps = equidistributed_maps(ind, self.axes, ratio=self.ratio, floor=self.floor, smoothing=smoothing,
                                    power=self.power)
        cells = _cells(self.field)
        spread = [np.ptp(np.log(np.diff(maps[a].cell_edges(cells[a])))) for a in self.axes]
        return None if max(spread) < np.log(self.min_ratio) else maps

    def _describe(self, field: WarpedField, maps: Optional[Dict[int, AxisMonitorMap]] = None) -> str:
        """The cells' sizes per moved axis (under ``maps`` where given)."""
        coords = getattr(self.problem, "coords", None) or [str(a) for a in range(field.in_dim)]
        maps, cells = maps or field.axes, _cells(field)
        parts = []
        for a in self.axes:
            edges = maps[a].cell_edges(cells[a])
            w = np.diff(edges)
            parts.append(f"{coords[a]}: cells {w.min():.3g} to {w.max():.3g}, finest at {coords[a]} = "
                         f"{0.5 * (edges[np.argmin(w)] + edges[np.argmin(w) + 1]):.3g}")
        return "; ".join(parts)


def equidistributed_maps(ind: Any, axes: Sequence[int], **options: float) -> Dict[int, AxisMonitorMap]:
    """Per axis of ``axes``, the map equidistributing the indicator ``ind`` of the equations (all
    of it where they have none: on Burgers the initial slice's misfit would pull the cells to where
    u₀ is steep): its square summed over the other axes, per unit length
    (``AxisMonitorMap.equidistribute`` with ``options``)."""
    squares = ind.eta_equations ** 2 if ind.equations > 0 else ind.eta ** 2
    maps = {}
    for a in axes:
        mass = squares.sum(axis=tuple(b for b in range(squares.ndim) if b != a))
        maps[a] = AxisMonitorMap.equidistribute(ind.edges[a], mass / np.diff(ind.edges[a]), **options)
    return maps


def identity_maps(bounds: Sequence[Sequence[float]], axes: Sequence[int]) -> Dict[int, AxisMonitorMap]:
    """Uniform maps (no bump) on ``axes``."""
    return {a: AxisMonitorMap(float(bounds[a][0]), float(bounds[a][1]), [0.0], [0.0], 1.0) for a in axes}


def _cells(field: torch.nn.Module) -> List[int]:
    return [int(n) for n in innermost(field).resolution_per_axis]


def _cells_total(field: torch.nn.Module) -> int:
    return int(np.prod(_cells(field)))


def _maps_state(maps: Dict[int, AxisMonitorMap]) -> Dict[int, Dict[str, Any]]:
    return {int(a): {"lo": m.lo, "hi": m.hi, "centres": m.s.tolist(), "c": m.c.tolist(), "sigma": m.sigma}
            for a, m in maps.items()}


def _maps_of(state: Dict[int, Dict[str, Any]]) -> Dict[int, AxisMonitorMap]:
    return {int(a): AxisMonitorMap(s["lo"], s["hi"], s["centres"], s["c"], s["sigma"]) for a, s in state.items()}
