"""Calibration of the Laplace standard deviations (issue 30): one inverse problem solved for many
seeds of its observations' noise; how often the interval ±2σ of each unknown parameter holds its
truth, and the errors in units of σ.

    python experiments/calibration.py --sigma 0.0061078 --seeds 20 -- pde=burgers_inverse \\
        pde.params.lam1.init=1 pde.params.lam2.init=0.0032 solver.gauss_newton.max_solves=40 \\
        trainer.max_time=null

Each seed is one ``python train.py`` run with ``+pde.conditions.<condition>.noise={sigma: …,
seed: k}`` added (``--condition``, default ``observed``); the parameter's value, standard
deviation and truth are read from its ``metrics.json``. If the posterior is Gaussian and the
noise is all there is, about 95 % of the intervals hold the truth and |error|/σ has RMS 1; a bias
the approximation does not know of (the grid's) lowers the first and raises the second.

Output: a markdown table on stdout and in ``outputs/calibration/<name>.md`` (with the command),
each run's numbers in ``.json``. A seed whose run folder holds a ``metrics.json`` is read, not run
again, so an interrupted study goes on where it stopped.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]


def run_seed(overrides: List[str], condition: str, sigma: float, seed: int, out: Path) -> Dict[str, Any]:
    """One run (or the one already in ``out``: an interrupted study goes on where it stopped);
    its parameters' values, standard deviations and truths."""
    noise = f"+pde.conditions.{condition}.noise={{sigma: {sigma}, seed: {seed}}}"
    cmd = [sys.executable, "train.py", *overrides, noise, "logger=csv", f"hydra.run.dir={out}"]
    if not (out / "metrics.json").exists():
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
            raise SystemExit(f"seed {seed} failed: {last}")
    metrics = json.loads((out / "metrics.json").read_text())
    params = metrics["config"]["pde"].get("params") or {}
    row: Dict[str, Any] = {"seed": seed, "seconds": metrics["wall_time_s"]}
    for name, spec in params.items():
        if isinstance(spec, dict) and spec.get("truth") is not None:
            row[name] = {"value": metrics[name], "std": metrics[f"{name}_std"], "truth": float(spec["truth"])}
    return row


def summary(rows: List[Dict[str, Any]]) -> List[str]:
    """Per parameter: how many intervals hold the truth, the RMS of error/σ, the mean σ and the
    mean |error| relative to |truth| (a markdown table)."""
    names = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    lines = ["| parameter | ±2σ holds the truth | RMS of error / σ | mean σ / truth | mean error / truth |",
             "|---|---|---|---|---|"]
    for name in names:
        z = [(r[name]["value"] - r[name]["truth"]) / r[name]["std"] for r in rows]
        inside = sum(abs(v) <= 2.0 for v in z)
        truth = abs(rows[0][name]["truth"])
        spread = sum(r[name]["std"] for r in rows) / len(rows) / truth
        error = sum(abs(r[name]["value"] - r[name]["truth"]) for r in rows) / len(rows) / truth
        rms = math.sqrt(sum(v * v for v in z) / len(z))
        lines.append(f"| {name} | {inside}/{len(rows)} | {rms:.2f} | {spread:.2e} | {error:.2e} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=float, required=True, help="the noise's σ, added to the observations")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--condition", default="observed", help="the data condition the noise goes on")
    parser.add_argument("--name", default=None, help="the output's name (default: the pde)")
    parser.add_argument("overrides", nargs="+", help="train.py's overrides, after --")
    args = parser.parse_args()
    pde = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("pde=")), "problem")
    name = args.name or f"{pde}_sigma{args.sigma:g}"
    folder = ROOT / "outputs" / "calibration" / name
    rows = []
    for seed in range(args.seeds):
        rows.append(run_seed(args.overrides, args.condition, args.sigma, seed, folder / f"seed{seed}"))
        shown = " · ".join(f"{k} {v['value']:.6g} ± {v['std']:.2g}" for k, v in rows[-1].items() if isinstance(v, dict))
        print(f"seed {seed}: {shown} ({rows[-1]['seconds']:.0f} s)", flush=True)
    command = "python experiments/calibration.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    table = summary(rows)
    print("\n".join(table))
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / f"{name}.md").write_text(f"`{command}`\n\n" + "\n".join(table) + "\n")
    (folder.parent / f"{name}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
