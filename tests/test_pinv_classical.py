"""experiments/pinv_classical.py: the source term, the adjoint gradient, a σ = 0 recovery."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sym

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "pinv_classical.py"
_spec = importlib.util.spec_from_file_location("pinv_classical", _PATH)
pc = importlib.util.module_from_spec(_spec)
sys.modules["pinv_classical"] = pc  # dataclasses look their module up here
_spec.loader.exec_module(pc)


def test_source_is_minus_div_a_grad_u():
    """f = −∇·(a∇u) for the truth, symbolically derived, matches the script's f at random points."""
    x, y = sym.symbols("x y")
    u = sym.sin(sym.pi * x) * sym.sin(sym.pi * y)
    a = 1 / (1 + x**2 + y**2 + (x - 1) ** 2 + (y - 1) ** 2)
    f = sym.lambdify((x, y), -(sym.diff(a * sym.diff(u, x), x) + sym.diff(a * sym.diff(u, y), y)))
    pts = np.random.default_rng(0).uniform(0, 1, (2, 50))
    np.testing.assert_allclose(pc.f_source(*pts), f(*pts), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2])
def test_adjoint_gradient_matches_central_differences(degree):
    gaps = pc.check_gradient(mesh=8, degree=degree, n_dirs=4)
    assert max(gaps) < 1e-6


def test_noise_free_recovery():
    """σ = 0, α = 0, 8 × 8 cells, P2: a's L2RE measured 2.6e-3, u's 1.1e-3 (initial guess: 0.13,
    0.12); 95 L-BFGS-B iterations, under a second."""
    prob = pc.Problem(8, 0.0, degree=2)
    a0 = prob.initial_a()
    a = prob.minimise(a0, 0.0, maxiter=2000)
    err, err0 = prob.errors(a), prob.errors(a0)
    assert err["a"] < 5e-3
    assert err["a"] < 0.05 * err0["a"]
    assert err["u"] < 2e-3
