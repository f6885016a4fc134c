"""The factored grid on a solution that is not a short sum of products: which rank it needs.

Poisson on [0, 1]^d with exact u = 1 / (1 + |x|²) (Dirichlet on every face, weight 100):
−Δu = 2d/(1 + s)² − 8s/(1 + s)³, s = |x|². Its CP rank is infinite (it is not a finite sum of
products of 1D functions); exponential sums (1/(1 + s) = ∫ e^{-τ(1+s)} dτ, each term a product
Π e^{-τ xᵢ²}) approximate it to ε with O(log 1/ε) terms, so the error should fall fast with the
rank and then meet the 1D grids' own floor. For each rank the field (``model=dinf_cp``, 8 cells a
factor, ρ = 6, ε = 0.7) is solved by Levenberg–Marquardt (``solver=cp_lm``, 8 192 points drawn
once, at most ``--steps`` steps or ``--max-time``), each run in its own process; the table gives
the L2RE on 32 768 Sobol points (a 32³ grid in 3 axes), the time and the steps.

Reproduce (from the repository root)::

    python experiments/dinf_cp_rank.py                      # d = 3 and 5, ranks 1 2 4 8 12 16
    python experiments/dinf_cp_rank.py --dims 5 --ranks 8 16
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.dimension_table import NAMES, box_poisson  # noqa: E402


def radial_nd(d: int, batch: int = 16384) -> Dict[str, Any]:
    """Poisson with exact u = 1/(1 + |x|²) on [0, 1]^d."""
    s = " + ".join(f"{n}^2" for n in NAMES[:d])
    return box_poisson(d, f"radial{d}d", s, f"{2 * d}/(1 + s)^2 - 8*s/(1 + s)^3", "1/(1 + s)", batch)


def child(d: int, rank: int, steps: int, max_time: str, result: str) -> None:
    import resource

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from dinf.app.run import train

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            "pde=pnd", "model=dinf_cp", f"model.rank={rank}", "model.resolution=8", "model.init=ones",
            "solver.cp_lm.points=8192", f"trainer.max_steps={steps}", f"trainer.max_time={max_time}",
            "~logger", "checkpoint.enabled=false", "checkpoint.registry=null", "trainer.enable_progress_bar=false"])
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(radial_nd(d))
    with tempfile.TemporaryDirectory() as out:
        m = train(cfg, output_dir=out)
    Path(result).write_text(json.dumps({
        "d": d, "rank": rank, "l2re": m["l2re"], "best_l2re": m["best"]["l2re"], "train_s": m["train_time_s"],
        "steps": m["steps"], "params": m["params"],
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[3, 5])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 12, 16])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--max-time", default="00:00:04:00")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", nargs=3, type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], args.child[2], args.max_time, args.result)
    print(f"load average at start {Path('/proc/loadavg').read_text().split()[0]}", flush=True)
    rows = []
    for d in args.dims:
        for rank in args.ranks:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                result = f.name
            proc = subprocess.run([sys.executable, __file__, "--child", str(d), str(rank), str(args.steps),
                                   "--max-time", args.max_time, "--result", result],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                print(f"d={d} rank={rank}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = json.loads(Path(result).read_text())
            os.unlink(result)
            rows.append(row)
            print(f"d={d} rank={rank:2d}: L2RE {row['l2re']:.2e} (best {row['best_l2re']:.2e}) in {row['train_s']:.0f} s, "
                  f"{row['steps']} steps, {row['params']:,} parameters, {row['peak_gb']:.2f} GB", flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
