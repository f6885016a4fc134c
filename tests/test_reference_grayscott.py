"""The Gray–Scott reference solver (experiments/references/grayscott.py): exact where ETDRK4 must be
(diffusion, with the linear decay and the constant feed), the reaction ODE against scipy, fourth
order in time, exact interpolation to the evaluation points, and the reference file reads as a
long table that starts from the initial data."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.fft as sfft

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "references" / "grayscott.py"
_spec = importlib.util.spec_from_file_location("grayscott_reference", SCRIPT)
gs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gs)


def _modes(X, Y):
    return np.cos(np.pi * X) * np.sin(2 * np.pi * Y), np.cos(3 * np.pi * X + 0.4) * np.cos(np.pi * Y)


@pytest.mark.parametrize("b, d", [(0.0, 0.0), (gs.B, gs.D)])
def test_linear_problem_matches_the_exact_fourier_solution(b, d):
    """Without u v² (c = 0): pure diffusion (b = d = 0), and diffusion with Gray–Scott's decay and
    constant feed, whose solution is u = 1 + e^{−(b + 5π²ε₁)t}(u0 − 1) for u0 − 1 one mode, v alike:
    ETDRK4 is exact for constant forcing, so any step gives it to round-off."""
    eps = (0.01, 0.004)
    p = np.linspace(-1, 1, 9)
    X, Y = np.meshgrid(p, p, indexing="ij")
    mu, mv = _modes(X, Y)

    def init(x, y):
        a, c = _modes(x, y)
        return 1 + 0.3 * a, 0.5 + 0.2 * c

    times = [0.0, 5.0, 10.0]
    r = gs.solve(16, 2.5, eps=eps, b=b, d=d, c=0.0, init=init, times=times, px=p)
    for k, t in enumerate(times):
        u = 1 + 0.3 * np.exp(-(b + 5 * np.pi**2 * eps[0]) * t) * mu
        v = 0.5 * np.exp(-d * t) + 0.2 * np.exp(-(d + 10 * np.pi**2 * eps[1]) * t) * mv
        assert np.abs(r["u"][k, 0] - u).max() < 1e-14 and np.abs(r["u"][k, 1] - v).max() < 1e-14


def test_reaction_ode_matches_solve_ivp():
    """ε = 0 and uniform data: each grid point is the ODE u' = b(1 − u) − uv², v' = −dv + uv²."""
    from scipy.integrate import solve_ivp

    u0, v0 = 0.3, 0.6
    times = [0.0, 2.0, 10.0, 30.0]
    r = gs.solve(4, 0.01, eps=(0.0, 0.0), init=lambda x, y: (u0 + 0 * x, v0 + 0 * x), times=times,
                 px=np.array([-1.0, 0.3]))

    def rhs(_t, y):
        u, v = y
        return [gs.B * (1 - u) - u * v * v, -gs.D * v + u * v * v]

    ref = solve_ivp(rhs, (0, times[-1]), [u0, v0], method="DOP853", rtol=1e-12, atol=1e-14, t_eval=times).y.T
    got = r["u"][:, :, 0, 0]
    assert np.abs(r["u"] - got[:, :, None, None]).max() < 1e-14  # stays uniform
    assert np.abs(got - ref).max() < 1e-11, np.abs(got - ref).max()  # measured 9e-14
    assert np.abs(got[-1] - got[0]).max() > 0.1  # the ODE moved


def test_time_refinement_is_fourth_order_on_a_short_interval():
    """The full problem on 128², t ∈ [0, 20]: h = 0.5, 0.25, 0.125 against h = 1/32 (orders 4.08,
    4.03; from h = 1 the first order is 4.5)."""
    times, p = [0.0, 10.0, 20.0], np.linspace(-0.5, 0.5, 41)
    ref = gs.solve(128, 1 / 32, times=times, px=p)["u"]
    errs = [np.linalg.norm(gs.solve(128, h, times=times, px=p)["u"] - ref) / np.linalg.norm(ref)
            for h in (0.5, 0.25, 0.125)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert ((orders > 3.5) & (orders < 4.5)).all(), (errs, orders)


def test_sampler_interpolates_trigonometric_polynomials_exactly():
    n = 16
    g = gs.grid(n)

    def f(X, Y):  # Nyquist modes in x, in y, and in both
        return (np.cos(8 * np.pi * (X + 1)) * np.sin(3 * np.pi * Y) + np.cos(8 * np.pi * (Y + 1))
                + 0.3 * np.cos(np.pi * (2 * X - 5 * Y)) + np.cos(8 * np.pi * (X + 1)) * np.cos(8 * np.pi * (Y + 1)))

    w = sfft.rfft2(f(*np.meshgrid(g, g, indexing="ij")))
    for p in (g, np.linspace(-1, 1, 37)):
        np.testing.assert_allclose(gs.Sampler(n, p, p)(w), f(*np.meshgrid(p, p, indexing="ij")), atol=1e-14)


def test_script_imports_only_the_numerical_cores_of_dinf():
    """From dinf only the operators and ETDRK4 it shares with solver=spectral (numpy and scipy
    only; tests/test_reference_ks.py checks that those import nothing else of dinf)."""
    tree = ast.parse(SCRIPT.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert {n for n in names if n.split(".")[0] == "dinf"} <= {"dinf.solvers.classical.etdrk4",
                                                               "dinf.solvers.classical.fourier"}


def test_reference_file_reads_as_a_long_table():
    path = ROOT / "data" / "references" / "grayscott.npz"
    if not path.exists():
        pytest.skip("python experiments/references/grayscott.py writes it")
    from dinf.pdes.reference_data import read_table

    ref = read_table(path)
    assert ref.coord_names == ["x", "y", "t"] and list(ref.values) == ["u", "v"]
    P, T = gs.EVAL.size, gs.OUT_TIMES.size
    assert ref.coords.shape == (P * P * T, 3)
    c = ref.coords.reshape(P * P, T, 3)  # node-major
    assert (c[:, :, 2] == gs.OUT_TIMES).all() and (c[:, :1, :2] == c[:, :, :2]).all()
    x, y = c[:, 0, 0], c[:, 0, 1]
    assert x.min() == -1 and x.max() == 1 and y.min() == -1 and y.max() == 1
    u, v = (ref.values[k].reshape(P * P, T) for k in ("u", "v"))
    assert np.isfinite(u).all() and np.isfinite(v).all()
    u0, v0 = gs.initial(x, y)
    assert np.abs(u[:, 0] - u0).max() < 1e-7 and np.abs(v[:, 0] - v0).max() < 1e-7  # float32
    edge = (np.abs(x) == 1) | (np.abs(y) == 1)
    assert np.abs(u[edge] - 1).max() < 1e-7 and np.abs(v[edge]).max() < 1e-7  # u = 1, v = 0 on the boundary
    assert v[:, -1].max() > 0.2  # the pattern survives to t = 200
