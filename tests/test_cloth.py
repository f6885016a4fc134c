"""Cloth: energy terms of known deformations, exact boundary conditions, outputs, a short run."""
from __future__ import annotations

import math

import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields.base import autograd_jet
from dinf.jet import Jet
from dinf.pdes import Cloth


class _Displacement(torch.nn.Module):
    """u = φ(ξ) - (ξ1, ξ2, 0) for a given deformed surface φ."""

    in_dim, out_dim = 2, 3

    def __init__(self, phi):
        super().__init__()
        self.phi = phi

    def forward(self, x):
        ref = torch.cat([x, torch.zeros_like(x[:, :1])], 1)
        return self.phi(x) - ref


def _densities(cloth, phi, n=50):
    x = (torch.rand(n, 2, dtype=torch.float64) * 2 - 1)
    return cloth.energy_densities(autograd_jet(_Displacement(phi), x, 2))


def test_pure_stretch_has_membrane_energy_only():
    c = Cloth(youngs_modulus=100.0, poisson_ratio=0.3, thickness=0.01)
    s = 0.1
    # (0 · x² keeps a second-derivative graph for autograd: the map itself is linear)
    d = _densities(c, lambda x: torch.stack([(1 + s) * x[:, 0], x[:, 1], 0 * x[:, 0] ** 2], 1))
    eps = 0.5 * ((1 + s) ** 2 - 1)  # Green strain along x
    D = 100.0 * 0.01 / (1 - 0.09)
    torch.testing.assert_close(d["membrane"], torch.full_like(d["membrane"], 0.5 * D * eps**2))
    assert d["bending"].abs().max() < 1e-12


def test_cylinder_is_pure_bending():
    c = Cloth(youngs_modulus=100.0, poisson_ratio=0.3, thickness=0.01)
    R = 0.8
    d = _densities(c, lambda x: torch.stack([R * torch.sin(x[:, 0] / R), x[:, 1], R * (1 - torch.cos(x[:, 0] / R))], 1))
    Db = 100.0 * 0.01 / (1 - 0.09) * 0.01**2 / 12
    assert d["membrane"].abs().max() < 1e-12  # an isometry
    torch.testing.assert_close(d["bending"], torch.full_like(d["bending"], Db / (2 * R**2)))


def test_gravity_energy_is_weight_times_height():
    c = Cloth(mass_per_area=0.5, gravity=10.0)
    d = _densities(c, lambda x: torch.stack([x[:, 0], x[:, 1] - 0.3, 0 * x[:, 0] ** 2], 1))
    torch.testing.assert_close(d["gravity"], torch.full_like(d["gravity"], -1.5))


@pytest.mark.parametrize("boundary, points, want", [
    ("corners_pulled", [[-1.0, 1.0], [1.0, 1.0]], [[0.4, 0, 0], [-0.4, 0, 0]]),
    ("corner_fixed", [[-1.0, 1.0]], [[0, 0, 0]]),
    ("edges_fixed", [[-1.0, -0.3], [-1.0, 0.6], [0.2, 1.0], [0.9, 1.0]], [[0, 0, 0]] * 4),
])
def test_boundary_conditions_hold_exactly_for_any_field(boundary, points, want):
    c = Cloth(boundary=boundary)
    x = torch.tensor(points, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    jet = Jet(torch.randn(len(points), 3, generator=g, dtype=torch.float64),
              torch.randn(len(points), 3, 2, generator=g, dtype=torch.float64),
              torch.randn(len(points), 3, 2, 2, generator=g, dtype=torch.float64))
    u = c.displacement_jet(jet, x)
    torch.testing.assert_close(u.value, torch.tensor(want, dtype=torch.float64))
    # Far from the constraints the field passes through unchanged.
    far = torch.tensor([[0.0, -0.5]], dtype=torch.float64)
    u = c.displacement_jet(Jet(jet.value[:1], jet.grad[:1], jet.hess[:1]), far)
    torch.testing.assert_close(u.value, jet.value[:1], atol=1e-12, rtol=0)


def test_constrained_jet_matches_autograd():
    c = Cloth(boundary="corners_pulled", sigma=0.3)

    class F(torch.nn.Module):
        in_dim, out_dim = 2, 3

        def forward(self, x):
            return torch.stack([torch.sin(x[:, 0] * x[:, 1]), x[:, 0] ** 2, torch.cos(2 * x[:, 1])], 1)

    class U(torch.nn.Module):
        in_dim, out_dim = 2, 3

        def forward(self, x):
            f = F()(x)
            gl = torch.exp(-((x[:, 0] + 1) ** 2 + (x[:, 1] - 1) ** 2) / 0.3)[:, None]
            gr = torch.exp(-((x[:, 0] - 1) ** 2 + (x[:, 1] - 1) ** 2) / 0.3)[:, None]
            h = torch.tensor([[0.4, 0.0, 0.0]], dtype=x.dtype)
            return (1 - gl) * (1 - gr) * f + gl * h - gr * h

    x = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    got = c.displacement_jet(autograd_jet(F(), x, 2), x)
    want = autograd_jet(U(), x, 2)
    for a, b in ((got.value, want.value), (got.grad, want.grad), (got.hess, want.hess)):
        torch.testing.assert_close(a.detach(), b.detach())


@pytest.mark.parametrize("kwargs, key", [
    ({"youngs_modulus": -1.0}, "youngs_modulus"),
    ({"poisson_ratio": 0.6}, "poisson_ratio"),
    ({"boundary": "top_pinned"}, "boundary"),
])
def test_non_physical_cloth_names_the_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        Cloth(**kwargs)
    assert err.value.key == key


@pytest.mark.parametrize("model", ["dinf", "siren"])
def test_short_cloth_run_lowers_the_energy_and_writes_the_mesh(tmp_path, model):
    from dinf.app.run import train
    from tests.helpers import compose_cfg

    steps = 40 if model == "dinf" else 3
    # 3 features (the cloth's best has 4): the kernel specialisation test_gauss_newton.py's cloth runs compile
    cfg = compose_cfg([f"model={model}", "pde=cloth", "pde.resolution=16", "pde.batch_size=1024", "grid.resolution=16",
                       "grid.levels=1", "grid.features=3", "model.lr=1e-2", f"trainer.max_steps={steps}",
                       f"trainer.val_check_interval={steps}"])
    m = train(cfg, output_dir=str(tmp_path))
    assert math.isfinite(m["energy"])
    if model == "dinf":
        assert m["energy"] < m["history"][0]["energy"] - 1.0
    obj = (tmp_path / "cloth.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == 65 * 65
    assert sum(line.startswith("f ") for line in obj) == 2 * 64 * 64
    assert (tmp_path / "cloth.png").stat().st_size > 1000


# --- closed-form derivatives (Newton) ---------------------------------------------------------------
def _symmetric_jet(v):
    """A jet from ``[N, 3, 6]`` symmetric entries (value, ∂1, ∂2, ∂11, ∂12, ∂22)."""
    hess = torch.stack([v[..., 3], v[..., 4], v[..., 4], v[..., 5]], -1).reshape(*v.shape[:-1], 2, 2)
    return Jet(v[..., 0], v[..., 1:3], hess)


def _autograd_derivatives(cloth, v, x):
    """Each point's gradient ``[N, 18]`` and Hessian ``[N, 18, 18]`` of the energy density in its
    symmetric jet entries, by autograd (one point at a time)."""
    from torch.func import hessian, jacrev, vmap

    def e(vv, xx):
        return cloth.energy_density(_symmetric_jet(vv.reshape(1, 3, 6)), xx[None]).sum()

    return vmap(jacrev(e))(v.reshape(-1, 18), x), vmap(hessian(e))(v.reshape(-1, 18), x)


def _points_and_jets(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
    corners = [[-0.97, 0.96], [0.92, 0.99], [-1.0, 1.0], [0.05, 0.97]]  # by the pulled corners
    x[:4] = torch.tensor(corners, dtype=torch.float64)
    return x, 0.3 * torch.randn(n, 3, 6, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("thickness", [0.0012, 0.3])  # SPEC's cloth; a plate whose bending counts
def test_energy_derivatives_equal_autograd(thickness):
    c = Cloth(thickness=thickness, mass_per_area=1.0)
    x, v = _points_and_jets()
    want_g, want_h = _autograd_derivatives(c, v, x)
    g, H = c.energy_derivatives(_symmetric_jet(v), x)
    scale = want_h.abs().max()
    torch.testing.assert_close(g.reshape(-1, 18), want_g, rtol=1e-10, atol=1e-12 * want_g.abs().max())
    torch.testing.assert_close(H.reshape(-1, 18, 18), want_h, rtol=1e-10, atol=1e-12 * scale)
    w = torch.rand(x.shape[0], dtype=torch.float64)
    gw, Hw = c.energy_derivatives(_symmetric_jet(v), x, weight=w)
    torch.testing.assert_close(Hw, H * w[:, None, None, None, None])
    torch.testing.assert_close(gw, g * w[:, None, None])


def test_projected_energy_hessian_is_positive_semi_definite():
    c = Cloth(thickness=0.3, mass_per_area=1.0)
    x, v = _points_and_jets()
    g, H = c.energy_derivatives(_symmetric_jet(v), x)
    gp, Hp = c.energy_derivatives(_symmetric_jet(v), x, project=True)
    torch.testing.assert_close(gp, g)  # the gradient is exact
    exact = torch.linalg.eigvalsh(H.reshape(-1, 18, 18))  # per point, ascending
    projected = torch.linalg.eigvalsh(Hp.reshape(-1, 18, 18))
    assert (exact[:, 0] < -1e-3 * exact[:, -1]).any()  # the membrane under compression is not convex here
    assert (projected[:, 0] > -1e-12 * projected[:, -1]).all()
    # With the bending switched off the projection is the membrane's alone: each point's [6, 6]
    # block of the displacement gradient with its negative eigenvalues set to zero.
    flat = Cloth(thickness=1e-12, mass_per_area=1.0)  # bending stiffness ~ t³: none left
    _, Hm = flat.energy_derivatives(_symmetric_jet(v[4:]), x[4:], project=True)
    u = flat.displacement_jet(_symmetric_jet(v[4:]), x[4:])
    F = u.grad + torch.eye(3, 2, dtype=torch.float64)

    def membrane(FF):
        eps = 0.5 * (FF.T @ FF - torch.eye(2, dtype=torch.float64))
        tr = eps.trace()
        nu = flat.poisson_ratio
        return 0.5 * flat.membrane_stiffness * (nu * tr * tr + (1 - nu) * (eps * eps).sum())

    from torch.func import hessian, vmap

    HF = vmap(hessian(membrane))(F).reshape(-1, 6, 6)
    lam, Q = torch.linalg.eigh(HF)
    HF_plus = (Q * lam.clamp(min=0)[:, None, :]) @ Q.transpose(1, 2)
    # Far from the corners B = 1 to rounding and the d-entries ∂1, ∂2 are u's.
    far = (x[4:] - torch.tensor([[-1.0, 1.0]], dtype=torch.float64)).norm(dim=1) > 0.6
    far &= (x[4:] - torch.tensor([[1.0, 1.0]], dtype=torch.float64)).norm(dim=1) > 0.6
    block = Hm[:, :, 1:3, :, 1:3].reshape(-1, 6, 6)
    torch.testing.assert_close(block[far], HF_plus[far], rtol=1e-9, atol=1e-9 * HF_plus.abs().max())


def test_constraint_values_are_kept_for_the_same_points_only():
    c = Cloth()
    x, v = _points_and_jets()
    jet = _symmetric_jet(v)
    first = c.displacement_jet(jet, x)
    assert c._fixed[0] is x
    again = c.displacement_jet(jet, x)
    torch.testing.assert_close(again.hess, first.hess)
    other = x.flip(0).contiguous()
    moved = c.displacement_jet(jet, other)
    assert c._fixed[0] is other
    torch.testing.assert_close(moved.value, c.displacement_jet(jet, other.clone()).value)
