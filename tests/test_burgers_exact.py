"""The exact Burgers solution (Cole–Hopf, Gauss–Hermite) and PINNacle's burgers1d.dat against it."""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dinf.pdes.exact import REFERENCES, burgers_cole_hopf, burgers_cole_hopf_u_x, default_nodes
from dinf.pdes.reference_data import l2re, load_reference

NU = 0.01 / np.pi
ROOT = Path(__file__).resolve().parents[1]
PINNACLE = ROOT / "data" / "pinnacle"


def trapezoid(x: float, t: float, nu: float = NU, half_width: float = 40.0, n: int = 40001) -> float:
    """The same Cole–Hopf ratio by a dense trapezoid rule in s = η / sqrt(4νt): an independent
    check of the Gauss–Hermite rule (the integrand is smooth and negligible at ±half_width, so the
    trapezoid rule converges spectrally)."""
    s = np.linspace(-half_width, half_width, n)
    y = x - math.sqrt(4 * nu * t) * s
    e = -s ** 2 - np.cos(np.pi * y) / (2 * np.pi * nu)
    p = np.exp(e - e.max())
    return float(-(p * np.sin(np.pi * y)).sum() / p.sum())


def test_basdevant_slope():
    slope = float(burgers_cole_hopf_u_x(0.0, 1.6037 / np.pi))
    print(f"u_x(0, 1.6037/pi) = {slope:.8f}")
    assert abs(slope - -152.00516) / 152.00516 < 1e-5


def test_boundary_and_initial_conditions():
    t = np.linspace(0, 1, 21)
    np.testing.assert_allclose(burgers_cole_hopf(np.array([[-1.0], [1.0]]), t), 0.0, atol=1e-13)
    x = np.linspace(-1, 1, 101)
    np.testing.assert_array_equal(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x))
    np.testing.assert_array_equal(burgers_cole_hopf_u_x(x, 0.0), -np.pi * np.cos(np.pi * x))
    # just after t = 0 the quadrature joins the initial condition smoothly
    np.testing.assert_allclose(burgers_cole_hopf(x, 1e-9), -np.sin(np.pi * x), atol=1e-7)
    # odd in x, as the initial condition
    tt = np.linspace(0.05, 1, 7)[:, None]
    np.testing.assert_allclose(burgers_cole_hopf(-x, tt), -burgers_cole_hopf(x, tt), atol=1e-13)


@pytest.mark.parametrize("x, t", [(-0.7, 0.25), (-0.3, 0.9), (0.1, 0.25), (0.1, 0.5), (0.4, 0.5), (0.8, 0.9)])
def test_pde_residual(x, t):
    """``u_t + u u_x − ν u_xx`` by central differences of the function: the relative residual is
    the O(h²) difference error (it falls 4x when h halves) and its Richardson extrapolation
    vanishes to far below that."""
    def residual(h: float) -> tuple[float, float]:
        u = lambda a, b: float(burgers_cole_hopf(a, b))  # noqa: E731
        u0 = u(x, t)
        ut = (u(x, t + h) - u(x, t - h)) / (2 * h)
        ux = (u(x + h, t) - u(x - h, t)) / (2 * h)
        uxx = (u(x + h, t) - 2 * u0 + u(x - h, t)) / h ** 2
        return ut + u0 * ux - NU * uxx, abs(ut) + abs(u0 * ux) + abs(NU * uxx)

    r1, scale = residual(2e-3)
    r2, _ = residual(1e-3)
    assert abs(r2) / scale < 1e-4
    assert abs(4 * r2 - r1) / 3 / scale < 1e-7


@pytest.mark.parametrize("x, t", [(0.0, 0.51), (0.01, 0.4), (-0.5, 0.3), (0.3, 0.8)])
def test_u_x_against_differences(x, t):
    h = 1e-5
    fd = (burgers_cole_hopf(x + h, t) - burgers_cole_hopf(x - h, t)) / (2 * h)
    ux = burgers_cole_hopf_u_x(x, t)
    assert abs(fd - ux) / max(1.0, abs(ux)) < 1e-5


def test_quadrature_converges():
    x = np.linspace(-1, 1, 129)[:, None]
    t = np.linspace(0.01, 1, 25)[None, :]
    u64, u128, u256 = (burgers_cole_hopf(x, t, nodes=n) for n in (64, 128, 256))
    d1, d2 = np.abs(u64 - u128).max(), np.abs(u128 - u256).max()
    print(f"max |u_64 - u_128| = {d1:.2e}, max |u_128 - u_256| = {d2:.2e}")
    assert d2 < 1e-13 and d1 > 10 * d2  # converged at 128, not yet at 64
    assert default_nodes(NU) == 128
    ux128, ux256 = (burgers_cole_hopf_u_x(x, t, nodes=n) for n in (128, 256))
    assert np.abs(ux128 - ux256).max() < 1e-10 * np.abs(ux256).max()


def test_against_dense_trapezoid():
    pts = [(0.0, 1.6037 / np.pi), (0.002, 0.51), (-0.01, 1.0), (0.05, 0.35), (0.5, 0.1), (-0.9, 0.7), (0.999, 1.0)]
    for x, t in pts:
        assert abs(float(burgers_cole_hopf(x, t)) - trapezoid(x, t)) < 1e-12, (x, t)


def test_small_nu_default_nodes():
    """Smaller ν needs more nodes; the default follows it (checked against the trapezoid rule)."""
    nu = 0.002 / np.pi
    for x, t in [(0.003, 0.6), (0.3, 0.9)]:
        assert abs(float(burgers_cole_hopf(x, t, nu=nu)) - trapezoid(x, t, nu=nu, half_width=60, n=60001)) < 1e-12


def test_speed_and_shapes():
    x = np.linspace(-1, 1, 256)[:, None]
    t = np.linspace(0, 1, 100)[None, :]
    burgers_cole_hopf(x[:2], t[:, :2])  # the quadrature rule is cached after the first call
    start = time.perf_counter()
    u = burgers_cole_hopf(x, t)
    elapsed = time.perf_counter() - start
    print(f"256 x 100 points: {elapsed:.3f} s")
    assert u.shape == (256, 100) and u.dtype == np.float64 and np.isfinite(u).all()
    assert elapsed < 1.0
    assert np.abs(u).max() <= 1.0 + 1e-12
    with pytest.raises(ValueError):
        burgers_cole_hopf(0.0, -0.1)


def test_registry():
    ref = REFERENCES["burgers_cole_hopf"]
    x, t = np.linspace(-1, 1, 11), np.full(11, 0.5)
    out = ref({"x": x, "t": t}, nu=NU, domain="ignored")
    assert set(out) == {"u"}
    np.testing.assert_array_equal(out["u"], burgers_cole_hopf(x, t))
    other = ref({"x": x, "t": t}, nu=0.05)["u"]
    assert not np.allclose(other, out["u"])
    np.testing.assert_array_equal(ref({"x": x, "t": t})["u"], out["u"])  # nu defaults to 0.01/π
    with pytest.raises(KeyError, match="needs coordinates x, t"):
        ref({"x": x})


def test_importable_without_torch():
    """The exact solutions and the reference reader use numpy/scipy only. ``dinf.pdes``'s own
    ``__init__`` imports torch, so the package is stubbed here to test these modules alone."""
    code = (
        "import sys, types; sys.modules['torch'] = None\n"
        "pkg = types.ModuleType('dinf.pdes'); pkg.__path__ = ['dinf/pdes']; sys.modules['dinf.pdes'] = pkg\n"
        "import dinf.pdes.reference_data\n"
        "from dinf.pdes.exact import REFERENCES\n"
        "print(float(REFERENCES['burgers_cole_hopf']({'x': 0.5, 't': 0.5})['u']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_pinnacle_burgers_file_against_exact():
    """PINNacle's COMSOL solution is known to differ from the exact one by ~1.3e-2 (L2RE, pooled
    over the 11 snapshots; worst near the front's formation, t ≈ 0.3–0.4)."""
    ref = load_reference("burgers1d.dat", ["x", "t"], ["u"], search_dirs=[ROOT, PINNACLE])
    pts = ref.points()
    exact = REFERENCES["burgers_cole_hopf"]({"x": pts[:, 0], "t": pts[:, 1]})
    err = l2re(exact, ref.values)["l2re"]
    print(f"burgers1d.dat vs Cole-Hopf: L2RE = {err:.4e}")
    assert 0.5e-2 < err < 3e-2
    # the file's own t = 0 column is -sin(πx) to ~3e-6: the gap is COMSOL's, not the reader's
    np.testing.assert_allclose(ref.values["u"][:, 0], exact["u"].reshape(ref.values["u"].shape)[:, 0], atol=1e-5)
