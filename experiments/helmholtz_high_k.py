"""Helmholtz with a PML at high wavenumbers: error, time and peak memory against k.

Each k is one ``python train.py pde=helmholtz pde.wavenumber=k grid.resolution=n`` in
its own process (so its peak memory is its own): ∂∞-Grid, one level, the wide Gaussian with the
bump window, the point source's singular part subtracted (``pde.source_model=singular``), one
least-squares solve from per-axis factors (``dinf/solvers/separable.py``, PARDISO's complex Cholesky).
The grid has ``--per-wavelength`` cells per wavelength 2π/k across [-1, 1] (rounded up to a
multiple of 16). k = 100π puts 100 wavelengths across the square: a wavelength is 1/100 of it.

    python experiments/helmholtz_high_k.py                          # k = 20, 40, 100, 200
    python experiments/helmholtz_high_k.py --k 314.1592653589793    # k = 100π
    python experiments/helmholtz_high_k.py --k 100 --cells 96 128 192   # a refinement at one k

Writes ``high_k.md`` (the table) and keeps each run's folder (``helmholtz.png``, ``metrics.json``)
under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]


def cells_for(k: float, per_wavelength: float) -> int:
    """Cells across [-1, 1] for ``per_wavelength`` cells per wavelength, a multiple of 16."""
    n = per_wavelength * 2.0 / (2.0 * math.pi / k)
    return int(16 * math.ceil(n / 16))


def run(k: float, cells: int, out: Path, extra: List[str]) -> Dict[str, float]:
    """One train.py run; its metrics, training time, peak memory and unknowns."""
    folder = out / f"k{k:g}_n{cells}"
    # The evaluation grid: at least 4 points per wavelength over [-0.5, 0.5], for the picture.
    resolution = max(128, int(16 * math.ceil(4.0 / (2.0 * math.pi / k) / 16)))
    cmd = [sys.executable, "train.py", "pde=helmholtz", f"pde.wavenumber={k!r}",
           f"grid.resolution={cells}", f"pde.resolution={resolution}", "logger=csv", "checkpoint.enabled=false",
           "trainer.enable_progress_bar=false", f"hydra.run.dir={folder}", *extra]
    print(" ".join(cmd[1:]), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    if done.returncode != 0:
        print(done.stderr[-2000:], flush=True)
        return {"k": k, "cells": cells, "failed": done.stderr.strip().splitlines()[-1] if done.stderr else "?"}
    m = json.loads((folder / "metrics.json").read_text())
    return {"k": k, "cells": cells, "rel_l2_core": m["rel_l2_core"], "rel_l2": m["rel_l2"],
            "train_time_s": m["train_time_s"], "peak_memory_gb": m["peak_memory_gb"], "unknowns": m["params"]}


def table(rows: List[Dict[str, float]]) -> str:
    lines = ["| k | wavelengths across | cells | unknowns | rel_l2_core | rel_l2 | solve (s) | peak memory (GB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        across = r["k"] / math.pi  # 2 / (2π / k)
        if "failed" in r:
            lines.append(f"| {r['k']:g} | {across:.0f} | {r['cells']} | | failed: {r['failed']} | | | |")
            continue
        lines.append(f"| {r['k']:g} | {across:.0f} | {r['cells']} | {r['unknowns']:,} | {r['rel_l2_core']:.2e} | "
                     f"{r['rel_l2']:.2e} | {r['train_time_s']:.1f} | {r['peak_memory_gb']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=float, nargs="+", default=[20.0, 40.0, 100.0, 200.0])
    ap.add_argument("--per-wavelength", type=float, default=4.0, help="cells per wavelength (default 4)")
    ap.add_argument("--cells", type=int, nargs="*", help="cells across instead (every k)")
    ap.add_argument("--out", default="outputs/high_k", help="folder for the runs and high_k.md")
    ap.add_argument("extra", nargs="*", help="more train.py overrides, e.g. kernel.window=0")
    args = ap.parse_args()
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in args.k:
        for cells in args.cells or [cells_for(k, args.per_wavelength)]:
            rows.append(run(k, cells, out, args.extra))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    (out / "high_k.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
