"""An a-posteriori error indicator per cell of a lattice, for a problem stated in a config file.

``cell_indicator(problem, field, edges)`` integrates the residuals of the equations over each
box cell ``K`` of the lattice ``edges`` (one array of cell edges per coordinate, time included)
and the residuals of the conditions over the pieces of boundary (or the initial slice) in it,
scaled as in residual-based a-posteriori estimators (Babuška–Rheinboldt 1978, Verfürth 1996)::

    η_K² = h_K^m ∫_{K∩Ω} |R|²  +  Σ_conditions Σ_columns h_K^(2k+1−m) ∫_{E∩K} |R_c|²

``R``: every equation's residual (``problem.residuals``, regularisation terms left out, weights
left out: an estimator reads the residual, not the loss's balance of it); ``m``: the highest
derivative order in the equations (2 for Poisson, heat, Burgers; 4 for the biharmonic plate);
``R_c``: a condition's residual (``u − g``, ``u_n − g``, ``a·u + b·u_n − g``, an ``expr``, ``u −
g`` at ``t0``, a periodic pair's difference), ``k`` the derivative order of each of its residuals;
``h_K``: the cell's diameter (the Euclidean length of its diagonal, time included on space-time
cells). For ``m = 2`` that is ``h_K² ‖R‖²_K`` on cells, ``h_K ‖u_n − g‖²_E`` for Neumann and Robin
data and ``h_K⁻¹ ‖u − g‖²_E`` for Dirichlet data: the weights of the H⁻¹ norm of the interior
residual and of the H⁻¹ᐟ² and H¹ᐟ² norms of the boundary residuals, on pieces of size ``h``.
(The issue's sketch weighed every condition by ``h_K``; that under-weights a Dirichlet misfit the
more the finer the lattice: docs/guide/adaptivity.md compares the two.)

Beside it: ``cell_quadrature`` (the rule per cell, which ``experiments/indicator_check.py`` uses
for the true error too), ``uniform_edges`` (a lattice over the domain's box) and ``picture``
(η_K as a heat map). The fields are any ``FieldLike``; the jets come from
``EquationProblem.jet_at``, so this module knows nothing of ``dinf.fields``.

What it estimates
-----------------
For a second-order elliptic problem (Poisson, Helmholtz-type with a small wave number, the
conditions soft) and a field that is smooth in each cell, ``η = (Σ η_K²)^½`` bounds the error in
the energy (H¹) norm from above and below up to constants: ``c‖e‖_{H¹} ≤ η ≤ C‖e‖_{H¹}``, and
``η_K`` is large where the error is. For an equation of order ``m = 2s`` it is the analogue for
the Hˢ norm (the biharmonic plate: H²). On space-time cells (heat, Burgers, waves) the same
weights are a heuristic: no such bound holds, though the residual still marks where the equation
is not met, which is where a grid needs more cells.

Where it is known to be unreliable
----------------------------------
- **Quadrature**: ``points_per_axis`` Gauss–Legendre points per axis sample the residual; one that
  oscillates between them (a field with many features per cell, a grid finer than the lattice)
  is under-sampled. Use a lattice no coarser than the field's finest cells, or more points.
- **Collocation solvers**: a solve that makes the residual small at its own points (least squares
  or Gauss–Newton on a fixed set of points as dense as the quadrature) can leave it large between
  them; the indicator samples other points, but where both sets are sparse it sees what the solve
  saw.
- **Stability**: the bound needs an operator that is stable in H¹ (coercive, or inf–sup stable
  with a moderate constant): advection-dominated, hyperbolic and high-frequency Helmholtz
  problems amplify a small residual into a large error (the effectivity falls well below 1), and
  nonlinear problems near a shock or a bifurcation hold the bound only near the solution.
- **Conditions** are integrated by Monte Carlo on their own points (``sample``: uniform on the
  piece), so a cell that holds a sliver of boundary gets a noisy share; the Dirichlet weight
  ``h⁻¹`` assumes a misfit that varies on the cell's scale (a smooth misfit is over-weighted).
- **Left out**: observations (``type: data``: a misfit to data is not a residual of the model)
  and point conditions (a point has no measure); exact conditions (``hard: true``) hold by
  construction and add nothing. ``Indicator.skipped`` names them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.pdes.base import FieldLike
from dinf.pdes.conditions import Data, OnInitialSlice, OnPiece, Periodic, Point

CHUNK = 16384              # points per jet
BOUNDARY_FACTOR = 4        # condition points: this many per quadrature point of a face of the lattice's surface
MIN_BOUNDARY_POINTS = 256
MAX_BOUNDARY_POINTS = 1 << 16
SEED = 0                   # the conditions' points: the same on every call
EdgesOf = Callable[[List[int]], Sequence[np.ndarray]]  # a lattice's cells per axis -> its edges per coordinate


@dataclass
class Indicator:
    """``eta`` ``[n_1, …, n_d]``: η_K per cell of the lattice ``edges`` (one array of ``n_a + 1``
    edges per coordinate ``coords[a]``, in the problem's order); 0 in cells outside the domain.
    ``eta_equations`` and ``eta_conditions``: the two parts per cell (η_K² is the sum of their
    squares). ``total``: (Σ η_K²)^½, with its parts ``equations`` and ``conditions``; ``parts``:
    the same per residual and per condition, by name. ``covered``: cells that hold a quadrature
    point inside the domain or a condition's point. ``skipped``: the conditions left out, and why."""

    eta: np.ndarray
    edges: List[np.ndarray]
    coords: List[str]
    total: float
    equations: float
    conditions: float
    eta_equations: np.ndarray
    eta_conditions: np.ndarray
    covered: np.ndarray
    parts: Dict[str, float] = dc_field(default_factory=dict)
    skipped: Dict[str, str] = dc_field(default_factory=dict)
    seconds: float = 0.0

    def save(self, path: str) -> None:
        """An ``.npz``: ``eta``, ``eta_equations``, ``eta_conditions``, ``covered``, ``coords``,
        ``edges_<coord>`` per coordinate, and the totals."""
        np.savez_compressed(
            path, eta=self.eta, eta_equations=self.eta_equations, eta_conditions=self.eta_conditions,
            covered=self.covered, coords=np.array(self.coords),
            total=self.total, equations=self.equations, conditions=self.conditions,
            **{f"edges_{c}": e for c, e in zip(self.coords, self.edges)})


def cell_indicator(problem: Any, field: FieldLike, edges: Sequence[Any], points_per_axis: Optional[int] = None,
                   boundary_points: Optional[int] = None, chunk: int = CHUNK) -> Indicator:
    """η_K on the lattice ``edges`` of ``problem`` (an ``EquationProblem``) for ``field`` (see the
    module doc). ``edges``: per coordinate (time included, in ``problem.coords``' order) the
    increasing cell edges, covering the domain's bounding box. ``points_per_axis``: Gauss–Legendre
    points per axis and cell (``gauss_points``). ``boundary_points``: points per condition (default: ``BOUNDARY_FACTOR``
    per quadrature point of the cell faces on one side of each axis, between
    ``MIN_BOUNDARY_POINTS`` and ``MAX_BOUNDARY_POINTS``: a dozen or more per cell a piece crosses)."""
    start = time.perf_counter()
    d = problem.in_dim
    edges = _checked_edges(edges, problem)
    shape = tuple(len(e) - 1 for e in edges)
    ncells = math.prod(shape)
    widths = np.stack(np.meshgrid(*[np.diff(e) for e in edges], indexing="ij"), -1).reshape(ncells, d)
    diameter = np.sqrt((widths ** 2).sum(1))
    m = equation_order(problem)
    p = int(points_per_axis or gauss_points(d))

    # --- the equations: Gauss–Legendre points per cell, those inside the domain ------------------
    equations = problem.equations()
    names = list(equations)
    per_residual = {n: np.zeros(ncells) for n in names}
    covered = np.zeros(ncells, dtype=bool)
    for x, cell, w in cell_quadrature(problem.domain, edges, p, chunk):
        covered[cell] = True
        jet, data = problem.jet_at(field, x)
        for n in names:
            r2 = _squares(equations[n].evaluate(jet, data))
            per_residual[n] += np.bincount(cell, weights=w * r2, minlength=ncells)
    eq = sum(per_residual.values()) * diameter ** m if names else np.zeros(ncells)

    # --- the conditions: their own points, binned into cells -----------------------------------
    skipped: Dict[str, str] = {}
    per_condition: Dict[str, np.ndarray] = {}
    generator = torch.Generator().manual_seed(SEED)
    for c in problem.conditions:
        why = _left_out(c)
        if why is not None:
            skipped[c.name] = why
            continue
        n = int(boundary_points) if boundary_points is not None else _boundary_count(shape, p)
        x, normal = c.sample(problem.domain, n, generator)
        per_condition[c.name] = _condition_sums(problem, field, c, x, normal, edges, shape, diameter, m, chunk,
                                                covered)
    cond = sum(per_condition.values()) if per_condition else np.zeros(ncells)

    eta2 = eq + cond
    parts = {n: math.sqrt(float((v * diameter ** m).sum())) for n, v in per_residual.items()}
    parts.update({n: math.sqrt(float(v.sum())) for n, v in per_condition.items()})
    return Indicator(
        eta=np.sqrt(eta2).reshape(shape), edges=edges, coords=list(problem.coords),
        total=math.sqrt(float(eta2.sum())), equations=math.sqrt(float(eq.sum())),
        conditions=math.sqrt(float(cond.sum())), eta_equations=np.sqrt(eq).reshape(shape),
        eta_conditions=np.sqrt(cond).reshape(shape), covered=covered.reshape(shape), parts=parts,
        skipped=skipped, seconds=time.perf_counter() - start)


def cell_quadrature(domain: Any, edges: Sequence[np.ndarray], points_per_axis: int = 3,
                    chunk: int = CHUNK, cells: Optional[np.ndarray] = None
                    ) -> Iterator[Tuple[Tensor, np.ndarray, np.ndarray]]:
    """Gauss–Legendre quadrature over the cells of the lattice ``edges``, in chunks of about
    ``chunk`` points: ``(x [N, d] float64, flat cell index [N], weight [N])``, the weights the
    rule's times the cell's volume (they sum to it), points outside ``domain`` (its
    ``contains``) left out: ``Σ w f(x)`` over a cell's points is ``∫_{K∩Ω} f`` for a polynomial
    ``f`` of degree ``2·points_per_axis − 1`` per axis in a cell inside the domain. ``cells``: the
    flat indices of the cells to visit (None: all)."""
    p = int(points_per_axis)
    if p < 1:
        raise ValueError(f"points_per_axis must be >= 1, got {points_per_axis}")
    d = len(edges)
    shape = tuple(len(e) - 1 for e in edges)
    ncells = math.prod(shape)
    steps = [np.diff(e) for e in edges]
    nodes, weights = np.polynomial.legendre.leggauss(p)
    unit = (nodes + 1.0) / 2.0                                                          # on [0, 1]
    pattern = np.stack(np.meshgrid(*[np.arange(p)] * d, indexing="ij"), -1).reshape(-1, d)   # [p^d, d]
    wq = np.prod((weights / 2.0)[pattern], axis=1)                                     # sums to 1
    lows = [np.asarray(e[:-1]) for e in edges]
    per = max(1, chunk // len(wq))
    visit = np.arange(ncells) if cells is None else np.asarray(cells, dtype=np.int64)
    for first in range(0, len(visit), per):
        ids = visit[first:first + per]
        index = np.stack(np.unravel_index(ids, shape), 1)                               # [c, d]
        lo = np.stack([lows[a][index[:, a]] for a in range(d)], 1)                       # [c, d]
        widths = np.stack([steps[a][index[:, a]] for a in range(d)], 1)                  # [c, d]
        x = torch.as_tensor((lo[:, None, :] + widths[:, None, :] * unit[pattern][None]).reshape(-1, d))
        cell = np.repeat(ids, len(wq))
        w = np.tile(wq, len(ids)) * np.repeat(widths.prod(1), len(wq))
        inside = domain.contains(x).numpy()
        if inside.any():
            yield x[inside], cell[inside], w[inside]


def gauss_points(dim: int) -> int:
    """Gauss–Legendre points per axis and cell by default: 3 in one or two coordinates, 2 beyond
    (8 a cell in three, exact for cubics per axis)."""
    return 3 if dim <= 2 else 2


def uniform_edges(problem: Any, cells: Sequence[int]) -> List[np.ndarray]:
    """``cells[a] + 1`` evenly spaced edges over the bounding box along each coordinate."""
    bounds = problem.domain.bounds.numpy()
    if len(cells) != len(bounds):
        raise ValueError(f"give cells for each of the {len(bounds)} coordinates ({', '.join(problem.coords)}), "
                         f"got {list(cells)}")
    return [np.linspace(lo, hi, int(n) + 1) for (lo, hi), n in zip(bounds, cells)]


def equation_order(problem: Any) -> int:
    """``m``: the highest derivative order of the equations (regularisation terms left out)."""
    return max([int(r.order) for r in problem.equations().values()] or [problem.jet_order])


# --- helpers -----------------------------------------------------------------------------------
def _checked_edges(edges: Sequence[Any], problem: Any) -> List[np.ndarray]:
    d = problem.in_dim
    if len(edges) != d:
        raise ValueError(f"give edges for each of the {d} coordinates ({', '.join(problem.coords)}), got {len(edges)}")
    bounds = problem.domain.bounds.numpy()
    out = []
    for a, e in enumerate(edges):
        e = np.asarray(e, dtype=np.float64).reshape(-1)
        name = problem.coords[a]
        if len(e) < 2 or not np.all(np.diff(e) > 0):
            raise ValueError(f"edges of {name}: at least two, increasing; got {e.tolist()[:6]}")
        tol = 1e-9 * (bounds[a, 1] - bounds[a, 0])
        if e[0] > bounds[a, 0] + tol or e[-1] < bounds[a, 1] - tol:
            raise ValueError(f"edges of {name} cover [{e[0]:g}, {e[-1]:g}]; the domain's box is "
                             f"[{bounds[a, 0]:g}, {bounds[a, 1]:g}]")
        out.append(e)
    return out


def _condition_sums(problem: Any, field: FieldLike, c: Any, x: Tensor, normal: Optional[Tensor],
                    edges: List[np.ndarray], shape: Tuple[int, ...], diameter: np.ndarray, m: int, chunk: int,
                    covered: np.ndarray) -> np.ndarray:
    """Per cell: Σ over the condition's points in the cell of measure/points · Σ_columns
    h_K^(2k+1−m) R_c² (a Monte-Carlo integral over the piece within the cell). A periodic pair's
    difference goes half to each of its two points' cells. Marks the cells in ``covered``."""
    ncells = math.prod(shape)
    sums = np.zeros(ncells)
    bounds = problem.domain.bounds.numpy()
    for points, outward, squares, k, share in _condition_squares(problem, field, c, x, normal, chunk):
        cells = _cells_of(points, edges, shape, bounds, outward)
        scale = diameter[cells][:, None] ** (2.0 * k[None, :] + 1.0 - m)
        sums += np.bincount(cells, weights=share * (scale * squares).sum(1), minlength=ncells)
        covered[cells] = True
    return sums


def _condition_squares(problem: Any, field: FieldLike, c: Any, x: Tensor, normal: Optional[Tensor], chunk: int,
                       drawn: Optional[int] = None
                       ) -> Iterator[Tuple[np.ndarray, Optional[np.ndarray], np.ndarray, np.ndarray, float]]:
    """A condition's squared residuals at its points, in chunks: ``(points [n, d], outward normals
    or None, R_c² [n, P], each column's derivative order k [P], measure/points)`` (``drawn``: the
    points drawn, of which ``x`` are those kept; default all). A periodic pair's difference goes
    to both of its points, each with half the share."""
    measure = _measure(problem, c)
    orders = _column_orders(c)
    paired = isinstance(c, Periodic)
    rows = x.shape[0] // 2 if paired else x.shape[0]
    share_rows = rows if drawn is None else (drawn // 2 if paired else drawn)
    step = max(1, chunk // 2 if paired else chunk)
    for s in range(0, rows, step):
        pick = np.arange(s, min(s + step, rows))
        if paired:  # the chunk's pairs: first points, then their partners (as ``Periodic.values`` reads them)
            pick = np.concatenate([pick, pick + rows])
        pick = torch.as_tensor(pick)
        xs = x[pick]
        jet, data = problem.jet_at(field, xs, None if normal is None else normal[pick])
        values = c.values(jet, data).detach().double().cpu().numpy()                 # [rows in chunk, P]
        k = orders if orders is not None and len(orders) == values.shape[1] else np.full(values.shape[1], c.order)
        normals = None if normal is None else normal[pick].numpy()
        half = len(values)
        groups = [(xs[:half], None), (xs[half:], None)] if paired else [(xs, normals)]
        for points, outward in groups:
            yield points.numpy(), outward, values ** 2, k, measure / share_rows / len(groups)


def leaf_indicator(problem: Any, field: FieldLike, lattices: Sequence[Tuple[Sequence[int], np.ndarray]],
                   points_per_axis: Optional[int] = None, chunk: int = CHUNK,
                   edges_of: Optional[EdgesOf] = None) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """η_K on the leaves of a refined grid (``dinf.fields.refined``), as ``cell_indicator`` weighs
    it: ``lattices`` gives, coarsest first, each level's cells per axis over the domain's box and
    the sorted flat indices of its leaves (together they tile the box). Returns per lattice
    ``(its leaves, η_K, the equations' part of η_K)``. Only the leaves are visited, so a fine
    level costs what its leaves hold; each level's leaves get a condition's points at their own
    density (below)."""
    bounds = problem.domain.bounds.numpy()
    m, p = equation_order(problem), int(points_per_axis or gauss_points(len(bounds)))
    equations = problem.equations()
    parts = []
    for cells, leaf in lattices:
        edges = lattice_edges(bounds, cells, edges_of)
        ids = np.asarray(leaf, dtype=np.int64)
        diameter = _diameters(edges, ids)
        sums = np.zeros(len(ids))
        for x, cell, w in cell_quadrature(problem.domain, edges, p, chunk, leaf):
            jet, data = problem.jet_at(field, x)
            r2 = sum(_squares(r.evaluate(jet, data)) for r in equations.values()) if equations else 0.0 * w
            sums += np.bincount(np.searchsorted(ids, cell), weights=w * r2, minlength=len(ids))
        parts.append((edges, ids, diameter, sums * diameter ** m, np.zeros(len(ids))))
    generator = torch.Generator().manual_seed(SEED)
    d = len(bounds)
    base = _boundary_count(tuple(int(n) for n in lattices[0][0]), p)
    for c in problem.conditions:
        if _left_out(c) is not None:
            continue
        # Each leaf level's leaves get as many of the condition's points as a cell of the first
        # level: drawn 2^(ℓ(d−1)) times over, those in the level's leaves kept, each weighing its
        # share of the draw. One draw for all (the first level's density) left a leaf 2^-16 as
        # wide one point, weighed as if it held 30 times its own piece of boundary. A finer
        # level's points are drawn only in the box around its leaves (``sample_within``).
        paired = isinstance(c, Periodic)  # a pair's two points may fall on different levels: one draw
        plans = [(None, base)] if paired else [(ell, base * 2 ** (ell * (d - 1))) for ell in range(len(parts))]
        for ell, count in plans:
            if ell:
                window = _leaf_window(parts[ell][0], parts[ell][1])
                x, normal, share = c.sample_within(problem.domain, count, generator, *window)
                count = max(1, int(round(count * share)))  # the whole draw these points stand for
            else:
                x, normal = c.sample(problem.domain, count, generator)
            if ell is not None:
                edges, ids = parts[ell][0], parts[ell][1]
                flat = _cells_of(x.numpy(), edges, tuple(int(n) for n in lattices[ell][0]), bounds,
                                 None if normal is None else normal.numpy())
                keep = torch.from_numpy(_member(ids, flat))
                if not bool(keep.any()):
                    continue
                x, normal = x[keep], None if normal is None else normal[keep]
            for points, outward, squares, k, share in _condition_squares(problem, field, c, x, normal, chunk, count):
                free = np.ones(len(points), dtype=bool)
                for (cells, _), (edges, ids, diameter, _, sums) in zip(lattices, parts):
                    flat = _cells_of(points, edges, tuple(int(n) for n in cells), bounds, outward)
                    hit = free & _member(ids, flat)
                    if hit.any():
                        scale = diameter[np.searchsorted(ids, flat[hit])][:, None] ** (2.0 * k[None, :] + 1.0 - m)
                        sums += np.bincount(np.searchsorted(ids, flat[hit]),
                                            weights=share * (scale * squares[hit]).sum(1), minlength=len(ids))
                        free &= ~hit
    return [(ids, np.sqrt(eq + cond), np.sqrt(eq)) for _, ids, _, eq, cond in parts]


def lattice_edges(bounds: np.ndarray, cells: Sequence[int], edges_of: Optional[EdgesOf] = None) -> List[np.ndarray]:
    """A lattice's cell edges per coordinate: ``edges_of(cells)`` (a graded grid's), else even
    over ``bounds``."""
    if edges_of is not None:
        return [np.asarray(e, dtype=np.float64) for e in edges_of([int(n) for n in cells])]
    return [np.linspace(lo, hi, int(n) + 1) for (lo, hi), n in zip(bounds, cells)]


def leaf_boxes(bounds: np.ndarray, cells: Sequence[int], ids: np.ndarray,
               edges_of: Optional[EdgesOf] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The low and high corners ``[n, d]`` of the cells ``ids`` (flat indices) of a lattice."""
    return _boxes(lattice_edges(bounds, cells, edges_of), ids)


def _boxes(edges: Sequence[np.ndarray], ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The low and high corners ``[n, d]`` of the cells ``ids`` (flat indices) of the lattice ``edges``."""
    index = np.unravel_index(np.asarray(ids, dtype=np.int64), tuple(len(e) - 1 for e in edges))
    lo = np.stack([e[i] for e, i in zip(edges, index)], 1)
    hi = np.stack([e[i + 1] for e, i in zip(edges, index)], 1)
    return lo, hi


def _leaf_window(edges: Sequence[np.ndarray], ids: np.ndarray) -> Tuple[Tensor, Tensor]:
    """The box ``(lo, hi)`` around the cells ``ids`` of the lattice ``edges`` (an empty one at the
    first corner when there are none)."""
    if not len(ids):
        corner = torch.tensor([e[0] for e in edges], dtype=torch.float64)
        return corner, corner.clone()
    lo, hi = _boxes(edges, ids)
    return torch.from_numpy(lo.min(0)), torch.from_numpy(hi.max(0))


def _diameters(edges: Sequence[np.ndarray], ids: np.ndarray) -> np.ndarray:
    """The diameter of each cell ``ids`` (flat indices) of the lattice ``edges``."""
    lo, hi = _boxes(edges, ids)
    return np.sqrt(((hi - lo) ** 2).sum(1))


def leaf_total(etas: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """η = (Σ η_K²)^½ over all leaves of ``leaf_indicator``'s answer."""
    return float(np.sqrt(sum(float((eta ** 2).sum()) for _, eta, _ in etas)))


def _member(ids: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``[N]`` bool: whether each of ``flat`` is one of the sorted ``ids``."""
    if not len(ids):
        return np.zeros(len(flat), dtype=bool)
    return ids[np.minimum(np.searchsorted(ids, flat), len(ids) - 1)] == flat


def _squares(values: Tensor) -> np.ndarray:
    """``[N]``: the sum over columns of ``values ** 2`` (float64, CPU)."""
    return values.detach().double().pow(2).sum(1).cpu().numpy()


def _left_out(c: Any) -> Optional[str]:
    if isinstance(c, Data):
        return "observations: a misfit to data is not a residual of the equations"
    if isinstance(c, Point):
        return "a point condition: a point has no measure"
    if not isinstance(c, (OnPiece, OnInitialSlice, Periodic)):
        return f"{type(c).__name__}: the indicator does not know the measure of its points"
    return None


def _measure(problem: Any, c: Any) -> float:
    """The measure of the set a condition's points are uniform on (× the time interval when timed)."""
    domain = problem.domain
    if isinstance(c, OnPiece):
        return float(domain.piece_measure(c.piece))
    if isinstance(c, Periodic):
        return float(domain.piece_measure(f"{domain.coords[c.axis]}_min"))
    t = domain.bounds[-1]
    return float(domain.interior_measure() / float(t[1] - t[0]))  # the initial slice: the spatial region


def _column_orders(c: Any) -> Optional[np.ndarray]:
    """The derivative order of each column of ``c.values`` (its residuals' parts, in order)."""
    try:
        return np.concatenate([np.full(len(r.parts), int(r.order)) for r in c.residuals])
    except (AttributeError, TypeError):
        return None


def _boundary_count(shape: Tuple[int, ...], p: int) -> int:
    """Points per condition: ``BOUNDARY_FACTOR`` per quadrature point of the lattice's cell faces
    on one side of each axis (the box's boundary has twice as many faces, so a condition on all of
    it gets ``BOUNDARY_FACTOR / 2 · p^(d−1)`` points a face), clamped."""
    d = len(shape)
    faces = sum(math.prod(shape[:a] + shape[a + 1:]) for a in range(d)) if d > 1 else 1
    return min(max(BOUNDARY_FACTOR * p ** max(d - 1, 0) * faces, MIN_BOUNDARY_POINTS), MAX_BOUNDARY_POINTS)


def _cells_of(x: np.ndarray, edges: List[np.ndarray], shape: Tuple[int, ...], bounds: np.ndarray,
              normal: Optional[np.ndarray] = None) -> np.ndarray:
    """Flat cell index of each boundary point, in the cell on the domain's side of it: the point is
    moved a hair inward (against its outward ``normal`` where given, towards the box on the box's
    faces) before it is looked up, so a point on a cell edge goes to the cell inside."""
    size = bounds[:, 1] - bounds[:, 0]
    eps = 1e-9 * float(size.max())
    y = x.copy()
    if normal is not None:
        y -= eps * normal
    on_low, on_high = np.abs(x - bounds[:, 0]) <= eps, np.abs(x - bounds[:, 1]) <= eps
    y += eps * on_low - eps * on_high
    index = [np.clip(np.searchsorted(e, y[:, a], side="right") - 1, 0, len(e) - 2) for a, e in enumerate(edges)]
    return np.ravel_multi_index(index, shape)


# --- the picture -------------------------------------------------------------------------------
def picture(indicator: Indicator, time_name: Optional[str] = None) -> Any:
    """η_K over the domain on a log colour scale (cells outside it blank): a curve over one
    coordinate; an image over two (x–t for 1D space + time); beyond, an image over the first two
    space axes at the middle cell of the other space axes, at the first, middle and last time cell
    when timed. Returns a matplotlib ``Figure``."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    eta = np.where(indicator.covered & (indicator.eta > 0), indicator.eta, np.nan)
    coords, edges = indicator.coords, indicator.edges
    title = f"error indicator η_K (η = {indicator.total:.3g})"
    positive = eta[np.isfinite(eta)]
    if positive.size == 0:
        positive = np.array([1.0])
    top = float(positive.max())
    norm = LogNorm(vmin=max(float(positive.min()), top * 1e-8), vmax=top)
    if len(coords) == 1:
        fig = Figure(figsize=(8, 3.6))
        ax = fig.subplots()
        ax.stairs(np.nan_to_num(eta, nan=0.0), edges[0])
        ax.set_yscale("log")
        ax.set_xlabel(coords[0])
        ax.set_ylabel("η_K")
        ax.set_title(title)
        return fig
    space = [a for a, c in enumerate(coords) if c != time_name]
    ti = coords.index(time_name) if time_name in coords else None
    free = space[:2] if len(space) >= 2 else space + [ti]
    slices: List[Tuple[str, Dict[int, int]]] = [("", {})]
    middle = {a: eta.shape[a] // 2 for a in space[2:]}
    if ti is not None and ti not in free:
        n = eta.shape[ti]
        slices = [(f" at {time_name} ∈ [{edges[ti][k]:.3g}, {edges[ti][k + 1]:.3g}]", {ti: k})
                  for k in sorted({0, n // 2, n - 1})]
    fig = Figure(figsize=(5.2 * len(slices), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(slices)))
    ext = (edges[free[0]][[0, -1]], edges[free[1]][[0, -1]])
    spread = (ext[0][1] - ext[0][0]) / (ext[1][1] - ext[1][0])
    aspect = "equal" if ti not in free and 0.25 <= spread <= 4 else "auto"
    for ax, (when, fixed) in zip(axes, slices):
        index = [slice(None) if a in free else fixed.get(a, middle.get(a, 0)) for a in range(len(coords))]
        image = eta[tuple(index)]
        where = "".join(f", {coords[a]} ∈ [{edges[a][k]:.3g}, {edges[a][k + 1]:.3g}]" for a, k in middle.items())
        mesh = ax.pcolormesh(edges[free[0]], edges[free[1]], image.T, norm=norm, cmap="inferno", shading="flat")
        ax.set_aspect(aspect)
        ax.set_xlabel(coords[free[0]])
        ax.set_ylabel(coords[free[1]])
        ax.set_title(f"{title}{when}{where}", fontsize=9)
        fig.colorbar(mesh, ax=ax)
    fig.tight_layout()
    return fig


def leaf_picture(problem: Any, lattices: Sequence[Tuple[Sequence[int], np.ndarray]],
                 etas: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], total: float,
                 edges_of: Optional[EdgesOf] = None) -> Any:
    """A refined grid's η_K on its leaf cells (``leaf_indicator``), log colour scale: each leaf a
    rectangle over the domain's box (two coordinates), a step per leaf (one); else the finest
    level's leaves' η against their index. Returns a matplotlib ``Figure``."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    bounds = np.asarray(problem.domain.bounds.numpy(), dtype=np.float64)
    span = bounds[:, 1] - bounds[:, 0]
    all_eta = np.concatenate([e for _, e, _ in etas])
    positive = all_eta[all_eta > 0]
    top = float(positive.max()) if positive.size else 1.0
    norm = LogNorm(vmin=max(float(positive.min()) if positive.size else 1e-8, top * 1e-8), vmax=top)
    fig = Figure(figsize=(6.4, 5.0))
    ax = fig.subplots()
    title = f"error indicator η_K on the leaf cells (η = {total:.3g})"
    d = len(bounds)
    if d == 2:
        polys, values = [], []
        for (cells, ids), (_, eta, _) in zip(lattices, etas):
            lo, hi = leaf_boxes(bounds, cells, ids, edges_of)
            polys += [[(a[0], a[1]), (b[0], a[1]), (b[0], b[1]), (a[0], b[1])] for a, b in zip(lo, hi)]
            values.append(eta)
        eta = np.concatenate(values)
        keep = eta > 0
        coll = PolyCollection([p for p, k in zip(polys, keep) if k], array=eta[keep], cmap="inferno", norm=norm,
                              edgecolors="face", linewidths=0.2)
        ax.add_collection(coll)
        ax.set_xlim(*bounds[0])
        ax.set_ylim(*bounds[1])
        ax.set_aspect("equal" if 0.25 <= span[0] / span[1] <= 4 else "auto")
        ax.set_xlabel(problem.coords[0])
        ax.set_ylabel(problem.coords[1])
        fig.colorbar(coll, ax=ax)
    elif d == 1:
        for ell, ((cells, ids), (_, eta, _)) in enumerate(zip(lattices, etas)):
            lo, hi = leaf_boxes(bounds, cells, ids, edges_of)
            ax.bar(lo[:, 0], np.where(eta > 0, eta, np.nan), width=hi[:, 0] - lo[:, 0], align="edge",
                   color=f"C{ell % 10}", label=f"level {ell}")
        ax.set_yscale("log")
        ax.set_xlabel(problem.coords[0])
        ax.legend(fontsize=7)
    else:
        ax.semilogy(np.sort(all_eta)[::-1])
        ax.set_xlabel("leaf cells, by η_K")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
