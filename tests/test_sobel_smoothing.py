"""Poisson from gradients with the Sobel filter's cross-axis smoothing (``sobel_smoothing``)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.solvers.least_squares import LeastSquares, assemble
from dinf.solvers.tensor_operator import TensorSystem, tensor_grid
from dinf.pdes import PoissonImage
from experiments.gradient_ceiling import ceilings


def _field(resolution: int = 16) -> DInfGrid:
    torch.manual_seed(0)
    field = DInfGrid(resolution=resolution, levels=2, features=2, init_scale=1.0).double()
    with torch.no_grad():
        field.decoder.layer.bias.zero_()
    return field


def test_smoothed_prediction_is_the_filter_applied_to_the_derivative_image():
    """Independent of the stencil bookkeeping: smooth the full derivative image with scipy."""
    R = 16
    problem = PoissonImage(resolution=R, sobel_smoothing=True)
    field = _field()
    batch = problem.sample(60, torch.Generator().manual_seed(3))
    batch.x = batch.x.double()
    grad = field.jet(batch.x, 1).grad[:, 0, :]
    got = PoissonImage._smoothed(grad, batch.data["stencil"]).detach().numpy()
    full = field.jet(problem.coords.double(), 1).grad[:, 0, :].detach().numpy().reshape(R, R, 2)
    want = np.stack([ndi.correlate1d(full[..., a], [0.25, 0.5, 0.25], axis=1 - a, mode="reflect")
                     for a in range(2)], -1).reshape(-1, 2)
    centre = batch.x[batch.data["stencil"][:, 0]].numpy()
    idx = np.rint((centre + 1.0) * (R - 1) / 2.0).astype(int)
    np.testing.assert_allclose(got, want[idx[:, 0] * R + idx[:, 1]], atol=1e-12)
    # Each stencil column holds the neighbour it names (clamped at the edges).
    st = batch.data["stencil"]
    h = 2.0 / (R - 1)
    for col, axis, step in ((1, 1, -1), (2, 1, 1), (3, 0, -1), (4, 0, 1)):
        shifted = centre.copy()
        shifted[:, axis] = np.clip(shifted[:, axis] + step * h, -1.0, 1.0)
        np.testing.assert_allclose(batch.x[st[:, col]].numpy(), shifted, atol=1e-6)


@pytest.mark.parametrize("bc", ["none", "hard"])
@pytest.mark.parametrize("n", [40, 400])  # some pixels (rows ⊂ points), all of them
def test_mixed_rows_square_to_the_training_loss(bc, n):
    problem = PoissonImage(resolution=16, bc=bc, sobel_smoothing=True)
    field = _field()
    batch = problem.sample(n, torch.Generator().manual_seed(1))
    batch.x = batch.x.double()
    assert batch.data["stencil"].shape[0] == min(n, 256)
    jet = field.jet(batch.x, 1)
    want = float(problem.loss(jet, batch)["loss"].detach())
    system = problem.linear_system(batch)
    assert float(system.loss(jet).detach()) == pytest.approx(want, rel=1e-9)
    asm = assemble(field, system)
    # The field's own decoder weighs feature 0 by w and adds feature 1: rebuild its node values.
    w = field.decoder.layer.weight.detach().numpy()[0]
    z = np.concatenate([(w[2 * s] * g.detach()[..., 0] + w[2 * s + 1] * g.detach()[..., 1]).reshape(-1).numpy()
                        for s, g in enumerate(field.grids)])
    assert float(np.sum((asm.matrix @ z - asm.rhs) ** 2)) == pytest.approx(want, rel=1e-9)


def test_matrix_free_operator_applies_the_mix():
    problem = PoissonImage(resolution=12, sobel_smoothing=True)
    field = DInfGrid(resolution=12, levels=2, features=2)
    batch = problem.sample(10**4, torch.Generator().manual_seed(0))
    system = problem.linear_system(batch)
    A = assemble(field, system).matrix
    op = TensorSystem(field, system, tensor_grid(batch.x))
    assert op.shape == A.shape
    rng = np.random.default_rng(0)
    z, r = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
    np.testing.assert_allclose(op.matvec(z), A @ z, atol=1e-11)
    np.testing.assert_allclose(op.rmatvec(r), A.T @ r, atol=1e-11)


def test_smoothing_lifts_the_least_squares_solution_past_the_derivative_ceiling():
    psnr = {}
    for smoothing in (False, True):
        problem = PoissonImage(resolution=64, sobel_smoothing=smoothing)
        field = DInfGrid(resolution=64, levels=4)
        LeastSquares(method="lsqr", maxiter=50).solve(field, problem, torch.Generator().manual_seed(0))
        psnr[smoothing] = problem.evaluate(field)["psnr"]
    limits = ceilings(resolution=64)
    assert psnr[False] <= limits["derivative"] + 0.05
    assert psnr[True] > limits["derivative"] + 0.5


def test_ceilings_recover_the_image_under_the_filter_itself():
    c = ceilings(resolution=32)
    assert c["sobel stencil"] > 80.0  # the check of the Fourier solve: exact up to float32 targets
    assert c["derivative"] < c["derivative + smoothing"] < 60.0


@pytest.mark.parametrize("kwargs", [dict(supervision="laplacian"), dict(bc="soft")])
def test_smoothing_refuses_what_it_does_not_model(kwargs):
    with pytest.raises(ConfigError, match="sobel_smoothing"):
        PoissonImage(resolution=16, sobel_smoothing=True, **kwargs)


def test_default_sampler_draws_only_the_sampled_pixels():
    """Without smoothing the batch is the sampled pixels, nothing else (old runs reproduce)."""
    problem = PoissonImage(resolution=16)
    batch = problem.sample(30, torch.Generator().manual_seed(0))
    assert batch.x.shape == (30, 2) and "stencil" not in batch.data
    torch.testing.assert_close(batch.data["target"], problem.target[_pixel_index(batch.x, 16)])


def _pixel_index(x: torch.Tensor, R: int) -> torch.Tensor:
    ij = torch.round((x.double() + 1.0) * (R - 1) / 2.0).long()
    return ij[:, 0] * R + ij[:, 1]
