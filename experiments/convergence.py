"""Error against cells per axis of least-squares ∂∞-Grid solves on manufactured solutions
(issue 16, item 2), and one-change experiments that tell what sets each curve's floor.

Each point is one solve of one level (``grid.levels=1``) to convergence: the rows of
``problem.linear_system`` over the grid's node values, solved through the damped normal
equations by PARDISO, as ``python train.py … solver=least_squares`` does (same points, same seed, same
λ). Two errors of the same node values ``z``:

* ``rel_l2``: train.py's metric, ``z`` written into the float32 grid and evaluated by the
  problem at float32 points (the number in ``metrics.json``);
* ``rel_l2_f64``: ``z`` evaluated in float64 at float64 points of the same evaluation grid. The
  float32 one cannot go below rounding the evaluation points to float32: 5.7e-7 at a = 10,
  1.1e-6 at a = 20 (sin(aπx) moves by aπ·δx).

Problems (``PROBLEMS``): ``poisson2d`` (Δu = f, u = sin(2πx) sin(2πy): the Python
``pde=helmholtz_manufactured`` with k = 0), ``helmholtz10`` / ``helmholtz20`` (a = 10 / 20,
k = 1), ``poisson3d`` (the config equation ``pde=helmholtz_manufactured_eq`` restated in three
axes, u = sin(πx) sin(πy) sin(πz)). Kernels (``KERNELS``): (ε, ρ) = (1, 3) and (0.7, 5), each
with ``kernel.window`` 0 and 1, and (0.6, 6) with window 1 (the best found); the last two also
with ``pde.collocation=lattice`` (4 × 4 strata centres per cell instead of the jittered draw:
the floor the diagnosis found). Each table row carries the ``python train.py`` overrides that
reproduce its ``rel_l2``.

``--diagnose`` changes one thing at a time where a curve flattens (``DIAGNOSIS``): the damping,
the solve (corrected semi-normal steps, a dense QR that never forms AᵀA, cond(A)), the
collocation (more points, other seeds, Gauss–Legendre or midpoint points per cell instead of
the random stratified draw, the boundary's points and weight, an exact boundary), the kernel,
and the representation itself (the L2 projection of u onto the same space).

    python experiments/convergence.py --quick        # smoke test, under a minute
    python experiments/convergence.py                # 2D curves (Helmholtz a = 20 to 96 cells), a few minutes
    python experiments/convergence.py --full         # to 128 cells (a = 20: 160) and the 3D case
    python experiments/convergence.py --diagnose     # the one-change experiments, about 5 minutes

Output (``--out``, default ``outputs/convergence``, git-ignored): ``convergence.png`` (log–log
error against cells, fitted orders in the legend), ``convergence.md`` (the table, the orders,
the commands) and ``convergence.json``; ``diagnosis.md`` / ``.json`` for ``--diagnose``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple
from pathlib import Path

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled
from dinf.solvers import least_squares as lsq  # noqa: E402
from dinf.fields.warped import sample_for  # noqa: E402
from dinf.linear_system import LinearSystem  # noqa: E402
from dinf.pdes.base import Batch, grid_points  # noqa: E402
from dinf.solvers.linalg.gram import normal_matrix  # noqa: E402
from dinf.solvers.linalg.sparse_solve import solve_spd  # noqa: E402

# Every solve: least squares on one level; no logger or checkpoint registry (left out of commands).
BASE = ["solver=least_squares", "grid.levels=1"]
QUIET = ["~logger", "checkpoint.registry=null"]

# 3D Poisson: the config equation in three axes (quoted: the expressions hold parentheses).
# a = 1, one half-wave per axis: coarse 3D grids resolve it.
POISSON3D = [
    "pde=helmholtz_manufactured_eq", "pde.in_dim=3", "pde.params.k=0", "pde.params.a=1",
    "+pde.domain.space.z=[-1,1]",
    "pde.functions.exact='sin(a*pi*x)*sin(a*pi*y)*sin(a*pi*z)'",
    "pde.residuals.helmholtz.expr='u_xx + u_yy + u_zz + 3*a^2*pi^2*exact'",
    "pde.residuals.helmholtz.weight='1/(3*a^2*pi^2)^2'",
    "pde.conditions.edges.points=4096",
    "pde.evaluation.resolution=48",
]
PROBLEMS: Dict[str, List[str]] = {
    "poisson2d": ["pde=helmholtz_manufactured", "pde.a=2", "pde.k=0"],
    "helmholtz10": ["pde=helmholtz_manufactured", "pde.a=10"],
    "helmholtz20": ["pde=helmholtz_manufactured", "pde.a=20"],
    "helmholtz10eq": ["pde=helmholtz_manufactured_eq", "pde.params.a=10"],  # for the exact boundary
    "poisson3d": POISSON3D,
}
Kernel = Tuple[float, int, float]  # ε, ρ, window
KERNELS: List[Kernel] = [(1.0, 3, 0.0), (1.0, 3, 1.0), (0.7, 5, 0.0), (0.7, 5, 1.0), (0.6, 6, 1.0)]
# ρ = 5 in 3D: 1 000 columns a row and a nearly dense normal matrix; 12 cells take ~1 minute.
# Kernels whose curves are also drawn with train.py's lattice collocation (2D manufactured only).
LATTICE_KERNELS: List[Kernel] = [(0.7, 5, 1.0), (0.6, 6, 1.0)]
KERNELS_3D: List[Kernel] = [(1.0, 3, 0.0), (1.0, 3, 1.0), (0.7, 5, 1.0)]
CELLS = {
    "poisson2d": [8, 12, 16, 24, 32, 48, 64, 96, 128],
    "helmholtz10": [16, 24, 32, 48, 64, 96, 128],
    "helmholtz20": [32, 48, 64, 96, 128, 160],
    "poisson3d": [4, 6, 8, 12, 16, 24],
}
DEFAULT_MAX_CELLS = {"poisson2d": 64, "helmholtz10": 64, "helmholtz20": 96, "poisson3d": 0}


@dataclass
class Options:
    """How one system is set up and solved; each diagnosis changes one of these."""

    points_per_cell: int = 16  # collocation points per finest-level cell (the lsq default)
    damping: float = 1e-10  # λ / mean(diag AᵀA) (the lsq default)
    solver: str = "normal"  # normal (as train.py) | refine | qr (dense: small systems only)
    refine: int = 2  # corrected semi-normal steps of "refine"
    fit: str = "pde"  # pde (the problem's rows) | values (the L2 projection of the exact u)
    # random (the problem's jittered draw) | lattice (train.py's pde.collocation=lattice, aligned to
    # the cells) | gauss | midpoint | gauss-interior | gauss-boundary (this script's own points)
    sampling: str = "random"
    cond: bool = False  # cond(A D) by a dense SVD (small systems only)
    extra: List[str] = field(default_factory=list)  # further overrides (seed, boundary, hard, ...)


@dataclass
class Result:
    problem: str
    cells: int
    eps: float
    rho: int
    window: float
    options: Dict[str, Any]
    rel_l2: float  # train.py's metric (float32 grid and points)
    rel_l2_f64: float  # the same z in float64
    assemble_s: float
    solve_s: float
    rows: int
    unknowns: int
    residual: float  # ‖Az − b‖ / ‖b‖
    cond: Optional[float] = None
    overrides: List[str] = field(default_factory=list)  # train.py's, when it can reproduce this

    @property
    def seconds(self) -> float:
        return self.assemble_s + self.solve_s

    def command(self) -> str:
        return "python train.py " + " ".join(_quoted(o) for o in self.overrides)


def _quoted(o: str) -> str:
    return f'"{o}"' if any(c in o for c in "()*^' []") else o


# --- one solve ---------------------------------------------------------------------------
def overrides_for(problem: str, cells: int, kernel: Kernel, opt: Options) -> List[str]:
    """train.py's overrides for one solve (what the solver and sampling options add has none)."""
    eps, rho, window = kernel
    out = BASE + PROBLEMS[problem] + [
        f"kernel.eps={eps:g}", f"kernel.rho={rho}", f"kernel.window={window:g}", f"grid.resolution={cells}"]
    if opt.sampling == "lattice":  # g × g strata centres per cell, plus the edge points
        if problem not in ("poisson2d", "helmholtz10", "helmholtz20"):
            raise ValueError(f"sampling=lattice is pde=helmholtz_manufactured's, not {problem}'s")
        out += ["pde.collocation=lattice", f"solver.points={opt.points_per_cell * cells ** 2 + 1024}"]
    elif opt.points_per_cell != 16:
        out.append(f"solver.points={opt.points_per_cell * cells ** (3 if problem == 'poisson3d' else 2)}")
    if opt.damping != 1e-10:
        out.append(f"solver.damping={opt.damping:g}")
    return out + list(opt.extra)


def compose(overrides: Sequence[str]):
    """The project's config with ``overrides``, as train.py composes it."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides) + QUIET)


def run_one(problem: str, cells: int, kernel: Kernel, opt: Options = Options()) -> Result:
    """Build, assemble, solve and evaluate one case."""
    from dinf.app.run import build

    overrides = overrides_for(problem, cells, kernel, opt)
    cfg = compose(overrides)
    prob, fld, _ = build(cfg)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(cfg.seed))  # the generator train.py's solve draws from
    n = int(cfg.solver.points or opt.points_per_cell * lsq.cells_total(fld))
    with torch.no_grad():
        system = rows(prob, fld, cells, n, gen, opt)
        asm = lsq.assemble(fld, system)
    A, b = asm.matrix, asm.rhs
    t1 = time.perf_counter()
    z = solve(A, b, opt)
    t2 = time.perf_counter()
    lsq.write_back(fld, z, asm)
    e32 = prob.evaluate(fld)["l2re" if hasattr(prob, "reference") else "rel_l2"]
    same = opt.solver == "normal" and opt.fit == "pde" and opt.sampling in ("random", "lattice")
    return Result(problem, cells, *kernel, asdict(opt), e32, error_f64(prob, fld, z), t1 - t0, t2 - t1,
                  A.shape[0], A.shape[1], float(np.linalg.norm(A @ z - b) / np.linalg.norm(b)),
                  condition(A) if opt.cond else None, overrides if same else [])


# --- collocation -------------------------------------------------------------------------
def rows(prob: Any, fld: Any, cells: int, n: int, gen: torch.Generator, opt: Options) -> LinearSystem:
    """The least-squares rows of one solve: the problem's at its own random draw (train.py), or
    at ``cell_points``, or the projection rows of ``fit="values"``."""
    g = round(math.sqrt(opt.points_per_cell))
    if opt.sampling in ("random", "lattice"):  # the problem's own points, as train.py draws them
        batch = sample_for(fld, prob, n, gen)
        return projection(prob, batch.x.double()) if opt.fit == "values" else prob.linear_system(batch)
    if not hasattr(prob, "solution"):
        raise ValueError(f"sampling={opt.sampling} is built for the Python 2D problems, not {type(prob).__name__}")
    x, flag, rel = cell_points(cells, g, "midpoint" if opt.sampling == "midpoint" else "gauss")
    if opt.fit == "values":
        return projection(prob, x, rel)
    if opt.sampling in ("gauss-interior", "gauss-boundary"):  # the other group from the random draw
        drawn = sample_for(fld, prob, n, gen)
        on_edge = drawn.flag("is_boundary")
        keep = flag if opt.sampling == "gauss-boundary" else ~flag
        take = ~on_edge if opt.sampling == "gauss-boundary" else on_edge
        x = torch.cat([x[keep], drawn.x[take].double()])
        rel = torch.cat([rel[keep], torch.ones(int(take.sum()), dtype=torch.float64)])
        flag = torch.cat([flag[keep], on_edge[take]])
    return prob.linear_system(Batch(x=x, data={"is_boundary": flag})).scaled(rel.sqrt())


def cell_points(cells: int, g: int, rule: str = "gauss") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """g × g points per cell of [-1, 1]² and g per boundary cell edge, by a Gauss–Legendre rule
    (exact for degree 2g − 1 per cell) or the midpoints of g × g equal sub-cells. Returns the
    points ``[N, 2]`` (float64), the boundary flag and each point's weight over its group's mean
    (interior, boundary): scaling a problem's rows by its square root makes each mean the rule."""
    t, w = np.polynomial.legendre.leggauss(g)
    if rule == "midpoint":
        t, w = -1.0 + (2.0 * np.arange(g) + 1.0) / g, np.full(g, 2.0 / g)
    h = 2.0 / cells
    x1 = ((-1.0 + h * np.arange(cells))[:, None] + 0.5 * h * (t + 1.0)[None, :]).ravel()  # along an axis
    w1 = np.tile(w, cells)
    inner = np.stack(np.meshgrid(x1, x1, indexing="ij"), -1).reshape(-1, 2)
    w_in = np.outer(w1, w1).ravel()
    one = np.ones_like(x1)
    edges = np.concatenate([np.stack([-one, x1], 1), np.stack([one, x1], 1),
                            np.stack([x1, -one], 1), np.stack([x1, one], 1)])
    w_b = np.tile(w1, 4)
    x = torch.as_tensor(np.concatenate([inner, edges]))
    flag = torch.cat([torch.zeros(len(inner), dtype=torch.bool), torch.ones(len(edges), dtype=torch.bool)])
    return x, flag, torch.as_tensor(np.concatenate([w_in / w_in.mean(), w_b / w_b.mean()]))


def exact(prob: Any, x: torch.Tensor) -> torch.Tensor:
    """The manufactured solution at float64 points ``x``, ``[N]``."""
    if hasattr(prob, "solution"):
        return prob.solution(x)
    a = float(prob.params["a"])  # the config equations here: Π sin(aπ x_i)
    return torch.prod(torch.sin(a * math.pi * x), 1)


def projection(prob: Any, x: torch.Tensor, rel: Optional[torch.Tensor] = None) -> LinearSystem:
    """Rows ``u(x_n) = exact(x_n)`` weighted by sqrt(rel_n / N) (``rel`` default 1): the L2
    projection of the solution onto the grid's space, its best approximation."""
    w = (rel if rel is not None else torch.ones(x.shape[0], dtype=torch.float64)) / x.shape[0]
    system = LinearSystem(x, torch.ones(x.shape[0], 1, 1, 1, dtype=torch.float64), exact(prob, x)[:, None])
    return system.scaled(w.sqrt())


# --- the solve ---------------------------------------------------------------------------
def solve(A: sp.csr_matrix, b: np.ndarray, opt: Options) -> np.ndarray:
    """Minimise ‖Az − b‖² + λ‖z‖², λ = damping · mean(diag AᵀA), by ``opt.solver``. Columns
    that no row reads (the outermost ghost layer) get 0, as the damped solve gives them, and are
    left out: then λ = 0 can be tried."""
    sq = np.asarray(A.multiply(A).sum(0)).ravel()  # diag AᵀA
    lam = opt.damping * float(sq.mean())  # over all columns, as dinf.solvers.least_squares does
    used = np.flatnonzero(sq > 0)
    z = np.zeros(A.shape[1])
    z[used] = _solve(A[:, used].tocsr(), b, lam, opt)
    return z


def _solve(A: sp.csr_matrix, b: np.ndarray, lam: float, opt: Options) -> np.ndarray:
    norms = np.sqrt(np.asarray(A.multiply(A).sum(0))).ravel()
    if opt.solver in ("normal", "refine"):  # dinf.solvers.least_squares.LeastSquares' direct path, step by step
        M = normal_matrix(A) + lam * sp.identity(A.shape[1], format="csr")
        z = solve_spd(M, A.T @ b)
        for _ in range(opt.refine if opt.solver == "refine" else 0):
            # Corrected semi-normal equations: the residual from A, not from AᵀA, so each step
            # removes what rounding AᵀA and its factors left in z.
            z = z + solve_spd(M, A.T @ (b - A @ z) - lam * z)
        return z
    if opt.solver == "qr":
        # Householder QR of [A D; sqrt(λ) D | b; 0] (D the column scaling): the same λ‖z‖²
        # on z = D y, and cond(A D) instead of its square. R's last column is Qᵀ[b; 0].
        scale = 1.0 / norms
        check_dense(A.shape[0] + A.shape[1], A.shape[1] + 1)
        top = np.hstack([(A @ sp.diags(scale)).toarray(), b[:, None]])
        bottom = np.hstack([np.diag(math.sqrt(lam) * scale), np.zeros((A.shape[1], 1))])
        r = sla.qr(np.vstack([top, bottom]), mode="r", overwrite_a=True)[0]
        n = A.shape[1]
        return scale * sla.solve_triangular(r[:n, :n], r[:n, n])
    raise ValueError(f"unknown solver {opt.solver!r}")


def check_dense(rows: int, cols: int, limit_gb: float = 2.0) -> None:
    gb = rows * cols * 8 / 1e9
    if gb > limit_gb:
        raise MemoryError(f"a dense {rows} × {cols} matrix needs {gb:.1f} GB: use fewer cells")


def condition(A: sp.csr_matrix) -> float:
    """cond(A D) over the columns some row reads, D their column scaling (the equilibrated
    matrix whose square the normal equations factor), by a dense SVD."""
    A = A[:, np.flatnonzero(np.diff(A.tocsc().indptr))]
    check_dense(*A.shape)
    norms = np.sqrt(np.asarray(A.multiply(A).sum(0))).ravel()
    s = np.linalg.svd((A @ sp.diags(1.0 / norms)).toarray(), compute_uv=False)
    return float(s[0] / s[-1])


def error_f64(prob: Any, fld: Any, z: np.ndarray) -> float:
    """Relative L2 error of node values ``z`` on the problem's evaluation grid, all in float64."""
    if hasattr(prob, "eval_x"):  # a config equation: its own evaluation points and reference
        x, truth = prob.eval_x.double(), prob.eval_values.double()[:, :1]
    else:
        x = grid_points(torch.linspace(-1.0, 1.0, prob.resolution, dtype=torch.float64))
        truth = prob.solution(x)[:, None]
    values = LinearSystem(x, torch.ones(x.shape[0], 1, 1, 1, dtype=torch.float64),
                          torch.zeros(x.shape[0], 1, dtype=torch.float64))
    pred = torch.as_tensor(lsq.assemble(fld, values).matrix @ z)[:, None]
    if getattr(prob, "hard", None):  # u = g + B·N: z holds N
        pred = prob.hard.values(pred, x)
    return float(torch.linalg.norm(pred - truth) / torch.linalg.norm(truth))


# --- the sweep ---------------------------------------------------------------------------
def sweep(problems: Sequence[str], kernels: Sequence[Kernel], cells: Dict[str, List[int]],
          max_seconds: float) -> List[Result]:
    """Every (problem, kernel, cells); a curve stops after its first solve over ``max_seconds``."""
    out: List[Result] = []
    for p in problems:
        for kernel in (KERNELS_3D if p == "poisson3d" else kernels):
            lattice = kernel in LATTICE_KERNELS and p != "poisson3d"
            for sampling in ["random"] + (["lattice"] if lattice else []):
                for n in cells[p]:
                    r = run_one(p, n, kernel, Options(sampling=sampling))
                    out.append(r)
                    print(f"{p:12s} ε={kernel[0]:g} ρ={kernel[1]} c={kernel[2]:g} {sampling:7s} {n:4d} cells: "
                          f"rel_l2 {r.rel_l2:.3e}  f64 {r.rel_l2_f64:.3e}  {r.assemble_s:.1f} + {r.solve_s:.1f} s",
                          flush=True)
                    if r.seconds > max_seconds:
                        break
    return out


def fit_order(cells: Sequence[int], errors: Sequence[float], start: float = 0.1) -> Tuple[float, int, int]:
    """Slope of −log(error) against log(cells) from the first error below ``start`` (coarser
    grids do not resolve the solution yet) to the smallest error (a floor's points would flatten
    it); and the first and last index it used."""
    k = int(np.argmin(errors)) + 1
    i = next((j for j, e in enumerate(errors) if e < start), k)
    if k - i < 2:
        return float("nan"), i, k - 1
    return float(-np.polyfit(np.log(cells[i:k]), np.log(errors[i:k]), 1)[0]), i, k - 1


def curves(results: Sequence[Result]) -> Dict[Tuple, List[Result]]:
    """Results grouped by (problem, ε, ρ, window, collocation), in cells order."""
    out: Dict[Tuple, List[Result]] = {}
    for r in results:
        out.setdefault((r.problem, r.eps, r.rho, r.window, r.options.get("sampling", "random")), []).append(r)
    return {k: sorted(v, key=lambda r: r.cells) for k, v in out.items()}


def table(results: Sequence[Result]) -> str:
    """Markdown: a row per solve with the local order, the fitted order per curve, the commands."""
    lines = ["| problem | ε | ρ | window | points | cells | rel_l2 (train.py) | rel_l2 (float64) | local order | "
             "assemble + solve | unknowns |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    orders = ["", "Fitted order: slope of the float64 error against cells, log–log, from the first error below "
              "10 % to the smallest.", "",
              "| problem | ε | ρ | window | points | fitted order | over cells | smallest rel_l2 (float64) |",
              "|---|---|---|---|---|---|---|---|"]
    for (p, eps, rho, window, pts), rs in curves(results).items():
        for prev, r in zip([None] + rs[:-1], rs):
            local = "" if prev is None else \
                f"{-math.log(r.rel_l2_f64 / prev.rel_l2_f64) / math.log(r.cells / prev.cells):.1f}"
            lines.append(f"| {p} | {eps:g} | {rho} | {window:g} | {pts} | {r.cells} | {r.rel_l2:.2e} | {r.rel_l2_f64:.2e} | "
                         f"{local} | {r.assemble_s:.1f} + {r.solve_s:.1f} s | {r.unknowns} |")
        order, i, k = fit_order([r.cells for r in rs], [r.rel_l2_f64 for r in rs])
        best = min(rs, key=lambda r: r.rel_l2_f64)
        span = f"{rs[i].cells}–{rs[k].cells}" if k > i else "–"
        orders.append(f"| {p} | {eps:g} | {rho} | {window:g} | {pts} | {order:.1f} | {span} | "
                      f"{best.rel_l2_f64:.2e} ({best.cells} cells) |")
    cmds = ["", "Each row is `python train.py` with the overrides below (its `rel_l2`), e.g.", ""]
    cmds += [f"- {p}, ε {e:g}, ρ {r}, window {w:g}, {c}: `{rs[-1].command()}`"
             for (p, e, r, w, c), rs in curves(results).items()]
    return "\n".join(lines + orders + cmds) + "\n"


def plot(results: Sequence[Result], path: Path) -> None:
    """A panel per problem: the float64 error (solid) and train.py's (dotted) against cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = curves(results)
    problems = list(dict.fromkeys(k[0] for k in groups))
    fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 4.4), squeeze=False)
    for ax, p in zip(axes[0], problems):
        for (q, eps, rho, window, pts), rs in groups.items():
            if q != p:
                continue
            n, e = [r.cells for r in rs], [r.rel_l2_f64 for r in rs]
            label = f"ε={eps:g} ρ={rho} window={window:g}{' lattice' if pts == 'lattice' else ''}"
            line, = ax.loglog(n, e, "s--" if pts == "lattice" else "o-", label=f"{label} (order {fit_order(n, e)[0]:.1f})")
            ax.loglog(n, [r.rel_l2 for r in rs], ":", color=line.get_color())
            ax.set_xticks(n, [str(c) for c in n])
            ax.minorticks_off()
        ax.set_title(p)
        ax.set_xlabel("cells per axis")
        ax.set_ylabel("relative L2 (solid: float64; dotted: train.py)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the floors, one change at a time ----------------------------------------------------
# (group, what changes, problem, cells, kernel, options). Each group's first row is its base.
W0, W1, BEST = (0.7, 5, 0.0), (0.7, 5, 1.0), (0.6, 6, 1.0)
O = Options()
DIAGNOSIS: List[Tuple[str, str, str, int, Kernel, Options]] = [
    *[("A: a = 10, ε 0.7, ρ 5, window 0, 96 cells (worse than 64)", what, "helmholtz10", 96, k, o) for what, k, o in [
        ("base", W0, O), ("damping 1e-14", W0, replace(O, damping=1e-14)), ("damping 0", W0, replace(O, damping=0.0)),
        ("2 corrected semi-normal steps", W0, replace(O, solver="refine")),
        ("64 points per cell", W0, replace(O, points_per_cell=64)),
        ("boundary points 1024 → 6144", W0, replace(O, extra=["pde.boundary_points=6144"])),
        ("boundary weight 100 → 1e4", W0, replace(O, extra=["pde.boundary_weight=1e4"])),
        ("4×4 Gauss points per cell", W0, replace(O, sampling="gauss")),
        ("window 0 → 1", W1, O),
        ("ρ 5 → 6 (the cut tail exp(−ε²ρ²): 5e-6 → 2e-8)", (0.7, 6, 0.0), O),
        ("L2 projection of u (representation)", W0, replace(O, fit="values", sampling="gauss", points_per_cell=36))]],
    *[("B: a = 10, ε 0.7, ρ 5, window 1, 64 cells", what, p, 64, W1, o) for what, p, o in [
        ("base", "helmholtz10", O), ("seed 1", "helmholtz10", replace(O, extra=["seed=1"])),
        ("seed 2", "helmholtz10", replace(O, extra=["seed=2"])),
        ("damping 1e-14", "helmholtz10", replace(O, damping=1e-14)),
        ("2 corrected semi-normal steps", "helmholtz10", replace(O, solver="refine")),
        ("64 points per cell", "helmholtz10", replace(O, points_per_cell=64)),
        ("boundary weight 100 → 1", "helmholtz10", replace(O, extra=["pde.boundary_weight=1"])),
        ("boundary weight 100 → 1e4", "helmholtz10", replace(O, extra=["pde.boundary_weight=1e4"])),
        ("4 Gauss points per boundary cell edge", "helmholtz10", replace(O, sampling="gauss-boundary")),
        ("4×4 Gauss points per interior cell", "helmholtz10", replace(O, sampling="gauss-interior")),
        ("4×4 Gauss points, both", "helmholtz10", replace(O, sampling="gauss")),
        ("4×4 midpoints per cell (equal weights)", "helmholtz10", replace(O, sampling="midpoint")),
        ("train.py's lattice, 4×4 per cell (pde.collocation=lattice)", "helmholtz10", replace(O, sampling="lattice")),
        ("… not aligned: 253² lattice points over 64 cells", "helmholtz10", replace(O, extra=["pde.collocation=lattice"])),
        ("the config equation, soft boundary", "helmholtz10eq", O),
        ("… exact boundary (hard: true)", "helmholtz10eq", replace(O, extra=["+pde.conditions.edges.hard=true"])),
        ("L2 projection of u (representation)", "helmholtz10", replace(O, fit="values", sampling="gauss", points_per_cell=36))]],
    *[(f"C: the solve, a = 10, {n} cells, ε {k[0]:g}, ρ {k[1]}, window {k[2]:g}{', Gauss points' if g else ''}",
       what, "helmholtz10", n, k, replace(o, sampling="gauss") if g else o)
      for n, k, g in ((32, W0, False), (32, BEST, False), (48, W1, True)) for what, o in [
          ("normal equations" + (" (cond(A D) by SVD)" if n == 32 else ""), replace(O, cond=n == 32)),
          ("dense QR, AᵀA never formed", replace(O, solver="qr"))]],
    *[("D: a = 20, 96 cells", what, "helmholtz20", 96, k, o) for what, k, o in [
        ("base, ε 0.7, ρ 5, window 1", W1, O), ("4×4 Gauss points per cell", W1, replace(O, sampling="gauss")),
        ("L2 projection of u", W1, replace(O, fit="values", sampling="gauss", points_per_cell=36)),
        ("ε 0.6, ρ 6, window 1", BEST, O), ("… 4×4 Gauss points per cell", BEST, replace(O, sampling="gauss")),
        ("… L2 projection of u", BEST, replace(O, fit="values", sampling="gauss", points_per_cell=36))]],
    *[("F: a = 20, 96 cells, ε 0.6, ρ 6, window 1, seed 2 (an outlier draw)", what, "helmholtz20", 96, BEST,
       replace(o, extra=["seed=2"] + o.extra)) for what, o in [
        ("base (seed 2)", O), ("4 Gauss points per boundary cell edge", replace(O, sampling="gauss-boundary")),
        ("4×4 Gauss points per interior cell", replace(O, sampling="gauss-interior")),
        ("boundary points 1024 → 6144 (16 per edge cell)", replace(O, extra=["pde.boundary_points=6144"]))]],
    *[(f"G: the best settings found for ≤ 60 s, a = {p[-2:]}, {n} cells, ε 0.6, ρ 6, window 1", f"seed {seed}", p, n, BEST,
       replace(O, points_per_cell=ppc, extra=[f"seed={seed}", f"pde.boundary_points={bnd}"]))
      for p, n, ppc, bnd in (("helmholtz10", 64, 64, 4096), ("helmholtz20", 96, 16, 6144)) for seed in (0, 1, 2)],
    *[("H: ε 0.6, ρ 6, window 1 with 4×4 Gauss points per cell (a sampling train.py lacks)", f"a = {p[-2:]}, {n} cells",
       p, n, BEST, replace(O, sampling="gauss")) for p, n in (("helmholtz10", 64), ("helmholtz20", 96), ("helmholtz20", 128))],
    *[(f"I: Poisson a = 2, {n} cells, ε {k[0]:g}, ρ {k[1]}, window {k[2]:g}", what, "poisson2d", n, kk, o)
      for n, k, changes in (
          (64, W0, [("base", W0, O), ("window 0 → 1", W1, O), ("ρ 5 → 6", (0.7, 6, 0.0), O),
                    ("4×4 Gauss points per cell", W0, replace(O, sampling="gauss")),
                    ("64 points per cell", W0, replace(O, points_per_cell=64)),
                    ("L2 projection of u", W0, replace(O, fit="values", sampling="gauss", points_per_cell=36))]),
          (32, BEST, [("base", BEST, O), ("4×4 Gauss points per cell", BEST, replace(O, sampling="gauss")),
                      ("L2 projection of u", BEST, replace(O, fit="values", sampling="gauss", points_per_cell=36))]))
      for what, kk, o in changes],
    *[("E: representation, a = 10: L2 projection of u (6×6 Gauss points per cell)",
       f"ε {k[0]:g}, ρ {k[1]}, window {k[2]:g}, {n} cells",
       "helmholtz10", n, k, replace(O, fit="values", sampling="gauss", points_per_cell=36))
      for k in [(1.0, 3, 0.0), (1.0, 3, 1.0), W0, W1, (0.7, 6, 1.0), BEST] for n in (64, 96)],
]


def diagnose(out: Path) -> List[Dict[str, Any]]:
    """Run ``DIAGNOSIS``; write ``diagnosis.md`` and ``diagnosis.json`` under ``out``."""
    done: List[Dict[str, Any]] = []
    lines: List[str] = []
    current = None
    for group, what, problem, cells, kernel, opt in DIAGNOSIS:
        if group != current:
            current = group
            lines += ["", f"**{group}**", "", "| change | rel_l2 (train.py) | rel_l2 (float64) | ‖Az − b‖/‖b‖ | "
                      "assemble + solve | command |", "|---|---|---|---|---|---|"]
        r = run_one(problem, cells, kernel, opt)
        note = f" (cond(A D) {r.cond:.1e})" if r.cond else ""
        cmd = f"`{r.command()}`" if r.overrides else "(this script only)"
        lines.append(f"| {what}{note} | {r.rel_l2:.2e} | {r.rel_l2_f64:.2e} | {r.residual:.2e} | "
                     f"{r.assemble_s:.1f} + {r.solve_s:.1f} s | {cmd} |")
        print(f"{group[:2]} {what:45s} {r.rel_l2:.3e}  f64 {r.rel_l2_f64:.3e}  res {r.residual:.3e}{note}  "
              f"{r.assemble_s:.1f} + {r.solve_s:.1f} s", flush=True)
        done.append({"group": group, "change": what, **asdict(r)})
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnosis.md").write_text("\n".join(lines).strip() + "\n")
    (out / "diagnosis.json").write_text(json.dumps(done, indent=1))
    return done


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: Helmholtz a = 10, 24–48 cells, ε 0.7, ρ 5")
    ap.add_argument("--full", action="store_true", help="every cell count of CELLS and the 3D case")
    ap.add_argument("--diagnose", action="store_true", help="the one-change experiments on the floors")
    ap.add_argument("--problems", nargs="+", choices=list(PROBLEMS), help="default: the 2D ones (--full: and 3D)")
    ap.add_argument("--cells", nargs="+", type=int, help="cells per axis, for every problem")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="end a curve after a solve this long")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "convergence")
    ap.add_argument("--replot", action="store_true", help="remake the table and plot from --out's convergence.json")
    args = ap.parse_args(argv)
    if args.replot:
        fields = set(Result.__dataclass_fields__)
        results = [Result(**{k: v for k, v in d.items() if k in fields})
                   for d in json.loads((args.out / "convergence.json").read_text())]
        return write(results, args.out)
    if args.diagnose:
        diagnose(args.out)
        print(f"wrote {args.out}/diagnosis.md")
        return
    problems = args.problems or ["poisson2d", "helmholtz10", "helmholtz20"] + (["poisson3d"] if args.full else [])
    kernels = KERNELS
    if args.quick:
        problems, kernels = ["helmholtz10"], [W0, W1]
    cells = {p: list(args.cells) if args.cells else [n for n in CELLS[p] if args.full or n <= DEFAULT_MAX_CELLS[p]]
             for p in problems}
    if args.quick and not args.cells:
        cells = {"helmholtz10": [24, 32, 48]}
    write(sweep(problems, kernels, cells, args.max_seconds), args.out)


def write(results: Sequence[Result], out: Path) -> None:
    """``convergence.md``, ``.json`` and ``.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "convergence.md").write_text(table(results))
    (out / "convergence.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    plot(results, out / "convergence.png")
    print(f"wrote {out}/convergence.md, .png and .json")


if __name__ == "__main__":
    main()
