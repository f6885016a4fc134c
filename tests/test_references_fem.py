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
pytest.importorskip("skfem")
from experiments.references import poisson2d_ms as ms  # noqa: E402


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


# --- 3D: −Δu + k²u = s in the unit cube minus a ball, k² jumping at z = 0.5 ----------------------
C, R = np.array([0.5, 0.5, 0.5]), 0.25  # the ball


def _parts(x, y, z):
    d = (x - C[0], y - C[1], z - C[2])
    rho = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    return d, rho, (rho**2 - R**2) ** 2, np.sin(2 * x + y - z), np.cos(2 * x + y - z)


def _exact3(x, y, z):
    """cos(3(ρ − R)) + (ρ² − R²)²·sin(2x + y − z): u_n = 0 on the sphere ρ = R."""
    _, rho, q, s, _ = _parts(x, y, z)
    return np.cos(3 * (rho - R)) + q * s


def _grad3(x, y, z):
    d, rho, q, s, cs = _parts(x, y, z)
    gs = (2 * cs, cs, -cs)
    return [-3 * np.sin(3 * (rho - R)) * d[i] / rho + 4 * (rho**2 - R**2) * d[i] * s + q * gs[i] for i in range(3)]


def _lap3(x, y, z):
    d, rho, q, s, cs = _parts(x, y, z)
    return (-9 * np.cos(3 * (rho - R)) - 6 * np.sin(3 * (rho - R)) / rho + 4 * (5 * rho**2 - 3 * R**2) * s
            + 8 * (rho**2 - R**2) * (2 * d[0] + d[1] - d[2]) * cs - 6 * q * s)


def _react3(x, y, z):
    return np.where(z < 0.5, 4.0, 100.0)


def _solve3(cg, h, curved=True, linear="pcg"):
    from skfem import Basis, ElementTetP2, Functional

    ball = ((*C, R),)
    m = cg.gmsh_mesh(h, balls=ball, fragment=True)
    if curved:
        m = cg.curve(m, balls=ball)

    def source(x, y, z):
        return -_lap3(x, y, z) + _react3(x, y, z) * _exact3(x, y, z)

    def flux(x, y, z, nx, ny, nz):  # u_n on the cube's faces (flat cells: a facet basis works)
        g = _grad3(x, y, z)
        return g[0] * nx + g[1] * ny + g[2] * nz

    basis, u = cg.solve(m, source, _react3, flux, cg.box_facets(m), linear=linear)
    bq = Basis(m, ElementTetP2(), intorder=6)
    err = Functional(lambda w: (w["uh"] - _exact3(*w.x)) ** 2).assemble(bq, uh=bq.interpolate(u))
    ref = Functional(lambda w: _exact3(*w.x) ** 2).assemble(bq)
    return np.sqrt(err / ref), basis.N, u


def test_3d_manufactured_derivatives():
    """The manufactured solution's gradient and Laplacian match finite differences; u_n = 0 on the sphere."""
    p, e = np.array([0.9, 0.2, 0.35]), 1e-4
    I = np.eye(3)
    lap = sum((_exact3(*(p + e * I[i])) - 2 * _exact3(*p) + _exact3(*(p - e * I[i]))) / e**2 for i in range(3))
    assert _lap3(*p) == pytest.approx(lap, rel=1e-6)
    g = [(_exact3(*(p + e * I[i])) - _exact3(*(p - e * I[i]))) / (2 * e) for i in range(3)]
    assert np.allclose(_grad3(*p), g, rtol=1e-7)
    n = np.array([0.6, 0.0, 0.8])
    assert np.dot(_grad3(*(C + R * n)), n) == pytest.approx(0, abs=1e-12)


def test_3d_curved_p2_order():
    """Curved (isoparametric) P2 on gmsh meshes fragmented at z = 0.5 converges at order ≥ 2.5 (3
    expected) in L2, against dofs^(−1/3); straight-sided P2 is limited by the geometry error (order
    2) and is several times worse already at h = 0.14. PCG and the direct solve agree."""
    from experiments.references import poisson3d_cg as cg

    hs = (0.3, 0.2, 0.14)
    errs, dofs, us = zip(*[_solve3(cg, h) for h in hs])
    order = -3 * np.polyfit(np.log(dofs), np.log(errs), 1)[0]
    assert order > 2.5, (errs, dofs, order)
    assert errs[-1] < 1e-3
    straight = _solve3(cg, hs[-1], curved=False)[0]
    assert straight > 3 * errs[-1], (straight, errs[-1])
    u_direct = _solve3(cg, hs[0], linear="direct")[2]
    assert np.abs(us[0] - u_direct).max() < 1e-8 * np.abs(u_direct).max()


def test_3d_prolongation_is_p2_numbering():
    """The P1 → P2 prolongation maps the vertices' coordinates onto scikit-fem's P2 dof locations."""
    from skfem import Basis, ElementTetP2, MeshTet

    from experiments.references import poisson3d_cg as cg

    m = MeshTet.init_tensor(*[np.linspace(0, 1, 4)] * 3)
    P = cg.prolongation(m)
    locs = Basis(m, ElementTetP2(), intorder=1).doflocs
    assert np.allclose(P @ m.p.T, locs.T)


def test_3d_pinnacle_source_and_coefficients():
    """f, k² and the balls as in PINNacle's Poisson3D_ComplexGeometry, at hand-picked points."""
    from experiments.references import poisson3d_cg as cg

    assert cg.BALLS == ((0.4, 0.3, 0.6, 0.2), (0.6, 0.7, 0.6, 0.2), (0.2, 0.8, 0.7, 0.1), (0.6, 0.2, 0.3, 0.1))
    x, y, z = 0.5, 0.05, 0.1  # sin(πx) = 1, sin(10πy) = 1, sin(5πz) = 1
    r2 = x * x + y * y + z * z
    assert cg.f_fn(x, y, z) == pytest.approx(20 * np.exp(3.0) * (r2 - 1) / (r2 + 1) + 100.0)
    x, y, z = 0.0, 0.3, 0.9  # sin(πx) = 0: only the first part, exp(0 + sin(3π) + sin(4.5π)) = e
    assert cg.f_fn(x, y, z) == pytest.approx(20 * np.exp(np.sin(3 * np.pi) + np.sin(4.5 * np.pi)) * (0.9 - 1) / (0.9 + 1))
    assert cg.k2_fn(np.array([0.49, 0.5, 0.51])).tolist() == [64.0, 100.0, 100.0]
