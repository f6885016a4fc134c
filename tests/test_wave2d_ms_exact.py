"""The exact solution of PINNacle's Wave2d-MS as posed, and PINNacle's own formula against it."""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

import dinf.pdes.exact.wave2d_ms as W
from dinf.pdes.exact import (REFERENCES, wave2d_ms_c1n, wave2d_ms_cm2, wave2d_ms_error_bound, wave2d_ms_particular,
                             wave2d_ms_pinnacle, wave2d_ms_series, wave2d_ms_series_u_t)

ROOT = Path(__file__).resolve().parents[1]
PI = math.pi
S3 = math.sinh(3 * PI)  # max|u|
SQ2 = math.sqrt(2.0)


def front_distance(s: np.ndarray, t: np.ndarray, c: float) -> np.ndarray:
    """Distance (in s) to the nearest characteristic ``s ± c t ∈ 2ℤ + 1`` (where u is only C¹)."""
    return np.minimum(np.abs(np.mod(s + c * t, 2.0) - 1.0), np.abs(np.mod(s - c * t, 2.0) - 1.0))


def f_profile(y):
    return np.sinh(PI * y) - np.sinh(PI) * y


def h_profile(x):
    return np.sinh(3 * PI * x) - S3 * np.sinh(math.sqrt(7) * PI * x) / np.sinh(math.sqrt(7) * PI)


def test_pinnacle_formula_is_not_a_solution():
    """``g_tt - g_xx - 2 g_yy = -2π² g``, symbolically and by differences."""
    sp = pytest.importorskip("sympy")
    x, y, t = sp.symbols("x y t")
    g = (sp.sin(sp.pi * x) * sp.sinh(sp.pi * y) + sp.sinh(3 * sp.pi * x) * sp.sin(2 * sp.pi * y)) * sp.cos(sp.pi * t)
    assert sp.simplify(sp.diff(g, t, 2) - sp.diff(g, x, 2) - 2 * sp.diff(g, y, 2) + 2 * sp.pi ** 2 * g) == 0
    # the particular part w(x, y) cos(πt) is a solution
    w = (sp.sinh(sp.pi) * y * sp.sin(sp.pi * x)
         + sp.sinh(3 * sp.pi) * sp.sin(2 * sp.pi * y) * sp.sinh(sp.sqrt(7) * sp.pi * x) / sp.sinh(sp.sqrt(7) * sp.pi))
    assert sp.simplify(sp.diff(w, x, 2) + 2 * sp.diff(w, y, 2) + sp.pi ** 2 * w) == 0

    rng = np.random.default_rng(0)
    px, py, pt = rng.uniform(0.1, 0.9, 50), rng.uniform(0.1, 0.9, 50), rng.uniform(0, 100, 50)
    h = 1e-3
    c = [-1 / 12, 16 / 12, -30 / 12, 16 / 12, -1 / 12]

    def d2(dx, dy, dt):
        return sum(ci * wave2d_ms_pinnacle(px + k * dx, py + k * dy, pt + k * dt) for ci, k in zip(c, range(-2, 3))) / h ** 2

    res = d2(0, 0, h) - d2(h, 0, 0) - 2 * d2(0, h, 0)
    g = wave2d_ms_pinnacle(px, py, pt)
    np.testing.assert_allclose(res, -2 * PI ** 2 * g, atol=1e-6 * 9 * PI ** 2 * S3)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 31])
def test_c1n_against_quadrature(n):
    """``c_1n = 2 ∫ f(y) sin(nπy) dy`` with ``f = sinh(πy) - sinh(π) y``."""
    val, _ = quad(lambda y: 2 * f_profile(y) * np.sin(n * PI * y), 0, 1, limit=200, epsabs=1e-13, epsrel=1e-12)
    assert abs(val - float(wave2d_ms_c1n(n))) <= 1e-10 * abs(val) + 1e-13


@pytest.mark.parametrize("m", [1, 2, 3, 7, 30])
def test_cm2_against_quadrature(m):
    """``c_m2 = 2 ∫ h(x) sin(mπx) dx`` with ``h = sinh(3πx) - sinh(3π) sinh(√7πx)/sinh(√7π)``."""
    val, _ = quad(lambda x: 2 * h_profile(x) * np.sin(m * PI * x), 0, 1, limit=200, epsabs=1e-11, epsrel=1e-13)
    assert abs(val - float(wave2d_ms_cm2(m))) <= 1e-10 * abs(val) + 1e-11


@pytest.mark.parametrize("m, n", [(1, 1), (1, 2), (3, 2), (1, 5), (2, 1), (2, 3)])
def test_free_part_projection(m, n):
    """``C_mn = 4 ∬ (g(·,·,0) - w) sin(mπx) sin(nπy)``: the 2-D projection of the free part's
    initial value is ``δ_m1 c_1n + δ_n2 c_m2`` (both at (1, 2); zero off the two lines)."""
    def inner(y):
        fx = lambda x: (wave2d_ms_pinnacle(x, y, 0.0) - wave2d_ms_particular(x, y)) * np.sin(m * PI * x)  # noqa: E731
        return quad(fx, 0, 1, epsabs=1e-11, epsrel=1e-12)[0] * np.sin(n * PI * y)
    val = 4 * quad(inner, 0, 1, epsabs=1e-10, epsrel=1e-12)[0]
    expect = (float(wave2d_ms_c1n(n)) if m == 1 else 0.0) + (float(wave2d_ms_cm2(m)) if n == 2 else 0.0)
    assert abs(val - expect) <= 1e-9 * S3


def test_boundary_and_initial_conditions():
    s = np.linspace(0, 1, 101)
    for t in (0.0, 0.37, 1.5, 17.2, 63.9, 100.0):
        for a, b in ((0 * s, s), (1 + 0 * s, s), (s, 0 * s), (s, 1 + 0 * s)):
            np.testing.assert_allclose(wave2d_ms_series(a, b, t), wave2d_ms_pinnacle(a, b, t), rtol=0, atol=1e-12 * S3)
    X, Y = np.meshgrid(s, s, indexing="ij")
    np.testing.assert_allclose(wave2d_ms_series(X, Y, 0.0), wave2d_ms_pinnacle(X, Y, 0.0), rtol=0, atol=1e-13 * S3)
    np.testing.assert_allclose(wave2d_ms_series_u_t(X, Y, 0.0), 0.0, rtol=0, atol=1e-13 * PI * S3)
    # the plain series at t = 0 converges to the same initial value (slowly)
    np.testing.assert_allclose(wave2d_ms_series(X[::10, ::10], Y[::10, ::10], 0.0, terms=4000),
                               wave2d_ms_pinnacle(X[::10, ::10], Y[::10, ::10], 0.0), rtol=0, atol=1e-7 * S3)


def test_against_brute_force_series():
    """The accelerated evaluation against the plain series with ``2^19`` modes for B_x (``2^14``
    for B_y; tails ≤ 2.3e-12 × sinh(3π)) at random points and on wavefronts up to t = 100: the
    difference stays within the claimed bound (``wave2d_ms_error_bound`` ≤ 1e-10 × sinh(3π))."""
    bound = wave2d_ms_error_bound(100.0)
    print(f"error bound for t <= 100: {bound / S3:.2e} x sinh(3pi); for u_t {wave2d_ms_error_bound(100.0, True) / (PI * S3):.2e}")
    assert bound < 1e-10 * S3
    rng = np.random.default_rng(5)
    x, y, t = rng.uniform(0, 1, 5), rng.uniform(0, 1, 5), rng.uniform(0, 100, 5)
    x[:3], t[:3] = [0.3, 0.7, 0.999], [50.7, 30.3, 98.001]  # on x ± t = odd: B_x's fronts
    y[3:], t[3:] = [0.2, 0.9], [(51 - 0.2) / SQ2, (69 + 0.9) / SQ2]  # on y ± √2 t = odd: B_y's fronts
    sx, sy = W._SERIES["x"], W._SERIES["y"]
    start = time.perf_counter()
    bx = W._profile(sx, x, t, False, 1 << 19)
    by = W._profile(sy, y, t, False, 1 << 14)
    print(f"brute force: {time.perf_counter() - start:.1f} s")
    fx, fy = W._profile(sx, x, t, False, None), W._profile(sy, y, t, False, None)
    tails = (sx.alpha / 2 / (1 << 19) ** 2) + (sy.alpha / 2 / (1 << 14) ** 2)
    err = np.abs(fx - bx) + np.abs(fy - by)
    print(f"fast vs brute force: max {err.max() / S3:.2e} x sinh(3pi)")
    assert err.max() <= bound + tails
    # the whole solution too
    u = wave2d_ms_series(x, y, t)
    ref = wave2d_ms_particular(x, y) * np.cos(PI * t) + np.sin(PI * x) * by + np.sin(2 * PI * y) * bx
    assert np.abs(u - ref).max() <= bound + tails


def test_plain_truncation_error():
    """``terms=M`` errs by at most ``(α_x + α_y) / (2 M²)`` (``α_x = 4 sinh(3π)/π``), and late in
    time near a front the bound is nearly attained: ~80 000 plain terms for 1e-10."""
    x, y, t = np.array([0.5, 0.5, 0.3]), np.array([0.25, 0.25, 0.6]), np.array([0.5, 60.5, 20.0])
    exact = wave2d_ms_series(x, y, t)
    alpha = W._SERIES["x"].alpha + W._SERIES["y"].alpha
    for M in (100, 1000):
        err = np.abs(wave2d_ms_series(x, y, t, terms=M) - exact)
        bound = alpha / (2 * M * M)
        print(f"terms={M}: errors {err / S3} x sinh(3pi), bound {bound / S3:.2e}")
        assert err.max() <= bound
    assert err[1] > 0.1 * bound  # x + t = 61 at t = 60.5
    # u_t's plain series: |a_m ω_m| ≤ α π (c / m² + L / m⁴), a tail ~ 1/M
    M = 2000
    err = np.abs(wave2d_ms_series_u_t(x, y, t, terms=M) - wave2d_ms_series_u_t(x, y, t))
    bound = sum(s.alpha * PI * (s.c / M + s.L / (3 * M ** 3)) for s in W._SERIES.values())
    assert err.max() <= bound + wave2d_ms_error_bound(60.5, True)


def test_pde_residual_by_differences():
    """``u_tt - u_xx - 2 u_yy`` by 4th-order central differences (h = 1e-3) at random points
    away from the characteristics: small against the terms' scale ``9π² sinh(3π)``. Behind a
    front, late, u carries a dispersive chirp (local wavenumber ~ 2π √(t/d)), so the points keep a
    distance ``d`` with that wavenumber × h ≤ 0.25."""
    h = 1e-3
    rng = np.random.default_rng(3)
    n = 400
    x, y, t = rng.uniform(0.02, 0.98, n), rng.uniform(0.02, 0.98, n), rng.uniform(0.0, 100.0, n)
    need = np.maximum(4 * h, t * (2 * PI * h / 0.25) ** 2)
    keep = (front_distance(x, t, 1.0) > need) & (front_distance(y, t, SQ2) > SQ2 * need)
    x, y, t = x[keep], y[keep], t[keep]
    assert x.size > 250
    c = [-1 / 12, 16 / 12, -30 / 12, 16 / 12, -1 / 12]

    def d2(dx, dy, dt):
        return sum(ci * wave2d_ms_series(x + k * dx, y + k * dy, t + k * dt) for ci, k in zip(c, range(-2, 3))) / h ** 2

    res = d2(0, 0, h) - d2(h, 0, 0) - 2 * d2(0, h, 0)
    scale = 9 * PI ** 2 * S3
    print(f"residual / (9 pi^2 sinh(3pi)): max {np.abs(res).max() / scale:.2e}, median {np.median(np.abs(res)) / scale:.2e}")
    assert np.abs(res).max() < 5e-8 * scale
    # against g's residual -2π² g, which is of order 1 on this scale
    assert np.abs(2 * PI ** 2 * wave2d_ms_pinnacle(x, y, t)).max() > 0.05 * scale

    # u_t against differences in t (h = 5e-4; the same points)
    hh = 5e-4
    ut = sum(ci * wave2d_ms_series(x, y, t + k * hh) for ci, k in zip([1 / 12, -8 / 12, 8 / 12, -1 / 12], (-2, -1, 1, 2))) / hh
    err = np.abs(ut - wave2d_ms_series_u_t(x, y, t))
    print(f"u_t vs differences: max {err.max() / (PI * S3):.2e} x pi sinh(3pi)")
    assert err.max() < 1e-6 * PI * S3


def test_distance_to_pinnacle_formula():
    """The error floor of scoring against PINNacle's formula: ``‖u - g‖ / ‖g‖`` over
    [0, 1]² × [0, T] on 41² × 1001 points (and PINNacle's 41² × 101 at T = 100, where the time
    step 1 samples ``cos(πt)`` only at ±1 and aliases)."""
    xs = np.linspace(0, 1, 41)
    X, Y = xs[:, None, None], xs[None, :, None]
    out = {}
    for T, nt in ((100, 1001), (100, 101), (10, 1001)):
        t = np.linspace(0, T, nt)[None, None, :]
        u, g = wave2d_ms_series(X, Y, t), wave2d_ms_pinnacle(X, Y, t)
        free = u - wave2d_ms_particular(X, Y) * np.cos(PI * t)
        rel_g = np.linalg.norm(u - g) / np.linalg.norm(g)
        rel_u = np.linalg.norm(u - g) / np.linalg.norm(u)
        share = np.linalg.norm(free) / np.linalg.norm(u)
        out[T, nt] = rel_g
        print(f"T={T} 41x41x{nt}: |u-g|/|g| = {rel_g:.4f}, |u-g|/|u| = {rel_u:.4f}, "
              f"free oscillations |v|/|u| = {share:.4f}, max|u| = {np.abs(u).max():.2f}")
        assert np.abs(u).max() <= S3 * (1 + 1e-9)
    assert 0.11 < out[100, 1001] < 0.12 and 0.11 < out[10, 1001] < 0.12
    assert 0.07 < out[100, 101] < 0.10


def test_shapes_dedup_and_speed():
    xs, ts = np.linspace(0, 1, 21), np.linspace(0, 100, 201)
    grid = wave2d_ms_series(xs[:, None, None], xs[None, :, None], ts[None, None, :])
    assert grid.shape == (21, 21, 201) and grid.dtype == np.float64
    X, Y, T = np.meshgrid(xs, xs, ts, indexing="ij")
    flat = wave2d_ms_series(X.ravel(), Y.ravel(), T.ravel())  # de-duplicated (x, t) and (y, t) pairs
    np.testing.assert_array_equal(flat.reshape(grid.shape), grid)
    assert np.ndim(wave2d_ms_series(0.5, 0.5, 3.0)) == 0
    with pytest.raises(ValueError):
        wave2d_ms_series(0.5, 0.5, 1.0, terms=0)
    rng = np.random.default_rng(1)
    n = 50_000
    px, py, pt = rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 100, n)
    start = time.process_time()
    u = wave2d_ms_series(px, py, pt)
    elapsed = time.process_time() - start
    print(f"{n} scattered points: {elapsed:.2f} s cpu")
    assert np.isfinite(u).all() and elapsed < 5.0
    # u is even in t, u_t odd
    np.testing.assert_allclose(wave2d_ms_series(px[:50], py[:50], -pt[:50]), u[:50], rtol=0, atol=1e-12 * S3)


def test_registry():
    ref = REFERENCES["wave2d_ms_series"]
    x, y, t = np.linspace(0, 1, 11), np.full(11, 0.3), np.full(11, 42.0)
    out = ref({"x": x, "y": y, "t": t}, domain="ignored")
    assert set(out) == {"u"}
    np.testing.assert_array_equal(out["u"], wave2d_ms_series(x, y, t))
    np.testing.assert_array_equal(ref({"x": x, "y": y, "t": t}, terms=50)["u"], wave2d_ms_series(x, y, t, terms=50))
    with pytest.raises(KeyError, match="needs coordinates x, y, t"):
        ref({"x": x, "t": t})


def test_importable_without_torch():
    code = (
        "import sys, types; sys.modules['torch'] = None\n"
        "pkg = types.ModuleType('dinf.pdes'); pkg.__path__ = ['dinf/pdes']; sys.modules['dinf.pdes'] = pkg\n"
        "from dinf.pdes.exact import REFERENCES\n"
        "print(float(REFERENCES['wave2d_ms_series']({'x': 0.5, 'y': 0.5, 't': 0.5})['u']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
