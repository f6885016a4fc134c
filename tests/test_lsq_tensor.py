"""The matrix-free tensor-grid operator equals the assembled sparse matrix, and solves with it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.fields import DInfGrid
from dinf.linear_system import LinearSystem
from dinf.solvers.least_squares import LeastSquares, assemble
from dinf.solvers.tensor_operator import TensorSystem, applies, tensor_grid
from dinf.pdes import PoissonImage


def _grid_points(n0: int, n1: int, seed: int = 0) -> torch.Tensor:
    """An uneven tensor grid (x₁ cubed) including the domain's edges, shuffled."""
    xs, ys = torch.linspace(-1, 1, n0), torch.linspace(-1, 1, n1) ** 3
    pts = torch.cartesian_prod(xs, ys).double()
    return pts[torch.randperm(pts.shape[0], generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("entries", [1, 3, 7])  # value; + gradient; + Hessian
def test_operator_equals_the_assembled_matrix(edge, entries):
    torch.manual_seed(0)
    field = DInfGrid(out_dim=2, resolution=16, levels=3, features=2, edge=edge)
    x = _grid_points(13, 9)
    coef = torch.randn(x.shape[0], 2, 2, entries, dtype=torch.float64)  # 2 equations, 2 channels
    system = LinearSystem(x, coef, torch.randn(x.shape[0], 2, dtype=torch.float64))
    A = assemble(field, system).matrix
    op = TensorSystem(field, system, tensor_grid(x))
    assert op.shape == A.shape
    rng = np.random.default_rng(0)
    z, r = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
    np.testing.assert_allclose(op.matvec(z), A @ z, atol=1e-11)
    np.testing.assert_allclose(op.rmatvec(r), A.T @ r, atol=1e-11)
    np.testing.assert_allclose(op.column_norms(), np.sqrt(np.asarray(A.multiply(A).sum(0))).ravel(), atol=1e-11)


def test_tensor_grid_is_recognised_only_when_complete():
    x = _grid_points(5, 4)
    grid = tensor_grid(x)
    assert grid is not None and [a.size for a in grid.axes] == [5, 4]
    assert tensor_grid(x[1:]) is None  # one point missing
    assert tensor_grid(torch.rand(20, 2)) is None
    assert applies(DInfGrid(kernel="inverse_quadratic", resolution=16, levels=2), x) is None  # not separable


def test_lsqr_with_the_operator_matches_lsqr_with_the_matrix(monkeypatch):
    import dinf.solvers.tensor_operator as lt

    problem = PoissonImage(resolution=32)
    results = {}
    for use_tensor in (True, False):
        if not use_tensor:  # hide the grid structure: the assembled sparse matrix is used
            monkeypatch.setattr(lt, "applies", lambda field, x: None)
        field = DInfGrid(resolution=32, levels=3)
        info = LeastSquares(method="lsqr", maxiter=30).solve(field, problem, torch.Generator().manual_seed(0))
        results[use_tensor] = (info, problem.evaluate(field)["psnr"])
    (tensor, psnr_t), (sparse, psnr_s) = results[True], results[False]
    assert tensor["operator"] == "tensor" and sparse["operator"] == "sparse"
    assert tensor["loss"] == pytest.approx(sparse["loss"], rel=1e-6)
    assert psnr_t == pytest.approx(psnr_s, abs=1e-6) and psnr_t > 20
