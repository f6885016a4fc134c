"""The L-shaped domain (issue 31): a corner singularity, solved on uniform and moving ∂∞-Grids and
by scikit-fem's uniform and adaptive P1 and P2, errors against the exact solution.

    python experiments/lshape.py                                  # n = 16 32 64 128, two kernels; FEM to 1e5 DOFs
    python experiments/lshape.py --n 16 32 --fem-dofs 2e4 --kernels gaussian_wide   # a quick look
    python experiments/lshape.py --out outputs/lshape             # and the log-log plot
    python experiments/lshape.py grid.moving.ratio=16             # train.py overrides for the ∂∞-Grid runs
    python experiments/lshape.py --kernels gaussian_wide --skip uniform moving   # refined (from 16 and 32 cells) vs FEM

Problem (``conf/pde/lshape.yaml``): Δu = 0 on Ω = (−1, 1)² \\ [0, 1] × [−1, 0], u = g on ∂Ω with
g = r^{2/3} sin(2θ/3), θ ∈ (0, 3π/2) measured from the positive x axis through Ω. g is harmonic, so
u = g; ∇u = (2/3) r^{−1/3} (sin(−θ/3), cos(−θ/3)) is unbounded at the re-entrant corner (0, 0), and
u lies in H^{5/3−ε}(Ω) only.

Theory (N unknowns; in 2D a uniform mesh has h ~ N^{−1/2}):
- uniform grids and meshes, of any order: the corner limits |e|_H1 to O(h^{2/3}) = O(N^{−1/3}), and
  ‖e‖_L2 to O(h^{4/3}) = O(N^{−2/3}) (duality: the adjoint problem has the same corner);
- adaptive P1 (residual estimator, Dörfler marking) recovers the smooth rate, |e|_H1 = O(N^{−1/2})
  (Binev–Dahmen–DeVore 2004, Stevenson 2007); ‖e‖_L2 is then observed at O(N^{−1});
- adaptive P2: |e|_H1 = O(N^{−1}) (‖e‖_L2 observed near O(N^{−3/2}));
- a moving grid whose largest cell is at most ``grid.moving.ratio`` times its smallest (6 by
  default) is a uniform grid up to that factor: it can lower the constant, not the rate, which
  stays N^{−1/3} in H¹ as the grid is refined (a tensor grid graded toward the corner lines with an
  unbounded ratio is what recovers more).

Runs
----
- ``dinf uniform [kernel]``: ``pde=lshape solver=least_squares grid.levels=1 grid.resolution=[n,n]
  kernel=…``, one least-squares solve (16 points per cell; the Dirichlet condition's points raised
  to 32 n, 8 per boundary cell edge, where that is above the problem's 4096). Two kernels by
  default: ``gaussian`` (the paper's ε = 1, ρ = 3) and ``gaussian_wide`` (ε = 0.7, ρ = 5, what
  ``pde=example_hole``'s least-squares command uses). On this problem the first stalls from
  n = 64 on: the least-squares loss at the solution grows with n (0.023, 0.074, 0.29 at n = 32, 64,
  128; ρ = 5 with ε = 1 keeps it, 0.20 at 128), while ε = 0.7 keeps it at 3e-4 at n = 128.
- ``dinf moving [kernel]``: the same with ``grid.adapt=r`` (``dinf/solvers/moving_grid.py``: a
  coarse estimate on n/4 cells, then up to ``grid.moving.cycles`` solves, moving the x and y cells
  toward the error indicator between them and keeping the best grid; where the estimate would vary
  the cells less than ``grid.moving.min_ratio``-fold it leaves them even and solves once). Seconds:
  every solve, estimate and fit of the run; the build and the one-off warm-up (numba, the sparse
  backend) left out.
- ``dinf refined from n [kernel]``: ``grid.adapt=h`` from n cells a side (``--refined-n``, one level): after
  each least-squares solve the leaf cells holding half of η² (Dörfler, θ = 0.5) get a finer level
  over them (``dinf/fields/refined.py``, ``dinf/solvers/refining_grid.py``), ``--cycles`` solves.
  One row per solve; unknowns are the active nodes (the whole first level, ghosts included, and
  the finer levels' nodes their cells read); seconds cumulative.
- ``P1/P2 uniform``: scikit-fem on the L-shape mesh refined uniformly, Dirichlet data interpolated
  at the boundary DOFs (P2: vertices and edge midpoints), one sparse solve.
- ``P1/P2 adaptive``: solve → η_K → Dörfler marking (the fewest elements holding ``--theta`` of
  Σ η_K²) → ``mesh.refined(marked)`` (red-green-blue, conforming), from the L-mesh refined twice,
  until the DOFs pass ``--fem-dofs``.
  η_K² = h_K² ‖Δu_h‖²_K + ½ Σ_{E ⊂ ∂K interior} h_E ‖[∂_n u_h]‖²_E
  (the residual estimator of scikit-fem's example 22, with the P2 element Laplacian added; no
  boundary-data term: g is smooth on every boundary edge and zero on the two at the corner).
  Seconds: cumulative over the steps so far (the cost of reaching that mesh).

Unknowns: for ∂∞-Grid the columns of the least-squares solve (every node of the padded grid,
ρ ghost nodes a side and the nodes over the removed quadrant included: (n + 1 + 2ρ)²);
``active`` beside them counts the nodes whose kernel reaches Ω (at a quadrature point). For FEM
all DOFs, boundary ones included. Rates are fitted against these.

Errors: ‖u_h − u‖_L2(Ω) and |u_h − u|_H1(Ω), with the exact u and ∇u in closed form, and the
relative ones (over ‖u‖_L2, |u|_H1 of the exact solution, computed in closed form as 1D integrals
over θ). Quadrature that resolves the singularity:
- ∂∞-Grid: 3 × 3 Gauss–Legendre points per cell of a tensor lattice whose edges per axis are the
  field's cell edges split in two (4 × 4 Gauss points per field cell: the field is smooth in each
  cell, its kernel truncated at cell borders) and the geometric edges ±2^{−k}, k = 1 … 40, which
  grade the lattice toward the corner (cells in the removed quadrant skipped);
- FEM: scikit-fem's order-``FEM_INTORDER`` rule on every element but those with a vertex at the
  corner; on those, a Duffy (collapsed) rule whose radial direction is split geometrically toward
  the corner, Gauss points on each piece.
Applied to u itself, both rules give its exact norms to 1e-7 or better (printed as a check).

Output: a Markdown table on stdout (one row per run), the fitted rates (least squares of log error
against log unknowns, over each whole series and over its last half), errors interpolated at equal
unknowns; with ``--out DIR``, ``lshape_convergence.png``. The moving grid's own log lines (η per
cycle, where the cells went) go to stderr.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dinf.pdes.indicator import cell_quadrature  # noqa: E402
from tests.helpers import compose_cfg  # noqa: E402

COMMON = ["trainer.accelerator=cpu", "~logger", "checkpoint.registry=null"]
ALPHA = 2.0 / 3.0           # u = r^α sin(αθ)
GEOMETRIC_LAYERS = 40       # lattice edges ±2^-k toward the corner: the last cell holds ~2^-53 of |u|²_H1
FEM_INTORDER = 10           # scikit-fem's rule on the elements away from the corner
DUFFY_LAYERS, DUFFY_POINTS = 30, 8
THEORY = {  # (L2, H1) rates in N, as the module docstring states them
    "dinf uniform": (2 / 3, 1 / 3), "dinf moving": (2 / 3, 1 / 3), "P1 uniform": (2 / 3, 1 / 3),
    "P2 uniform": (2 / 3, 1 / 3), "P1 adaptive": (1.0, 0.5), "P2 adaptive": (1.5, 1.0),
    "dinf refined from 16": (math.nan, math.nan), "dinf refined from 32": (math.nan, math.nan),  # no order of its own: the Gaussian grid is not a polynomial space
}


# --------------------------------------------------------------------------- the exact solution
def theta_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """θ ∈ [0, 3π/2] on Ω̄: the angle in a frame turned by 3π/4, whose branch cut (y = −x, x > 0) lies
    in the removed quadrant (as in ``conf/pde/lshape.yaml``)."""
    return np.arctan2(-x - y, y - x) + 0.75 * np.pi


def exact(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.hypot(x, y) ** ALPHA * np.sin(ALPHA * theta_of(x, y))


def exact_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[2, …]``: ∇u = α r^{α−1} (sin((α−1)θ), cos((α−1)θ)) (polar derivatives turned to x, y)."""
    r, t = np.hypot(x, y), theta_of(x, y)
    scale = ALPHA * r ** (ALPHA - 1.0)
    return np.stack([scale * np.sin((ALPHA - 1.0) * t), scale * np.cos((ALPHA - 1.0) * t)])


def exact_norms() -> Tuple[float, float]:
    """``(‖u‖_L2, |u|_H1)`` over Ω by 1D integrals in θ: Ω is star-shaped about the corner, the ray at
    θ ends at R(θ) = 1/max(|cos θ|, |sin θ|) (the square's edge), and in polar coordinates
    ∫|∇u|² = α² ∫∫ r^{2α−1} dr dθ, ∫u² = ∫ sin²(αθ) ∫ r^{2α+1} dr dθ."""
    from scipy.integrate import quad

    def R(t: float) -> float:
        return 1.0 / max(abs(math.cos(t)), abs(math.sin(t)))

    breaks = [k * math.pi / 4 for k in range(7)]  # R has kinks at the square's corners
    h1 = sum(quad(lambda t: ALPHA ** 2 * R(t) ** (2 * ALPHA) / (2 * ALPHA), a, b, epsabs=1e-14, epsrel=1e-13)[0]
             for a, b in zip(breaks[:-1], breaks[1:]))
    l2 = sum(quad(lambda t: math.sin(ALPHA * t) ** 2 * R(t) ** (2 * ALPHA + 2) / (2 * ALPHA + 2), a, b,
                  epsabs=1e-14, epsrel=1e-13)[0] for a, b in zip(breaks[:-1], breaks[1:]))
    return math.sqrt(l2), math.sqrt(h1)


# --------------------------------------------------------------------------- ∂∞-Grid
def graded_edges(field_edges: np.ndarray) -> np.ndarray:
    """One axis of the error lattice: the field's cell edges, their midpoints, 0 and ±2^-k."""
    mids = 0.5 * (field_edges[:-1] + field_edges[1:])
    geometric = 2.0 ** -np.arange(1, GEOMETRIC_LAYERS + 1)
    edges = np.concatenate([field_edges, mids, [0.0], geometric, -geometric])
    return np.unique(np.clip(edges, field_edges[0], field_edges[-1]))


def field_cell_edges(problem: Any, field: Any) -> List[np.ndarray]:
    """The physical edges of the field's cells per axis (moved ones on a moving grid; on a refined
    grid, also the edges of every finer level's cells where its nodes reach: the field is smooth
    within each cell of each level, and kinks slightly at their borders)."""
    from dinf.fields.base import innermost
    from dinf.fields.refined import refined_field

    cells = [int(n) for n in innermost(field).resolution_per_axis]
    if hasattr(field, "cell_edges"):
        return field.cell_edges(cells, problem.bounds)
    edges = [np.linspace(float(lo), float(hi), n + 1) for n, (lo, hi) in zip(cells, problem.bounds)]
    r = refined_field(field)
    for p in range(r.refined if r is not None else 0):
        shape = r.leaf_cells(p + 1)
        index = np.stack(np.unravel_index(r.read_cells(p), shape), 1)
        for a, (lo, hi) in enumerate(problem.bounds):
            k = np.unique(np.concatenate([index[:, a], index[:, a] + 1]))
            edges[a] = np.union1d(edges[a], float(lo) + k / shape[a] * (float(hi) - float(lo)))
    return edges


def dinf_errors(problem: Any, field: Any) -> Dict[str, float]:
    """L2 and H1-seminorm errors of ``field`` by the graded lattice rule, and the active nodes."""
    edges = [graded_edges(e) for e in field_cell_edges(problem, field)]
    dtype = next(p.dtype for p in field.parameters())
    l2 = h1 = 0.0
    active: set = set()
    with torch.no_grad():
        for x, _cell, w in cell_quadrature(problem.domain, edges, points_per_axis=3):
            jet = field.jet(x.to(dtype), 1)
            value = jet.value[:, 0].double().numpy()
            grad = jet.grad[:, 0, :].double().numpy().T
            xs, ys = x[:, 0].numpy(), x[:, 1].numpy()
            l2 += float(np.sum(w * (value - exact(xs, ys)) ** 2))
            h1 += float(np.sum(w * ((grad - exact_grad(xs, ys)) ** 2).sum(0)))
            cols, weights = field.basis(x.to(dtype), 0, 0)
            active.update(np.unique(cols[weights[:, 0, :] != 0].numpy()).tolist())
    return {"l2": math.sqrt(l2), "h1": math.sqrt(h1), "active": len(active)}


def dinf_run(n: int, moving: bool, kernel: str, overrides: Sequence[str]) -> Dict[str, Any]:
    """One ∂∞-Grid run on n × n cells with ``kernel`` (a ``conf/kernel`` file): solved (and moved),
    timed, scored."""
    from dinf.app.run import build

    points = max(4096, 32 * n)  # 8 a boundary cell edge (the boundary is 4n cell edges long)
    cfg = compose_cfg(COMMON + ["pde=lshape", "solver=least_squares", "grid.levels=1", f"grid.resolution=[{n},{n}]",
                                f"kernel={kernel}", f"pde.conditions.dirichlet.points={points}"]
                      + (["grid.adapt=r"] if moving else []) + list(overrides), tiny=False)
    torch.manual_seed(0)
    problem, field, solver = build(cfg)
    solver.trainer_steps(cfg.trainer)  # a moving grid reads its inner solver's steps per cycle here
    solver.warm_up()
    generator = torch.Generator().manual_seed(0)
    inner = getattr(solver, "inner", solver)
    calls = getattr(solver, "cycles", 0) + 1  # a moving grid: one call per cycle; least squares: one
    start = time.perf_counter()
    for _ in range(calls):
        info = solver.solve(field, problem, generator)
        if info.get("converged", True):  # least squares says nothing: its one solve is the answer
            break
    seconds = time.perf_counter() - start
    field.eval()
    errors = dinf_errors(problem, field)
    l2re = problem.evaluate(field)["l2re"]  # the run's own metric (on its evaluation grid), beside ours
    notes = f"active {errors['active']}, rows {inner.info['rows']}, l2re {l2re:.2e}"
    if moving:
        widths = [np.diff(e) for e in field_cell_edges(problem, field)]
        etas = " → ".join(f"{e:.3g}" for e in solver.etas)
        notes += (f"; {len(solver.etas)} fine solve(s), η {etas}; cells {widths[0].min():.3g}–{widths[0].max():.3g} "
                  f"(x), {widths[1].min():.3g}–{widths[1].max():.3g} (y)")
    return {"method": f"dinf {'moving' if moving else 'uniform'} [{kernel}]", "step": f"n={n}",
            "unknowns": int(inner.info["unknowns"]), "l2": errors["l2"], "h1": errors["h1"], "s": seconds, "l2re": l2re,
            "notes": notes}


def dinf_refined(n: int, kernel: str, cycles: int, overrides: Sequence[str]) -> List[Dict[str, Any]]:
    """A refined ∂∞-Grid (``grid.adapt=h``) from n × n cells: one row per solve, scored before the
    split that follows it (the split leaves the field as it is); seconds cumulative over the solves,
    estimates and splits so far."""
    from dinf.app.run import build
    from dinf.fields.refined import refined_field

    cfg = compose_cfg(COMMON + ["pde=lshape", "solver=least_squares", "grid.levels=1", f"grid.resolution=[{n},{n}]",
                                f"kernel={kernel}", "grid.adapt=h", f"grid.refine.cycles={cycles}",
                                f"grid.refine.max_levels={cycles}"] + list(overrides), tiny=False)
    torch.manual_seed(0)
    problem, field, solver = build(cfg)
    solver.trainer_steps(cfg.trainer)
    solver.warm_up()
    generator = torch.Generator().manual_seed(0)
    rows: List[Dict[str, Any]] = []
    seconds = 0.0
    for cycle in range(1, cycles + 1):
        start = time.perf_counter()
        info = solver.solve(field, problem, generator)
        seconds += time.perf_counter() - start
        field.eval()
        errors = dinf_errors(problem, field)
        l2re = problem.evaluate(field)["l2re"]
        r = refined_field(field)
        rows.append({"method": f"dinf refined from {n} [{kernel}]", "step": f"cycle {cycle}",
                     "unknowns": int(info["adapt_unknowns"]), "l2": errors["l2"], "h1": errors["h1"], "s": seconds,
                     "l2re": l2re, "notes": f"η {info['indicator']:.3g}, rows {solver.inner.info['rows']}, "
                                            f"l2re {l2re:.2e}, {r.refined} finer levels after"})
        print(f"{rows[-1]['method']} {rows[-1]['step']}: {rows[-1]['unknowns']} unknowns, L2 {errors['l2']:.3e}, "
              f"H1 {errors['h1']:.3e} (l2re {l2re:.2e}), {seconds:.1f} s", file=sys.stderr, flush=True)
        if info.get("converged"):
            break
    return rows


def warm_up(kernel: str, overrides: Sequence[str]) -> None:
    """A throwaway run on 8 × 8 cells: numba's kernels compile here (one specialisation per ρ), not
    in the first timed run."""
    dinf_run(8, False, kernel, overrides)


# --------------------------------------------------------------------------- scikit-fem
def lshape_mesh() -> Any:
    """scikit-fem's L-mesh (it removes the quadrant x > 0, y > 0) turned by −90°, (x, y) → (y, −x),
    so that the removed quadrant is x > 0, y < 0 as here; a rotation keeps the elements' orientation."""
    from skfem import MeshTri

    m = MeshTri.init_lshaped()
    mesh = MeshTri(np.vstack([m.p[1], -m.p[0]]), m.t)
    mid = mesh.p[:, mesh.t].mean(1)
    assert not np.any((mid[0] > 0) & (mid[1] < 0)), "the mesh covers the removed quadrant"
    return mesh


# Reference Hessians of scikit-fem's ElementTriP2 basis (its lbasis, in its local order: the three
# vertices, then the edges 0–1, 1–2, 0–2); each constant on the element.
P2_HESSIANS = np.array([[[4, 4], [4, 4]], [[4, 0], [0, 0]], [[0, 0], [0, 4]],
                        [[-8, -4], [-4, 0]], [[0, 4], [4, 0]], [[0, -4], [-4, -8]]], dtype=float)


def fem_solve(mesh: Any, elem: Any) -> Tuple[Any, np.ndarray]:
    """``(basis, u_h)``: Laplace with u_h = g interpolated at the boundary DOFs."""
    from skfem import Basis, asm, condense, solve
    from skfem.models.poisson import laplace

    basis = Basis(mesh, elem)
    K = asm(laplace, basis)
    D = basis.get_dofs().all()
    u = np.zeros(basis.N)
    u[D] = exact(basis.doflocs[0, D], basis.doflocs[1, D])
    return basis, solve(*condense(K, np.zeros(basis.N), x=u, D=D))


def element_laplacian(basis: Any, u: np.ndarray) -> np.ndarray:
    """Δu_h per element of a P2 field: Σ_k u_k tr(J⁻ᵀ Ĥ_k J⁻¹) with J the element's affine map."""
    mesh = basis.mesh
    v = mesh.p[:, mesh.t]                                          # [2, 3, E]
    J = np.stack([v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]], 1)       # [2, 2, E]: columns the edges 0→1, 0→2
    Jinv = np.linalg.inv(J.transpose(2, 0, 1))                    # [E, 2, 2]
    metric = Jinv @ Jinv.transpose(0, 2, 1)                       # tr(J⁻ᵀĤJ⁻¹) = Σ Ĥ ⊙ J⁻¹J⁻ᵀ
    lap_k = np.einsum("kij,eij->ke", P2_HESSIANS, metric)         # [6, E]
    return np.sum(lap_k * u[basis.element_dofs], 0)


def estimator(basis: Any, u: np.ndarray, degree: int) -> np.ndarray:
    """η_K² per element (module docstring)."""
    from skfem import Functional, InteriorFacetBasis
    from skfem.helpers import grad

    mesh, elem = basis.mesh, basis.elem
    fb = [InteriorFacetBasis(mesh, elem, side=i, intorder=2 * degree) for i in (0, 1)]
    w = {f"u{i}": fb[i].interpolate(u) for i in (0, 1)}

    @Functional
    def jump(w: Any) -> np.ndarray:
        d = grad(w["u0"]) - grad(w["u1"])
        return w.h * (d[0] * w.n[0] + d[1] * w.n[1]) ** 2

    per_facet = np.zeros(mesh.facets.shape[1])
    np.add.at(per_facet, fb[0].find, jump.elemental(fb[0], **w))
    eta2 = 0.5 * per_facet[mesh.t2f].sum(0)  # each interior facet's jump shared by its two elements
    if degree >= 2:
        v = mesh.p[:, mesh.t]
        area = 0.5 * np.abs((v[0, 1] - v[0, 0]) * (v[1, 2] - v[1, 0]) - (v[0, 2] - v[0, 0]) * (v[1, 1] - v[1, 0]))
        diam = np.max([np.hypot(*(v[:, i] - v[:, j])) for i, j in ((0, 1), (1, 2), (0, 2))], 0)
        eta2 += diam ** 2 * area * element_laplacian(basis, u) ** 2  # f = 0: the residual is Δu_h
    return eta2


def shortest_edge(mesh: Any) -> float:
    return float(np.min(np.hypot(*(mesh.p[:, mesh.facets[0]] - mesh.p[:, mesh.facets[1]]))))


def dorfler(eta2: np.ndarray, theta: float) -> np.ndarray:
    """The fewest elements whose η_K² add up to ``theta`` of the total."""
    order = np.argsort(eta2)[::-1]
    count = int(np.searchsorted(np.cumsum(eta2[order]), theta * eta2.sum())) + 1
    return np.sort(order[:count]).astype(np.int32)


def duffy_rule(vertex: int) -> Tuple[np.ndarray, np.ndarray]:
    """Points ``[2, Q]`` and weights on the reference triangle (0,0), (1,0), (0,1), collapsed at
    ``vertex``: X = V_k + s (V_a − V_k) + s t (V_b − V_a), dX = s ds dt, with s split at 2^-j so that
    r^{−2/3}-type integrands near V_k are integrated to rounding."""
    V = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    a, b = [i for i in range(3) if i != vertex]
    g, gw = np.polynomial.legendre.leggauss(DUFFY_POINTS)
    cuts = np.concatenate([[0.0], 2.0 ** -np.arange(DUFFY_LAYERS - 1, -1, -1)])
    s = np.concatenate([lo + (hi - lo) * (g + 1) / 2 for lo, hi in zip(cuts[:-1], cuts[1:])])
    sw = np.concatenate([(hi - lo) * gw / 2 for lo, hi in zip(cuts[:-1], cuts[1:])])
    t, tw = (g + 1) / 2, gw / 2
    S, T = np.meshgrid(s, t, indexing="ij")
    W = (sw[:, None] * tw[None, :] * S).ravel()
    X = V[vertex][:, None] + S.ravel() * (V[a] - V[vertex])[:, None] + (S * T).ravel() * (V[b] - V[a])[:, None]
    return X, W


def fem_errors(basis: Any, u: np.ndarray) -> Tuple[float, float]:
    """``(‖u_h − u‖_L2, |u_h − u|_H1)``: the element rule away from the corner, Duffy rules at it."""
    from skfem import Basis

    mesh, elem = basis.mesh, basis.elem
    at_corner = np.all(np.abs(mesh.p[:, mesh.t]) < 1e-14, axis=0)     # [3, E]: local vertex at (0, 0)
    pieces = [Basis(mesh, elem, elements=np.nonzero(~at_corner.any(0))[0], intorder=FEM_INTORDER)]
    for k in range(3):
        ids = np.nonzero(at_corner[k])[0]
        if len(ids):
            pieces.append(Basis(mesh, elem, elements=ids, quadrature=duffy_rule(k)))
    l2 = h1 = 0.0
    for b in pieces:
        field = b.interpolate(u)
        x, y = b.global_coordinates().value
        l2 += float(np.sum(b.dx * (field.value - exact(x, y)) ** 2))
        h1 += float(np.sum(b.dx * ((field.grad - exact_grad(x, y)) ** 2).sum(0)))
    return math.sqrt(l2), math.sqrt(h1)


def fem_uniform(degree: int, max_dofs: float) -> List[Dict[str, Any]]:
    from skfem import ElementTriP1, ElementTriP2

    elem = ElementTriP1() if degree == 1 else ElementTriP2()
    rows, level = [], 1
    while True:
        mesh = lshape_mesh().refined(level)
        dofs = mesh.p.shape[1] + (mesh.facets.shape[1] if degree == 2 else 0)  # vertices (and edge midpoints)
        if dofs > max_dofs and rows:
            break
        start = time.perf_counter()
        basis, u = fem_solve(mesh, elem)
        seconds = time.perf_counter() - start
        l2, h1 = fem_errors(basis, u)
        rows.append({"method": f"P{degree} uniform", "step": f"refined {level}", "unknowns": basis.N, "l2": l2,
                     "h1": h1, "s": seconds, "notes": f"{mesh.t.shape[1]} elements"})
        level += 1
    return rows


def fem_adaptive(degree: int, max_dofs: float, theta: float) -> List[Dict[str, Any]]:
    from skfem import ElementTriP1, ElementTriP2

    elem = ElementTriP1() if degree == 1 else ElementTriP2()
    mesh, rows, total, step = lshape_mesh().refined(2), [], 0.0, 0
    while True:
        start = time.perf_counter()
        basis, u = fem_solve(mesh, elem)
        eta2 = estimator(basis, u, degree)
        total += time.perf_counter() - start
        l2, h1 = fem_errors(basis, u)
        rows.append({"method": f"P{degree} adaptive", "step": f"step {step}", "unknowns": basis.N, "l2": l2, "h1": h1,
                     "s": total, "notes": f"{mesh.t.shape[1]} elements, η {math.sqrt(eta2.sum()):.3g}, "
                                          f"shortest edge {shortest_edge(mesh):.2g}"})
        if basis.N > max_dofs:
            break
        start = time.perf_counter()
        mesh = mesh.refined(dorfler(eta2, theta))
        total += time.perf_counter() - start
        step += 1
    return rows


def check_rules(norms: Tuple[float, float]) -> str:
    """Both rules applied to u itself (the error of a zero field) against the exact norms: the
    quadrature's own error."""
    from skfem import ElementTriP1

    from dinf.geometry.domain import Domain
    from dinf.geometry.shapes import Box

    basis, _ = fem_solve(lshape_mesh().refined(3), ElementTriP1())
    fem = fem_errors(basis, np.zeros(basis.N))
    domain = Domain({"x": (-1.0, 1.0), "y": (-1.0, 1.0)}, holes={"quadrant": Box([0.0, -1.0], [1.0, 0.0])})
    l2 = h1 = 0.0
    for x, _cell, w in cell_quadrature(domain, [graded_edges(np.linspace(-1, 1, 17))] * 2, points_per_axis=3):
        xs, ys = x[:, 0].numpy(), x[:, 1].numpy()
        l2 += float(np.sum(w * exact(xs, ys) ** 2))
        h1 += float(np.sum(w * (exact_grad(xs, ys) ** 2).sum(0)))
    lattice = (math.sqrt(l2), math.sqrt(h1))
    return (f"exact ‖u‖_L2 = {norms[0]:.12g}, |u|_H1 = {norms[1]:.12g}; relative errors of the rules on u itself: "
            f"lattice (16 cells a side) {abs(lattice[0] / norms[0] - 1):.1e}, {abs(lattice[1] / norms[1] - 1):.1e}; "
            f"FEM (L-mesh refined 3 times) {abs(fem[0] / norms[0] - 1):.1e}, {abs(fem[1] / norms[1] - 1):.1e}")


# --------------------------------------------------------------------------- reporting
def fit_rate(rows: List[Dict[str, Any]], key: str) -> float:
    """``p`` in error ∝ N^{−p}, least squares of log error against log N."""
    if len(rows) < 2:
        return math.nan
    n = np.log([r["unknowns"] for r in rows])
    e = np.log([r[key] for r in rows])
    return float(-np.polyfit(n, e, 1)[0])


def at_unknowns(rows: List[Dict[str, Any]], key: str, n: float) -> float:
    """The error at ``n`` unknowns, interpolated linearly in log–log (NaN outside the series)."""
    ns = np.array([r["unknowns"] for r in rows], dtype=float)
    if len(rows) < 2 or not ns.min() <= n <= ns.max():
        return math.nan
    order = np.argsort(ns)
    return float(np.exp(np.interp(math.log(n), np.log(ns[order]), np.log([rows[i][key] for i in order]))))


def report(rows: List[Dict[str, Any]], norms: Tuple[float, float]) -> str:
    lines = ["| method | n / step | unknowns | L2 error | rel. L2 | H1 semi error | rel. H1 | s | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['step']} | {r['unknowns']} | {r['l2']:.3e} | {r['l2'] / norms[0]:.2e} | "
                     f"{r['h1']:.3e} | {r['h1'] / norms[1]:.2e} | {r['s']:.2f} | {r['notes']} |")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines += ["", "Rates p in error ∝ N^-p (least squares in log–log; theory from the docstring):", "",
              "| method | points | L2 rate, all | H1 rate, all | L2 rate, last half | H1 rate, last half "
              "| theory L2, H1 |",
              "|---|---|---|---|---|---|---|"]
    for m in methods:
        series = [r for r in rows if r["method"] == m]
        tail = series[len(series) // 2:] if len(series) >= 4 else series
        th = THEORY.get(m.split(" [")[0], (math.nan, math.nan))
        lines.append(f"| {m} | {len(series)} | {fit_rate(series, 'l2'):.3f} | {fit_rate(series, 'h1'):.3f} | "
                     f"{fit_rate(tail, 'l2'):.3f} | {fit_rate(tail, 'h1'):.3f} | {th[0]:.3g}, {th[1]:.3g} |")
    marks = [1e3, 3e3, 1e4, 3e4]
    lines += ["", "Relative errors at equal unknowns (log–log interpolation within each series; – outside it):", "",
              "| method | " + " | ".join(f"rel. L2, H1 at N = {n:.0e}" for n in marks) + " |",
              "|---|" + "---|" * len(marks)]
    for m in methods:
        series = [r for r in rows if r["method"] == m]
        cells = []
        for n in marks:
            a, b = at_unknowns(series, "l2", n), at_unknowns(series, "h1", n)
            cells.append("–" if math.isnan(a) else f"{a / norms[0]:.2e}, {b / norms[1]:.2e}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: List[Dict[str, Any]], norms: Tuple[float, float], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ns = np.array([r["unknowns"] for r in rows], dtype=float)
    guide = np.geomspace(ns.min(), ns.max(), 2)
    for ax, key, norm, title, slopes in ((axes[0], "l2", norms[0], "relative L2 error", (2 / 3, 1.0, 1.5)),
                                         (axes[1], "h1", norms[1], "relative H1-seminorm error", (1 / 3, 0.5, 1.0))):
        for m in methods:
            series = [r for r in rows if r["method"] == m]
            ax.loglog([r["unknowns"] for r in series], [r[key] / norm for r in series], "o-" if "dinf" in m else ".-",
                      label=m, lw=2 if "dinf" in m else 1)
        top = max(r[key] / norm for r in rows)
        for p in slopes:  # guides N^-p through the largest error
            ax.loglog(guide, top * (guide / guide[0]) ** -p, "k:", lw=0.8)
            ax.annotate(f"N^-{p:.3g}", (guide[1], top * (guide[1] / guide[0]) ** -p), fontsize=8)
        ax.set_xlabel("unknowns N")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("L-shaped domain, u = r^(2/3) sin(2θ/3)")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lshape_convergence.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[16, 32, 64, 128], help="∂∞-Grid cells per axis")
    ap.add_argument("--kernels", nargs="+", default=["gaussian", "gaussian_wide"],
                    help="∂∞-Grid kernels (conf/kernel files), each a uniform and a moving series")
    ap.add_argument("--fem-dofs", type=float, default=1e5, help="scikit-fem series stop past this many DOFs")
    ap.add_argument("--theta", type=float, default=0.5, help="Dörfler's bulk share for the adaptive FEM")
    ap.add_argument("--skip", nargs="*", default=[], choices=["uniform", "moving", "refined", "fem"],
                    help="leave these runs out")
    ap.add_argument("--refined-n", type=int, nargs="+", default=[16, 32],
                    help="the refined grid's starting cells per axis (a series each)")
    ap.add_argument("--cycles", type=int, default=12, help="the refined grid's solves (grid.refine.cycles, and as many "
                    "finer levels at most)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write lshape_convergence.png here")
    ap.add_argument("overrides", nargs="*", help="train.py overrides for the ∂∞-Grid runs (after the script's own)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    # The moving grid says per cycle what η did and where the cells went: worth keeping, on stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  [adaptive grid] %(message)s"))
    for name in ("dinf.solvers.moving_grid", "dinf.solvers.refining_grid"):
        adapt_log = logging.getLogger(name)
        adapt_log.setLevel(logging.INFO)
        adapt_log.addHandler(handler)
        adapt_log.propagate = False

    wall = time.perf_counter()
    norms = exact_norms()
    print(check_rules(norms) + "\n", flush=True)
    rows: List[Dict[str, Any]] = []
    for kernel in args.kernels:
        if not {"uniform", "moving", "refined"} <= set(args.skip):
            warm_up(kernel, args.overrides)
        for moving, name in ((False, "uniform"), (True, "moving")):
            if name in args.skip:
                continue
            for n in args.n:
                rows.append(dinf_run(n, moving, kernel, args.overrides))
                r = rows[-1]
                print(f"{r['method']} n={n}: {r['unknowns']} unknowns, L2 {r['l2']:.3e}, H1 {r['h1']:.3e} "
                      f"(l2re {r['l2re']:.2e}), {r['s']:.1f} s", file=sys.stderr, flush=True)
        if "refined" not in args.skip:
            for n in args.refined_n:
                rows += dinf_refined(n, kernel, args.cycles, args.overrides)
    if "fem" not in args.skip:
        for degree in (1, 2):
            rows += fem_uniform(degree, args.fem_dofs)
            rows += fem_adaptive(degree, args.fem_dofs, args.theta)
            print(f"P{degree}: done", file=sys.stderr, flush=True)
    print(report(rows, norms))
    if args.out is not None:
        print(f"\nplot: {plot(rows, norms, args.out)}")
    print(f"\nwall time {time.perf_counter() - wall:.0f} s ({args.threads} threads)")


if __name__ == "__main__":
    main()
