"""The Kuramoto–Sivashinsky reference solver (experiments/references/ks.py) and the ETDRK4 code it
shares with the Gray–Scott one and solver=spectral (dinf/solvers/classical/etdrk4.py): the
contour-integral coefficients against their series, ETDRK4 exact where it must be (linear KS,
constant forcing), fourth order in time and spectral in space on KS itself, and the reference
file reads as a long table that starts from u0."""
from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from dinf.solvers.classical import etdrk4 as etd

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "experiments" / "references"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_reference", REF / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ks = _load("ks")


def _phi_series(z, j, terms=40):
    """φ_j(z) = Σ_n zⁿ / (n + j)! (for |z| ≤ 1 the series converges in a few dozen terms)."""
    return sum(z**n / math.factorial(n + j) for n in range(terms))


def test_contour_coefficients_match_series_and_direct_formulas():
    """Q = (h/2) φ1(z/2), f1 = h(φ1 − 3φ2 + 4φ3), f2 = h(φ2 − 2φ3), f3 = h(4φ3 − φ2) (z = hL): by
    series for small |z|, by the direct formulas (no cancellation there) for large |z|."""
    h = 0.3
    small = np.array([-0.9, -0.3, -1e-3, 0.0, 1e-6, 0.2, 0.7]) / h
    c = etd.coefficients(small, h)
    z = h * small
    p1, p2, p3 = (np.array([_phi_series(v, j) for v in z]) for j in (1, 2, 3))
    want = dict(Q=h / 2 * np.array([_phi_series(v / 2, 1) for v in z]), f1=h * (p1 - 3 * p2 + 4 * p3),
                f2=h * (p2 - 2 * p3), f3=h * (4 * p3 - p2), E=np.exp(z), E2=np.exp(z / 2))
    for k, v in want.items():
        np.testing.assert_allclose(c[k], v, rtol=1e-13, atol=0, err_msg=k)
    big = np.array([-1e4, -250.0, -30.0, -5.0, 4.0, 12.0]) / h
    c = etd.coefficients(big, h)
    w = h * big
    ew = np.exp(w)
    direct = dict(Q=h * (np.exp(w / 2) - 1) / w, f1=h * (-4 - w + ew * (4 - 3 * w + w * w)) / w**3,
                  f2=h * (2 + w + ew * (w - 2)) / w**3, f3=h * (-4 - 3 * w - w * w + ew * (4 - w)) / w**3)
    for k, v in direct.items():
        np.testing.assert_allclose(c[k], v, rtol=1e-12, atol=0, err_msg=k)
    assert not np.iscomplexobj(c["f1"])


def test_etdrk4_is_exact_for_constant_forcing():
    """v' = λ v + c: ETDRK4's quadrature of the forcing is exact, so any step gives e^{λt}v0 +
    c(e^{λt} − 1)/λ (λ from stiff to growing, complex ones included)."""
    lam = np.array([-2000.0, -40.0, -1.0, -1e-7, 0.5, 3.0, -5 + 20j, 1j])
    c, v0 = 0.7 - 0.2j, 1.3 + 0.4j
    stepper = etd.ETDRK4(lam, 0.25, lambda v: np.full_like(v, c))
    got = stepper.run(np.full(lam.shape, v0), [0.0, 0.5, 1.0], lambda v: v)
    for t, g in zip((0.0, 0.5, 1.0), got):
        exact = np.exp(lam * t) * v0 + c * np.expm1(lam * t) / lam
        np.testing.assert_allclose(g, exact, rtol=1e-12, atol=1e-14)


def test_linear_ks_matches_the_exact_fourier_solution():
    """α = 0: u0 = cos x + ½ sin 2x evolves as e^{L(1)t} cos x + ½ e^{L(2)t} sin 2x, L(k) = βk² − γk⁴:
    modes 1 and 2 to round-off at every output time. (The other modes are exactly 0 but hold
    round-off, which the band 0 < k < 16 amplifies by up to e^{25t}: ~1e-6 at t = 1, as for any
    solver; up to t = 0.2 the whole field is exact to round-off.)"""
    x = ks.grid(ks.P_OUT)
    r = ks.solve(64, 100, alpha=0.0)
    L = lambda k: ks.BETA * k**2 - ks.GAMMA * k**4  # noqa: E731
    t = ks.OUT_TIMES
    v = np.fft.rfft(r["u"], axis=1) / ks.P_OUT
    np.testing.assert_allclose(v[:, 1].real, np.exp(L(1) * t) / 2, rtol=1e-13)
    np.testing.assert_allclose(v[:, 2].imag, -np.exp(L(2) * t) / 4, rtol=1e-13)
    exact = np.exp(L(1) * t[:, None]) * np.cos(x) + 0.5 * np.exp(L(2) * t[:, None]) * np.sin(2 * x)
    assert np.abs(r["u"] - exact)[t <= 0.2].max() < 1e-13


def test_time_refinement_is_fourth_order_on_a_short_interval():
    """t ∈ [0, 0.1] at the reference's N = 512: h = 1/5120, 1/10240, 1/20480 against h = 1/81920.
    (Coarser steps show Cox–Matthews ETDRK4's order reduction, orders 2.2–4.8 near h ~ 1e-3;
    there the reference's steps are far finer.)"""
    times = [0.0, 0.05, 0.1]
    ref = ks.solve(512, 81920, times=times)["u"]
    errs = [np.linalg.norm(ks.solve(512, s, times=times)["u"] - ref) / np.linalg.norm(ref)
            for s in (5120, 10240, 20480)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[-1] < 1e-10 and ((orders > 3.5) & (orders < 4.5)).all(), (errs, orders)


def test_space_refinement_reaches_round_off_by_256_points():
    """t ≤ 0.1, h = 1/6400: N = 256 is within 1e-10 of N = 512, N = 128 is not (spectral decay)."""
    times = ks.OUT_TIMES[:11]
    runs = {n: ks.solve(n, 6400, times=times)["u"] for n in (128, 256, 512)}
    d = {n: np.linalg.norm(runs[n] - runs[512]) / np.linalg.norm(runs[512]) for n in (128, 256)}
    assert d[256] < 1e-10 and d[128] > 1e-7, d


def test_fourier_sampling_is_exact_for_coarse_and_fine_grids():
    f = lambda x: np.cos(x) + 0.3 * np.sin(5 * x) - 0.1 * np.cos(16 * x)  # noqa: E731
    for n in (32, 64, 512):
        np.testing.assert_allclose(ks.sample(np.fft.rfft(f(ks.grid(n))), n), f(ks.grid(ks.P_OUT)), atol=1e-14)


def test_random_perturbation_is_smooth_and_sized():
    f = ks.random_perturbation(1e-10, seed=3)
    x = ks.grid(4096)
    assert np.abs(f(x)).max() == pytest.approx(1e-10, rel=1e-12)
    assert np.abs(np.fft.rfft(f(x))[9:]).max() < 1e-22


def _dinf_imports(path):
    tree = ast.parse(path.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    return {n for n in names if n.split(".")[0] == "dinf"}


# The classical solvers' numerical cores, shared with the reference scripts (numpy, scipy and
# scikit-fem only): a script may import these from dinf and nothing else.
CORES = {"dinf.solvers.classical.etdrk4", "dinf.solvers.classical.fourier", "dinf.solvers.classical.navier_stokes"}


def test_scripts_import_only_the_numerical_cores_of_dinf():
    """The reference is independent of what it checks: from dinf it takes only the numerical
    cores it shares with the classical baselines, which import nothing else of dinf."""
    assert _dinf_imports(REF / "ks.py") <= CORES
    for core in CORES:
        path = ROOT / (core.replace(".", "/") + ".py")
        assert _dinf_imports(path) == set(), core


def test_reference_file_reads_as_a_long_table():
    path = ROOT / "data" / "references" / "ks.npz"
    if not path.exists():
        pytest.skip("python experiments/references/ks.py writes it")
    from dinf.pdes.reference_data import read_table

    ref = read_table(path)
    assert ref.coord_names == ["x", "t"] and list(ref.values) == ["u"]
    T = ks.OUT_TIMES.size
    assert ref.coords.shape == (ks.P_OUT * T, 2)
    x, t = ref.coords[:, 0].reshape(ks.P_OUT, T), ref.coords[:, 1].reshape(ks.P_OUT, T)  # node-major
    np.testing.assert_array_equal(x, np.repeat(ks.grid(ks.P_OUT)[:, None], T, axis=1))
    np.testing.assert_array_equal(t, np.repeat(ks.OUT_TIMES[None], ks.P_OUT, axis=0))
    assert x.max() < 2 * np.pi
    u = ref.values["u"].reshape(ks.P_OUT, T)
    assert np.isfinite(u).all()
    assert np.abs(u[:, 0] - np.cos(x[:, 0]) * (1 + np.sin(x[:, 0]))).max() < 1e-12
    side = np.load(path.with_name("ks_refinement.npz"))
    assert side["sensitivity_l2"].shape == (2, T) and (side["sensitivity_l2"][:, -1] > 1e-9).all()
