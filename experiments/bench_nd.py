"""∂∞-Grid on two and three axes: one training iteration, fused CPU kernel vs PyTorch path.

One iteration = draw N points -> ``field.jet(x, 2)`` (value, gradient, Hessian through the
linear decoder) -> a loss on all three -> backward -> Adam step, at the same N for every grid:

* ``2D 256²``: 256 × 256 cells, 6 levels (the 2D default);
* ``3D 64³``: 64 × 64 × 64 cells, 4 levels;
* ``2D+t``: 256 × 256 × 32 cells (a resolution per axis), 4 levels.

Each grid runs with ``backend="numba"`` (the fused kernel) and ``backend="torch"`` (PyTorch
ops over a patch table: every level unfolded so that each point's (2ρ)^d neighbours are one
row, i.e. K^d = 216 copies of the level in 3D at ρ = 3). The PyTorch path is skipped when its
patch tables alone would exceed ``--max-patch-gib`` (default 6; the 2D+t grid needs 4.2 GiB of
them, and its iteration peaked at 5.3 GB resident); the estimate is printed instead.

Memory: peak resident-set growth (``/proc/self/statm``, polled every millisecond by a thread,
``experiments/bench_jets.py``'s ``peak_rss_growth``) during one untimed iteration, above the
resident set at its start: the iteration's transient allocations (patch tables, kernel
buffers, jets), not the parameters and Adam state, which are listed separately.

Reproduce (from the repository root)::

    python experiments/bench_nd.py                  # ~1-2 minutes on 2 CPU cores, 6 GB of memory
    python experiments/bench_nd.py --repeats 3 --grids 3d
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_jets import peak_rss_growth  # noqa: E402
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402

GRIDS: Dict[str, Dict] = {
    "2d": dict(label="2D 256²", in_dim=2, resolution=256, levels=6),
    "3d": dict(label="3D 64³", in_dim=3, resolution=64, levels=4),
    "2dt": dict(label="2D+t 256²×32", in_dim=3, resolution=[256, 256, 32], levels=4),
}
PATHS = {"numba": "fused kernel (numba)", "torch": "PyTorch ops (patch table)"}


def make_field(grid: Dict, backend: str, features: int, rho: int) -> DInfGrid:
    torch.manual_seed(0)
    return DInfGrid(grid["in_dim"], 1, resolution=grid["resolution"], levels=grid["levels"], features=features,
                    rho=rho, decoder="linear", backend=backend)


def patch_table_gib(field: DInfGrid) -> float:
    """What the PyTorch path's patch tables of all levels hold (float32), in GiB."""
    k, d, f = 2 * field.rho, field.in_dim, field.features
    rows = sum(torch.tensor([n + 2 for n in cells]).prod().item() for cells in field.cells_per_axis)
    return rows * k**d * f * 4 / 2**30


def bench(field: DInfGrid, args: argparse.Namespace) -> Dict:
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1234)  # the same points for both paths of a grid

    def step() -> float:
        x = torch.rand(args.points, field.in_dim, generator=gen) * 2 - 1
        jet = field.jet(x, 2)
        # A loss on value, gradient and Hessian (a Poisson-like residual plus both norms).
        loss = (jet.laplacian() - 1.0).square().mean() + jet.grad.square().mean() + jet.value.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach().item()

    # Warm-up: numba compiles (or loads) its kernels, Adam allocates its state. The last
    # warm-up iteration, untimed so that the polling does not perturb the timings, gives the memory.
    for _ in range(args.warmup - 1):
        step()
    peak_mib, _ = peak_rss_growth(step)
    times: List[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in field.parameters())
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times, "peak_rss_mib": peak_mib,
            "params": params, "params_mib": params * 4 / 2**20}


def run(args: argparse.Namespace) -> List[Dict]:
    rows = []
    for key in args.grids.split(","):
        grid = GRIDS[key]
        for backend in args.paths.split(","):
            field = make_field(grid, backend, args.features, args.rho)
            row = {"grid": grid["label"], "key": key, "axes": grid["in_dim"], "levels": grid["levels"],
                   "path": PATHS[backend], "backend": backend, "patch_gib": patch_table_gib(field)}
            if backend == "torch" and row["patch_gib"] > args.max_patch_gib:
                row.update(skipped=True, params=sum(p.numel() for p in field.parameters()))
                print(f"  {grid['label']:14s} {PATHS[backend]:26s} skipped: patch tables {row['patch_gib']:.1f} GiB "
                      f"> --max-patch-gib {args.max_patch_gib}", flush=True)
            else:
                row.update(bench(field, args), skipped=False)
                print(f"  {grid['label']:14s} {PATHS[backend]:26s} {row['median_s']:.4f} s/iter  "
                      f"peak ΔRSS {row['peak_rss_mib']:.0f} MiB", flush=True)
            rows.append(row)
            del field
    return rows


def table(rows: List[Dict], points: int) -> str:
    out = ["| grid | levels | parameters (MiB) | path | s/iter (median) | s/iter (min) | × fused | µs per point "
           "| peak ΔRSS (MiB) |", "|---|---|---|---|---|---|---|---|---|"]
    fused = {r["key"]: r["median_s"] for r in rows if r["backend"] == "numba" and not r["skipped"]}
    for r in rows:
        params = f"{r['params']:,} ({r['params'] * 4 / 2**20:.1f})"
        if r["skipped"]:
            out.append(f"| {r['grid']} | {r['levels']} | {params} | {r['path']} | skipped: patch tables "
                       f"{r['patch_gib']:.1f} GiB | | | | |")
            continue
        base: Optional[float] = fused.get(r["key"])
        ratio = f"{r['median_s'] / base:.1f}×" if base else "–"
        out.append(f"| {r['grid']} | {r['levels']} | {params} | {r['path']} | {r['median_s']:.4f} | "
                   f"{r['min_s']:.4f} | {ratio} | {1e6 * r['median_s'] / points:.2f} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=16384, help="collocation points per iteration")
    p.add_argument("--repeats", type=int, default=5, help="timed iterations per grid and path")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (>= 1)")
    p.add_argument("--grids", default="2d,3d,2dt", help=f"comma list of {','.join(GRIDS)}")
    p.add_argument("--paths", default="numba,torch", help="comma list of numba,torch")
    p.add_argument("--features", type=int, default=2)
    p.add_argument("--rho", type=int, default=3)
    p.add_argument("--max-patch-gib", type=float, default=6.0,
                   help="skip the PyTorch path where its patch tables would exceed this")
    p.add_argument("--threads", type=int, default=None, help="torch and numba threads")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    bad = [g for g in args.grids.split(",") if g not in GRIDS] + [b for b in args.paths.split(",") if b not in PATHS]
    if bad:
        p.error(f"unknown grids or paths {bad}")
    args.warmup, args.repeats = max(1, args.warmup), max(1, args.repeats)
    if args.threads:
        torch.set_num_threads(args.threads)
        import numba

        numba.set_num_threads(args.threads)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    header = (f"torch {torch.__version__}, threads {torch.get_num_threads()}, points {args.points}, "
              f"features {args.features}, ρ {args.rho}, float32, warmup {args.warmup}, repeats {args.repeats}, "
              f"load average at start {load}")
    print(header, flush=True)
    if load != "?" and float(load) > 0.5 * (os.cpu_count() or 1):  # others stall OpenMP workers
        print("warning: the machine is busy; multi-threaded timings can be inflated many-fold "
              "(--threads 1 is more robust)", flush=True)
    t0 = time.perf_counter()
    rows = run(args)
    print(f"\n{header}, total {time.perf_counter() - t0:.0f} s\n\n{table(rows, args.points)}")
    if args.out:
        args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                                        "load_average": load, "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
