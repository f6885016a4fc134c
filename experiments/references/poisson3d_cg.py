"""Reference solution of PINNacle's Poisson3d-CG (``Poisson3D_ComplexGeometry``), independent of ``dinf``.

Problem (PINNacle ``src/pde/poisson.py``): −μΔu + k²u = f in Ω = [0, 1]³ minus four balls
(centre, radius) = (0.4, 0.3, 0.6; 0.2), (0.6, 0.7, 0.6; 0.2), (0.2, 0.8, 0.7; 0.1),
(0.6, 0.2, 0.3; 0.1); μ = 1 on both sides, k = 8 for z < 0.5 and 10 for z ≥ 0.5;
f = 20·exp(sin(πx) + sin(10πy) + sin(5πz))·(|x|² − 1)/(|x|² + 1) + 100·sin(πx)·sin(10πy)·sin(5πz);
u_n = 0 on the whole boundary (cube faces and spheres), the natural condition.

Method: gmsh (OpenCASCADE) meshes the two half boxes z < 0.5 and z > 0.5 minus the balls and
fragments them, so the tetrahedra conform to the jump of k² at z = 0.5 (``--no-fragment``: one
box, the jump cuts through elements); uniform size h, one thread (with two, gmsh's mesh changes
from run to run). Lagrange P2 on curved (isoparametric) tetrahedra: scikit-fem's ``MeshTet2``
with the midpoints of the boundary edges on a sphere moved onto it (``--straight``:
straight-sided P2). Weak form ∫∇u·∇v + k²uv = ∫f v (quadrature of order 6, assembled by chunks
of cells). Linear solve: conjugate gradients to a relative residual of 1e-10, preconditioned by
a symmetric two-level cycle (2 damped-Jacobi sweeps, the exact Galerkin correction on the P1
space of the same tetrahedra by pypardiso, 2 sweeps; 12–19 iterations at h = 0.04); the same
numbers as pypardiso's direct P2 solve (``--linear direct``, 2–3× slower at h = 0.028, and its
fill limits h to ~0.028 in 24 GB). The solution is probed (nearest cells, then Newton on the
curved mapping; every point lies inside its cell) at the 64 189 points of the 41³ grid over
[0, 1]³ farther than 1e-3 outside every ball, and the finest is written to
``data/references/poisson3d_cg.npz`` (``x``, ``y``, ``z``, ``u``, one row per point; x fastest,
then y, then z); the refinement study goes to ``data/references/poisson3d_cg_refinement.npz``
(``refine_*`` arrays).

Command: ``python experiments/references/poisson3d_cg.py`` (default ``--h 0.08 0.056 0.04 0.028
0.02 0.014``; 9.6 min, 8.9 GB peak). Measured 2026-12-06 on a 2-core CPU shared with other jobs
(time = mesh + assembly + solve + probing, after a warm-up; ±50 %):

    ref        h      dofs  time (s)  rel L2 vs finest  order  rel L2 vs next order (succ.)
      0     0.08     16987      8.82         1.012e-02    nan       9.287e-03           nan
      1    0.056     40538      9.77         4.125e-03   2.52       4.035e-03           nan
      2     0.04    104765     17.44         1.548e-03   2.91       1.565e-03          2.34
      3    0.028    286741     42.30         6.088e-04   2.62       6.209e-04          2.82
      4     0.02    745702    126.92         2.329e-04   2.85       2.329e-04          2.59
      5    0.014   2120612    362.40         0.000e+00    nan             nan          2.91

The order is ~2.6–2.9 (3 is P2's; the unstructured meshes are not nested, so single orders
scatter); the reference (h = 0.014) is accurate to ~1e-4: extrapolating the last difference at
order 2.8 gives 1.4e-4, and an h = 0.014 solve on another gmsh mesh (two threads) differs from it
by 9.5e-5. Variants, rel. L2 to an h = 0.014 curved fragmented solve, h = 0.08 / 0.056 / 0.04 /
0.028:

    curved, fragmented (this)      1.01e-2  4.13e-3  1.55e-3  6.08e-4
    straight P2, fragmented        1.21e-2  5.15e-3  2.39e-3  1.06e-3   (geometry error: order → 2)
    curved, not fragmented         1.03e-2  4.10e-3  1.62e-3  6.16e-4   (no visible difference)

Curved elements matter (1.75× smaller error at h = 0.028, and growing); conforming to z = 0.5
does not, at this accuracy: k² jumps only in the zeroth-order term, so u is C¹ and only its
second derivatives jump across the plane.
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

BALLS = ((0.4, 0.3, 0.6, 0.2), (0.6, 0.7, 0.6, 0.2), (0.2, 0.8, 0.7, 0.1), (0.6, 0.2, 0.3, 0.1))
A = (20.0, 100.0)
M = (1.0, 10.0, 5.0)
K = (8.0, 10.0)
MU = (1.0, 1.0)
Z_INTERFACE = 0.5


def f_fn(x, y, z):
    """PINNacle's source."""
    r2 = x**2 + y**2 + z**2
    part1 = np.exp(np.sin(M[0] * np.pi * x) + np.sin(M[1] * np.pi * y) + np.sin(M[2] * np.pi * z)) * (r2 - 1) / (r2 + 1)
    part2 = np.sin(M[0] * np.pi * x) * np.sin(M[1] * np.pi * y) * np.sin(M[2] * np.pi * z)
    return A[0] * part1 + A[1] * part2


def k2_fn(z):
    """k² (PINNacle: k[0]² where z < 0.5, else k[1]²)."""
    return np.where(z < Z_INTERFACE, K[0] ** 2, K[1] ** 2)


def mu_fn(z):
    return np.where(z < Z_INTERFACE, MU[0], MU[1])


def gmsh_mesh(h: float, balls=BALLS, fragment: bool = True, box=(1.0, 1.0, 1.0)):
    """Straight tetrahedra (``MeshTet``) of size ``h`` of the box [0, box]³ minus ``balls``; with
    ``fragment`` two volumes split at z = ``box[2]/2`` that share the interface's triangles."""
    import gmsh
    from skfem import MeshTet

    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 1)
    try:
        occ = gmsh.model.occ
        lx, ly, lz = box
        if fragment:
            boxes = [occ.addBox(0, 0, 0, lx, ly, lz / 2), occ.addBox(0, 0, lz / 2, lx, ly, lz / 2)]
        else:
            boxes = [occ.addBox(0, 0, 0, lx, ly, lz)]
        spheres = [occ.addSphere(*b) for b in balls]
        vols = [(3, b) for b in boxes]
        if spheres:
            vols, _ = occ.cut(vols, [(3, s) for s in spheres])
        if len(vols) > 1:
            vols, _ = occ.fragment(vols[:1], vols[1:])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.option.setNumber("General.NumThreads", 1)  # 2 threads: the mesh differs from run to run
        gmsh.model.mesh.generate(3)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        types, _, conn = gmsh.model.mesh.getElements(3)
    finally:
        gmsh.finalize()
    conn = np.concatenate([c for ty, c in zip(types, conn) if ty == 4]).astype(np.int64)  # 4-node tets
    index = np.zeros(int(tags.max()) + 1, np.int64)
    index[tags.astype(np.int64)] = np.arange(tags.size)
    p = coords.reshape(-1, 3).T
    t = index[conn].reshape(-1, 4).T
    used = np.unique(t)  # gmsh keeps nodes of lower-dimensional entities no tet uses: drop them
    remap = -np.ones(p.shape[1], np.int64)
    remap[used] = np.arange(used.size)
    return MeshTet(np.ascontiguousarray(p[:, used]), np.ascontiguousarray(remap[t]))


def curve(m, balls=BALLS, tol: float = 1e-6):
    """Quadratic (isoparametric) tetrahedra: ``MeshTet2`` whose boundary edges with both ends on a
    sphere get their midpoint moved onto that sphere (radially from its centre)."""
    from skfem import MeshTet2

    m2 = MeshTet2.from_mesh(m)
    locs = m2.doflocs.copy()
    nv = m.p.shape[1]
    edges = m.boundary_edges()
    ends = m.p[:, m.edges[:, edges]]  # [3, 2, E]
    for cx, cy, cz, r in balls:
        c = np.array([[cx], [cy], [cz]])
        on = (np.abs(np.linalg.norm(ends[:, 0] - c, axis=0) - r) < tol) & \
             (np.abs(np.linalg.norm(ends[:, 1] - c, axis=0) - r) < tol)
        mid = locs[:, nv + edges[on]] - c
        locs[:, nv + edges[on]] = c + mid * (r / np.linalg.norm(mid, axis=0))
    return MeshTet2(locs, m.t)


def solve(m, source, reaction, neumann=None, facets=None, order: int = 2, intorder: int = 6,
          linear: str = "pcg", chunk: int = 100_000):
    """−Δu + reaction·u = source on mesh ``m`` (P``order`` on ``m``'s own mapping), u_n = neumann on
    ``facets`` (all boundary facets if None; scikit-fem's facet basis does not converge on curved
    cells: give flat ones) and u_n = 0 on the rest of the boundary. ``source(x, y, z)``,
    ``reaction(x, y, z)`` at quadrature points, ``neumann(x, y, z, nx, ny, nz)``. Assembled by
    chunks of ``chunk`` cells (memory); ``linear``: "pcg" (P2 only: conjugate gradients with a
    two-level preconditioner, see ``pcg``) or "direct" (pypardiso). Returns (basis, dofs), the
    basis with one quadrature point per cell (for probing)."""
    from skfem import Basis, BilinearForm, ElementTetP1, ElementTetP2, FacetBasis, LinearForm
    from skfem.helpers import dot, grad

    e = {1: ElementTetP1, 2: ElementTetP2}[order]()

    @BilinearForm(nthreads=2)
    def a(u, v, w):
        return dot(grad(u), grad(v)) + w["react"] * u * v

    @LinearForm
    def rhs(v, w):
        return w["src"] * v

    A, b = None, 0.0
    nt = m.t.shape[1]
    for cells in np.array_split(np.arange(nt), max(1, -(-nt // chunk))):
        basis = Basis(m, e, intorder=intorder, elements=cells)
        x = basis.global_coordinates().value  # [3, cells, quadrature points]
        Ac = a.assemble(basis, react=reaction(*x))
        A = Ac if A is None else A + Ac
        b = b + rhs.assemble(basis, src=source(*x))
        del basis, x
    if neumann is not None:
        fb = FacetBasis(m, e, facets=m.boundary_facets() if facets is None else facets, intorder=intorder)
        b = b + LinearForm(lambda v, w: neumann(*w.x, *w.n) * v).assemble(fb)
    A = A.tocsr()
    if linear == "pcg" and order == 2:
        u = pcg(A, b, prolongation(m))
    else:
        u = solve_linear(A, b)
    return Basis(m, e, intorder=1), u


def prolongation(m):
    """P1 → P2 on the same tetrahedra: vertex values stay, each edge's dof (numbered after the
    vertices, in ``m.edges`` order: scikit-fem's P2 numbering) gets the mean of its two ends —
    exact also on curved cells, whose edge nodes sit at the reference midpoints."""
    import scipy.sparse as sp

    nv, ne = int(m.t.max()) + 1, m.edges.shape[1]  # (a MeshTet2's p holds the edge nodes too)
    rows = np.concatenate([np.arange(nv), nv + np.arange(ne), nv + np.arange(ne)])
    cols = np.concatenate([np.arange(nv), m.edges[0], m.edges[1]])
    vals = np.concatenate([np.ones(nv), np.full(2 * ne, 0.5)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(nv + ne, nv))


def pcg(A, b, P, rtol: float = 1e-10, sweeps: int = 2, omega: float = 0.6, info: dict = None):
    """Conjugate gradients on the SPD system A u = b, preconditioned by a symmetric two-level cycle:
    ``sweeps`` damped-Jacobi sweeps, the exact (pypardiso) Galerkin correction on the P1 space
    P (PᵀAP), ``sweeps`` sweeps again. About 15 iterations to ``rtol``, independent of h."""
    from scipy.sparse.linalg import LinearOperator, cg

    assert P.shape[0] == A.shape[0], "the prolongation is not to A's space"
    Ac = (P.T @ A @ P).tocsr()
    try:
        import pypardiso
        coarse = pypardiso.PyPardisoSolver()
        coarse.factorize(Ac)
        coarse_solve = lambda r: coarse.solve(Ac, r)  # noqa: E731
    except ImportError:  # pragma: no cover
        from scipy.sparse.linalg import factorized
        coarse_solve = factorized(Ac.tocsc())
    d = omega / A.diagonal()

    def cycle(r):
        x = d * r
        for _ in range(sweeps - 1):
            x += d * (r - A @ x)
        x += P @ coarse_solve(P.T @ (r - A @ x))
        for _ in range(sweeps):
            x += d * (r - A @ x)
        return x

    count = [0]
    u, flag = cg(A, b, rtol=rtol, maxiter=500, M=LinearOperator(A.shape, cycle, dtype=float),
                 callback=lambda _: count.__setitem__(0, count[0] + 1))
    if flag != 0:
        raise RuntimeError(f"pcg did not converge (flag {flag}, {count[0]} iterations)")
    if info is not None:
        info["iterations"] = count[0]
        info["residual"] = float(np.linalg.norm(A @ u - b) / np.linalg.norm(b))
    return u


def box_facets(m, box=(1.0, 1.0, 1.0), tol: float = 1e-12):
    """The boundary facets on the faces of the box [0, box]³."""
    bf = m.boundary_facets()
    c = m.p[:, m.facets[:, bf]].mean(axis=1)
    hi = np.asarray(box, float)[:, None]
    return bf[np.any((np.abs(c) < tol) | (np.abs(c - hi) < tol), axis=0)]


def solve_linear(A, b):
    try:
        import pypardiso
        return pypardiso.spsolve(A.tocsr(), b)
    except ImportError:  # pragma: no cover
        from scipy.sparse.linalg import spsolve
        return spsolve(A.tocsc(), b)


def cg_source(x, y, z):
    return f_fn(x, y, z) / mu_fn(z)


def cg_reaction(x, y, z):
    return k2_fn(z) / mu_fn(z)


def grid(n: int = 41, gap: float = 1e-3):
    """Points of the n³ grid over [0, 1]³ (x fastest) farther than ``gap`` outside every ball."""
    t = np.linspace(0.0, 1.0, n)
    Z, Y, X = np.meshgrid(t, t, t, indexing="ij")
    x, y, z = X.ravel(), Y.ravel(), Z.ravel()
    keep = np.ones(x.size, bool)
    for cx, cy, cz, r in BALLS:
        keep &= np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) > r + gap
    return x[keep], y[keep], z[keep]


def run(h: float, pts, fragment: bool = True, curved: bool = True, linear: str = "pcg"):
    t0 = time.perf_counter()
    m = gmsh_mesh(h, fragment=fragment)
    if curved:
        m = curve(m)
    basis, u = solve(m, cg_source, cg_reaction, linear=linear)
    vals = probe(basis, u, np.vstack(pts), candidates=24)
    dt = time.perf_counter() - t0
    outside = int((probe.last_margin < -1e-10).sum())  # points not inside their (curved) cell
    return vals, dt, basis.N, m.t.shape[1], outside


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--h", type=float, nargs="+", default=[0.08, 0.056, 0.04, 0.028, 0.02, 0.014],
                    help="mesh sizes, coarse to fine")
    ap.add_argument("--n", type=int, default=41, help="evaluation grid: n³ points over [0, 1]³")
    ap.add_argument("--no-fragment", action="store_true", help="one box: the k² jump cuts elements")
    ap.add_argument("--straight", action="store_true", help="straight-sided P2 (no curved sphere edges)")
    ap.add_argument("--linear", choices=("pcg", "direct"), default="pcg",
                    help="two-level preconditioned CG (default) or pypardiso's direct solve")
    ap.add_argument("--reference", default=None,
                    help="an npz written by this script (same --n): also report each solve's rel. L2 to its u")
    ap.add_argument("--out", default=str(ROOT / "data" / "references" / "poisson3d_cg.npz"),
                    help="npz to write ('' to write nothing)")
    args = ap.parse_args(argv)
    pts = grid(args.n)
    run(0.25, pts, not args.no_fragment, not args.straight, args.linear)  # warm-up
    us, times, dofs = [], [], []
    for h in args.h:
        vals, dt, nd, nt, outside = run(h, pts, not args.no_fragment, not args.straight, args.linear)
        us.append(vals), times.append(dt), dofs.append(nd)
        print(f"h={h}: tets={nt} dofs={nd} time={dt:.1f}s NaN={int(np.isnan(vals).sum())} "
              f"outside their cell={outside}", flush=True)
    print(f"Poisson3d-CG, P2 {'straight' if args.straight else 'curved'}, "
          f"{'one box' if args.no_fragment else 'fragmented at z = 0.5'}; {pts[0].size} points")
    table = convergence(args.h, us, times, dofs)
    if args.reference:
        with np.load(args.reference) as ref:
            assert np.allclose(ref["x"], pts[0]) and np.allclose(ref["z"], pts[2]), "other points"
            table["refine_l2_vs_reference"] = np.array([rel_l2(u, ref["u"]) for u in us])
        print(f"rel L2 vs {args.reference}:", " ".join(f"{e:.3e}" for e in table["refine_l2_vs_reference"]))
    if args.out:
        x, y, z = pts
        np.savez_compressed(args.out, x=x, y=y, z=z, u=us[-1])  # one array per column: the project's reader
        side = Path(args.out).with_name(Path(args.out).stem + "_refinement.npz")
        np.savez_compressed(side, fragment=not args.no_fragment, curved=not args.straight, **table)
        print("wrote", args.out, "and", side)
    return us, table


if __name__ == "__main__":
    main()
