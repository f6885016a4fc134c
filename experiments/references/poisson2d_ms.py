"""Reference solution of PINNacle's Poisson2d-MS (``Poisson2D_ManyArea``), independent of ``dinf``.

Problem (PINNacle ``src/pde/poisson.py``): a·(u_xx + u_yy) + f = 0 on [−10, 10]², Robin
u_n + u = 0 on the whole boundary (DeepXDE RobinBC du/dn = −u, n outward). a is constant on each
of 5 × 5 blocks of 4 × 4 (``data/pinnacle/poisson_a_coef.dat``, a[i, j]: block i along x, j along
y); f = c[0,0] + c[1,1]·sin(π rx/4)·sin(π ry/4) per block, c = ``poisson_f_coef.dat`` reshaped
(5, 5, 2, 2), (rx, ry) the coordinates inside the block (PINNacle's 1e-5 shift of the block
borders is ignored). Since a > 0 this is −Δu = f/a: u is C¹, only its second derivatives jump.

Method: weak form ∫∇u·∇v + ∮u v = ∫(f/a) v with scikit-fem Lagrange P2 or P3 on structured
triangle meshes (``MeshTri.init_tensor``, a multiple of 5 cells per axis, so every block border is
made of element edges and f/a is smooth on each element; the block of an element is taken from
its centroid), direct solve (pypardiso, else scipy). The solution is probed on the 201 × 201 grid
over [−10, 10]² (x fastest) and the finest written to ``data/references/poisson2d_ms.npz``
(``x``, ``y``, ``u``, one row per point); the refinement study goes to
``data/references/poisson2d_ms_refinement.npz`` (``refine_*`` arrays).

Command: ``python experiments/references/poisson2d_ms.py`` (defaults: ``--orders 2 3 --cells 40 80
160 320``; the reference is the last order's finest solve, P3 on 320 × 320 squares; the
refinement npz holds its study as ``refine_*`` and P2's as ``p2_refine_*``, each also against
the reference: ``refine_l2_vs_reference``). Measured 2026-12-06 on a 2-core CPU (time = mesh +
assembly + solve + probing, after a warm-up solve):

    Poisson2d-MS, P2, h = 20 / cells (cell = square of 2 triangles)
    ref        h      dofs  time (s)  rel L2 vs finest  order  rel L2 vs next order (succ.)
      0      0.5      6561      0.27         1.209e-04    nan       1.209e-04           nan
      1     0.25     25921      0.63         1.613e-05   2.91       1.614e-05           nan
      2    0.125    103041      2.28         2.123e-06   2.93       2.123e-06          2.90
      3   0.0625    410881     11.10         0.000e+00    nan             nan          2.93
    Poisson2d-MS, P3, h = 20 / cells (cell = square of 2 triangles)
    ref        h      dofs  time (s)  rel L2 vs finest  order  rel L2 vs next order (succ.)
      0      0.5     14641      0.37         9.022e-06    nan       9.416e-06           nan
      1     0.25     58081      1.19         8.547e-07   3.40       9.346e-07           nan
      2    0.125    231361      5.18         9.239e-08   3.21       9.239e-08          3.33
      3   0.0625    923521     33.76         0.000e+00    nan             nan          3.34
    P2 rel L2 vs the reference (P3, 320 cells): 1.209e-04 1.591e-05 2.135e-06 2.390e-07

P2 reaches its order 3 (the jumps of f/a lie on element edges); P3 only ~3.3 (not 4), presumably
from the limited regularity (r² log r-type terms) where four blocks meet and at the corners. A P2
solve on 640 cells (1.64 M dofs, 35 s) differs from the P3 320-cell reference by 3.1e-8 (relative L2), so the
reference is good to ~1e-8.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from experiments.references.common import convergence, probe, rel_l2  # noqa: E402

BOX = (-10.0, 10.0)
SPLIT = 5
BLOCK = (BOX[1] - BOX[0]) / SPLIT  # 4


def coefficients(root: Path = ROOT):
    """PINNacle's tables: a ``[5, 5]`` and f's coefficients ``[5, 5, 2, 2]``."""
    a = np.loadtxt(root / "data" / "pinnacle" / "poisson_a_coef.dat")
    c = np.loadtxt(root / "data" / "pinnacle" / "poisson_f_coef.dat").reshape(SPLIT, SPLIT, 2, 2)
    return a, c


def block_of(x: np.ndarray, y: np.ndarray):
    """Block indices (i along x, j along y) of points; a border point goes to the upper block
    (the last block keeps x = 10)."""
    i = np.clip(np.floor((x - BOX[0]) / BLOCK).astype(int), 0, SPLIT - 1)
    j = np.clip(np.floor((y - BOX[0]) / BLOCK).astype(int), 0, SPLIT - 1)
    return i, j


def a_fn(x, y, a, i=None, j=None):
    """The coefficient a at points (in blocks ``i``, ``j`` if given)."""
    if i is None:
        i, j = block_of(x, y)
    return a[i, j]


def f_fn(x, y, c, i=None, j=None):
    """PINNacle's source: c[0,0] + Σ_{p,q∈{0,1}} c[p,q]·sin(π p rx/bs)·sin(π q ry/bs) (only p = q = 1
    survives) with (rx, ry) the coordinates in the block of the point (or in blocks ``i``, ``j``)."""
    if i is None:
        i, j = block_of(x, y)
    rx, ry = x - (BOX[0] + BLOCK * i), y - (BOX[0] + BLOCK * j)
    coef = c[i, j]  # [..., 2, 2]
    ans = coef[..., 0, 0].copy()
    for p in range(2):
        for q in range(2):
            ans = ans + coef[..., p, q] * np.sin(np.pi * p * rx / BLOCK) * np.sin(np.pi * q * ry / BLOCK)
    return ans


def ms_source(a, c):
    """−Δu = f/a as ``source(x, y, xc, yc)``: the block from each element's centroid (xc, yc)."""
    def source(x, y, xc, yc):
        i, j = block_of(xc, yc)
        return f_fn(x, y, c, i, j) / a[i, j]
    return source


def mesh(cells: int):
    from skfem import MeshTri

    t = np.linspace(BOX[0], BOX[1], cells + 1)
    return MeshTri.init_tensor(t, t)


def element(order: int):
    from skfem import ElementTriP1, ElementTriP2, ElementTriP3

    return {1: ElementTriP1, 2: ElementTriP2, 3: ElementTriP3}[order]()


def solve_linear(A, b):
    try:
        import pypardiso
        return pypardiso.spsolve(A.tocsr(), b)
    except ImportError:  # pragma: no cover
        from scipy.sparse.linalg import spsolve
        return spsolve(A.tocsc(), b)


def solve(m, order: int, source, robin=None, robin_coef: float = 1.0):
    """−Δu = source on mesh ``m``, u_n + robin_coef·u = robin (0 if None) on the boundary.
    ``source(x, y, xc, yc)`` at quadrature points (x, y) of elements with centroids (xc, yc);
    ``robin(x, y, nx, ny)`` with (nx, ny) the outward normal. Returns (basis, dofs)."""
    from skfem import Basis, BilinearForm, FacetBasis, LinearForm
    from skfem.helpers import dot, grad

    e = element(order)
    q = 2 * order + 2
    basis = Basis(m, e, intorder=q)
    fbasis = FacetBasis(m, e, facets=m.boundary_facets(), intorder=q)

    @BilinearForm
    def lap(u, v, w):
        return dot(grad(u), grad(v))

    @BilinearForm
    def mass(u, v, w):
        return u * v

    @LinearForm
    def rhs(v, w):
        xc = w.x.mean(axis=2, keepdims=True)
        return source(w.x[0], w.x[1], xc[0], xc[1]) * v

    A = lap.assemble(basis) + robin_coef * mass.assemble(fbasis)
    b = rhs.assemble(basis)
    if robin is not None:
        b = b + LinearForm(lambda v, w: robin(w.x[0], w.x[1], w.n[0], w.n[1]) * v).assemble(fbasis)
    return basis, solve_linear(A, b)


def grid(n: int = 201):
    """The evaluation points: n × n uniform over [−10, 10]², x fastest."""
    t = np.linspace(BOX[0], BOX[1], n)
    X, Y = np.meshgrid(t, t, indexing="xy")
    return X.ravel(), Y.ravel()


def refinement_path(out) -> Path:
    """The refinement study beside the reference: ``<name>_refinement.npz`` (the reference itself
    holds only its columns, so that the project's table reader takes it)."""
    out = Path(out)
    return out.with_name(out.stem + "_refinement.npz")


def run(cells: int, order: int, pts, a, c):
    t0 = time.perf_counter()
    m = mesh(cells)
    basis, u = solve(m, order, ms_source(a, c))
    vals = probe(basis, u, np.vstack(pts), candidates=6)
    return vals, time.perf_counter() - t0, basis.N


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[40, 80, 160, 320],
                    help="cells per axis (multiples of 5), coarse to fine")
    ap.add_argument("--orders", type=int, nargs="+", default=[2, 3], choices=(1, 2, 3),
                    help="element orders to study; the reference is the last order's finest solution")
    ap.add_argument("--out", default=str(ROOT / "data" / "references" / "poisson2d_ms.npz"),
                    help="npz to write ('' to write nothing)")
    args = ap.parse_args(argv)
    assert all(n % SPLIT == 0 for n in args.cells), "cells per axis must be multiples of 5"
    a, c = coefficients()
    pts = grid()
    studies = {}
    for order in args.orders:
        run(10, order, pts, a, c)  # warm-up (imports, caches)
        us, times, dofs = [], [], []
        for n in args.cells:
            vals, dt, nd = run(n, order, pts, a, c)
            us.append(vals), times.append(dt), dofs.append(nd)
            print(f"P{order} cells={n}: dofs={nd} time={dt:.2f}s", flush=True)
        print(f"Poisson2d-MS, P{order}, h = 20 / cells (cell = square of 2 triangles)")
        studies[order] = (us, convergence([20.0 / n for n in args.cells], us, times, dofs))
    ref = studies[args.orders[-1]][0][-1]
    out = {}
    for order, (us, table) in studies.items():
        table["refine_l2_vs_reference"] = np.array([rel_l2(u, ref) for u in us])
        print(f"P{order} rel L2 vs the reference (P{args.orders[-1]}, {args.cells[-1]} cells):",
              " ".join(f"{e:.3e}" for e in table["refine_l2_vs_reference"]))
        prefix = "" if order == args.orders[-1] else f"p{order}_"
        out.update({prefix + k: v for k, v in table.items()})
    if args.out:
        x, y = pts
        np.savez_compressed(args.out, x=x, y=y, u=ref)  # one array per column: the project's reader
        side = refinement_path(args.out)
        np.savez_compressed(side, refine_cells=np.asarray(args.cells), order=np.int64(args.orders[-1]), **out)
        print("wrote", args.out, "and", side)
    return studies


if __name__ == "__main__":
    main()
