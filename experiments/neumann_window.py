"""Least squares with Neumann rows and the kernel's truncation: the check behind the bump window
advice in docs/guide/fields.md.

−Δu + 10u = f on [0, 1]² with zero Neumann data on every side, exact u = cos πx·cos 2πy, one
level of 8 × 16 cells (one feature), one direct least-squares solve (16 points a cell), L2RE on
a 21² grid. The truncated paper kernel (ε = 1, ρ = 3) has a derivative jump at the edge of its
neighbourhood; the windowed one is C∞ across cell borders.

    python experiments/neumann_window.py        # a few seconds on 2 CPU cores
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled

PROBLEM = {
    "_target_": "dinf.pdes.EquationProblem", "name": "neumann_check", "in_dim": 2, "out_dim": 1, "unknowns": ["u"],
    "domain": {"space": {"x": [0, 1], "y": [0, 1]}}, "functions": {"g": "cos(pi*x)*cos(2*pi*y)"},
    "residuals": {"pde": "-(u_xx + u_yy) + 10*u - (5*pi^2 + 10)*g"},
    "conditions": {"walls": {"type": "neumann", "piece": "box", "value": 0, "weight": 100.0, "points": 16384}},
    "reference": {"exact": {"u": "g"}}, "evaluation": {"resolution": 21}, "batch_size": 32768, "resolution": [8, 16],
}
KERNELS = [  # (ε, ρ, window, cells)
    (1.0, 3, 0.0, [8, 16]), (1.0, 3, 0.0, [32, 64]), (1.0, 3, 1.0, [8, 16]),
    (0.8, 4, 0.0, [8, 16]), (0.7, 4, 0.0, [8, 16]), (0.7, 5, 0.0, [8, 16]),
]


def l2re(eps: float, rho: int, window: float, cells) -> float:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from dinf.app.run import build

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["grid.levels=1", "grid.features=1", f"kernel.eps={eps}",
                                           f"kernel.rho={rho}", f"kernel.window={window}",
                                           "solver=least_squares", "solver.method=direct"])
    with open_dict(cfg):
        cfg.pde = OmegaConf.create({**PROBLEM, "resolution": list(cells)})
    problem, field, solver = build(cfg)
    solver.solve(field.double(), problem, torch.Generator().manual_seed(0))
    return problem.evaluate(field)["l2re"]


def main() -> None:
    print("| ε | ρ | window | cells | L2RE |\n|---|---|---|---|---|")
    for eps, rho, window, cells in KERNELS:
        print(f"| {eps} | {rho} | {window:g} | {cells[0]} × {cells[1]} | {l2re(eps, rho, window, cells):.2g} |")


if __name__ == "__main__":
    main()
