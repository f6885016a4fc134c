"""The bump window (``kernel.window``): ∂∞-Grid's field continuous to all orders across cell
borders, where the truncated Gaussian jumps by about exp(−ε²ρ²) of its features.

The jets with a window are also checked against autograd, finite differences and a naive
forward in ``tests/test_fields.py`` (its ``DINF_WINDOW`` configurations) and the fused kernels
against the PyTorch path in ``tests/test_rbf_cpu.py`` and ``tests/test_rbf_triton.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.fields import DInfGrid, rbf_cpu
from dinf.fields.kernels import gaussian_weights_1d
from dinf.app.run import build
from tests.helpers import compose_cfg


def _weights_both_sides(eps: float, rho: int, window: float, k: int = 7) -> tuple:
    """The 1D weight jets at the border t = k from the neighbourhood of floor(t) = k − 1 and of
    k, as node → (w, w', w'') maps over the 2ρ + 1 nodes either one touches."""
    t = torch.tensor(float(k), dtype=torch.float64)
    sides = []
    for base in (k - 1, k):
        nodes = base + torch.arange(-rho + 1, rho + 1)
        w = gaussian_weights_1d((t - nodes)[None], eps, 2, window, rho)[0]  # [3, K]
        full = torch.zeros(3, 2 * rho + 1, dtype=torch.float64)
        full[:, nodes - (k - rho)] = w
        sides.append(full)
    return sides


@pytest.mark.parametrize("eps,rho", [(1.0, 3), (0.7, 5), (1.3, 2)])
@pytest.mark.parametrize("window", [0.5, 1.0, 2.0])
def test_weights_continuous_at_a_border(eps: float, rho: int, window: float) -> None:
    """Each node's weight and its first two derivatives agree from both sides of the border:
    the node leaving the neighbourhood and the one entering it carry weight 0 to all orders."""
    left, right = _weights_both_sides(eps, rho, window)
    assert float((left - right).abs().max()) <= 1e-14
    plain_left, plain_right = _weights_both_sides(eps, rho, 0.0)  # the test sees a jump
    assert float((plain_left - plain_right).abs().max()) > 1e-7


def test_window_weights_from_their_definition() -> None:
    """Weights against φ(r) = exp(−ε²r²) exp(−c s⁴/(1 − s²)), s = r/ρ, normalised (written out),
    and the closed-form t-derivatives against autograd of those."""
    eps, rho, c = 0.8, 4, 1.5
    t = torch.tensor([0.0, 0.3, 0.5, 0.99, 0.999999], dtype=torch.float64, requires_grad=True)
    nodes = torch.arange(-rho + 1, rho + 1, dtype=torch.float64)
    r = t[:, None] - nodes
    s = r / rho
    inside = s.abs() < 1
    safe = torch.where(inside, 1 - s * s, torch.ones_like(s))  # no 0/0 in autograd's backward outside
    phi = torch.exp(-(eps * r) ** 2) * torch.where(inside, torch.exp(-c * s**4 / safe), torch.zeros_like(s))
    w = phi / phi.sum(-1, keepdim=True)
    closed = gaussian_weights_1d(r, eps, 2, c, rho)
    torch.testing.assert_close(closed[:, 0], w, rtol=1e-13, atol=1e-15)
    d1 = torch.stack([torch.autograd.grad(w[:, k].sum(), t, create_graph=True)[0] for k in range(2 * rho)], 1)
    d2 = torch.stack([torch.autograd.grad(d1[:, k].sum(), t, retain_graph=True)[0] for k in range(2 * rho)], 1)
    torch.testing.assert_close(closed[:, 1], d1.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(closed[:, 2], d2.detach(), rtol=1e-10, atol=1e-12)


def _border_pairs(cells: int, d: int, seed: int = 0) -> tuple:
    """Points on the finest level's borders of each axis (other coordinates random) and the same
    points moved to just below the border in index space (floor(t) one less on that axis)."""
    g = torch.Generator().manual_seed(seed)
    on, below = [], []
    b = -1.0 + 2.0 * np.arange(1, cells) / cells
    for a in range(d):
        x = torch.rand(len(b), d, generator=g, dtype=torch.float64) * 2 - 1
        x[:, a] = torch.as_tensor(b)
        low = b.copy()
        while True:
            stuck = np.floor((low + 1.0) * (cells / 2)) == np.round((b + 1.0) * (cells / 2))
            if not stuck.any():
                break
            low[stuck] -= np.spacing(1.0 + np.abs(low[stuck]))  # an ulp of x + 1 (x may be 0)
        y = x.clone()
        y[:, a] = torch.as_tensor(low)
        on.append(x)
        below.append(y)
    return torch.cat(on), torch.cat(below)


def _jump(field: DInfGrid, cells: int) -> list:
    on, below = _border_pairs(cells, field.in_dim)
    with torch.no_grad():
        a, b = field.jet(on, 2), field.jet(below, 2)
    return [float((u - v).abs().max() / u.abs().max()) for u, v in ((a.value, b.value), (a.grad, b.grad),
                                                                     (a.hess, b.hess))]


BACKENDS = ["torch"] + (["numba"] if rbf_cpu.AVAILABLE else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d,rho,eps", [(2, 3, 1.0), (2, 5, 0.7), (3, 2, 1.0)])
def test_field_continuous_across_borders(backend: str, d: int, rho: int, eps: float) -> None:
    """Value, gradient and Hessian of a two-level field agree, relative to 1e-12, on both sides
    of every finest-level border (the coarse level's borders are among them); without the window
    the same points show the truncation's jump."""
    cells = 16 if d == 2 else 8
    jumps = {}
    for window in (0.0, 1.0):
        torch.manual_seed(0)
        field = DInfGrid(d, 1, resolution=cells, levels=2, features=2, eps=eps, rho=rho, window=window,
                         backend=backend).double()
        with torch.no_grad():
            for p in field.grids:
                p.normal_()
        jumps[window] = _jump(field, cells)
    assert max(jumps[1.0]) <= 1e-12, jumps[1.0]
    assert min(jumps[0.0]) > 1e-7, jumps[0.0]  # the measurement sees the truncation


def test_window_config_reaches_the_field() -> None:
    assert build(compose_cfg(["kernel.window=1.5"]))[1].window == 1.5
    assert build(compose_cfg([]))[1].window == 0.0
    assert build(compose_cfg(["pde=helmholtz"]))[1].window == 1.0  # its best settings
