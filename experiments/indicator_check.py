"""The error indicator against the true error (issue 31, item 1; docs/guide/adaptivity.md).

    python experiments/indicator_check.py                 # every case below
    python experiments/indicator_check.py --cases burgers1d

Each case is a problem with an exact solution, solved briefly (settings below) so that its error
is visible, then η_K (``dinf.pdes.indicator``, on the lattice and with the rule a run uses: the
grid's finest level, 3 Gauss–Legendre points per axis in two coordinates, 2 in three) is set
beside the true error per cell, by the same rule over the same cells: ``‖e‖_{L2(K)}`` and ``|e|_{H1(K)}`` (the gradient over every
coordinate, time included; the field's from its jet, the reference's by central differences of
the exact solution, step 1e-6 of the box). Reported per case: the Pearson and Spearman
correlations of log η_K with log |e|_{H1(K)} and log ‖e‖_{L2(K)} over the cells inside the
domain, and the effectivity indices η / |e|_{H1} and η / ‖e‖_{L2} (η = (Σ η_K²)^½).

Cases (2 CPU cores, each under a minute):
- ``example_hole``: Poisson on a plate with a hole, Dirichlet edges, Neumann hole, manufactured
  solution (elliptic: the estimator's home ground); least squares on a coarse grid (16 × 8 cells),
  and on one twice as fine (``example_hole_fine``, 32 × 16): the effectivity should stay put.
- ``burgers1d``: PINNacle's Burgers1d-C without its hand-set focus, a 256 × 32 grid, 6
  Gauss–Newton solves (a shock the grid does not resolve); exact Cole–Hopf reference.
- ``heat2d_ms``: PINNacle's Heat2d-MS, its best settings (48 × 3 × 4 cells, the conditions exact),
  one least-squares solve.
- ``wave1d``: PINNacle's Wave1d-C (hyperbolic: no H¹ bound is claimed), 64 × 64 cells, one
  least-squares solve.

Output: a Markdown table on stdout; with ``--out DIR`` the pictures of η_K and of |e|_H1(K) per case.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dinf.app.indicator import lattice_cells  # noqa: E402
from dinf.pdes.indicator import cell_indicator, cell_quadrature, gauss_points, picture, uniform_edges  # noqa: E402

COMMON = ["trainer.accelerator=cpu", "~logger", "checkpoint.registry=null"]
CASES: Dict[str, Dict[str, Any]] = {
    "example_hole": {"overrides": ["pde=example_hole", "solver=least_squares", "grid.resolution=[16,8]",
                                   "grid.levels=1"], "solves": 1},
    "example_hole_fine": {"overrides": ["pde=example_hole", "solver=least_squares", "grid.resolution=[32,16]",
                                        "grid.levels=1"], "solves": 1},
    "burgers1d": {"overrides": ["pde=burgers1d", "grid.focus=null", "grid.resolution=[256,32]",
                                "solver=gauss_newton", "solver.points=32768"], "solves": 6},
    "heat2d_ms": {"overrides": ["pde=heat2d_ms", "solver=least_squares"], "solves": 1},
    "wave1d": {"overrides": ["pde=wave1d", "solver=least_squares", "grid.resolution=[64,64]", "grid.levels=1"],
               "solves": 1},
}


def compose(overrides: List[str]) -> Any:
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=COMMON + overrides)


def solve(overrides: List[str], solves: int) -> Any:
    """``(problem, field, seconds)``: the config built and solved ``solves`` times (or until the
    solver reports convergence)."""
    from dinf.app.run import build

    torch.manual_seed(0)
    problem, field, solver = build(compose(overrides))
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    solver.warm_up()
    for _ in range(solves):
        info = solver.solve(field, problem, generator)
        if info.get("converged"):
            break
    return problem, field, time.perf_counter() - start


def reference_gradient(problem: Any, x: torch.Tensor) -> torch.Tensor:
    """``[N, C, d]``: central differences of the exact solution, step 1e-6 of the box per axis."""
    bounds = problem.domain.bounds
    cols = []
    for a in range(problem.in_dim):
        step = 1e-6 * float(bounds[a, 1] - bounds[a, 0])
        up, down = x.clone(), x.clone()
        up[:, a] += step
        down[:, a] -= step
        cols.append((problem.reference.exact_values(up) - problem.reference.exact_values(down)) / (2 * step))
    return torch.stack(cols, -1)


def cell_errors(problem: Any, field: Any, edges: List[np.ndarray], points_per_axis: int = 3) -> Dict[str, np.ndarray]:
    """Per cell: ``l2`` = ‖u − u*‖_{L2(K∩Ω)} and ``h1`` = |u − u*|_{H1(K∩Ω)} by the quadrature of
    ``cell_indicator``."""
    ncells = math.prod(len(e) - 1 for e in edges)
    l2, h1 = np.zeros(ncells), np.zeros(ncells)
    for x, cell, w in cell_quadrature(problem.domain, edges, points_per_axis):
        with torch.enable_grad():
            jet, _ = problem.jet_at(field, x)
        value = jet.value.detach().double().cpu()
        grad = jet.grad.detach().double().cpu()
        e0 = (value - problem.reference.exact_values(x)).pow(2).sum(1).numpy()
        e1 = (grad - reference_gradient(problem, x)).pow(2).sum((1, 2)).numpy()
        l2 += np.bincount(cell, weights=w * e0, minlength=ncells)
        h1 += np.bincount(cell, weights=w * e1, minlength=ncells)
    return {"l2": np.sqrt(l2), "h1": np.sqrt(h1)}


def correlations(eta: np.ndarray, err: np.ndarray) -> Dict[str, float]:
    keep = (eta > 0) & (err > 0) & np.isfinite(eta) & np.isfinite(err)
    a, b = np.log(eta[keep]), np.log(err[keep])
    return {"pearson": float(pearsonr(a, b)[0]), "spearman": float(spearmanr(a, b)[0]), "cells": int(keep.sum())}


def check(name: str, out: Path = None) -> Dict[str, Any]:
    case = CASES[name]
    problem, field, seconds = solve(case["overrides"], case["solves"])
    edges = uniform_edges(problem, lattice_cells(problem, field))
    p = gauss_points(problem.in_dim)
    field.eval()
    with torch.enable_grad():
        ind = cell_indicator(problem, field, edges, p)
    errors = cell_errors(problem, field, edges, p)
    metrics = problem.evaluate(field)
    eta = ind.eta.reshape(-1)
    inside = ind.covered.reshape(-1)
    h1, l2 = math.sqrt(float((errors["h1"] ** 2).sum())), math.sqrt(float((errors["l2"] ** 2).sum()))
    if out is not None:  # η_K beside the true |e|_H1(K), on the same cells and colour scheme
        out.mkdir(parents=True, exist_ok=True)
        truth = replace(ind, eta=errors["h1"].reshape(ind.eta.shape), total=h1)
        for label, what in (("indicator", ind), ("error_h1", truth)):
            fig = picture(what, problem.time)
            if label == "error_h1":
                for ax in fig.axes[::2]:
                    ax.set_title(ax.get_title().replace("error indicator η_K (η", "true error |e|_H1(K) (total"))
            fig.savefig(out / f"{name}_{label}.png", dpi=90, bbox_inches="tight")
    return {
        "case": name, "cells": " × ".join(str(len(e) - 1) for e in edges), "solve_s": seconds,
        "indicator_s": ind.seconds, "l2re": metrics.get("l2re", math.nan), "eta": ind.total,
        "eta_eq": ind.equations, "eta_cond": ind.conditions, "h1": h1, "l2": l2,
        "vs_h1": correlations(eta[inside], errors["h1"][inside]),
        "vs_l2": correlations(eta[inside], errors["l2"][inside]),
    }


def table(rows: List[Dict[str, Any]]) -> str:
    head = ("| case | cells | L2RE | η (equations, conditions) | \\|e\\|_H1 | η / \\|e\\|_H1 | η / ‖e‖_L2 | "
            "log η_K vs log \\|e\\|_H1(K): Pearson, Spearman | vs log ‖e‖_L2(K): Pearson, Spearman | solve, η |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['cells']} | {r['l2re']:.2e} | {r['eta']:.3g} ({r['eta_eq']:.3g}, {r['eta_cond']:.3g}) | "
            f"{r['h1']:.3g} | {r['eta'] / r['h1']:.3g} | {r['eta'] / r['l2']:.3g} | "
            f"{r['vs_h1']['pearson']:.2f}, {r['vs_h1']['spearman']:.2f} | "
            f"{r['vs_l2']['pearson']:.2f}, {r['vs_l2']['spearman']:.2f} | "
            f"{r['solve_s']:.1f} s, {r['indicator_s']:.2f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="write <case>_indicator.png and <case>_error_h1.png (the true error per cell) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    rows = []
    for name in args.cases:
        rows.append(check(name, args.out))
        print(f"{name}: done ({rows[-1]['solve_s']:.1f} s solve)", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
