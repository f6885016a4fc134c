"""The run's a-posteriori error indicator (issue 31, item 1; ``dinf.pdes.indicator``).

With ``indicator: true`` (conf/config.yaml) a run of a problem stated in a config file
(``EquationProblem``) computes η_K on a lattice of cells once, after training: ``indicator`` (the
total) joins the final metrics (``metrics.json``, the loggers' summary; ``indicator_s`` its
seconds), and ``indicator.npz`` (η per cell, its parts, the edges and coordinate names) and
``indicator.png`` go into the run folder. Not at every validation: measured on 2 CPU cores it
costs 0.06–2 s on the best grids of Poisson2d-C, Burgers1d-C, Heat2d-MS and ``example_hole``, a
tenth to a hundred times a validation, which only predicts values (docs/guide/adaptivity.md).

The lattice: the finest level of the run's grid (``resolution_per_axis`` of ∂∞-Grid, the linear
grid or the factored grid, uniform over the problem's box; a graded grid's cells are not
followed: the lattice stays uniform), else the problem's ``resolution`` (one number, or one per
coordinate), else ``DEFAULT_CELLS`` per coordinate. A lattice of more quadrature points than
``budget`` allows (2¹⁸ on a grid in two coordinates, 2¹³ on a network, whose jets by autograd
cost far more a point; a quarter for each coordinate more) is coarsened, halving its axis of most
cells until it fits.

A refined grid (``grid.adapt: h``) is estimated on its leaf cells instead, as it was refined
(``leaf_indicator``); ``indicator.npz`` then holds them level by level.

Skipped, with one line in the log saying why: problems that are classes (the image Poisson,
Helmholtz with its PML, the plate, the cloth), and a classical solver's field (values only: no
derivatives to take the residual of).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from dinf.fields.base import innermost
from dinf.fields.interpolant import Interpolant
from dinf.pdes.equation_problem import EquationProblem
from dinf.fields.refined import refined_field
from dinf.fields.warped import edges_of
from dinf.pdes.indicator import cell_indicator, gauss_points, leaf_indicator, leaf_picture, leaf_total, picture, uniform_edges

log = logging.getLogger(__name__)

# Quadrature points on a grid's cells in two coordinates (closed-form jets: about 2 s on 2 cores),
# and on any other field's (SIREN's autograd jets cost ~0.1–0.3 ms a point); a quarter for each
# coordinate more (a jet's entries and a grid's neighbours grow with it).
MAX_POINTS = 1 << 18
MAX_POINTS_AUTOGRAD = 1 << 13
DEFAULT_CELLS = 32


def budget(dim: int, grid: bool) -> int:
    """The most quadrature points a run's indicator takes in ``dim`` coordinates."""
    return (MAX_POINTS if grid else MAX_POINTS_AUTOGRAD) >> (2 * max(dim - 2, 0))


class RunIndicator:
    """The run's indicator: set up before training (``reason``: why it is skipped, None: it is
    computed), computed once after it (``final``)."""

    def __init__(self, enabled: bool, problem: Any, field: torch.nn.Module):
        self.problem = problem
        self.reason: Optional[str] = None
        self.edges: List[np.ndarray] = []
        if not enabled:
            self.reason = "off (indicator: false)"
            return
        if not isinstance(problem, EquationProblem):
            self.reason = (f"{type(problem).__name__} is not a problem stated in a config file "
                           "(dinf.pdes.EquationProblem), whose residuals it reads")
        elif isinstance(innermost(field), Interpolant):
            self.reason = "a classical solver's solution has values only, no derivatives to take the residual of"
        if self.reason is not None:
            log.info("indicator: skipped: %s", self.reason)
            return
        self.edges = uniform_edges(problem, lattice_cells(problem, field))

    @property
    def active(self) -> bool:
        return self.reason is None

    def final(self, field: torch.nn.Module, output_dir: str) -> Tuple[Dict[str, float], Dict[str, Any]]:
        """η_K of the trained ``field``: ``({"indicator": η, "indicator_s": seconds}, {"indicator":
        figure})``, and ``indicator.npz`` written into ``output_dir``; nothing when skipped."""
        if not self.active:
            return {}, {}
        was_training = field.training
        field.eval()
        r = refined_field(field)
        if r is not None and r.refined:
            found = self._leaves(field, r, output_dir)
            field.train(was_training)
            return found
        edges = self.edges
        if callable(getattr(field, "cell_edges", None)):  # a graded or moved grid: its own cells
            edges = field.cell_edges([len(e) - 1 for e in edges], self.problem.bounds)
        with torch.enable_grad():
            ind = cell_indicator(self.problem, field, edges, gauss_points(self.problem.in_dim))
        field.train(was_training)
        path = os.path.join(output_dir, "indicator.npz")
        ind.save(path)
        shape = " × ".join(str(n) for n in ind.eta.shape)
        parts = " · ".join(f"{k} {v:.3g}" for k, v in ind.parts.items())
        skipped = f"; left out: {', '.join(ind.skipped)}" if ind.skipped else ""
        log.info("indicator: η = %.4g (equations %.3g, conditions %.3g: %s) on %s cells (%s), %.2f s%s → %s",
                 ind.total, ind.equations, ind.conditions, parts, shape, ", ".join(ind.coords), ind.seconds,
                 skipped, os.path.relpath(path))
        figure = picture(ind, getattr(self.problem, "time", None))
        return {"indicator": ind.total, "indicator_s": ind.seconds}, {"indicator": figure}


    def _leaves(self, field: torch.nn.Module, r: Any, output_dir: str) -> Tuple[Dict[str, float], Dict[str, Any]]:
        """A refined grid's indicator on its leaf cells (``leaf_indicator``): ``indicator.npz``
        holds per leaf level ``ell`` its ``cells_<ell>`` (per axis), ``ids_<ell>`` (flat indices
        of its leaves), ``eta_<ell>`` and its equations' part ``eta_equations_<ell>``; the
        picture draws each leaf in its colour."""
        start = time.perf_counter()
        lattices, graded = r.leaf_lattices(), edges_of(field, self.problem.bounds)
        with torch.enable_grad():
            etas = leaf_indicator(self.problem, field, lattices, gauss_points(self.problem.in_dim), edges_of=graded)
        seconds = time.perf_counter() - start
        total = leaf_total(etas)
        path = os.path.join(output_dir, "indicator.npz")
        arrays = {}
        for ell, ((cells, _), (ids, eta, eq)) in enumerate(zip(lattices, etas)):
            arrays.update({f"cells_{ell}": np.asarray(cells), f"ids_{ell}": ids, f"eta_{ell}": eta,
                           f"eta_equations_{ell}": eq})
        np.savez_compressed(path, total=total, coords=np.array(self.problem.coords), levels=len(etas), **arrays)
        log.info("indicator: η = %.4g on %d leaf cells of %d levels, %.2f s → %s", total,
                 sum(len(ids) for ids, _, _ in etas), len(etas), seconds, os.path.relpath(path))
        figure = leaf_picture(self.problem, lattices, etas, total, graded)
        return {"indicator": total, "indicator_s": seconds}, {"indicator": figure}


def lattice_cells(problem: Any, field: torch.nn.Module) -> List[int]:
    """Cells per coordinate: the finest level of the field's grid, else ``pde.resolution``, else
    ``DEFAULT_CELLS``; coarsened to at most ``budget`` quadrature points by halving the axis of
    most cells."""
    d = problem.in_dim
    cells = getattr(innermost(field), "resolution_per_axis", None)
    grid = cells is not None and len(cells) == d
    most = budget(d, grid)
    if not grid:
        given = getattr(problem, "options", {}).get("resolution")
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            cells = [int(given)] * d
        elif isinstance(given, (list, tuple)) and len(given) == d:
            cells = [int(n) for n in given]
        else:
            cells = [DEFAULT_CELLS] * d
    cells = [max(1, int(n)) for n in cells]
    before = list(cells)
    while int(np.prod(cells)) * gauss_points(d) ** d > most and max(cells) > 1:
        a = int(np.argmax(cells))
        cells[a] = max(1, cells[a] // 2)
    if cells != before:
        log.info("indicator: %s cells coarsened to %s (at most %d quadrature points)",
                 " × ".join(map(str, before)), " × ".join(map(str, cells)), most)
    return cells
