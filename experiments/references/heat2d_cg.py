"""An independent reference for PINNacle's Heat2d-CG (``Heat2D_ComplexGeometry``), whose COMSOL
file is not available: P2 finite elements in space, Crank–Nicolson in time.

Problem (PINNacle ``src/pde/heat.py``)
    u_t = u_xx + u_yy on Ω = [−8, 8] × [−12, 12] minus 11 disks of radius 1 (centres (±4, ±3),
    (±4, ±9), (0, 0), (0, ±6)) and 6 disks of radius 0.4 (centres (±3.2, ±6), (±3.2, 0)),
    t ∈ [0, 3], u(·, 0) = 0, and DeepXDE Robin conditions ∂u/∂n = g − u (n: Ω's outward normal,
    into the disks on their circles) with g = 5 on the large circles, 1 on the small ones and 0.1 on
    the rectangle's sides. Weak form: ∫ u_t v + ∫ ∇u·∇v + ∮ u v = ∮ g v.

Method
    Space: P2 on gmsh triangle meshes of size h with curved (isoparametric) edges on the circles;
    the boundary groups are told apart by the distance of each quadrature point to the circles
    and the rectangle. Time: Crank–Nicolson, (M/τ + K/2) uⁿ⁺¹ = (M/τ − K/2) uⁿ + (bⁿ + bⁿ⁺¹)/2,
    with Rannacher's start (the first two steps as four backward-Euler half steps, whose matrix
    M/(τ/2) + K is twice Crank–Nicolson's, so the same factorisation) and a geometric grading of
    the first output interval: [0.1·4⁻ᵏ, 0.1·4¹⁻ᵏ] in 3 steps of 0.1·4⁻ᵏ for k = 1 … K (K = 10),
    [0, 0.1·4⁻ᴷ] in one. ``--steps r`` splits each step of that base schedule (29 steps of 0.1 after
    t = 0.1) into r, so every refinement halves every step, and the K + 1 distinct steps are
    factorised once each (PARDISO's Cholesky when pypardiso is installed, else SuperLU). The
    initial data (0) do not meet the Robin data, so u grows like √t near the boundary at first;
    the grading resolves that layer (see the convergence tables).

    The solution is read at the evaluation points (a 0.2-spaced grid of the rectangle, 81 × 121,
    the points more than 1e-3 outside every disk) through each mesh's sparse interpolation matrix,
    at t = 0, 0.1, …, 3.0; differences are PINNacle's pooled relative L2, ‖û − u‖ / ‖u‖ over every
    value.

Command (2-core CPU shared with other jobs, 2026-12-06; 17 min in all)
    python experiments/references/heat2d_cg.py     # --h 0.4 0.2 0.1 0.05 --steps 4 8 16 --levels 4
writes ``data/references/heat2d_cg.npz`` (columns x, y, t, u; 8832 points × 31 times, node-major;
the h = 0.05, r = 16 solve) and ``heat2d_cg_refinement.npz`` beside it (the tables below).

Measured (pooled relative L2 difference to the finest, h = 0.05 and r = 16; time: mesh + assembly
+ interpolation matrix + factorisations + all steps, after a warm-up; expect ±50 % on that
machine)::

    space (r = 16, 672 steps)
       h     dofs  time (s)  L2 vs finest  order
     0.4    11746       4.4     4.267e-04
     0.2    43394      18.0     6.462e-05   2.72
     0.1   166555     104.9     7.932e-06   3.03
    0.05   652796     407.7     0 (reference)

    time (h = 0.05)
       r  steps  time (s)  L2 vs finest  order   (successive differences: 3.17e-05, 7.89e-06: order 2.01)
       4    168     205.6     3.954e-05
       8    336     244.5     7.885e-06   2.33
      16    672     407.7     0 (reference)

So the reference's own error is about 1e-6 (space, h³) + 2.6e-6 (time, τ²): a few 1e-6. The time
error sits at t = 0.2–0.5 (just after the graded interval, where the √t boundary layer still
bends u), the space error is spread evenly over t. Without the grading (uniform steps with
Rannacher's start) the time error at h = 0.2 is 10–14× larger at the same r, most of it at t = 0.1;
plain Crank–Nicolson from t = 0 (no grading, no Rannacher) converges erratically (1.1e-3, 2.3e-4,
1.3e-5 for r = 4, 8, 16): its undamped stiff modes. Two or more levels give the same error as ten.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from experiments.references.common import Factor, newton, rel_l2  # noqa: E402

OUT = ROOT / "data" / "references" / "heat2d_cg.npz"

BOX = ((-8.0, 8.0), (-12.0, 12.0))
BIG = [(-4, -3), (4, -3), (-4, 3), (4, 3), (-4, -9), (4, -9), (-4, 9), (4, 9), (0, 0), (0, 6), (0, -6)]
SMALL = [(-3.2, -6), (-3.2, 6), (3.2, -6), (3.2, 6), (-3.2, 0), (3.2, 0)]
DISKS = [((float(x), float(y)), 1.0) for x, y in BIG] + [((float(x), float(y)), 0.4) for x, y in SMALL]
G_BIG, G_SMALL, G_SIDE = 5.0, 1.0, 0.1
T_END = 3.0
OUT_DT = 0.1  # output interval
OUT_TIMES = np.round(np.arange(31) * OUT_DT, 12)
SPACING = 0.2  # evaluation grid
LEVELS = 4  # geometric levels of the first output interval


# --------------------------------------------------------------------------------------------
# Mesh, assembly, evaluation


def mesh(box, disks, h: float, curved: bool = True):
    """A triangle mesh of ``box`` minus ``disks`` (gmsh, size ``h``); ``curved``: quadratic, the
    midpoints of the circles' edges moved onto the circles (isoparametric P2)."""
    import gmsh
    from skfem import MeshTri, MeshTri2

    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        occ = gmsh.model.occ
        (x0, x1), (y0, y1) = box
        rect = occ.addRectangle(x0, y0, 0, x1 - x0, y1 - y0)
        holes = [occ.addDisk(cx, cy, 0, r, r) for (cx, cy), r in disks]
        if holes:
            occ.cut([(2, rect)], [(2, d) for d in holes])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, _, conn = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    index = np.zeros(int(tags.max()) + 1, int)
    index[tags.astype(int)] = np.arange(tags.size)
    p = coords.reshape(-1, 3)[:, :2].T
    t = index[conn[0].astype(int)].reshape(-1, 3).T
    used = np.unique(t)  # gmsh keeps the geometry's points; drop any no triangle uses
    remap = -np.ones(p.shape[1], int)
    remap[used] = np.arange(used.size)
    straight = MeshTri(np.ascontiguousarray(p[:, used]), remap[t])
    if not curved:
        return straight
    m = MeshTri2.from_mesh(straight)
    dofs = m.dofs.get_facet_dofs(m.boundary_facets()).flatten()
    locs = m.doflocs.copy()
    for (cx, cy), r in disks:
        d = locs[:, dofs] - np.array([[cx], [cy]])
        dist = np.hypot(*d)
        on = np.abs(dist - r) < 0.25 * min(h, r)
        locs[:, dofs[on]] = np.array([[cx], [cy]]) + d[:, on] * (r / dist[on])
    return MeshTri2(locs, m.t)


def boundary_group(x: np.ndarray, box, disks) -> np.ndarray:
    """For points ``x`` ``[2, ...]`` on the boundary: the index of the nearest disk's circle, or
    −1 for the rectangle's sides."""
    (x0, x1), (y0, y1) = box
    best = np.minimum.reduce([np.abs(x[0] - x0), np.abs(x[0] - x1), np.abs(x[1] - y0), np.abs(x[1] - y1)])
    group = np.full(x.shape[1:], -1)
    for i, ((cx, cy), r) in enumerate(disks):
        d = np.abs(np.hypot(x[0] - cx, x[1] - cy) - r)
        group = np.where(d < best, i, group)
        best = np.minimum(d, best)
    return group


def assemble(m, robin_g: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """The P2 basis, mass ``M``, ``K`` (stiffness plus the Robin boundary mass) and the boundary
    load ``∮ g v`` for ``robin_g(x, n)`` (``x``, ``n`` ``[2, ...]``: quadrature points on the
    boundary and the outward normals there)."""
    from skfem import Basis, BilinearForm, ElementTriP2, FacetBasis, LinearForm
    from skfem.helpers import dot, grad

    logging.getLogger("skfem").setLevel(logging.ERROR)
    basis = Basis(m, ElementTriP2(), intorder=4)
    fbasis = FacetBasis(m, ElementTriP2(), facets=m.boundary_facets(), intorder=6)

    @BilinearForm
    def mass(u, v, _):
        return u * v

    @BilinearForm
    def stiff(u, v, _):
        return dot(grad(u), grad(v))

    @LinearForm
    def load(v, w):
        return robin_g(w.x, w.n) * v

    M = mass.assemble(basis).tocsr()
    K = (stiff.assemble(basis) + mass.assemble(fbasis)).tocsr()
    return basis, M, K, load.assemble(fbasis)


def heat_g(box=BOX, disks=DISKS) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Heat2d-CG's Robin data: 5 on the large circles, 1 on the small ones, 0.1 on the sides."""
    values = np.array([G_BIG if r == 1.0 else G_SMALL for _, r in disks] + [G_SIDE])  # index −1: sides
    return lambda x, _n: values[boundary_group(x, box, disks)]


def eval_points(spacing: float = SPACING, box=BOX, disks=DISKS) -> np.ndarray:
    """The grid points of the rectangle (``spacing``) more than 1e-3 outside every disk, ``[2, P]``."""
    (x0, x1), (y0, y1) = box
    nx, ny = round((x1 - x0) / spacing) + 1, round((y1 - y0) / spacing) + 1
    X, Y = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny), indexing="ij")
    x = np.stack([X.ravel(), Y.ravel()])
    keep = np.ones(x.shape[1], bool)
    for (cx, cy), r in disks:
        keep &= np.hypot(x[0] - cx, x[1] - cy) - r > 1e-3
    return x[:, keep]


def interpolation(basis, x: np.ndarray, candidates: int = 12, outside: float = 0.05) -> sp.csr_matrix:
    """The sparse matrix that takes ``basis``'s dofs to values at points ``x`` ``[2, P]`` (curved
    cells: Newton on the cell's own mapping from the straight-sided guess). Every point must lie
    in the mesh (within ``outside`` in reference coordinates)."""
    from scipy.spatial import cKDTree
    from skfem import MeshTri

    m = basis.mesh
    straight = MeshTri(m.p, m.t)._mapping()
    centroids = m.p[:, m.t].mean(axis=1).T
    near = cKDTree(centroids).query(x.T, min(candidates, m.t.shape[1]))[1].reshape(x.shape[1], -1)
    best, worst = np.zeros(x.shape[1], int), np.full(x.shape[1], -np.inf)
    for j in range(near.shape[1]):
        cells = near[:, j]
        X = straight.invF(x[:, :, None], tind=cells)[:, :, 0]
        margin = np.minimum(X.min(axis=0), 1 - X.sum(axis=0))  # ≥ 0 inside the triangle
        better = margin > worst
        best[better], worst[better] = cells[better], margin[better]
    if (worst <= -outside).any():
        raise ValueError(f"{int((worst <= -outside).sum())} evaluation points lie outside the mesh")
    X = straight.invF(x[:, :, None], tind=best)
    curved = np.abs(basis.mapping.F(X, tind=best) - x[:, :, None]).max(axis=(0, 2)) > 1e-14
    if curved.any():
        X[:, curved] = newton(basis.mapping, x[:, curved], best[curved], X[:, curved])
    phis = np.array([basis.elem.gbasis(basis.mapping, X, k, tind=best)[0][:, 0] for k in range(basis.Nbfun)])
    rows = np.broadcast_to(np.arange(x.shape[1]), phis.shape)
    return sp.csr_matrix((phis.ravel(), (rows.ravel(), basis.element_dofs[:, best].ravel())),
                         shape=(x.shape[1], basis.N))


# --------------------------------------------------------------------------------------------
# Time stepping (each step's Cholesky: common.Factor with spd=True)


def schedule(refine: int, levels: int = LEVELS, out_dt: float = OUT_DT, t_end: float = T_END) -> np.ndarray:
    """The step sizes: the base schedule (the first output interval graded geometrically: ``levels``
    levels [d·4⁻ᵏ, d·4¹⁻ᵏ] of 3 steps d·4⁻ᵏ, and [0, d·4⁻ᴸ] in one; then steps of ``out_dt``)
    with every step split into ``refine``. The partial sums hit every multiple of ``out_dt``."""
    base = [out_dt * 4.0 ** -levels] + [out_dt * 4.0 ** -k for k in range(levels, 0, -1) for _ in range(3)]
    base += [out_dt] * int(round(t_end / out_dt - 1))
    return np.repeat(np.asarray(base) / refine, refine)


def crank_nicolson(M: sp.spmatrix, K: sp.spmatrix, load: Callable[[float], np.ndarray], u0: np.ndarray,
                   steps: Sequence[float], out_times: Sequence[float], observe: Callable[[np.ndarray], np.ndarray],
                   rannacher: int = 2, backend: str = "auto") -> np.ndarray:
    """Integrate ``M u' + K u = load(t)`` from ``u0`` at t = 0 by the steps ``steps``: Crank–Nicolson,
    its first ``rannacher`` steps each as two backward-Euler half steps (same matrix, M/(τ/2) + K =
    2 (M/τ + K/2)); one factorisation per distinct step size. Returns ``observe(u)`` at
    ``out_times`` (each must be a step's end, or 0), stacked ``[len(out_times), ...]``."""
    steps = np.asarray(steps, float)
    ends = np.cumsum(steps)
    want = {}
    for j, t in enumerate(out_times):
        if abs(t) < 1e-14:
            continue
        k = int(np.argmin(np.abs(ends - t)))
        if abs(ends[k] - t) > 1e-9 * max(1.0, abs(t)):
            raise ValueError(f"output time {t} is not a step's end")
        want[k] = j
    out: List[Optional[np.ndarray]] = [observe(u0) if abs(t) < 1e-14 else None for t in out_times]
    keys = np.round(steps, 15)
    factors: Dict[float, Tuple[Factor, sp.spmatrix]] = {}
    u, t = np.asarray(u0, float).copy(), 0.0
    b_old = load(0.0)
    try:
        for n, tau in enumerate(steps):
            key = float(keys[n])
            if key not in factors:
                factors[key] = (Factor((M / tau + 0.5 * K).tocsr(), backend, spd=True), (M / tau - 0.5 * K).tocsr())
            fac, rhs = factors[key]
            if n < rannacher:  # two backward-Euler half steps: (M/τ + K/2) u₊ = (M/τ) u + b(t₊)/2
                Mt = M / tau
                for half in (0.5, 1.0):
                    u = fac.solve(Mt @ u + 0.5 * load(t + half * tau))
                b_old = load(t + tau)
            else:
                b_new = load(t + tau)
                u = fac.solve(rhs @ u + 0.5 * (b_old + b_new))
                b_old = b_new
            t = float(ends[n])
            if n in want:
                out[want[n]] = observe(u)
    finally:
        for fac, _ in factors.values():
            fac.free()
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# Heat2d-CG


def solve(h: float, refine: int, points: np.ndarray, levels: int = LEVELS, backend: str = "auto",
          rannacher: int = 2) -> Dict:
    """Heat2d-CG at mesh size ``h`` and time refinement ``refine``: values ``[T, P]`` at ``points``
    ``[2, P]`` and ``OUT_TIMES``, dofs, steps, and the seconds it took (mesh, assembly,
    interpolation matrix, factorisations, steps)."""
    t0 = time.perf_counter()
    m = mesh(BOX, DISKS, h)
    t1 = time.perf_counter()
    basis, M, K, b = assemble(m, heat_g())
    P = interpolation(basis, points)
    t2 = time.perf_counter()
    steps = schedule(refine, levels)
    u = crank_nicolson(M, K, lambda _t: b, np.zeros(basis.N), steps, OUT_TIMES, lambda v: P @ v,
                       rannacher, backend)
    t3 = time.perf_counter()
    return dict(u=u, dofs=int(basis.N), steps=int(steps.size), time_s=t3 - t0, mesh_s=t1 - t0,
                assemble_s=t2 - t1, step_s=t3 - t2, h=h, refine=refine)


def table(label: str, sizes: Sequence[float], runs: Sequence[Dict]) -> Tuple[str, np.ndarray]:
    """The self-convergence table (differences to the last run, observed orders between
    consecutive rows, and the successive-difference order that needs no reference)."""
    fine = runs[-1]["u"]
    err = np.array([rel_l2(r["u"], fine) for r in runs])
    diff = [rel_l2(runs[k]["u"], runs[k + 1]["u"]) for k in range(len(runs) - 1)]
    lines = [f"{label:>8} {'dofs':>8} {'steps':>6} {'time (s)':>9} {'L2 vs finest':>13} {'order':>6} "
             f"{'L2 vs next':>11} {'order':>6}"]
    for k, r in enumerate(runs):
        o = np.log(err[k - 1] / err[k]) / np.log(sizes[k - 1] / sizes[k]) if 0 < k < len(runs) - 1 else np.nan
        os_ = np.log(diff[k - 1] / diff[k]) / np.log(sizes[k - 1] / sizes[k]) if 0 < k < len(diff) else np.nan
        d = f"{diff[k]:11.3e}" if k < len(diff) else f"{'':>11}"
        lines.append(f"{sizes[k]:>8.4g} {r['dofs']:>8d} {r['steps']:>6d} {r['time_s']:>9.1f} {err[k]:>13.3e} "
                     f"{o:>6.2f} {d} {os_:>6.2f}")
    return "\n".join(lines), err


def warm_up(backend: str = "auto") -> None:
    """Load gmsh, scikit-fem and the sparse backend on a tiny problem, so timings hold only work."""
    m = mesh(((0, 1), (0, 1)), [((0.5, 0.5), 0.2)], 0.3)
    basis, M, K, b = assemble(m, lambda x, _n: np.ones(x.shape[1:]))
    Factor((M + K).tocsr(), backend, spd=True).solve(b)


def snapshots(label: str, sizes: Sequence[float], runs: Sequence[Dict], every: int = 5) -> str:
    """Each run's difference to the last at single snapshots (relative to the pooled norm), to show
    where in time the error sits."""
    fine = runs[-1]["u"]
    cols = [1, 2, 3] + list(range(every, OUT_TIMES.size, every))
    lines = [f"{label:>8} " + " ".join(f"t={OUT_TIMES[j]:<6.1f}" for j in cols)]
    for s, r in zip(sizes[:-1], runs[:-1]):
        e = np.linalg.norm(r["u"] - fine, axis=1) / np.linalg.norm(fine)
        lines.append(f"{s:>8.4g} " + " ".join(f"{e[j]:<8.1e}" for j in cols))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--h", type=float, nargs="+", default=[0.4, 0.2, 0.1, 0.05],
                    help="mesh sizes of the space study (the finest also runs the time study)")
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16],
                    help="time refinements r of the time study (each base step split into r; the finest also "
                         "runs the space study)")
    ap.add_argument("--levels", type=int, default=LEVELS, help="geometric levels of the first output interval")
    ap.add_argument("--backend", default="auto", choices=["auto", "pardiso", "superlu"])
    ap.add_argument("--out", default=str(OUT), help="the reference file (.npz; '' writes nothing); the "
                    "convergence numbers go beside it, <stem>_refinement.npz")
    args = ap.parse_args(argv)
    hs, rs = sorted(args.h, reverse=True), sorted(args.steps)

    warm_up(args.backend)
    pts = eval_points()
    print(f"{pts.shape[1]} evaluation points × {OUT_TIMES.size} times; {schedule(1, args.levels).size} base steps")

    def run(h: float, r: int) -> Dict:
        out = solve(h, r, pts, args.levels, args.backend)
        print(f"  h={h:g} r={r}: {out['dofs']} dofs, {out['steps']} steps, {out['time_s']:.1f} s (mesh "
              f"{out['mesh_s']:.1f}, assembly {out['assemble_s']:.1f}, steps {out['step_s']:.1f})", flush=True)
        return out

    space = [run(h, rs[-1]) for h in hs[:-1]]
    time_runs = [run(hs[-1], r) for r in rs]
    space.append(time_runs[-1])  # the finest of both
    space_txt, space_err = table("h", hs, space)
    time_txt, time_err = table("r", [1.0 / r for r in rs], time_runs)
    time_txt = time_txt.replace("       r ", "     1/r ", 1)
    print(f"\nspace (r={rs[-1]}):\n{space_txt}\n\n{snapshots('h', hs, space)}"
          f"\n\ntime (h={hs[-1]:g}):\n{time_txt}\n\n{snapshots('1/r', [1.0 / r for r in rs], time_runs)}")
    if args.out:
        out = Path(args.out)
        u = time_runs[-1]["u"]  # [T, P]
        P, T = pts.shape[1], OUT_TIMES.size
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, x=np.repeat(pts[0], T), y=np.repeat(pts[1], T), t=np.tile(OUT_TIMES, P),
                            u=np.ascontiguousarray(u.T).ravel())  # node-major: row m·T + k is point m at t_k
        meta = dict(space_h=hs, space_steps=[r["steps"] for r in space], space_dofs=[r["dofs"] for r in space],
                    space_time_s=[r["time_s"] for r in space], space_l2_vs_finest=space_err.tolist(),
                    time_refine=rs, time_steps=[r["steps"] for r in time_runs], time_h=hs[-1],
                    time_dofs=[r["dofs"] for r in time_runs], time_time_s=[r["time_s"] for r in time_runs],
                    time_l2_vs_finest=time_err.tolist(), levels=args.levels)
        side = out.with_name(out.stem + "_refinement.npz")
        np.savez(side, **{k: np.asarray(v) for k, v in meta.items()})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {side}")


if __name__ == "__main__":
    main()
