"""The fused CPU kernel against the PyTorch path and the reference-style autograd path."""
import copy

import pytest
import torch

from dinf.fields import DInfGrid
from dinf.fields import rbf_cpu

pytestmark = pytest.mark.skipif(not rbf_cpu.AVAILABLE, reason="numba not installed")


def _grid(edge: str, decoder: str = "linear", eps: float = 1.0, resolution=16) -> DInfGrid:
    torch.manual_seed(0)
    g = DInfGrid(2, 2, resolution=resolution, levels=3, edge=edge, decoder=decoder, eps=eps).double()
    for p in g.grids:
        p.data.normal_()
    return g


def _points(dtype=torch.float64) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.rand(400, 2, dtype=dtype) * 2 - 1
    borders = torch.tensor([[-1, -1], [1, 1], [1, -1], [0, 0], [0.125, -0.5], [-1 + 1e-9, 1 - 1e-9]], dtype=dtype)
    outside = torch.tensor([[1.05, 0.2], [-1.1, -1.02]], dtype=dtype)  # extrapolation stays finite
    return torch.cat([borders, outside, x])


def _jets(g: DInfGrid, backend: str, x: torch.Tensor, order: int):
    g.backend = backend
    jet = g.jet(x, order)
    parts = [jet.value, jet.grad, jet.hess][: order + 1]
    grads = torch.autograd.grad(sum((p * torch.cos(p.detach())).sum() for p in parts), list(g.parameters()))
    return parts, grads


@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("decoder", ["linear", "mlp"])
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("eps", [1.0, 1.7])
def test_fused_kernel_matches_torch_and_reference(edge, decoder, order, eps):
    g = _grid(edge, decoder, eps=eps)
    x = _points()
    fused, fused_grads = _jets(g, "numba", x, order)
    for other in ("torch", "reference"):
        parts, grads = _jets(g, other, x, order)
        for a, b in zip(fused, parts):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item()), (other, (a - b).abs().max())
        for a, b in zip(fused_grads, grads):  # backward: the scatter-add into the grids
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-10 * b.abs().max().item()), (other, (a - b).abs().max())


@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("d", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_fused_kernel_with_window(edge, order, d):
    """The bump window (one exp per node instead of the Gaussian's one per axis) against the
    PyTorch path and the reference-style autograd path, forward and backward, 2 and 3 axes."""
    torch.manual_seed(0)
    g = DInfGrid(d, 2, resolution=16 if d == 2 else 8, levels=2, edge=edge, eps=0.8, rho=3 if d == 2 else 2,
                 window=1.0).double()
    for p in g.grids:
        p.data.normal_()
    x = _points() if d == 2 else torch.cat([torch.rand(60, 3, dtype=torch.float64) * 2 - 1,
                                            torch.tensor([[0.0, 0.25, -1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)])
    fused, fused_grads = _jets(g, "numba", x, order)
    for other in ("torch", "reference"):
        parts, grads = _jets(g, other, x, order)
        for a, b in zip(fused + list(fused_grads), parts + list(grads)):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-10 * b.abs().max().item()), (other, (a - b).abs().max())


@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("resolution", [[16, 4], [8, 32]])
def test_fused_kernel_per_axis_cells(edge, resolution):
    """Per-axis cells (1D + t style grids): each axis has its own node count, row stride and
    dt/dx; the kernel matches the PyTorch path forward and backward."""
    g = _grid(edge, "mlp", resolution=resolution)
    assert g.cells == [tuple(r // 2**s for r in resolution) for s in range(3)]
    x = _points()
    fused, fused_grads = _jets(g, "numba", x, 2)
    parts, grads = _jets(g, "torch", x, 2)
    for a, b in zip(fused + list(fused_grads), parts + list(grads)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item()), (a - b).abs().max()


def test_float32_kernel_close_to_float64():
    g64 = _grid("pad")
    g32 = copy.deepcopy(g64).float()
    # Away from cell borders: a point a rounding error off a border has another neighbourhood.
    x = _points()[8:]
    j64, j32 = g64.jet(x, 2), g32.jet(x.float(), 2)
    for a, b in ((j64.value, j32.value), (j64.grad, j32.grad), (j64.hess, j32.hess)):
        assert (a - b.double()).abs().max() <= 1e-5 * a.abs().max()


def test_auto_uses_the_kernel_only_where_it_applies():
    g = _grid("pad")
    x = _points()
    assert g._fused(x)
    assert not g._fused(x.clone().requires_grad_(True))  # autograd through x needs PyTorch ops
    radial = DInfGrid(2, 1, resolution=16, levels=2, kernel="inverse_quadratic")
    assert not radial._fused(x)
    assert DInfGrid(3, 1, resolution=8, levels=2, rho=2)._fused(torch.zeros(4, 3)) == "numba"
    assert not DInfGrid(1, 1, resolution=8, levels=2)._fused(torch.zeros(4, 1))
    g.backend = "torch"
    assert not g._fused(x)


@pytest.mark.parametrize("in_dim,kernel", [(1, "gaussian"), (3, "inverse_quadratic")])
def test_numba_backend_refuses_what_it_cannot_do(in_dim, kernel):
    g = DInfGrid(in_dim, 1, resolution=8, levels=2, rho=2, kernel=kernel, backend="numba")
    with pytest.raises(ValueError, match="2D or 3D Gaussian"):
        g.jet(torch.zeros(4, in_dim), 1)
