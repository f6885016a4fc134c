"""Boundary data as hard constraints (h + B·u) and as soft loss terms."""
import numpy as np
import pytest
import torch

from dinf.fields import DInfGrid
from dinf.jet import Jet
from dinf.pdes import KirchhoffPlate, PoissonImage
from dinf.pdes.image_boundary import CoonsPatch


def _image(r: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((r, r))


def test_coons_patch_takes_the_edge_values_and_its_jet_is_exact():
    img = _image()
    patch = CoonsPatch(img)
    lin = torch.linspace(-1, 1, img.shape[0], dtype=torch.float64)
    for x, want in ((torch.stack([torch.full_like(lin, -1), lin], -1), img[0, :]),
                    (torch.stack([torch.full_like(lin, 1), lin], -1), img[-1, :]),
                    (torch.stack([lin, torch.full_like(lin, -1)], -1), img[:, 0]),
                    (torch.stack([lin, torch.full_like(lin, 1)], -1), img[:, -1])):
        np.testing.assert_allclose(patch.jet(x).value[:, 0].numpy(), want, atol=1e-12)
    # Gradient and Hessian against central differences of the value and the gradient.
    x = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9
    jet, h = patch.jet(x), 1e-5
    for a in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[a] = h
        up, down = patch.jet(x + e), patch.jet(x - e)
        np.testing.assert_allclose(((up.value - down.value) / (2 * h))[:, 0], jet.grad[:, 0, a], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(((up.grad - down.grad) / (2 * h))[:, 0], jet.hess[:, 0, a], rtol=1e-4, atol=1e-4)  # knots: O(h)


def test_hard_image_boundary_holds_for_any_field():
    problem = PoissonImage(resolution=24, supervision="laplacian", bc="hard")
    field = DInfGrid(resolution=8, levels=2, init_scale=1.0)
    x = problem.coords.double()
    h = problem.coons.jet(x).value[:, 0]
    u = problem.image_jet(field.double().jet(x, 2), x).value[:, 0]
    edge = problem.is_edge
    img = problem.image.reshape(-1).double()
    torch.testing.assert_close(u[edge], img[edge], atol=1e-6, rtol=0)
    assert (u[~edge] - h[~edge]).abs().max() > 1e-3  # the field does act inside


def test_soft_boundary_term_vanishes_for_a_field_meeting_the_data():
    problem = PoissonImage(resolution=24, supervision="laplacian", bc="soft", bc_weight=5.0)
    batch = problem.sample(100, torch.Generator().manual_seed(0))
    assert batch.flag("is_boundary").sum() == 4 * 24 - 4  # every edge pixel, every step
    value = batch.data["value"][:, None]
    zeros = torch.zeros(value.shape[0], 1, 2)
    meets = problem.loss(Jet(value, zeros, torch.zeros(value.shape[0], 1, 2, 2)), batch)
    assert float(meets["loss_boundary"]) == 0.0
    off = problem.loss(Jet(value + 0.1, zeros, torch.zeros(value.shape[0], 1, 2, 2)), batch)
    assert float(off["loss_boundary"]) == pytest.approx(0.01, rel=1e-5)
    assert float(off["loss"] - meets["loss"]) == pytest.approx(5.0 * 0.01, rel=1e-3)  # float32


def test_soft_plate_boundary_term_vanishes_for_the_exact_deflection():
    plate = KirchhoffPlate(load="sine", bc="soft", bc_weight=10.0)
    batch = plate.sample(400, torch.Generator().manual_seed(0))
    x = batch.x.double()
    edge = batch.flag("is_boundary")
    assert int(edge.sum()) == 200
    on_edge = x[edge]
    assert torch.all((on_edge.abs() - 1).abs().min(-1).values < 1e-6)
    amp, k = plate.load_magnitude * 16 / (4 * np.pi**4 * plate.stiffness), np.pi / 2
    sx, sy = torch.sin(k * (x[:, 0] + 1)), torch.sin(k * (x[:, 1] + 1))
    cx, cy = torch.cos(k * (x[:, 0] + 1)), torch.cos(k * (x[:, 1] + 1))
    value = (amp * sx * sy)[:, None]
    grad = torch.stack([amp * k * cx * sy, amp * k * sx * cy], -1)[:, None]
    hess = torch.stack([torch.stack([-amp * k * k * sx * sy, amp * k * k * cx * cy], -1),
                        torch.stack([amp * k * k * cx * cy, -amp * k * k * sx * sy], -1)], -2)[:, None]
    terms = plate.loss(Jet(value, grad, hess), batch)
    assert float(terms["loss_boundary"]) < 1e-12
    shifted = plate.loss(Jet(value + 0.01, grad, hess), batch)
    assert float(shifted["loss_boundary"]) == pytest.approx(1e-4, rel=1e-6)
