"""The fused CPU kernel against the PyTorch path and the reference-style autograd path."""
import copy
from typing import Tuple

import pytest
import torch

from dinf.fields import DInfGrid
from dinf.fields import rbf_cpu
from dinf.jet import entry_count

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


# --- orders 3 and 4: the looped kernels ---------------------------------------------------
def _high_order_field(d: int, window: float, edge: str, rho: int = 2, features: int = 2, eps: float = 0.8) -> DInfGrid:
    torch.manual_seed(0)
    g = DInfGrid(d, 2, resolution=8 if d == 2 else 4, levels=2, features=features, eps=eps, rho=rho, edge=edge,
                 window=window).double()
    for p in g.grids:
        p.data.normal_()
    return g


def _high_order_points(d: int) -> torch.Tensor:
    torch.manual_seed(1)
    # corners, a node, outside, a border
    special = torch.tensor([[-1.0] * d, [1.0] * d, [0.0] * d, [1.05] + [-0.2] * (d - 1),
                            [0.125] * (d - 1) + [1 - 1e-9]], dtype=torch.float64)
    return torch.cat([special, torch.rand(60 if d == 2 else 20, d, dtype=torch.float64) * 2 - 1])


def _entries_and_grads(g: DInfGrid, backend: str, x: torch.Tensor, order: int,
                       weights: torch.Tensor) -> Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]:
    g.backend = backend
    entries = g.features_jet(x, order).entries()  # [N, levels·F, A]
    return entries, torch.autograd.grad((entries * weights).sum(), list(g.grids))


def _check_high_order(g: DInfGrid, d: int, order: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Value and every derivative entry (each against its own scale), then the gradient of a
    loss that weighs every entry alike, against the PyTorch path; the kernel must serve the call."""
    x = _high_order_points(d)
    calls = []
    grid_jet = rbf_cpu.grid_jet
    monkeypatch.setattr(rbf_cpu, "grid_jet", lambda *a, **k: calls.append(a[8]) or grid_jet(*a, **k))
    g.backend = "torch"
    with torch.no_grad():
        ref = g.features_jet(x, order).entries()
    scale = ref.abs().amax((0, 1))  # [A]: orders differ by (n/2)^k
    weights = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3), dtype=ref.dtype) / scale
    fused, fused_grads = _entries_and_grads(g, "numba", x, order, weights)
    assert calls == [order]
    ref, grads = _entries_and_grads(g, "torch", x, order, weights)
    assert fused.shape == ref.shape == (x.shape[0], g.levels * g.features, entry_count(order, d))
    err = ((fused - ref).abs().amax((0, 1)) / scale).max()
    assert err < 1e-12, err
    for s, (a, b) in enumerate(zip(fused_grads, grads)):
        assert (a - b).abs().max() < 1e-11 * b.abs().max(), (s, (a - b).abs().max() / b.abs().max())


# The looped kernels compile once per axis count and dtype (about 20 s each on a fresh machine;
# order, ρ and features are run-time arguments): by default the two 2D cases share one, the 3D
# case compiles the other.
@pytest.mark.parametrize("d,order,window,edge", [
    (2, 4, 0.0, "pad"),
    (2, 4, 1.0, "clamp"),
    (3, 3, 1.0, "pad"),
    pytest.param(2, 3, 0.0, "clamp", marks=pytest.mark.slow),
    pytest.param(3, 4, 0.0, "clamp", marks=pytest.mark.slow),
    pytest.param(3, 4, 1.0, "pad", marks=pytest.mark.slow),
])
def test_fused_kernel_orders_three_and_four(d, order, window, edge, monkeypatch):
    _check_high_order(_high_order_field(d, window, edge), d, order, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("d,rho,features,eps", [(2, 1, 1, 1.0), (2, 3, 3, 0.6), (3, 1, 3, 1.2), (3, 3, 1, 0.7)])
@pytest.mark.parametrize("window", [0.0, 1.0])
def test_fused_kernel_order_four_rho_and_features(d, rho, features, eps, window, monkeypatch):
    _check_high_order(_high_order_field(d, window, "pad", rho, features, eps), d, 4, monkeypatch)


def test_orders_above_two_bypass_the_triton_kernel(monkeypatch):
    """On CUDA the Triton kernel serves orders <= 2 only: above, the PyTorch path answers
    (checked here by pretending the call would go to Triton)."""
    g = _high_order_field(2, 0.0, "pad")
    x = _high_order_points(2)
    monkeypatch.setattr(g, "_fused", lambda x: "triton")
    monkeypatch.setattr(g, "_fused_jet", lambda *a: pytest.fail("the Triton kernel has no order 3"))
    got = g.features_jet(x, 3)
    g.backend = "torch"
    assert torch.equal(got.higher, g.features_jet(x, 3).higher)


def test_fused_order_four_no_points():
    g = _high_order_field(2, 0.0, "pad")
    empty = g.features_jet(torch.zeros(0, 2, dtype=torch.float64), 4)
    assert empty.higher.shape == (0, 4, 9)
    grads = torch.autograd.grad(empty.value.sum() + empty.higher.sum(), list(g.grids))
    assert all((gr == 0).all() for gr in grads)


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 3])
def test_fused_order_four_float32(d):
    """float32 grids (their own compilation): the kernel computes weights and sums in float64, so
    it matches the float64 PyTorch path to float32's rounding (with the window, a point rounded
    across a cell border changes nothing)."""
    g64 = _high_order_field(d, 1.0, "pad")
    g32 = copy.deepcopy(g64).float()
    x = _high_order_points(d)[5:]
    g64.backend = "torch"
    with torch.no_grad():
        ref = g64.features_jet(x, 4).entries()
        got = g32.features_jet(x.float(), 4).entries()
    assert got.dtype == torch.float32
    err = ((got.double() - ref).abs().amax((0, 1)) / ref.abs().amax((0, 1))).max()
    assert err < 1e-5, err
