"""The finite-element reference (experiments/fem_reference.py): curved edges on the circles, and
P2 converging to PINNacle's Poisson2d-CG file at a high order as the mesh is refined."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skfem")
pytest.importorskip("gmsh")

from dinf.pdes.reference_data import l2re  # noqa: E402
from experiments import fem_reference as fem  # noqa: E402
from tests.helpers import compose_cfg  # noqa: E402


def test_mesh_puts_the_circles_midpoints_on_the_circles():
    disks = [((0.3, 0.3), 0.1), ((-0.3, -0.3), 0.1)]
    m = fem.mesh([(-0.5, 0.5), (-0.5, 0.5)], disks, 0.05)
    dofs = m.dofs.get_facet_dofs(m.boundary_facets()).flatten()
    xy = m.doflocs[:, dofs]
    on_circle = 0
    for (cx, cy), r in disks:
        dist = np.hypot(xy[0] - cx, xy[1] - cy)
        near = np.abs(dist - r) < 0.02
        assert np.abs(dist[near] - r).max() < 1e-12  # vertices from gmsh, midpoints projected
        on_circle += near.sum()
    assert on_circle > 2 * 2 * np.pi * 0.1 / 0.05  # vertices and midpoints of both circles


def test_p2_converges_to_the_cg_file():
    cfg = compose_cfg(["pde=poisson2d_cg"])
    problem, _, _ = fem.build(cfg)
    nodes = problem.eval_x.numpy().T
    file_u = {"u": problem.reference.points_and_values()[1][:, 0].numpy()}
    errors = [l2re({"u": fem.solve(problem, h)[0](nodes)}, file_u)["l2re"] for h in (0.08, 0.04)]
    # P2's L2 error falls as h³ (8×) until the file's own error (9e-5) is reached; measured 6.5×.
    assert errors[1] < 1e-3 and errors[0] / errors[1] > 4, errors
