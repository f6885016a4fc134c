"""An independent reference for Poisson2d-C and Poisson2d-CG: P2 finite elements (scikit-fem) on
gmsh meshes of the square minus its disks, with curved (isoparametric) edges on the circles.

PINNacle's COMSOL files are references, not exact solutions. This script solves the same
problem (geometry, coefficients and boundary values read from ``conf/pde/<problem>.yaml``) by
finite elements at a few mesh sizes, checks that they converge, and scores three things at the
file's nodes against the finest one: the file, the coarser meshes, and ∂∞-Grid's least-squares
solve (``experiment=pinnacle_<problem>``). It tells whether ∂∞-Grid's L2RE against the file is
its own error or the file's.

    pip install -e ".[fem]"            # scikit-fem and gmsh, an optional extra
    python experiments/fem_reference.py --problem poisson2d_cg --h 0.04 0.02 0.01
    python experiments/fem_reference.py --problem poisson2d_c --h 0.02 0.01 0.005
    python experiments/fem_reference.py --problem poisson2d_cg grid.resolution=128   # ∂∞-Grid overrides

The PDE is stated here as its weak form (−Δu + k²u = f), not parsed from the residual: the
two problems are ``u_xx + u_yy = 0`` (Poisson2d-C) and ``−(u_xx + u_yy) + k²u − f = 0``
(Poisson2d-CG).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled

from dinf.pdes.reference_data import l2re  # noqa: E402
from dinf.run import build  # noqa: E402
from dinf.sparse_solve import solve_spd  # noqa: E402


def mesh(box, disks, h: float):
    """A quadratic triangle mesh of ``box`` minus ``disks`` (gmsh), midpoints on the circles."""
    import gmsh
    from skfem import MeshTri, MeshTri2

    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        occ = gmsh.model.occ
        (x0, x1), (y0, y1) = box
        rect = occ.addRectangle(x0, y0, 0, x1 - x0, y1 - y0)
        holes = [occ.addDisk(cx, cy, 0, r, r) for (cx, cy), r in disks]
        occ.cut([(2, rect)], [(2, d) for d in holes])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, _, conn = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    index = {int(t): i for i, t in enumerate(tags)}
    p = coords.reshape(-1, 3)[:, :2].T
    t = np.vectorize(index.get)(conn[0].astype(int)).reshape(-1, 3).T
    used = np.unique(t)  # gmsh keeps the geometry's points; drop any no triangle uses
    remap = -np.ones(p.shape[1], int)
    remap[used] = np.arange(used.size)
    m = MeshTri2.from_mesh(MeshTri(p[:, used], remap[t]))
    # Put the boundary midpoints of the circles' edges on the circles (isoparametric P2).
    dofs = m.dofs.get_facet_dofs(m.boundary_facets()).flatten()
    locs = m.doflocs.copy()
    for (cx, cy), r in disks:
        d = locs[:, dofs] - np.array([[cx], [cy]])
        dist = np.hypot(*d)
        on = np.abs(dist - r) < 0.25 * h
        locs[:, dofs[on]] = np.array([[cx], [cy]]) + d[:, on] * (r / dist[on])
    return MeshTri2(locs, m.t)


def solve(cfg, h: float):
    """The P2 solution's interpolator, its degrees of freedom and the seconds it took."""
    from skfem import Basis, BilinearForm, ElementTriP2, LinearForm, condense
    from skfem.helpers import dot, grad

    pde = OmegaConf.to_container(cfg.pde, resolve=True)
    box = [pde["domain"]["space"]["x"], pde["domain"]["space"]["y"]]
    disks = [(tuple(s["disk"]["center"]), float(s["disk"]["radius"])) for s in pde["domain"]["holes"].values()]
    k2 = float(pde.get("params", {}).get("k", 0.0)) ** 2
    on_box, on_holes = (float(pde["conditions"][c]["value"]) for c in _pieces(pde))
    t0 = time.perf_counter()
    m = mesh(box, disks, h)
    basis = Basis(m, ElementTriP2(), intorder=6)

    @BilinearForm
    def a(u, v, _):
        return dot(grad(u), grad(v)) + k2 * u * v

    @LinearForm
    def rhs(v, w):
        x, y = w.x
        f = 10 * (17 + x**2 + y**2) * np.sin(np.pi * x) * np.sin(np.pi * y * 4) if k2 else 0 * x
        return f * v

    A, b = a.assemble(basis), rhs.assemble(basis)
    dofs = basis.get_dofs(m.boundary_facets()).all()
    xy = basis.doflocs[:, dofs]
    (x0, x1), (y0, y1) = box
    edge = (np.abs(xy[0] - x0) < 1e-9) | (np.abs(xy[0] - x1) < 1e-9) | (np.abs(xy[1] - y0) < 1e-9) | (
        np.abs(xy[1] - y1) < 1e-9)
    u = np.zeros(basis.N)
    u[dofs] = np.where(edge, on_box, on_holes)
    K, f, _, interior = condense(A, b, x=u, D=dofs)
    u[interior] = solve_spd(K.tocsr(), f)
    return (lambda x: probe(basis, u, x)), basis.N, time.perf_counter() - t0


def probe(basis, u: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``u`` at points ``x`` ``[2, M]`` (scikit-fem finds no elements on quadratic meshes): among
    each point's 8 nearest cells (by centroid), the one whose straight-sided triangle holds it or,
    for a node just outside, the least outside; then the curved cell's own coordinates."""
    from scipy.spatial import cKDTree
    from skfem import MeshTri

    m = basis.mesh
    affine = MeshTri(m.p, m.t)._mapping()  # straight-sided cells: a robust first guess
    centroids = m.p[:, m.t].mean(axis=1).T
    near = cKDTree(centroids).query(x.T, 8)[1]  # [M, 8]
    best, worst = np.zeros(x.shape[1], int), np.full(x.shape[1], -np.inf)
    for j in range(near.shape[1]):
        cells = near[:, j]
        X = affine.invF(x[:, :, None], tind=cells)[:, :, 0]
        margin = np.minimum(np.minimum(X[0], X[1]), 1 - X[0] - X[1])  # ≥ 0 inside the cell
        better = margin > worst
        best[better], worst[better] = cells[better], margin[better]
    X = basis.mapping.invF(x[:, :, None], tind=best)
    phis = np.array([basis.elem.gbasis(basis.mapping, X, k, tind=best)[0] for k in range(basis.Nbfun)])
    return np.einsum("kmq,km->m", phis, u[basis.element_dofs[:, best]])


def _pieces(pde) -> tuple:
    """The conditions on the box and on the holes, in that order."""
    by_piece = {c["piece"]: name for name, c in pde["conditions"].items()}
    return by_piece["box"], by_piece["holes"]


def ours(cfg):
    """∂∞-Grid's least-squares solution at the file's nodes, and its training time."""
    from hydra.utils import instantiate

    problem, field = build(cfg)
    solver = instantiate(cfg.optimizer.lsq)  # the solver train.py builds, every option included
    t0 = time.perf_counter()
    solver.solve(field, problem, torch.Generator().manual_seed(int(cfg.seed)))
    return problem, problem.predict(field, problem.eval_x)[:, 0].numpy(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problem", default="poisson2d_cg", choices=["poisson2d_c", "poisson2d_cg"])
    ap.add_argument("--h", type=float, nargs="+", default=[0.04, 0.02, 0.01], help="mesh sizes, finest last")
    ap.add_argument("overrides", nargs="*", help="config overrides for ∂∞-Grid's run (grid.resolution=128, …)")
    args = ap.parse_args()
    logging.getLogger("skfem").setLevel(logging.ERROR)  # its notes on array layouts
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment=pinnacle_{args.problem}", "~logger", *args.overrides])
    problem, pred, t_ours = ours(cfg)
    nodes = problem.eval_x.numpy().T
    file_u = problem.reference.points_and_values()[1][:, 0].numpy()
    fems = []
    for h in args.h:
        interp, ndof, secs = solve(cfg, h)
        fems.append((h, interp(nodes), ndof, secs))
        print(f"P2, h = {h:<6}: {ndof:>8} dofs, {secs:6.2f} s (mesh, assembly, solve)")
    finest = {"u": fems[-1][1]}
    score = lambda v: l2re({"u": v}, finest)["l2re"]  # noqa: E731
    print(f"\nL2RE at the file's {nodes.shape[1]} nodes, against P2 at h = {args.h[-1]}:")
    for h, v, ndof, secs in fems[:-1]:
        print(f"  P2, h = {h:<6} ({ndof} dofs, {secs:.2f} s)   {score(v):.2e}   against the file {l2re({'u': v}, {'u': file_u})['l2re']:.2e}")
    print(f"  PINNacle's file                     {score(file_u):.2e}")
    print(f"  ∂∞-Grid least squares ({t_ours:.1f} s)      {score(pred):.2e}   against the file "
          f"{l2re({'u': pred}, {'u': file_u})['l2re']:.2e}")


if __name__ == "__main__":
    main()
