"""Time windows against one space-time solve (issue 29): each row is one ``python train.py`` run,
its L2RE and training seconds read from the run's ``metrics.json``.

Tables (``TABLES``):

* ``shipped``: the time-dependent problems shipped before marching (Heat2d-MS, Wave1d-C,
  Burgers1d-C), each at its best settings in one window, then in 2 and 4 windows of the same
  cells each (more unknowns) and of the cells split between them (the same unknowns), each
  also with ``solver.overlap=0.5`` (split cells: 1.5× as many, for the 1.5× longer solve);
* ``wave2d_ms``: Wave2d-MS's cost against the final time T (10, 25, 50, 100) at a fixed
  number of cells per unit time, with the method of lines beside it.

    python experiments/marching.py shipped          # about 15 minutes on 2 cores
    python experiments/marching.py wave2d_ms        # about 5 minutes
    python experiments/marching.py shipped --only wave1d   # rows whose name contains "wave1d"

Output: ``outputs/marching/<table>.md`` (the rows with their commands) and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
Row = Tuple[str, List[str]]

WAVE2D_LSQ = ["pde=wave2d_ms", "solver=least_squares", "grid.levels=1", "kernel.window=1"]


def _shipped() -> List[Row]:
    rows: List[Row] = []
    for pde, res, t_axis, solver in (
        ("heat2d_ms", [48, 3, 4], 2, "least_squares"),
        ("wave1d", [48, 96], 1, "least_squares"),
        ("burgers1d", None, None, "gauss_newton"),
    ):
        base = [f"pde={pde}", f"solver={solver}"]
        rows.append((f"{pde}, one window", base))
        for w in (2, 4):
            rows.append((f"{pde}, {w} windows, same cells each", base + [f"solver.windows={w}"]))
            if res is None:
                continue  # Gauss–Newton's windows cost minutes each here: the same cells only
            split = list(res)
            if res[t_axis] % w == 0:
                split[t_axis] //= w
                rows.append((f"{pde}, {w} windows, cells split", base + [f"solver.windows={w}", _cells(split)]))
            rows.append((f"{pde}, {w} windows, overlap 0.5, same cells each",
                         base + [f"solver.windows={w}", "solver.overlap=0.5"]))
            if (3 * res[t_axis]) % (2 * w) == 0:  # the split cells over the overlap's 1.5× length
                split[t_axis] = 3 * res[t_axis] // (2 * w)
                rows.append((f"{pde}, {w} windows, overlap 0.5, cells split", base + [
                    f"solver.windows={w}", "solver.overlap=0.5", _cells(split)]))
    return rows


def _cells(res: List[int]) -> str:
    return f"grid.resolution=[{','.join(map(str, res))}]"


def _wave2d_ms() -> List[Row]:
    rows: List[Row] = []
    for T in (10, 25, 50, 100):
        rows.append((f"wave2d_ms T={T}, method of lines n=64",
                     ["pde=wave2d_ms", "solver=mol", "solver.n=64", f"pde.domain.time.t=[0,{T}]"]))
        rows.append((f"wave2d_ms T={T}, windows of 2",
                     WAVE2D_LSQ + [f"pde.domain.time.t=[0,{T}]", f"solver.windows={T // 2}",
                                   "grid.resolution=[12,12,12]"]))
    return rows


TABLES = {"shipped": _shipped, "wave2d_ms": _wave2d_ms}


def run(overrides: List[str], timeout: float) -> Dict[str, float]:
    """One train.py run; its metrics (``l2re``, ``train_time_s``) or the reason it failed."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "train.py", *overrides, "logger=csv", f"hydra.run.dir={out}"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"failed": f"over {timeout:.0f} s"}
        path = Path(out) / "metrics.json"
        if proc.returncode or not path.exists():
            return {"failed": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
        m = json.loads(path.read_text())
        return {"l2re": m.get("l2re"), "train_s": m.get("train_time_s"), "wall_s": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", choices=sorted(TABLES))
    ap.add_argument("--only", default="", help="rows whose name contains this")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "marching")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    lines = ["| run | L2RE | training s | command |", "|---|---|---|---|"]
    for name, overrides in TABLES[args.table]():
        if args.only not in name:
            continue
        r = run(overrides, args.timeout)
        results.append({"name": name, "overrides": overrides, **r})
        err = f"{r['l2re']:.3g}" if r.get("l2re") is not None else f"failed: {r.get('failed')}"
        secs = f"{r['train_s']:.1f}" if r.get("train_s") is not None else "—"
        cmd = "python train.py " + " ".join(shlex.quote(o) for o in overrides)
        lines.append(f"| {name} | {err} | {secs} | `{cmd}` |")
        print(lines[-1], flush=True)
    (args.out / f"{args.table}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"{args.table}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
