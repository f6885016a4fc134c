"""experiments/convergence.py: its solve is train.py's, its quadrature and fits are right."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import convergence as cv  # noqa: E402


def test_same_error_as_the_lsq_solver():
    """run_one's normal-equation path gives LeastSquares.solve's field (what train.py runs)."""
    from dinf.solvers.least_squares import LeastSquares
    from dinf.app.run import build

    r = cv.run_one("poisson2d", 8, (1.0, 3, 0.0))
    problem, field, _ = build(cv.compose(r.overrides))
    LeastSquares().solve(field, problem, torch.Generator().manual_seed(0))
    assert problem.evaluate(field)["rel_l2"] == pytest.approx(r.rel_l2, rel=1e-6)
    assert r.rel_l2_f64 == pytest.approx(r.rel_l2, rel=1e-3)  # float32 storage: tiny at this error


@pytest.mark.parametrize("rule", ["gauss", "midpoint"])
def test_cell_points_integrate(rule):
    """Weighted means over the points are the integrals' means: exact for a degree-7 polynomial
    per axis with 4 Gauss points, and for constants with midpoints."""
    x, flag, rel = cv.cell_points(3, 4, rule)
    assert x.shape[0] == 3 * 3 * 16 + 4 * 3 * 4 and int(flag.sum()) == 4 * 3 * 4
    inner, w = x[~flag], rel[~flag]
    assert float(w.mean()) == pytest.approx(1.0)
    if rule == "gauss":
        f = inner[:, 0] ** 6 * inner[:, 1] ** 2  # mean over [-1, 1]²: (1/7)(1/3)
        assert float((w * f).mean()) == pytest.approx(1 / 21, rel=1e-12)


def test_fit_order_stops_at_the_floor():
    cells = [8, 16, 32, 64, 128]
    errors = [1e-1 * (8 / n) ** 4 for n in cells[:3]] + [3e-5, 6e-5]  # order 4, then a floor that rises
    order, first, last = cv.fit_order(cells, errors)
    assert (first, last) == (1, 3) and 3.5 < order < 4.5  # 1e-1 at 8 cells is not below 10 %


def test_qr_and_normal_equations_agree():
    rng = np.random.default_rng(0)
    A = sp.random(200, 30, density=0.3, random_state=1, format="csr") + sp.eye(200, 30, format="csr")
    b = rng.standard_normal(200)
    z_n = cv.solve(A.tocsr(), b, cv.Options())
    z_q = cv.solve(A.tocsr(), b, cv.Options(solver="qr"))
    assert np.allclose(z_n, z_q, atol=1e-8)
