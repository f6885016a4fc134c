"""Edge handling, measured: least-squares fit of a smooth function by one ∂∞-Grid level.

The grid is linear in its features, so the best possible fit of a target u at sample points is
a linear least-squares problem in the features of one level (F = 1). Its relative L2 error on
fresh points tells how well ``edge=pad`` (ρ ghost nodes beyond the domain) and ``edge=clamp``
(the reference code's index clamping) can represent u up to and including the boundary.

Reproduce: ``python experiments/edge_fit.py`` (a few seconds).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402


def design_matrix(grid: DInfGrid, x: torch.Tensor) -> torch.Tensor:
    """``[N, nodes]``: interpolation weights of every node of level 0 at each point (2D)."""
    b = grid.level_basis(x, 0, 0)
    n, k, size = grid.cells[0], 2 * grid.rho, grid.grids[0].shape[0]
    start = torch.stack([b.rows // (n + 2), b.rows % (n + 2)], 1) - 1  # first neighbour, padded
    ghost = grid.ghost
    off = torch.arange(k)
    w = b.weights[:, 0, 0, :, None] * b.weights[:, 1, 0, None, :]  # [N, K, K]
    # Clamp mode reads ghost-free grids through replicate padding: map padded to real indices.
    i0 = (start[:, 0, None] + off + 1 - grid.rho).clamp(-ghost, n + ghost) + ghost
    i1 = (start[:, 1, None] + off + 1 - grid.rho).clamp(-ghost, n + ghost) + ghost
    cols = (i0[:, :, None] * size + i1[:, None, :]).reshape(len(x), -1)
    a = torch.zeros(len(x), size * size, dtype=x.dtype)
    a.scatter_add_(1, cols, w.reshape(len(x), -1))
    return a


def fit_error(edge: str, cells: int, eps: float, rho: int, target, samples: int = 96) -> float:
    grid = DInfGrid(2, 1, resolution=cells, levels=1, features=1, edge=edge, eps=eps, rho=rho).double()
    lin = torch.linspace(-1, 1, samples, dtype=torch.float64)
    x = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)
    # gelsd (SVD): the default gelsy returned zeros on this rank-deficient system (unused ghost
    # corners).
    coef = torch.linalg.lstsq(design_matrix(grid, x), target(x)[:, None], driver="gelsd").solution
    test = torch.rand(20000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pred = design_matrix(grid, test) @ coef
    exact = target(test)[:, None]
    return float((pred - exact).norm() / exact.norm())


def smooth(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])


def shifted(x: torch.Tensor) -> torch.Tensor:
    """Non-zero at the boundary, where clamping matters most."""
    return torch.cos(1.5 * math.pi * x[:, 0] + 0.3) * torch.exp(x[:, 1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=32)
    args = p.parse_args()
    print(f"one level, {args.cells} cells, F = 1, relative L2 error of the least-squares fit\n")
    print("| target | ε | ρ | pad | clamp |\n|---|---|---|---|---|")
    for name, fn in (("sin(πx)·sin(πy)", smooth), ("cos(1.5πx+0.3)·exp(y)", shifted)):
        for eps, rho in ((1.0, 3), (1.0, 2), (0.7, 3), (1.5, 3)):
            pad, clamp = (fit_error(e, args.cells, eps, rho, fn) for e in ("pad", "clamp"))
            print(f"| {name} | {eps} | {rho} | {pad:.2e} | {clamp:.2e} |")


if __name__ == "__main__":
    main()
