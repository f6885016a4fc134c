"""Domains from mesh files, measured (docs/guide/geometry.md):

1. ``pde=channel`` (data/meshes/channel.msh): least squares against P2 finite elements on the
   same mesh (the file's triangles, then split), each against the exact solution and against
   each other at the elements' nodes;
2. ``pde=poisson2d_cg_geo`` (the .geo file) against ``pde=poisson2d_cg`` (the YAML disks), seeds
   0–2, against PINNacle's reference file;
3. ``pde=bracket`` (data/meshes/bracket.stl): the same against P2 tetrahedra that gmsh fills the
   STL with (its triangles their boundary), and the paper's kernel.

    python experiments/mesh_domains.py [--quick]

Seconds are each run's ``train_time_s``. ``--quick``: one seed, no bracket.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dinf.app.run import build, train  # noqa: E402
from tests.helpers import compose_cfg  # noqa: E402

PLAIN = ["checkpoint.registry=null", "vtk=false", "~logger"]


def run(overrides, folder):
    return train(compose_cfg(overrides + PLAIN, tiny=False), output_dir=folder)


def against_fem(tmp: str, pde: str, sizes) -> None:
    """Least squares on ``pde``'s mesh domain against P2 on the same mesh (the file's cells, or
    gmsh's tetrahedra in an STL), then split to each size."""
    from dinf.export import load_run

    lsq = run([f"pde={pde}"], f"{tmp}/{pde}_lsq")
    problem, field, _ = load_run(f"{tmp}/{pde}_lsq")
    print(f"\n| method (`pde={pde}`) | unknowns | L2RE vs exact | vs least squares at the P2 nodes | s |")
    print("|---|---|---|---|---|")
    print(f"| least squares | {lsq['params']:,} | {lsq['l2re']:.2e} | — | {lsq['train_time_s']:.1f} |")
    for h in (1.0,) + tuple(sizes):
        fem_problem, fem_field, fem = build(compose_cfg([f"pde={pde}", "solver=fem", f"solver.h={h}"] + PLAIN,
                                                        tiny=False))
        fem.warm_up()
        info = fem.solve(fem_field, fem_problem, torch.Generator().manual_seed(0))
        points, kind, _, values = fem.mesh_solution()
        x = torch.as_tensor(points)
        exact = problem.reference.exact_values(x).numpy()[:, 0]
        ours = problem.predict(field, x).numpy()[:, 0]
        err = np.linalg.norm(values - exact) / np.linalg.norm(exact)
        diff = np.linalg.norm(ours - values) / np.linalg.norm(values)
        cells = "triangles" if kind.startswith("triangle") else "tetrahedra"
        what = "the file's mesh" if h == 1.0 else f"split to h ≤ {h}"
        print(f"| P2 `solver=fem solver.h={h:g}` ({what}, {info['elements']:,} {cells}) | {info['dofs']:,} | "
              f"{err:.2e} (at its nodes) | {diff:.2e} | {info['time_s']:.1f} |")


def poisson2d_cg(tmp: str, seeds) -> None:
    print("\n| seed | `pde=poisson2d_cg` (YAML disks) | s | `pde=poisson2d_cg_geo` (.geo) | s |")
    print("|---|---|---|---|---|")
    for s in seeds:
        a = run(["pde=poisson2d_cg", f"seed={s}"], f"{tmp}/p2cg_{s}")
        b = run(["pde=poisson2d_cg_geo", f"seed={s}"], f"{tmp}/p2cg_geo_{s}")
        print(f"| {s} | {a['l2re']:.3e} | {a['train_time_s']:.1f} | {b['l2re']:.3e} | {b['train_time_s']:.1f} |")


def bracket_kernels(tmp: str) -> None:
    print("\n| command | L2RE | max error | s |")
    print("|---|---|---|---|")
    for extra in (["kernel.eps=1.0", "kernel.rho=3"],):
        m = run(["pde=bracket"] + extra, f"{tmp}/bracket_{len(extra)}")
        cmd = " ".join(["python train.py pde=bracket"] + extra)
        print(f"| `{cmd}` | {m['l2re']:.2e} | {m['max_error']:.2e} | {m['train_time_s']:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        against_fem(tmp, "channel", [0.025, 0.0125])
        poisson2d_cg(tmp, [0] if args.quick else [0, 1, 2])
        if not args.quick:
            against_fem(tmp, "bracket", [0.11])
            bracket_kernels(tmp)
