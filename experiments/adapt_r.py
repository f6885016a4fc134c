"""A moving grid by hand (issue 31, item 2; a prototype of ``grid.adapt: r``): solve → estimate →
remap → re-solve, on Burgers1d-C by Gauss–Newton with no hand-set focus.

Each cycle solves the problem from zero by Gauss–Newton (at most 30 steps, to convergence) on a
grid seen through per-axis monotone maps (``dinf.fields.monitor_map.AxisMonitorMap``), computes
the error indicator on the grid's cells (``dinf.pdes.indicator.cell_indicator``), and builds
the next maps by equidistributing it: each axis' density is the indicator's square summed over
the other axes, per unit length. ``--cells`` gives each cycle's cells along x (coarse cycles
first find the shock cheaply); t keeps the problem's best cells.

    python experiments/adapt_r.py                                  # 4 cycles of 512 × 32 cells
    python experiments/adapt_r.py --cells 128 256 512 --ratio 8    # coarse to fine
    python experiments/adapt_r.py --axes x t                       # remap t as well

Output: one line per cycle (solves, seconds, L2RE, the indicator, the smallest cell and
the largest over it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dinf.app.run import build  # noqa: E402
from dinf.fields.monitor_map import AxisMonitorMap  # noqa: E402
from dinf.fields.warped import WarpedField  # noqa: E402
from dinf.fields.warped import sample_for  # noqa: E402
from dinf.pdes.indicator import cell_indicator  # noqa: E402
from dinf.solvers.moving_grid import equidistributed_maps  # noqa: E402
from dinf.solvers.transfer import fit_values  # noqa: E402
from tests.helpers import compose_cfg  # noqa: E402


def solve(solver, field, problem, generator: torch.Generator, max_solves: int, warm: bool = False) -> int:
    """Gauss–Newton to convergence, from zero or (``warm``) from the field as it is; returns the
    solves taken."""
    if not warm:
        with torch.no_grad():
            for p in field.parameters():
                p.zero_()
    solver._state, solver.cold_start = None, not warm
    for k in range(max_solves):
        if solver.solve(field, problem, generator).get("converged"):
            break
    return k + 1


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[512, 512, 512, 512], help="cells along x, per cycle")
    ap.add_argument("--ratio", type=float, default=8.0, help="largest to smallest cell, per axis")
    ap.add_argument("--floor", type=float, default=1.0, help="the monitor's floor, times its mean")
    ap.add_argument("--smoothing", type=float, default=2.0, help="the monitor's Gaussians' width, in cells")
    ap.add_argument("--power", type=float, default=0.5, help="the monitor ∝ density^power")
    ap.add_argument("--axes", nargs="+", default=["x"], help="coordinates remapped")
    ap.add_argument("--max-solves", type=int, nargs="+", default=[30], help="per cycle (the last repeats)")
    ap.add_argument("--points", type=int, nargs="+", default=[65536], help="Gauss–Newton points, per cycle")
    ap.add_argument("--warm", action="store_true", help="start each cycle from the last one's field, fitted (where the cells stay)")
    ap.add_argument("overrides", nargs="*", help="train.py overrides (pde=burgers1d solver=gauss_newton grid.focus=null come first)")
    args = ap.parse_args(argv)
    base = ["pde=burgers1d", "solver=gauss_newton", "grid.focus=null", "trainer.max_time=null"] + args.overrides
    maps: Dict[int, AxisMonitorMap] = {}
    generator = torch.Generator().manual_seed(0)
    total = 0.0
    old = None  # the last cycle's field
    print("| cycle | cells | solves | s | total s | L2RE | indicator | smallest x cell | largest / smallest |\n|---|---|---|---|---|---|---|---|---|")
    nt = int(compose_cfg(base, tiny=False).model.resolution[1])  # t keeps the problem's best cells
    for cycle, nx in enumerate(args.cells):
        pick = lambda values: values[min(cycle, len(values) - 1)]  # noqa: E731
        cfg = compose_cfg(base + [f"grid.resolution=[{nx},{nt}]", f"solver.points={pick(args.points)}"], tiny=False)
        problem, inner, solver = build(cfg)
        bounds = problem.bounds  # per coordinate [lo, hi]
        axes = [problem.coords.index(c) for c in args.axes]
        for a in axes:
            maps.setdefault(a, AxisMonitorMap(float(bounds[a][0]), float(bounds[a][1]), [0.0], [0.0], 1.0))
        field = WarpedField(inner, maps)
        start = time.perf_counter()
        warm = args.warm and cycle > 0 and nx == args.cells[cycle - 1]  # a coarse field is a poor start
        if warm:
            x = sample_for(field, problem, pick(args.points), generator).x.double()
            with torch.no_grad():
                fit_values(field, x, old(x.to(torch.float32)))
        solves = solve(solver, field, problem, generator, pick(args.max_solves), warm)
        seconds = time.perf_counter() - start
        total += seconds
        l2re = problem.evaluate(field)["l2re"]
        cells = list(inner.resolution_per_axis)
        edges = [maps[a].cell_edges(cells[a]) if a in maps else np.linspace(*map(float, bounds[a]), cells[a] + 1)
                 for a in range(problem.in_dim)]
        ind = cell_indicator(problem, field, edges)
        print(f"| {cycle} | {' × '.join(map(str, cells))} | {solves} | {seconds:.1f} | {total:.1f} | {l2re:.2e} | "
              f"{ind.total:.2e} | {np.diff(edges[0]).min():.2e} | "
              f"{np.diff(edges[0]).max() / np.diff(edges[0]).min():.1f} |", flush=True)
        old = field
        # The equations' part only (the run's remap: on Burgers the initial slice dominates η).
        maps.update(equidistributed_maps(ind, axes, ratio=args.ratio, floor=args.floor, smoothing=args.smoothing,
                                         power=args.power))


if __name__ == "__main__":
    main()
