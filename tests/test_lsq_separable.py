"""Least squares from per-axis factors (``dinf.solvers.separable``) and the complex Hermitian solve.

The normal matrix and right side are checked against the loss they claim to be, evaluated
independently: the field's own jets at the Gauss points, the problem's complex residual, the
quadrature weights. The solve is checked by its optimality (the loss's gradient vanishes) and
against a dense solve.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dinf.solvers import least_squares as lsq, separable as lsq_separable
from dinf.fields import DInfGrid
from dinf.pdes.base import Batch
from dinf.pdes.helmholtz import HelmholtzPML
from dinf.solvers.linalg.sparse_solve import pardiso_available, solve_hpd


def _setup(window: float = 0.0, source_model: str = "singular", cells: int = 12, rho: int = 3):
    problem = HelmholtzPML(wavenumber=15.0, resolution=16, source_model=source_model)
    torch.manual_seed(0)
    field = DInfGrid(2, 2, resolution=cells, levels=1, features=2, eps=0.7, rho=rho, window=window).double()
    return problem, field


def _loss_by_jets(field: DInfGrid, problem: HelmholtzPML, z: np.ndarray, q: int) -> float:
    """Σ_ij w_i w_j |residual|² at the tensor Gauss points, from the field's jets."""
    lsq.write_back(field, np.concatenate([z.real, z.imag]), lsq.layout(field))
    (x0, w0), (x1, w1) = (lsq_separable.gauss_points(c, q) for c in field.cells_per_axis[0])
    pts = torch.as_tensor(np.stack(np.meshgrid(x0, x1, indexing="ij"), -1).reshape(-1, 2))
    with torch.no_grad():
        r = problem.residual(field.jet(pts, 2), pts).numpy()
    return float(np.sum(np.outer(w0, w1).ravel() * np.abs(r) ** 2))


@pytest.mark.parametrize("window", [0.0, 1.0])
@pytest.mark.parametrize("source_model", ["gaussian", "singular"])
def test_normal_equations_are_the_loss(window: float, source_model: str) -> None:
    """zᴴ AᴴA z + 2 Re(zᴴ Aᴴ s) + ‖s‖² equals the quadrature of |residual|² for random z."""
    problem, field = _setup(window, source_model)
    q = 3
    normal = lsq_separable.SeparableNormal(field, problem.separable_system(), q)
    rng = np.random.default_rng(0)
    for _ in range(3):
        z = rng.standard_normal(normal.matrix.shape[0]) + 1j * rng.standard_normal(normal.matrix.shape[0])
        claimed = float((z.conj() @ (normal.matrix @ z)).real + 2 * (z.conj() @ normal.rhs).real + normal.source_norm2)
        assert claimed == pytest.approx(_loss_by_jets(field, problem, z, q), rel=1e-9)
    H = normal.matrix
    assert abs(H - H.conj().T).max() <= 1e-12 * abs(H).max()  # Hermitian


def test_normal_matrix_equals_the_assembled_one() -> None:
    """Against the existing path: ``dinf.solvers.least_squares.assemble`` of the problem's own rows at the same
    Gauss points, weighted by the quadrature, gives AᵀA and Aᵀb whose real form is ours."""
    problem, field = _setup(window=1.0)
    q = 2
    normal = lsq_separable.SeparableNormal(field, problem.separable_system(), q)
    (x0, w0), (x1, w1) = (lsq_separable.gauss_points(c, q) for c in field.cells_per_axis[0])
    pts = torch.as_tensor(np.stack(np.meshgrid(x0, x1, indexing="ij"), -1).reshape(-1, 2))
    system = problem.linear_system(Batch(pts))  # rows scaled by 1/√N: rescale to √(w_i w_j)
    system = system.scaled(torch.as_tensor(np.sqrt(np.outer(w0, w1).ravel() * pts.shape[0])))
    asm = lsq.assemble(field, system)
    A, b = asm.matrix, asm.rhs  # real rows (Re, Im) over the two channels' columns; residual A z − b
    H = normal.matrix
    real_form = sp.bmat([[H.real, -H.imag], [H.imag, H.real]]).toarray()
    AtA = (A.T @ A).toarray()
    np.testing.assert_allclose(real_form, AtA, rtol=0, atol=1e-10 * np.abs(AtA).max())
    Atb = A.T @ b  # = −Aᴴs in real form
    np.testing.assert_allclose(np.concatenate([normal.rhs.real, normal.rhs.imag]), -Atb, rtol=0,
                               atol=1e-10 * np.abs(Atb).max())


def test_the_solve_is_the_least_squares_minimum() -> None:
    """The loss's gradient vanishes at the solution (up to the damping), and the field holds it."""
    problem, field = _setup(window=1.0, cells=24, rho=5)
    solver = lsq.LeastSquares(points=16 * 24 * 24, damping=1e-12)
    info = solver.solve(field, problem, torch.Generator().manual_seed(0))
    assert info["operator"] == "separable"
    normal = lsq_separable.SeparableNormal(field, problem.separable_system(), 4)
    z_real, _ = lsq.read_back(field)
    n = z_real.size // 2
    z = z_real[:n] + 1j * z_real[n:]
    grad = normal.matrix @ z + normal.rhs
    assert np.linalg.norm(grad) <= 1e-6 * np.linalg.norm(normal.rhs)
    assert info["loss"] < 0.05 * info["loss_zero"]  # 24 cells: about 4 per wavelength
    assert info["loss"] == pytest.approx(_loss_by_jets(field, problem, z, 4), rel=1e-6)


@pytest.mark.parametrize("backend", ["superlu"] + (["pardiso"] if pardiso_available() else []))
def test_complex_hermitian_solve(backend: str) -> None:
    rng = np.random.default_rng(1)
    n = 300
    B = sp.random(n, n, density=0.02, random_state=2) + 1j * sp.random(n, n, density=0.02, random_state=3)
    H = (B.conj().T @ B + 0.1 * sp.identity(n)).tocsr()
    b = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    x = solve_hpd(sp.triu(H, format="csr"), b, backend)
    np.testing.assert_allclose(x, np.linalg.solve(H.toarray(), b), rtol=1e-9, atol=1e-12)


def test_high_wavenumber_on_a_small_grid_reduces_the_error() -> None:
    """k = 60 (about 19 wavelengths across the square) on 64 cells: one solve brings the field
    from 100 % error to a few percent against the Hankel reference."""
    problem = HelmholtzPML(wavenumber=60.0, resolution=32, source_model="singular")
    field = DInfGrid(2, 2, resolution=64, levels=1, features=2, eps=0.7, rho=5, window=1.0)
    before = problem.evaluate(field)["rel_l2_core"]
    lsq.LeastSquares(points=9 * 64 * 64).solve(field, problem, torch.Generator().manual_seed(0))
    after = problem.evaluate(field)["rel_l2_core"]
    assert before > 0.9 and after < 0.05, (before, after)


def test_applies_only_where_it_can() -> None:
    problem, field = _setup()
    assert lsq_separable.applies(field, problem)
    two_levels = DInfGrid(2, 2, resolution=16, levels=2, features=2)
    assert not lsq_separable.applies(two_levels, problem)
    radial = DInfGrid(2, 2, resolution=16, levels=1, features=2, kernel="inverse_quadratic")
    assert not lsq_separable.applies(radial, problem)
