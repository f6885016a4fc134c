"""An independent reference for Poisson2d-C and Poisson2d-CG: P2 finite elements (scikit-fem) on
gmsh meshes of the square minus its disks, with curved (isoparametric) edges on the circles.

PINNacle's COMSOL files are references, not exact solutions. This script solves the same
problem (geometry, coefficients and boundary values read from ``conf/pde/<problem>.yaml``) by
finite elements at a few mesh sizes, checks that they converge, and scores three things at the
file's nodes against the finest one: the file, the coarser meshes, and ∂∞-Grid's least-squares
solve (``pde=<problem>``, its best settings). It tells whether ∂∞-Grid's L2RE against the file is
its own error or the file's.

    pip install -e ".[fem]"            # scikit-fem and gmsh, an optional extra
    python experiments/fem_reference.py --problem poisson2d_cg --h 0.04 0.02 0.01
    python experiments/fem_reference.py --problem poisson2d_c --h 0.02 0.01 0.005
    python experiments/fem_reference.py --problem poisson2d_cg grid.resolution=128   # ∂∞-Grid overrides

The finite elements are ``model=fem``'s (``dinf.solvers.classical.fem``): the weak form is read off the
problem's parsed equation, so this script and ``python train.py … model=fem`` solve the same
system.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled

from dinf.solvers.classical.fem import FiniteElements, mesh, probe  # noqa: E402,F401  (mesh: for its tests)
from dinf.pdes.reference_data import l2re  # noqa: E402
from dinf.app.run import build  # noqa: E402


def solve(problem, h: float):
    """P2 (``solver=fem``'s finite elements) on ``problem``: the solution's interpolator, its
    degrees of freedom and the seconds it took (mesh, assembly, solve)."""
    fe = FiniteElements(h=h, order=2)
    t0 = time.perf_counter()
    info = fe.solve(fe.result_field(), problem)
    return (lambda x: probe(fe._basis, fe._u, x)), info["dofs"], time.perf_counter() - t0


def ours(cfg):
    """∂∞-Grid's least-squares solution at the file's nodes, and its training time."""
    problem, field, solver = build(cfg)  # the solver train.py builds (auto: least squares), every option included
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
        cfg = compose("config", overrides=[f"pde={args.problem}", "~logger", *args.overrides])
    problem, pred, t_ours = ours(cfg)
    nodes = problem.eval_x.numpy().T
    file_u = problem.reference.points_and_values()[1][:, 0].numpy()
    fems = []
    for h in args.h:
        interp, ndof, secs = solve(problem, h)
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
