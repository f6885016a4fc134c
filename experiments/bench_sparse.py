"""The normal equations of one Gauss–Newton step: forming AᵀA, and PARDISO against SuperLU.

Builds the first step's Jacobian of a problem (default: NS2d-C on 64² cells, one level, 65 536
points, as in the README), forms AᵀA plainly, over threads and from the Gram blocks of rows that
share their columns (``dinf.solvers.linalg.gram``), and solves the damped system with
each available backend, reporting seconds and the backends' agreement.

    python experiments/bench_sparse.py
    python experiments/bench_sparse.py grid.levels=2          # any config override
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled
from dinf.solvers.gauss_newton import GaussNewton  # noqa: E402
from dinf.solvers.linalg.gram import warm_up  # noqa: E402
from dinf.app.run import build  # noqa: E402
from dinf.solvers.linalg.gram import normal_matrix  # noqa: E402
from dinf.solvers.linalg.sparse_solve import pardiso_available, solve_spd  # noqa: E402

DEFAULT = ["pde=ns2d_c", "solver=gauss_newton", "grid.levels=1", "grid.features=3", "pde.resolution=64",
           "solver.points=65536"]


def main(overrides: list) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=DEFAULT + overrides)
    problem, field, _ = build(cfg)
    gn = GaussNewton(points=int(cfg.solver.points))
    st = gn._start(field, problem, torch.Generator().manual_seed(0))
    A = st.jacobian(st.system)
    print(f"A: {A.shape[0]} × {A.shape[1]}, {A.nnz} nonzeros")
    t = time.perf_counter()
    plain = (A.T @ A).tocsr()
    print(f"AᵀA plain      {time.perf_counter() - t:6.2f} s  ({plain.nnz} nonzeros)")
    t = time.perf_counter()
    M = normal_matrix(A, grouped=False)
    print(f"AᵀA threaded   {time.perf_counter() - t:6.2f} s")
    warm_up()  # numba compiles the grouped kernels once (cached on disk)
    t = time.perf_counter()
    grouped = normal_matrix(A)
    print(f"AᵀA grouped    {time.perf_counter() - t:6.2f} s  (Gram blocks of rows sharing columns; "
          f"max relative difference {abs(grouped - plain).max() / abs(plain).max():.1e})")
    M = M + 1e-6 * float(M.diagonal().mean()) * sp.identity(M.shape[0], format="csr")
    b = np.random.default_rng(0).standard_normal(M.shape[0])
    solutions = {}
    for backend in ["superlu"] + (["pardiso"] if pardiso_available() else []):
        t = time.perf_counter()
        solutions[backend] = solve_spd(M, b, backend)
        print(f"solve {backend:8s} {time.perf_counter() - t:6.2f} s")
    if len(solutions) == 2:
        x, y = solutions["superlu"], solutions["pardiso"]
        print(f"max relative difference {np.abs(x - y).max() / np.abs(x).max():.1e}")
    else:
        print("pypardiso is not installed: pip install -e \".[pardiso]\" (x86-64)")


if __name__ == "__main__":
    main(sys.argv[1:])
