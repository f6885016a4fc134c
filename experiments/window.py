"""The bump window (``kernel.window``): how far a field jumps across cell borders, and what the
window costs in speed.

**Jump.** ∂∞-Grid interpolates from the (2ρ)^d nodes around floor(t), so at a cell border
(integer t) one node leaves the neighbourhood and another enters. Without a window they enter
with the Gaussian's weight there, exp(−ε²ρ²) relative, and the field, its gradient and its
Hessian jump. With the window φ·exp(−c s⁴/(1 − s²)), s = r/ρ, both carry weight 0 to all
orders. For random O(1) features on a 2D grid (float64) this evaluates value, gradient and
Hessian at every finest-level border of both axes from both sides (the point on the border, and
the nearest float below it, whose floor(t) is one less) and reports the largest difference
relative to the largest entry of that jet part over the same points.

**Speed.** The fused CPU kernel's forward + backward at order 2 (one Gaussian exp per axis per
level without a window, one per node with it), median seconds over repeats.

    python experiments/window.py              # both; about a minute on 2 CPU cores
    python experiments/window.py --no-speed
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402

KERNELS = [(1.0, 3), (0.7, 5)]  # (ε, ρ): the paper's, and the wide Gaussian
WINDOWS = [0.0, 0.5, 1.0, 2.0]


def border_pairs(cells: int, d: int = 2, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Points on every border x_a = −1 + 2i/n (i = 1 … n−1) of each axis, the other coordinate
    random, and the same points with x_a moved to the nearest float below the border in t."""
    g = torch.Generator().manual_seed(seed)
    on, below = [], []
    b = -1.0 + 2.0 * torch.arange(1, cells, dtype=torch.float64) / cells
    for a in range(d):
        x = torch.rand(len(b), d, generator=g, dtype=torch.float64) * 2 - 1
        x[:, a] = b
        y = x.clone()
        below_b = b.numpy().copy()
        # The nearest float below whose t = (x + 1) n / 2 rounds below the border (a few ulps).
        while True:
            low = np.floor((below_b + 1.0) * (0.5 * cells)) == np.round((b.numpy() + 1.0) * (0.5 * cells))
            if not low.any():
                break
            below_b[low] -= np.spacing(1.0 + np.abs(below_b[low]))  # an ulp of x + 1, not of x (x = 0)
        y[:, a] = torch.as_tensor(below_b)
        on.append(x)
        below.append(y)
    return torch.cat(on), torch.cat(below)


def jumps(eps: float, rho: int, window: float, cells: int = 32, backend: str = "numba") -> Dict[str, float]:
    """Largest jump across the borders of a one-level grid, relative, for value, grad, Hessian."""
    torch.manual_seed(0)
    field = DInfGrid(2, 1, resolution=cells, levels=1, features=1, eps=eps, rho=rho, window=window,
                     backend=backend).double()
    with torch.no_grad():
        for p in field.grids:
            p.normal_()
    on, below = border_pairs(cells)
    # floor(t) differs between the two: the point below the border reads the other neighbourhood.
    t_on, t_below = (on + 1) * cells / 2, (below + 1) * cells / 2
    assert bool(((t_on.floor() - t_below.floor()).abs().sum(1) == 1).all())
    with torch.no_grad():
        a, b = field.jet(on, 2), field.jet(below, 2)
    out = {}
    for name, u, v in (("value", a.value, b.value), ("grad", a.grad, b.grad), ("hess", a.hess, b.hess)):
        out[name] = float((u - v).abs().max() / u.abs().max())
    return out


def speed(window: float, eps: float, rho: int, n: int = 65536, repeats: int = 7) -> float:
    """Median seconds of the fused kernel's forward + backward at order 2 (6 levels, 256 cells)."""
    torch.manual_seed(0)
    field = DInfGrid(2, 1, resolution=256, levels=6, features=2, eps=eps, rho=rho, window=window)
    x = torch.rand(n, 2) * 2 - 1
    times: List[float] = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        jet = field.jet(x, 2)
        (jet.value.sum() + jet.grad.sum() + jet.hess.sum()).backward()
        if i >= 2:  # the first calls compile or load the kernel
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-speed", action="store_true", help="only the jumps")
    args = ap.parse_args()
    print("| ε, ρ | window c | value | gradient | Hessian |")
    print("|---|---|---|---|---|")
    for eps, rho in KERNELS:
        for c in WINDOWS:
            j = jumps(eps, rho, c)
            print(f"| {eps:g}, {rho} | {c:g} | {j['value']:.1e} | {j['grad']:.1e} | {j['hess']:.1e} |")
    if args.no_speed:
        return
    print("\n| ε, ρ | window c | forward + backward, order 2, 65 536 points, 6 levels |")
    print("|---|---|---|")
    for eps, rho in KERNELS:
        for c in (0.0, 1.0):
            print(f"| {eps:g}, {rho} | {c:g} | {speed(c, eps, rho) * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
