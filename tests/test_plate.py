"""Kirchhoff plate: the Navier reference, the energy terms, the hard support, errors, a short run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields.base import autograd_jet
from dinf.jet import Jet
from dinf.pdes import KirchhoffPlate
from dinf.pdes.plate import boundary_factor, navier_deflection


def _biharmonic_fd(f, x: np.ndarray, h: float) -> np.ndarray:
    """13-point ∇⁴ of ``f`` at ``x`` ``[N, 2]``."""
    def at(i, j):
        return f(x + np.array([i * h, j * h]))
    lap2 = (20 * at(0, 0) - 8 * (at(1, 0) + at(-1, 0) + at(0, 1) + at(0, -1))
            + 2 * (at(1, 1) + at(1, -1) + at(-1, 1) + at(-1, -1))
            + at(2, 0) + at(-2, 0) + at(0, 2) + at(0, -2))
    return lap2 / h**4


@pytest.mark.parametrize("load, tol", [("sine", 1e-3), ("uniform", 2e-2)])
def test_navier_series_solves_the_plate_equation(load, tol):
    D = 2.5
    x = np.random.default_rng(0).uniform(-0.7, 0.7, (40, 2))
    w = lambda p: navier_deflection(p, D, load, 3.0, terms=399)  # noqa: E731
    got = D * _biharmonic_fd(w, x, 0.02)
    q = 3.0 if load == "uniform" else 3.0 * np.sin(math.pi * (x[:, 0] + 1) / 2) * np.sin(math.pi * (x[:, 1] + 1) / 2)
    assert np.abs(got - q).max() < tol * 3.0


def test_navier_series_is_simply_supported_with_the_textbook_centre():
    edge = np.array([[-1.0, 0.3], [1.0, -0.2], [0.4, 1.0], [0.1, -1.0]])
    assert np.abs(navier_deflection(edge, 1.0, "uniform", 1.0)).max() < 1e-12
    # Timoshenko & Woinowsky-Krieger, Table 8: w_max = 0.00406 q a⁴ / D for a square plate.
    centre = navier_deflection(np.zeros((1, 2)), 1.0, "uniform", 1.0)[0]
    assert centre == pytest.approx(0.00406 * 2.0**4, rel=1e-3)
    # Simply supported: no bending moment along an edge, so w_xx → 0 there.
    h = 1e-3
    w = lambda px: navier_deflection(np.array([[px, 0.0]]), 1.0, "uniform", 1.0)[0]  # noqa: E731
    wxx_edge = (w(-1 + 2 * h) - 2 * w(-1 + h) + w(-1.0)) / h**2
    wxx_mid = (w(h) - 2 * w(0.0) + w(-h)) / h**2
    assert abs(wxx_edge) < 0.05 * abs(wxx_mid)


def _poly_jet(hxx: float, hxy: float, hyy: float, n: int = 5) -> Jet:
    """The jet of w = (hxx x² + 2 hxy x y + hyy y²) / 2 at n points (constant Hessian)."""
    x = torch.rand(n, 2, dtype=torch.float64)
    hess = torch.tensor([[hxx, hxy], [hxy, hyy]], dtype=torch.float64).expand(n, 1, 2, 2)
    grad = torch.einsum("nij,nj->ni", hess[:, 0], x).unsqueeze(1)
    value = 0.5 * torch.einsum("ni,ni->n", x, grad[:, 0]).unsqueeze(1)
    return Jet(value, grad, hess)


def test_bending_energy_of_known_deformations():
    p = KirchhoffPlate(youngs_modulus=2.0, poisson_ratio=0.25, thickness=0.5, resolution=8, terms=3)
    D = 2.0 * 0.5**3 / (12 * (1 - 0.25**2))
    kappa = 0.7
    # Cylinder: w = κ x²/2; Δw = κ and the Gaussian curvature is 0.
    assert torch.allclose(p.bending_energy_density(_poly_jet(kappa, 0.0, 0.0)), torch.tensor(0.5 * D * kappa**2, dtype=torch.float64))
    # Sphere: w = κ (x² + y²)/2; (Δw)² = 4κ², w_xx w_yy = κ²: D/2 (4κ² - 2(1-ν)κ²) = D κ² (1 + ν).
    assert torch.allclose(p.bending_energy_density(_poly_jet(kappa, 0.0, kappa)), torch.tensor(D * kappa**2 * 1.25, dtype=torch.float64))
    # Saddle: w = κ x y; only twist, D (1 - ν) κ².
    assert torch.allclose(p.bending_energy_density(_poly_jet(0.0, kappa, 0.0)), torch.tensor(D * 0.75 * kappa**2, dtype=torch.float64))


class _Quadratic(torch.nn.Module):
    in_dim, out_dim = 2, 1

    def forward(self, x):
        return (0.3 + x[:, :1] ** 2 - 0.5 * x[:, 1:] * x[:, :1] + x[:, 1:] ** 3)


def test_hard_support_jet_matches_autograd():
    p = KirchhoffPlate(resolution=8, terms=3)
    u = _Quadratic()
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    w = p.deflection_jet(autograd_jet(u, x, 2), x)

    class W(torch.nn.Module):
        in_dim, out_dim = 2, 1

        def forward(self, y):
            return boundary_factor(y).value * u(y)

    want = autograd_jet(W(), x, 2)
    for a, b in ((w.value, want.value), (w.grad, want.grad), (w.hess, want.hess)):
        torch.testing.assert_close(a.detach(), b.detach())
    edge = torch.tensor([[1.0, 0.2], [-0.3, -1.0]], dtype=torch.float64)
    assert torch.all(boundary_factor(edge).value == 0)


class _Exact(torch.nn.Module):
    """u = w_exact / B for the sine load: the exact deflection through the hard support."""

    in_dim, out_dim = 2, 1

    def __init__(self, p: KirchhoffPlate, scale: float = 1.0):
        super().__init__()
        self.amp = scale * p.load_magnitude * 2.0**4 / (4 * math.pi**4 * p.stiffness)

    def forward(self, x):
        xi = (x + 1) / 2
        w = self.amp * torch.sin(math.pi * xi[:, :1]) * torch.sin(math.pi * xi[:, 1:])
        return w / boundary_factor(x).value.clamp_min(1e-12)


def test_the_exact_deflection_minimises_the_energy_and_scores_zero():
    p = KirchhoffPlate(load="sine", resolution=16)
    x = p.sample(20000, torch.Generator().manual_seed(0)).x.double()
    x = x.clamp(-0.999, 0.999)
    from dinf.pdes.base import Batch

    energies = {}
    for s in (0.9, 1.0, 1.1):
        jet = autograd_jet(_Exact(p, s).double(), x, 2)
        energies[s] = float(p.loss(jet, Batch(x=x))["loss"].detach())
    assert energies[1.0] < energies[0.9] and energies[1.0] < energies[1.1]
    # Clapeyron: at the minimum Π = -(1/2) ∫ q w dA = -(1/2) q0 · amp (∫ sin² over [0,1] is 1/2, dA = 4 dξ dη).
    amp = p.load_magnitude * 16 / (4 * math.pi**4 * p.stiffness)
    exact = -0.5 * p.load_magnitude * amp
    assert energies[1.0] == pytest.approx(exact, rel=2e-2)
    m = p.evaluate(_Exact(p))
    assert m["rel_l2"] < 1e-5 and m["max_deflection_error"] < 1e-5


@pytest.mark.parametrize("kwargs, key", [
    ({"youngs_modulus": 0.0}, "youngs_modulus"),
    ({"poisson_ratio": 0.5}, "poisson_ratio"),
    ({"poisson_ratio": -1.0}, "poisson_ratio"),
    ({"thickness": -0.1}, "thickness"),
    ({"load": "point"}, "load"),
])
def test_non_physical_plates_name_the_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        KirchhoffPlate(resolution=8, **kwargs)
    assert err.value.key == key


def test_short_plate_run_lowers_the_energy_and_the_error(tmp_path):
    from dinf.app.run import train
    from tests.helpers import compose_cfg

    cfg = compose_cfg(["pde=plate", "solver=adam", "pde.resolution=32", "pde.terms=31", "grid.resolution=16", "grid.levels=3",
                       "pde.batch_size=2048", "trainer.max_steps=60", "trainer.val_check_interval=30"])
    m = train(cfg, output_dir=str(tmp_path))
    assert m["train_loss"]["last"] < m["train_loss"]["first"]
    assert m["rel_l2"] < 0.5 * m["history"][0]["rel_l2"]
    assert (tmp_path / "plate.png").exists()
