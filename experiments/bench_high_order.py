"""Forward + backward time of an order-4 jet on the CPU: the fused numba kernel (looped, orders
3 and 4) against the PyTorch path (``backend="torch"``, the reference).

One step = ``features_jet(x, order)`` of a 2D ∂∞-Grid, a loss over every entry, and its gradient
with respect to the grids. Times are the median and minimum over repeats after a warm-up (which
also compiles or loads the kernel), the backends' steps interleaved.

Reproduce (from the repository root)::

    python experiments/bench_high_order.py                      # 20 000 points, 4 levels, ρ 8
    python experiments/bench_high_order.py --threads 1                # both on one thread
    python experiments/bench_high_order.py --order 3 --dims 3 --points 5000 --rho 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

import numba
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402

BACKENDS = ("numba", "torch")


def step(grid: DInfGrid, x: torch.Tensor, order: int) -> None:
    """One forward + backward of every jet entry."""
    entries = grid.features_jet(x, order).entries()
    torch.autograd.grad((entries * entries).sum(), list(grid.grids))


def timed(grid: DInfGrid, x: torch.Tensor, order: int, repeats: int) -> Dict[str, List[float]]:
    """Seconds per step for each backend, the two interleaved: the machine's load drifts."""
    times: Dict[str, List[float]] = {b: [] for b in BACKENDS}
    for rep in range(repeats + 1):
        for backend in BACKENDS:
            grid.backend = backend
            t0 = time.perf_counter()
            step(grid, x, order)
            if rep:  # the first is a warm-up: it compiles (or loads) the kernel, first-touch allocations
                times[backend].append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=20_000)
    p.add_argument("--dims", type=int, default=2)
    p.add_argument("--order", type=int, default=4)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--features", type=int, default=2)
    p.add_argument("--rho", type=int, default=8)
    p.add_argument("--eps", type=float, default=0.6)
    p.add_argument("--window", type=float, default=0.0)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="threads for both backends (0: as they start)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    torch.manual_seed(0)
    grid = DInfGrid(args.dims, 1, resolution=args.resolution, levels=args.levels, features=args.features,
                    rho=args.rho, eps=args.eps, window=args.window, init_scale=1.0)
    x = torch.rand(args.points, args.dims) * 2 - 1
    times = timed(grid, x, args.order, args.repeats)
    for backend in BACKENDS:
        print(f"{backend:6s} median {statistics.median(times[backend]):.3f} s  min {min(times[backend]):.3f} s",
              flush=True)
    ratio = statistics.median(times["torch"]) / statistics.median(times["numba"])
    print(f"order {args.order}, {args.dims}D, {args.points} points, {args.levels} levels, ρ {args.rho}, "
          f"{args.features} features, {torch.get_num_threads()} threads: PyTorch / fused = {ratio:.2f}")


if __name__ == "__main__":
    main()
