"""``python -m dinf.export <run folder>``: a finished run's solution for ParaView, sampled again.

The run's config (``.hydra/config.yaml``, or ``config.yaml`` outside Hydra) builds the problem and the field, the last checkpoint
(``checkpoints/last.ckpt``) gives their weights (a moving or refined grid's cells first), and
``dinf.app.vtk.export_vtk`` writes the files at the resolution asked for::

    python -m dinf.export outputs/2026-12-07/14-05-01.123456 --resolution 512
    python -m dinf.export <run> --resolution 96 --snapshots 21 --out <folder>
    python -m dinf.export <run> --mesh part.msh      # at a mesh's points, on its cells (.vtu)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, List, Optional, Tuple

import torch
from omegaconf import OmegaConf

from dinf.errors import ConfigError

log = logging.getLogger("dinf.export")


def load_run(folder: str) -> Tuple[Any, Any, Any]:
    """``(problem, field, solver)`` of the run in ``folder``, with its last checkpoint's weights
    (a classical solver's solution, which no checkpoint holds, solved again: it is deterministic)."""
    from dinf.app.checkpoint import CHECKPOINT
    from dinf.app.run import build

    if not os.path.isdir(folder):
        raise ConfigError("run", f"no run folder {folder!r}")
    config, ckpt = os.path.join(folder, ".hydra", "config.yaml"), os.path.join(folder, CHECKPOINT)
    if not os.path.isfile(config):  # a run started by dinf.app.run.train outside Hydra
        config = os.path.join(folder, "config.yaml") if os.path.isfile(os.path.join(folder, "config.yaml")) else config
    for path, what in ((config, "its config"), (ckpt, "a checkpoint")):
        if not os.path.isfile(path):
            raise ConfigError("run", f"{folder!r} has no {os.path.relpath(path, folder)} ({what}): give the folder of "
                                     "a run made by train.py")
    cfg = OmegaConf.load(config)
    problem, field, solver = build(cfg)
    try:
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ConfigError("run", f"{ckpt} cannot be read ({type(e).__name__}: {e})") from None
    solver.load_state((saved.get("dinf") or {}).get("solver") or {})  # a moving or refined grid's cells
    weights = saved["state_dict"]
    field.load_state_dict({k[len("field."):]: v for k, v in weights.items() if k.startswith("field.")})
    own = {k[len("problem."):]: v for k, v in weights.items() if k.startswith("problem.")}
    if own:  # unknown parameters identified with the field
        problem.load_state_dict(own, strict=False)
    from dinf.solvers.classical.base import ClassicalSolver

    if isinstance(solver, ClassicalSolver):
        for _ in range(getattr(solver, "refinements", 1)):  # to its finest size, as the run did
            solver.solve(field, problem)
    field.eval()
    return problem, field, solver


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinf.export", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run folder (the one train.py printed)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="points along the longest space axis (default: 1024 in 1D, 192 in 2D, 48 in 3D)")
    parser.add_argument("--snapshots", type=int, default=None, help="time snapshots of a time-dependent problem (11)")
    parser.add_argument("--out", default=None, help="where to write (default: the run folder)")
    parser.add_argument("--mesh", default=None,
                        help="also write the solution at the points of this mesh file (any meshio reads), on its cells")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from dinf.app.vtk import check_resolution, export_at_mesh, export_run

    try:
        check_resolution(args.resolution)  # before the run is loaded
        problem, field, solver = load_run(args.run)
        paths, mesh = export_run(problem, field, solver, args.out or args.run, args.resolution, args.snapshots)
        paths += [mesh] if mesh else []
        if args.mesh is not None:
            paths += export_at_mesh(problem, field, args.mesh, args.out or args.run, args.snapshots)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
