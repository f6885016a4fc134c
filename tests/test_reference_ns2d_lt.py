"""The NS2d-LT reference solver (experiments/references/ns2d_lt.py): BDF2 with extrapolated
convection is second order in time, Taylor–Hood P2/P1 third order (velocity) and second order
(pressure) in space, the outlet is the Laplacian-form do-nothing condition ν ∂u/∂n − p n = 0,
the consistent initial pressure is harmonic with the right data, and the reference file reads as
a long table whose t = 0 rows and inlet rows carry the problem's data."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skfem")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "references" / "ns2d_lt.py"
_spec = importlib.util.spec_from_file_location("ns2d_lt_reference", SCRIPT)
ns = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ns)
core = ns.core  # dinf.solvers.classical.navier_stokes: the discretisation and stepping it shares


def _g(t):
    return 1 + 0.5 * np.sin(3 * t)


def _dg(t):
    return 1.5 * np.cos(3 * t)


class _Manufactured(ns.Flow):
    """A flow with a known solution ``exact(x, t)`` → (u, v, p): its Dirichlet data on x = 0,
    y = 0, y = 1, its initial velocity, and the outlet traction ν ∂u/∂x − p, ν ∂v/∂x at x = 2
    from ``outlet(x, t)``."""

    def dirichlet(self, x, t):
        u, v, _ = self.exact(x, t)
        return u, v

    def initial(self, x):
        return self.dirichlet(x, 0.0)

    def traction(self, x, t):
        return self.outlet(x, t)


class _TaylorGreen(_Manufactured):
    """u = g sin x cos y, v = −g cos x sin y, p = −g² (cos 2x + cos 2y)/4 + sin(2t) x, g = 1 +
    sin(3t)/2: (u·∇)u = g² (sin 2x, sin 2y)/2, Δu = −2u."""

    def exact(self, x, t):
        g = _g(t)
        return (g * np.sin(x[0]) * np.cos(x[1]), -g * np.cos(x[0]) * np.sin(x[1]),
                -g * g * (np.cos(2 * x[0]) + np.cos(2 * x[1])) / 4 + np.sin(2 * t) * x[0])

    def force(self, x, t):
        g, dg, nu = _g(t), _dg(t), self.nu
        u, v, _ = self.exact(x, t)
        fx = dg / g * u + g * g * np.sin(2 * x[0]) + np.sin(2 * t) + 2 * nu * u
        fy = dg / g * v + g * g * np.sin(2 * x[1]) + 2 * nu * v
        return fx, fy

    def outlet(self, x, t):
        g = _g(t)
        return self.nu * g * np.cos(x[0]) * np.cos(x[1]) - self.exact(x, t)[2], self.nu * g * np.sin(x[0]) * np.sin(x[1])


class _Quadratic(_Manufactured):
    """u = g (1/2 + y − y²), v = g x (2 − x)/2, p = sin(2t) (2 − x + y): in the P2/P1 spaces, and
    the forcing and traction are integrated exactly, so the only error is the time stepping's."""

    def exact(self, x, t):
        g = _g(t)
        return (g * (0.5 + x[1] - x[1] ** 2), g * x[0] * (2 - x[0]) / 2,
                np.sin(2 * t) * (2 - x[0] + x[1]))

    def force(self, x, t):
        g, dg, s, nu = _g(t), _dg(t), np.sin(2 * t), self.nu
        u, v, _ = self.exact(x, t)
        fx = dg / g * u + v * g * (1 - 2 * x[1]) - s + 2 * nu * g
        fy = dg / g * v + u * g * (1 - x[0]) + s + nu * g
        return fx, fy

    def outlet(self, x, t):  # ν u_x − p, ν v_x at x = 2
        return -np.sin(2 * t) * x[1], -self.nu * _g(t) * np.ones_like(x[1])


class _Poiseuille(ns.Flow):
    """u = 4y(1 − y), v = 0, p = 8ν(2 − x): exact for the Laplacian-form do-nothing outlet
    (ν u_x − p = 0 and ν v_x = 0 at x = 2), not for the stress form (ν(u_y + v_x) = ν(4 − 8y) ≠ 0)."""

    def dirichlet(self, x, t):
        return 4 * x[1] * (1 - x[1]), np.zeros(x.shape[1:])

    def force(self, x, t):
        return None, None

    def initial(self, x):
        return self.dirichlet(x, 0.0)


def _l2_errors(flow, run, t):
    """Relative L2 errors (quadrature) of the last state's velocity and pressure."""
    d, x = run["disc"], run["final"]
    u, v, p = flow.exact(d.xq, t)
    w = d.w
    uh, vh = d.phi @ x[:d.nv], d.phi @ x[d.nv:2 * d.nv]
    ph = core.quadrature_matrices(d.P)[0] @ x[2 * d.nv:]
    eu = np.sqrt(w @ ((uh - u) ** 2 + (vh - v) ** 2) / (w @ (u ** 2 + v ** 2)))
    return eu, np.sqrt(w @ (ph - p) ** 2 / (w @ p ** 2))


def _orders(errors, ratio=2.0):
    e = np.asarray(errors)
    return np.log(e[:-1] / e[1:]) / np.log(ratio)


def test_bdf2_with_extrapolated_convection_is_second_order_in_time():
    flow, pts = _Quadratic(), ns.eval_points(0.25)
    errs = []
    for tau in (0.04, 0.02, 0.01):
        errs.append(_l2_errors(flow, ns.solve(flow, 4, tau, [1.0], pts), 1.0))
    errs = np.array(errs)
    ou, op = _orders(errs[:, 0]), _orders(errs[:, 1])
    assert errs[-1, 0] < 1e-4 and errs[-1, 1] < 1e-3, errs
    assert ou.min() > 1.9 and op.min() > 1.9, (errs, ou, op)


def test_taylor_hood_is_third_order_in_velocity_second_in_pressure():
    flow, pts = _TaylorGreen(), ns.eval_points(0.25)
    errs = np.array([_l2_errors(flow, ns.solve(flow, n, 0.002, [0.2], pts), 0.2) for n in (4, 8, 16)])
    ou, op = _orders(errs[:, 0]), _orders(errs[:, 1])
    assert ou.min() > 2.8 and op.min() > 1.8, (errs, ou, op)
    assert errs[-1, 0] < 5e-5, errs


def test_poiseuille_flow_is_exact_with_the_do_nothing_outlet():
    pts = ns.eval_points(0.25)
    exact_u, exact_p = 4 * pts[1] * (1 - pts[1]), 8 * ns.NU * (2 - pts[0])
    run = ns.solve(_Poiseuille(), 4, 0.05, [1.0, 2.0], pts)
    assert np.abs(run["u"] - exact_u).max() < 1e-11 and np.abs(run["v"]).max() < 1e-11
    assert np.abs(run["p"] - exact_p).max() < 1e-11  # p = ν u_x = 0 at x = 2
    stress = ns.solve(_Poiseuille(), 4, 0.05, [1.0, 2.0], pts, stress=True)
    assert np.abs(stress["v"]).max() > 1e-3  # the stress-form outlet is another problem


def test_poiseuille_flow_from_rest_settles_on_the_parabola():
    class Viscous(_Poiseuille):
        nu = 1.0

        def initial(self, x):
            return np.zeros(x.shape[1:]), np.zeros(x.shape[1:])

    pts = ns.eval_points(0.25)
    run = ns.solve(Viscous(), 4, 0.05, [0.0, 6.0], pts)
    assert np.abs(run["u"][1] - 4 * pts[1] * (1 - pts[1])).max() < 1e-8
    assert np.abs(run["v"][1]).max() < 1e-8
    assert np.abs(run["p"][1] - 8 * (2 - pts[0])).max() < 1e-7


def test_initial_pressure_is_the_consistent_one():
    """Δp = 0, ∂p/∂x = −a'(0) sin πy at the inlet, ∂p/∂y = 0 on the walls, p = 0 at the outlet
    (finite differences), and the solver's pressure a few tiny steps in is close to it."""
    p, e = ns.initial_pressure, 1e-4
    y = np.linspace(0.05, 0.95, 19)
    assert np.abs((p(e, y) - p(0.0, y)) / e + 9 * np.pi * np.sin(np.pi * y)).max() < 2e-2
    x = np.linspace(0.05, 1.95, 20)
    assert np.abs(p(x, e) - p(x, 0.0)).max() / e < 1e-2 and np.abs(p(x, 1.0) - p(x, 1 - e)).max() / e < 1e-2
    assert np.abs(p(2.0, y)).max() < 1e-12
    X, Y = np.meshgrid(np.linspace(0.1, 1.9, 10), np.linspace(0.1, 0.9, 9))
    h = 1e-3
    lap = (p(X + h, Y) + p(X - h, Y) + p(X, Y + h) + p(X, Y - h) - 4 * p(X, Y)) / h ** 2
    assert np.abs(lap).max() < 1e-2
    pts = ns.eval_points(0.1)
    run = ns.solve(ns.Flow(), 16, 1e-5, [4e-5], pts)
    ref = p(*pts)
    assert np.linalg.norm(run["p"][0] - ref) / np.linalg.norm(ref) < 2e-2  # O(h): Stokes layer unresolved


def test_probes_match_the_shared_probe():
    from experiments.references.common import probe

    d = core.Discretisation(ns.Flow(), 8)
    pts = ns.eval_points()
    u = d.V.project(lambda x: np.sin(3 * x[0]) * np.cos(2 * x[1]))
    p = d.P.project(lambda x: x[0] * x[1] + x[1])
    assert np.abs(d.V.probes(pts) @ u - probe(d.V, u, pts)).max() < 1e-12
    assert np.abs(d.P.probes(pts) @ p - probe(d.P, p, pts)).max() < 1e-12


def test_script_imports_only_the_numerical_core_of_dinf():
    """From dinf only the Taylor–Hood discretisation and stepping it shares with
    solver=taylor_hood (tests/test_reference_ks.py checks that it imports nothing else of dinf)."""
    tree = ast.parse(SCRIPT.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
              if n.module == "dinf.solvers.classical"]
    dinf = {n for n in names if n.split(".")[0] == "dinf"}
    assert dinf <= {"dinf.solvers.classical", "dinf.solvers.classical.navier_stokes"}, dinf


def test_reference_file_reads_as_a_long_table_with_the_problem_data():
    path = ROOT / "data" / "references" / "ns2d_lt.npz"
    if not path.exists():
        pytest.skip("python experiments/references/ns2d_lt.py writes it")
    from dinf.pdes.reference_data import read_table

    ref = read_table(path)
    assert ref.coord_names == ["x", "y", "t"] and list(ref.values) == ["u", "v", "p"]
    pts, T = ns.eval_points(), ns.OUT_TIMES.size
    assert ref.coords.shape == (pts.shape[1] * T, 3)
    x, y, t = ref.coords.T
    assert np.array_equal(x.reshape(-1, T)[:, 0], pts[0]) and np.array_equal(t[:T], ns.OUT_TIMES)
    u, v, p = (ref.values[k] for k in ("u", "v", "p"))
    assert all(np.isfinite(a).all() for a in (u, v, p))
    start = t == 0
    assert (u[start] == 0).all() and (v[start] == 0).all()
    assert np.allclose(p[start], ns.initial_pressure(x[start], y[start]), atol=1e-12)
    inlet = x == 0
    assert np.abs(u[inlet] - ns.inlet_amplitude(t[inlet]) * np.sin(np.pi * y[inlet])).max() < 1e-5
    assert np.abs(v[inlet]).max() < 1e-12
    walls = (y == 0) | (y == 1)
    assert np.abs(u[walls]).max() < 1e-12 and np.abs(v[walls]).max() < 1e-12
    outlet = (x == 2) & (t > 0)
    assert np.abs(p[outlet]).max() < 0.05 * np.abs(p).max()  # p = ν u_x there
    side = np.load(path.with_name("ns2d_lt_refinement.npz"))
    assert side["space_uvp_l2_vs_finest"][-2] < 1e-3 and side["time_uvp_l2_vs_finest"][-2] < 1e-3


def test_the_stress_form_used_for_comparison_is_consistent():
    """With ν(2D(u), D(w)) the natural outlet condition is 2νD(u)n − p n = h: the Taylor–Green
    flow with that traction (2ν u_x − p, ν(u_y + v_x)) = (2νg cos x cos y − p, 0) converges too."""

    class Stress(_TaylorGreen):
        def outlet(self, x, t):
            g = _g(t)
            return 2 * self.nu * g * np.cos(x[0]) * np.cos(x[1]) - self.exact(x, t)[2], np.zeros(x.shape[1:])

    flow, pts = Stress(), ns.eval_points(0.25)
    errs = np.array([_l2_errors(flow, ns.solve(flow, n, 0.002, [0.2], pts, stress=True), 0.2) for n in (4, 8)])
    assert _orders(errs[:, 0]).min() > 2.8 and errs[-1, 0] < 3e-4, errs
