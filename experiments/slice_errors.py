"""Where in time a run's error sits: each evaluation time's share of the pooled L2RE.

    python experiments/slice_errors.py outputs/<date>/<time> [--times 0 0.1 0.5 3]

Rebuilds the run from its ``metrics.json`` config, loads ``checkpoints/last.ckpt`` and prints,
per time of the problem's evaluation points, ‖error at that time‖ / ‖reference over all times‖
(the shares' squares sum to the L2RE's square), that time's own relative error ‖error at t‖ /
‖reference at t‖ (1 when the solution has decorrelated from the reference) and the largest error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dinf.app.run import build  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (metrics.json, checkpoints/last.ckpt)")
    parser.add_argument("--times", type=float, nargs="*", default=None, help="only these times (default: all)")
    args = parser.parse_args(argv)
    metrics = json.loads((args.run / "metrics.json").read_text())
    problem, field, _ = build(OmegaConf.create(metrics["config"]))
    state = torch.load(args.run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    field.load_state_dict({k[len("field."):]: v for k, v in state.items() if k.startswith("field.")})
    if problem.time is None:
        print("slice_errors.py: error: the problem has no time axis", file=sys.stderr)
        return 2
    x, C = problem.eval_x, problem.out_dim
    truth = problem.eval_values[:, :C].double()
    err = problem.predict(field, x) - truth
    total = float(torch.linalg.norm(truth))
    t = x[:, problem.coords.index(problem.time)]
    print(f"l2re {float(torch.linalg.norm(err)) / total:.3e}")
    for when in (args.times if args.times is not None else torch.unique(t).tolist()):
        on = (t - when).abs() < 1e-9
        if on.any():
            own = float(torch.linalg.norm(err[on]) / torch.linalg.norm(truth[on]))
            print(f"t = {when:g}: share {float(torch.linalg.norm(err[on])) / total:.2e}, relative {own:.2e}, "
                  f"max error {float(err[on].abs().max()):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
