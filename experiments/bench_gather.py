"""Forward + backward cost of reading grid features at random points (no derivatives).

Compares, for one ∂∞-Grid (256 cells, 6 levels, F = 2, ρ = 3, Gaussian) at N points:

* ``index``: each level's 36 neighbours gathered by advanced indexing, as the reference code
  does; its backward is PyTorch's ``index_put_(accumulate=True)``;
* ``index_add``: the same 36 rows per level through ``gather_rows`` (backward: ``index_add_``);
* ``patch``: one contiguous row of 36·F features per point and level from the unfolded
  "patch table" (the PyTorch path of ``DInfGrid``);
* ``fused``: the numba kernel of ``rbf_cpu.py`` (weights, gather and contraction in one pass).

All four compute the same values (checked). Reproduce: ``python experiments/bench_gather.py``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402
from dinf.fields.gather import gather_rows  # noqa: E402


def level_by_rows(grid: DInfGrid, x: torch.Tensor, level: int, gather: Callable) -> torch.Tensor:
    """One level's values from its 36 neighbours gathered as single rows of F features."""
    b = grid.level_basis(x, level, 0)
    n, k, f = x.shape[0], 2 * grid.rho, grid.features
    size = grid.grids[level].shape[0]
    start = torch.stack([(b.rows // (grid.cells[level] + 2)), b.rows % (grid.cells[level] + 2)], 1)
    off = torch.arange(k)
    rows = ((start[:, 0, None] + off)[:, :, None] * size + (start[:, 1, None] + off)[:, None, :]).reshape(-1)
    feats = gather(grid.grids[level].reshape(-1, f), rows).view(n, k, k, f)
    w0, w1 = b.weights[:, 0, 0], b.weights[:, 1, 0]  # per-axis value weights [N, K]
    return torch.einsum("ni,nj,nijf->nf", w0, w1, feats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=16384)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.manual_seed(0)
    grid = DInfGrid(2, 1, resolution=256, levels=6, backend="torch")
    for g in grid.grids:
        g.data.normal_()
    x = torch.rand(args.points, 2) * 2 - 1
    methods: Dict[str, Callable[[], torch.Tensor]] = {
        "index": lambda: torch.cat([level_by_rows(grid, x, s, lambda t, r: t[r]) for s in range(grid.levels)], 1),
        "index_add": lambda: torch.cat([level_by_rows(grid, x, s, gather_rows) for s in range(grid.levels)], 1),
        "patch": lambda: grid.features_jet(x, 0).value,
    }
    fused = DInfGrid(2, 1, resolution=256, levels=6, backend="numba")
    fused.load_state_dict(grid.state_dict())
    methods["fused"] = lambda: fused.features_jet(x, 0).value
    reference = methods["patch"]().detach()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, points {args.points}\n")
    print("| gather | ms (median, forward + backward) | × the fused kernel |\n|---|---|---|")
    results = {}
    for name, fn in methods.items():
        assert torch.allclose(fn(), reference, atol=1e-5), name
        times = []
        for _ in range(args.repeats + 2):
            grid.zero_grad(), fused.zero_grad()
            t0 = time.perf_counter()
            fn().square().sum().backward()
            times.append(time.perf_counter() - t0)
        results[name] = statistics.median(times[2:]) * 1e3
    for name, ms in results.items():
        print(f"| {name} | {ms:.1f} | {ms / results['fused']:.1f}× |")


if __name__ == "__main__":
    main()
