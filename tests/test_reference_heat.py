"""The Heat2d-CG reference solver (experiments/references/heat2d_cg.py): Crank–Nicolson on its
graded schedule is second order in time, P2 on curved meshes third order in space (L2), the Robin
data reach the right circles, and the reference file reads as a long table."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skfem")
pytest.importorskip("gmsh")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "references" / "heat2d_cg.py"
_spec = importlib.util.spec_from_file_location("heat2d_cg_reference", SCRIPT)
heat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heat)

BOX = ((0.0, 1.0), (0.0, 1.0))
DISK = [((0.5, 0.5), 0.2)]


def _exact(x, t=0.0):
    """u = e^{-2t} sin(x + 0.3) sin(y + 0.2), which solves u_t = Δu."""
    return np.exp(-2 * t) * np.sin(x[0] + 0.3) * np.sin(x[1] + 0.2)


def _robin(x, n):
    """∂u/∂n + u at t = 0 (the data scale with e^{-2t})."""
    ux = np.cos(x[0] + 0.3) * np.sin(x[1] + 0.2)
    uy = np.sin(x[0] + 0.3) * np.cos(x[1] + 0.2)
    return ux * n[0] + uy * n[1] + _exact(x)


def _points():
    g = np.linspace(0.0, 1.0, 21)
    x = np.stack([a.ravel() for a in np.meshgrid(g, g, indexing="ij")])
    return x[:, np.hypot(x[0] - 0.5, x[1] - 0.5) > 0.2 + 1e-3]


def test_crank_nicolson_on_the_graded_schedule_is_second_order():
    m = heat.mesh(BOX, DISK, 0.1)
    basis, M, K, b0 = heat.assemble(m, _robin)
    pts = _points()
    P = heat.interpolation(basis, pts)
    u0 = basis.project(lambda x: _exact(x))
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    exact = np.stack([_exact(pts, t) for t in times])
    errors = []
    for r in (1, 2, 4):
        steps = heat.schedule(r, levels=2, out_dt=0.25, t_end=1.0)
        assert abs(steps.sum() - 1.0) < 1e-12 and steps.size == r * (1 + 3 * 2 + 3)
        u = heat.crank_nicolson(M, K, lambda t: np.exp(-2 * t) * b0, u0, steps, times, lambda v: P @ v)
        errors.append(np.linalg.norm(u - exact) / np.linalg.norm(exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 1e-3 and orders.min() >= 1.8, (errors, orders)


def test_p2_on_curved_meshes_is_third_order():
    """The steady Robin problem −Δu = 0, ∂u/∂n + u = g for the harmonic u = eˣ sin y: K u = ∮ g v."""
    from scipy.sparse.linalg import spsolve

    def exact(x):
        return np.exp(x[0]) * np.sin(x[1])

    def g(x, n):
        return np.exp(x[0]) * (np.sin(x[1]) * n[0] + np.cos(x[1]) * n[1]) + exact(x)

    pts = _points()
    errors = []
    for h in (0.2, 0.1, 0.05):
        basis, _, K, b = heat.assemble(heat.mesh(BOX, DISK, h), g)
        u = heat.interpolation(basis, pts) @ spsolve(K.tocsc(), b)
        errors.append(np.linalg.norm(u - exact(pts)) / np.linalg.norm(exact(pts)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert orders.min() >= 2.6, (errors, orders)


def test_robin_data_by_boundary_group():
    g = heat.heat_g()
    angle = np.linspace(0, 2 * np.pi, 7)
    for (cx, cy), r in heat.DISKS:
        x = np.stack([cx + r * np.cos(angle), cy + r * np.sin(angle)])
        assert np.all(g(x, None) == (5.0 if r == 1.0 else 1.0))
    sides = np.array([[-8.0, 8.0, 0.0, 3.0, -7.9, 7.9], [0.0, 1.0, -12.0, 12.0, -12.0, 12.0]])
    assert np.all(g(sides, None) == 0.1)


def test_evaluation_points_and_schedule():
    pts = heat.eval_points()
    assert pts.shape[1] < 81 * 121
    for (cx, cy), r in heat.DISKS:
        assert (np.hypot(pts[0] - cx, pts[1] - cy) > r + 1e-3).all()
    ends = np.cumsum(heat.schedule(2))
    assert all(np.abs(ends - t).min() < 1e-12 for t in heat.OUT_TIMES[1:])


def test_script_is_independent_of_dinf():
    tree = ast.parse(SCRIPT.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "dinf"]


def test_reference_file_reads_as_a_long_table():
    path = ROOT / "data" / "references" / "heat2d_cg.npz"
    if not path.exists():
        pytest.skip("python experiments/references/heat2d_cg.py writes it")
    from dinf.pdes.reference_data import read_table

    ref = read_table(path)
    assert ref.coord_names == ["x", "y", "t"] and list(ref.values) == ["u"]
    assert ref.coords.shape == (heat.eval_points().shape[1] * heat.OUT_TIMES.size, 3)
    u = ref.values["u"]
    assert np.isfinite(u).all() and (u[ref.coords[:, 2] == 0] == 0).all() and u.max() > 1.0
