"""experiments/references: the classical reference solvers converge at their orders on manufactured
problems, and Poisson2d-MS's coefficients are PINNacle's."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from experiments.references import poisson2d_ms as ms  # noqa: E402

pytest.importorskip("skfem")


def _l2_error(basis, u, exact):
    from skfem import Functional

    err = Functional(lambda w: (w["uh"] - exact(*w.x)) ** 2).assemble(basis, uh=basis.interpolate(u))
    ref = Functional(lambda w: exact(*w.x) ** 2).assemble(basis)
    return np.sqrt(err / ref)


def _orders(hs, errs):
    hs, errs = np.asarray(hs), np.asarray(errs)
    return np.log(errs[:-1] / errs[1:]) / np.log(hs[:-1] / hs[1:])


def test_2d_robin_solver_orders():
    """−Δu = s on [−10, 10]², u_n + u = g: P2 converges at order 3 in L2, P3 at order 4."""
    kx, ky = 0.3, 0.25

    def exact(x, y):
        return np.sin(kx * x + 0.5) * np.cos(ky * y - 0.3)

    def source(x, y, xc, yc):
        return (kx**2 + ky**2) * exact(x, y)

    def robin(x, y, nx, ny):
        ux = kx * np.cos(kx * x + 0.5) * np.cos(ky * y - 0.3)
        uy = -ky * np.sin(kx * x + 0.5) * np.sin(ky * y - 0.3)
        return nx * ux + ny * uy + exact(x, y)

    for order, cells, expected in ((2, (5, 10, 20), 3), (3, (5, 10, 20), 4)):
        errs = []
        for n in cells:
            basis, u = ms.solve(ms.mesh(n), order, source, robin)
            errs.append(_l2_error(basis, u, exact))
        orders = _orders([20 / n for n in cells], errs)
        assert orders[-1] == pytest.approx(expected, abs=0.3), (order, errs, orders)


def test_2d_ms_self_convergence():
    """The Poisson2d-MS solve itself (jumps of f/a on element edges): P2 near order 3."""
    from experiments.references.common import probe

    a, c = ms.coefficients()
    pts = np.vstack(ms.grid(41))
    us = []
    for n in (20, 40, 80):
        basis, u = ms.solve(ms.mesh(n), 2, ms.ms_source(a, c))
        us.append(probe(basis, u, pts, candidates=6))
    order = np.log2(np.linalg.norm(us[0] - us[1]) / np.linalg.norm(us[1] - us[2]))
    assert order > 2.6


def test_pinnacle_coefficients_at_points():
    """a and f by PINNacle's formula (its f_fn, block size 4), evaluated by hand at a few points."""
    a, c = ms.coefficients()
    assert a.shape == (5, 5) and c.shape == (5, 5, 2, 2)
    assert a[0, 0] == pytest.approx(46.11728184600459)  # first entry of poisson_a_coef.dat
    assert a[0, 1] == pytest.approx(0.5973282397508773)  # a[i, j]: row i of the file
    flat = np.loadtxt(ROOT / "data" / "pinnacle" / "poisson_f_coef.dat")
    for x, y in ((-9.0, -7.0), (-3.3, 1.2), (0.5, 9.9), (9.0, -0.5), (-10.0, 10.0)):
        i, j = min(int((x + 10) // 4), 4), min(int((y + 10) // 4), 4)
        rx, ry = x - (-10 + 4 * i), y - (-10 + 4 * j)
        coef = flat[(i * 5 + j) * 4:(i * 5 + j) * 4 + 4]  # reshape(5, 5, 2, 2): c00, c01, c10, c11
        ans = coef[0]  # ans = coef[0, 0]; then + Σ coef[p, q] sin(π p rx/4) sin(π q ry/4)
        ans += coef[3] * np.sin(np.pi * rx / 4) * np.sin(np.pi * ry / 4)
        assert ms.f_fn(np.array(x), np.array(y), c) == pytest.approx(ans, rel=1e-12, abs=1e-12)
        assert ms.a_fn(np.array(x), np.array(y), a) == a[i, j]
    # one point by the numbers: block (1, 2), centre of the block: rx = ry = 2, sin·sin = 1
    x, y = -10 + 4 + 2, -10 + 8 + 2
    coef = flat[(1 * 5 + 2) * 4:(1 * 5 + 2) * 4 + 4]
    assert ms.f_fn(np.array(x), np.array(y), c) == pytest.approx(coef[0] + coef[3])
    assert ms.a_fn(np.array(x), np.array(y), a) == pytest.approx(8.258022927071506558e+01)
