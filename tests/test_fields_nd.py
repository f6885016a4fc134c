"""∂∞-Grid on three axes and with a resolution per axis: jets against autograd and finite
differences, the fused 3-axis kernel against the PyTorch path, the least-squares basis and a
least-squares fit; the other fields on three axes.

As in ``tests/test_fields.py``: float64, grid features randomised to O(1), finite differences
inside a cell (the neighbourhood changes at cell borders).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import pytest
import torch

from dinf.solvers import least_squares as lsq, tensor_operator as lsq_tensor
from dinf.fields import MLP, DInfGrid, LinearGrid, Siren, autograd_jet
from dinf.fields import rbf_cpu
from dinf.linear_system import LinearSystem
from dinf.pdes.capabilities import LinearProblem
from tests.test_fields import (  # noqa: F401 - _float64 and _one_thread: the same autouse fixtures
    EXACT_REL,
    _float64,
    _one_thread,
    assert_close_rel,
    check_against_fd,
    edge_points,
    naive_dinf_forward,
    random_points,
    randomise_grids,
)

numba_only = pytest.mark.skipif(not rbf_cpu.AVAILABLE, reason="numba not installed")


# --- helpers -----------------------------------------------------------------------------
def make(in_dim: int, resolution, levels: int = 2, **kw) -> DInfGrid:
    torch.manual_seed(0)
    kw = {"features": 2, "out_dim": 2, "decoder_hidden": 8, **kw}
    return randomise_grids(DInfGrid(in_dim=in_dim, resolution=resolution, levels=levels, **kw).double())


def in_cell_points(n: int, cells: Sequence[int], seed: int = 2, margin: float = 0.05) -> torch.Tensor:
    """Random points at least ``margin`` cells from every border of a grid with ``cells[a]``
    cells along axis a (the finest level: coarser borders are a subset)."""
    g = torch.Generator().manual_seed(seed)
    d = len(cells)
    c = torch.tensor(cells)
    cell = (torch.rand(n, d, generator=g) * c).floor()
    frac = margin + (1 - 2 * margin) * torch.rand(n, d, generator=g)
    return -1.0 + 2.0 * (cell + frac) / c


def border_points(cells_per_axis: Sequence[Tuple[int, ...]], seed: int = 3) -> torch.Tensor:
    """Points with one coordinate on a cell border of its axis (every level), and grid nodes."""
    g = torch.Generator().manual_seed(seed)
    d = len(cells_per_axis[0])
    pts = []
    for cells in cells_per_axis:
        nodes = []
        for a, n in enumerate(cells):
            b = -1.0 + 2.0 * torch.arange(n + 1) / n  # exact in binary for power-of-two n
            x = torch.rand(n + 1, d, generator=g) * 2 - 1
            x[:, a] = b
            pts.append(x)
            nodes.append(b[torch.randint(0, n + 1, (8,), generator=g)])
        pts.append(torch.stack(nodes, 1))
    return torch.cat(pts)


def features_and_grads(g: DInfGrid, backend: str, x: torch.Tensor, order: int):
    """The feature jet's parts and the gradients of a fixed random functional of them w.r.t.
    the grids (autograd through whichever op computed them)."""
    g.backend = backend
    jet = g.features_jet(x, order)
    parts = [jet.value, jet.grad, jet.hess][: order + 1]
    gen = torch.Generator().manual_seed(5)
    loss = sum((p * torch.randn(p.shape, generator=gen)).sum() for p in parts)
    return parts, torch.autograd.grad(loss, list(g.grids))


# --- configurations ----------------------------------------------------------------------
CONFIGS = [
    dict(in_dim=3, resolution=8, kernel="gaussian", decoder=dec, edge=edge, rho=2, eps=1.1)
    for dec in ("linear", "mlp")
    for edge in ("pad", "clamp")
] + [
    dict(in_dim=3, resolution=[8, 4, 16], kernel="gaussian", decoder="mlp", edge="pad", rho=2, eps=0.9),
    dict(in_dim=3, resolution=[4, 8, 8], kernel="gaussian", decoder="linear", edge="clamp", rho=3, eps=1.3),
    dict(in_dim=2, resolution=[16, 4], kernel="gaussian", decoder="linear", edge="pad", rho=3, eps=1.0),
    dict(in_dim=2, resolution=[4, 16], kernel="gaussian", decoder="mlp", edge="clamp", rho=2, eps=0.8),
    dict(in_dim=2, resolution=[16, 8], kernel="inverse_quadratic", decoder="mlp", edge="pad", rho=2, eps=0.8),
    dict(in_dim=3, resolution=[8, 4, 8], kernel="inverse_multiquadric", decoder="linear", edge="clamp", rho=2,
         eps=1.3),
]


def _cfg_id(cfg: dict) -> str:
    res = cfg["resolution"]
    res = "x".join(map(str, res)) if isinstance(res, list) else f"{res}^{cfg['in_dim']}"
    return f"{res}-{cfg['kernel']}-{cfg['decoder']}-{cfg['edge']}"


# These two compile kernel specialisations no other default test uses (3 axes at ρ = 3, orders 0
# and 1; 2 axes at ρ = 2), 10-30 s each on a fresh machine: they run with -m slow (.ci/run runs it).
_SLOW = ("4x8x8-gaussian-linear-clamp", "4x16-gaussian-mlp-clamp")
configs = pytest.mark.parametrize("cfg", [
    pytest.param(c, id=_cfg_id(c), marks=[pytest.mark.slow] if _cfg_id(c) in _SLOW else [])
    for c in CONFIGS])


# --- jets --------------------------------------------------------------------------------
@configs
@pytest.mark.parametrize("where", ["random", "borders", "edges"])
def test_jets_match_autograd(cfg: dict, where: str) -> None:
    """Closed-form jets (the fused kernel for Gaussian grids) against float64 autograd."""
    field = make(**cfg)
    d = cfg["in_dim"]
    x = {
        "random": lambda: random_points(48, d),
        "borders": lambda: border_points(field.cells_per_axis),
        "edges": lambda: edge_points(d),
    }[where]()
    closed = field.jet(x, 2)
    auto = autograd_jet(field, x, 2)
    assert closed.grad.shape == (x.shape[0], 2, d) and closed.hess.shape == (x.shape[0], 2, d, d)
    assert_close_rel(closed.value, auto.value, EXACT_REL, "value")
    assert_close_rel(closed.grad, auto.grad, EXACT_REL, "grad")
    assert_close_rel(closed.hess, auto.hess, EXACT_REL, "hess")


@configs
def test_jets_match_finite_differences(cfg: dict) -> None:
    field = make(**cfg)
    finest = field.cells_per_axis[0]
    x = in_cell_points(40, finest)
    check_against_fd(field, x, 1e-5 * (2 / max(finest)), field.jet(x, 2))


@configs
def test_matches_naive_reference(cfg: dict) -> None:
    """Patch-table rows, per-axis strides and ghost offsets against the definition."""
    field = make(**cfg)
    d = cfg["in_dim"]
    x = torch.cat([random_points(24, d), border_points(field.cells_per_axis)[::3], edge_points(d)])
    with torch.no_grad():
        assert_close_rel(field(x), naive_dinf_forward(field, x), 1e-12, "value vs naive")
        field.backend = "reference"
        assert_close_rel(field(x), naive_dinf_forward(field, x), 1e-12, "reference-style vs naive")


@configs
def test_jet_orders_agree(cfg: dict) -> None:
    field = make(**cfg)
    x = torch.cat([random_points(24, cfg["in_dim"]), edge_points(cfg["in_dim"])])
    j0, j1, j2 = (field.jet(x, k) for k in range(3))
    assert_close_rel(j0.value, j2.value, 1e-12, "order-0 value")
    assert_close_rel(j1.grad, j2.grad, 1e-12, "order-1 grad")
    assert_close_rel(field(x), j2.value, 1e-12, "forward")


# --- the fused 3-axis kernel against the PyTorch path -------------------------------------
def _kernel_points(seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(120, 3, generator=g) * 2 - 1
    special = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0],
                            [0.125, -0.25, 1 - 1e-9], [1.05, 0.2, -1.1]])  # corners, borders, outside
    return torch.cat([special, x])


@numba_only
@pytest.mark.parametrize("edge", ["pad", pytest.param("clamp", marks=pytest.mark.slow)])
# Each case needs its own kernel specialisation, 15-40 s to compile on a fresh machine. The default
# case covers order 2 with per-axis resolutions and edge padding at ρ = 2 with 2 features, the
# forward and backward specialisation that tests/test_fields.py's 3-axis grids compile anyway (the
# forward orders 0 and 1 run there too); the rest (clamped edges, other orders, ρ = 1 and 3, other
# feature counts, and the window's 3-axis cases in tests/test_rbf_cpu.py) run with -m slow, which
# .ci/run runs too.
@pytest.mark.parametrize("order,rho,features,resolution", [
    pytest.param(0, 1, 1, 8, marks=pytest.mark.slow),
    pytest.param(1, 2, 3, [8, 4, 16], marks=pytest.mark.slow),
    pytest.param(2, 2, 1, 8, marks=pytest.mark.slow),
    (2, 2, 2, [4, 8, 8]),
    pytest.param(2, 3, 2, [4, 8, 8], marks=pytest.mark.slow),
    pytest.param(2, 1, 3, [16, 8, 4], marks=pytest.mark.slow),
])
def test_fused_3d_matches_torch(edge: str, order: int, rho: int, features: int, resolution) -> None:
    """Forward jets and the backward scatter-add into the grids, several ρ and feature counts."""
    g = make(3, resolution, levels=3 if rho == 1 else 2, features=features, rho=rho, edge=edge, eps=1.2)
    x = _kernel_points()
    assert g._fused(x) == "numba"
    fused, fused_grads = features_and_grads(g, "numba", x, order)
    ref, ref_grads = features_and_grads(g, "torch", x, order)
    assert fused[-1].shape == (x.shape[0], g.levels * features) + (3,) * order
    for what, a, b in zip(["value", "grad", "hess"], fused, ref):
        assert_close_rel(a, b, 1e-10, what)
    for s, (a, b) in enumerate(zip(fused_grads, ref_grads)):
        assert_close_rel(a, b, 1e-10, f"d loss / d grids[{s}]")


@numba_only
def test_fused_3d_float32_and_no_points() -> None:
    # Kernel specialisations that other default tests compile anyway (15-50 s each on a fresh
    # machine): float32 at ρ = 5 with 2 features, as a 2D + t problem's run (Heat2d-MS in
    # tests/test_time_windows.py), against the float64 PyTorch path (which the fused float64 kernel
    # matches to 1e-10 above); the empty batch on a ρ = 2 grid, as tests/test_fields.py's.
    g32 = make(3, [8, 8, 4], rho=5).float()
    ref = make(3, [8, 8, 4], rho=5, backend="torch")
    x = in_cell_points(50, (8, 8, 4))  # away from borders: rounding would change neighbourhoods
    assert g32._fused(x.float()) == "numba"
    j64, j32 = ref.features_jet(x, 2), g32.features_jet(x.float(), 2)
    for a, b in ((j64.value, j32.value), (j64.grad, j32.grad), (j64.hess, j32.hess)):
        assert b.dtype == torch.float32
        assert (a - b.double()).abs().max() <= 1e-5 * a.abs().max()
    g64 = make(3, [8, 8, 4], rho=2)
    assert g64._fused(x) == "numba"
    empty = g64.features_jet(torch.zeros(0, 3), 2)
    assert empty.hess.shape == (0, 4, 3, 3)
    grads = torch.autograd.grad(empty.value.sum() + empty.hess.sum(), list(g64.grids))
    assert all((gr == 0).all() for gr in grads)


# --- per-axis layout ---------------------------------------------------------------------
def test_per_axis_layout() -> None:
    g = DInfGrid(3, 1, resolution=[16, 8, 4], levels=3, rho=2)
    assert g.resolution == [16, 8, 4] and g.resolution_per_axis == (16, 8, 4)
    assert g.cells == g.cells_per_axis == [(16, 8, 4), (8, 4, 2), (4, 2, 1)]
    assert g.cells_total == 16 * 8 * 4
    assert [tuple(p.shape) for p in g.grids] == [(21, 13, 9, 2), (13, 9, 7, 2), (9, 7, 6, 2)]
    assert g.patch_table(1).shape == (10 * 6 * 4, 4**3 * 2)
    square = DInfGrid(2, 1, resolution=16, levels=2)
    assert square.cells == [16, 8] and square.cells_per_axis == [(16, 16), (8, 8)]
    assert square.cells_total == 256 and square.resolution == 16
    # A list with equal entries is the square grid: the same cells, grids and numbers.
    same = DInfGrid(2, 1, resolution=[16, 16], levels=2)
    assert same.cells == [16, 8] and same.resolution == [16, 16]
    lin = LinearGrid(2, 1, resolution=[8, 32], levels=2)
    assert lin.cells == [(8, 32), (4, 16)] and lin.cells_total == 256
    assert [tuple(p.shape) for p in lin.grids] == [(9, 33, 2), (5, 17, 2)]


def test_level_basis_scales() -> None:
    g = DInfGrid(2, 1, resolution=[16, 4], levels=2)
    b = g.level_basis(torch.zeros(3, 2), 1, 1)
    assert b.scales == (4.0, 1.0)
    with pytest.raises(ValueError, match="scales"):
        b.scale
    assert DInfGrid(2, 1, resolution=16, levels=2).level_basis(torch.zeros(3, 2), 1, 1).scale == 4.0


# --- least squares -----------------------------------------------------------------------
BASIS_CONFIGS = [
    dict(in_dim=3, resolution=8, kernel="gaussian", edge="pad", rho=2),
    dict(in_dim=3, resolution=[8, 4, 16], kernel="gaussian", edge="clamp", rho=2),
    dict(in_dim=3, resolution=[4, 8, 4], kernel="inverse_quadratic", edge="pad", rho=2),
    dict(in_dim=2, resolution=[16, 4], kernel="gaussian", edge="pad", rho=3),
    dict(in_dim=2, resolution=[4, 16], kernel="inverse_multiquadric", edge="clamp", rho=2),
]


@pytest.mark.parametrize("cfg", BASIS_CONFIGS, ids=[_cfg_id({**c, "decoder": ""}) for c in BASIS_CONFIGS])
def test_basis_reproduces_the_feature_jets(cfg: dict) -> None:
    """``basis()`` contracted with the features equals ``features_jet`` (per-axis scales)."""
    g = make(decoder="linear", **cfg)
    d = cfg["in_dim"]
    x = torch.cat([random_points(30, d), edge_points(d)])
    n = x.shape[0]
    jet = g.features_jet(x, 2)
    for s in range(g.levels):
        cols, w = g.basis(x, s, 2)
        assert cols.shape == (n, (2 * g.rho) ** d) and w.shape == (n, 1 + d + d * d, (2 * g.rho) ** d)
        out = torch.einsum("nak,nkf->nfa", w, g.grids[s].detach().reshape(-1, 2)[cols])
        sl = slice(2 * s, 2 * s + 2)
        assert_close_rel(out[..., 0], jet.value[:, sl].detach(), EXACT_REL, "value")
        assert_close_rel(out[..., 1 : 1 + d], jet.grad[:, sl].detach(), EXACT_REL, "grad")
        assert_close_rel(out[..., 1 + d :], jet.hess[:, sl].detach().reshape(n, 2, d * d), EXACT_REL, "hess")


def _smooth(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(1.5 * x[:, 0] + 0.3) * torch.cos(x[:, 1]) * torch.exp(0.4 * x[:, -1])


def test_lsq_fit_3d_per_axis() -> None:
    """A smooth 3D function fitted by least squares through ``basis`` (value rows), with
    per-axis cells: the solution written back into the grid reproduces the fit."""
    # 2 features (the solve writes the first): the kernel specialisation of test_fields.py's 3-axis grids
    field = make(3, [8, 4, 8], rho=2, features=2, out_dim=1)
    g = torch.Generator().manual_seed(11)
    x = torch.rand(8000, 3, generator=g) * 2 - 1  # ~4 points per unknown: 3000 overfit (1.5e-2)
    coef = torch.ones(x.shape[0], 1, 1, 1)  # one equation per point: u(x) = target
    system = LinearSystem(x, coef, _smooth(x)[:, None])
    asm = lsq.assemble(field, system)
    assert asm.matrix.shape == (8000, sum(p.shape[:-1].numel() for p in field.grids))
    z = lsq.LeastSquares(damping=1e-10, method="direct")._normal_equations(asm, "direct", np.zeros(asm.nodes))
    lsq.write_back(field, z, asm)
    test = torch.rand(2000, 3, generator=g) * 2 - 1
    with torch.no_grad():
        fit = field(test)[:, 0]
        assert torch.allclose(field(x)[:, 0], torch.as_tensor(asm.matrix @ z), rtol=0, atol=1e-10)
    err = (fit - _smooth(test)).norm() / _smooth(test).norm()
    assert err < 1e-2, err  # 3.8e-3


class _GradientProblem(torch.nn.Module, LinearProblem):
    """u with ∇u = ∇target and u = target at the points (a 2D linear problem for the solver):
    points on a tensor grid, so the pixel-grid operator would apply to a square field."""

    def __init__(self, side: int = 40):
        super().__init__()
        self.side, self.requested = side, None

    def sample(self, n: int, generator: torch.Generator):
        self.requested = n
        lin = (torch.arange(self.side) + 0.5) / self.side * 2 - 1
        x = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)
        return type("Batch", (), {"x": x})()

    def linear_system(self, batch) -> LinearSystem:
        x = batch.x.clone().requires_grad_(True)
        with torch.enable_grad():  # the solver builds systems under no_grad
            u = _smooth(x)
            (grad,) = torch.autograd.grad(u.sum(), x)
        n = x.shape[0]
        coef = torch.zeros(n, 3, 1, 3)  # rows: u, ∂0 u, ∂1 u
        for e in range(3):
            coef[:, e, 0, e] = 1.0
        rhs = torch.cat([u.detach()[:, None], grad], 1)
        return LinearSystem(batch.x, coef, rhs)


@pytest.mark.parametrize("method", ["direct", "lsqr"])
def test_least_squares_solve_per_axis(method: str) -> None:
    """``LeastSquares.solve`` on a per-axis grid: the default point count is 16 per finest cell
    (the product of the per-axis cells), the pixel-grid operator stands aside (its 1D factors
    assume square levels) and the sparse solve fits."""
    # 2 features (the solve writes the first): the kernel specialisation of test_fields.py's 2-axis grids
    field = make(2, [16, 4], levels=2, rho=3, features=2, out_dim=1)
    problem = _GradientProblem()
    assert lsq_tensor.tensor_grid(problem.sample(1, None).x) is not None
    assert lsq_tensor.applies(field, problem.sample(1, None).x) is None
    info = lsq.LeastSquares(method=method, maxiter=500).solve(field, problem, torch.Generator().manual_seed(0))
    assert problem.requested == 16 * 16 * 4
    assert info["operator"] == "sparse" and info["loss"] < 1e-3 * info["loss_zero"]
    x = in_cell_points(200, (16, 4))
    with torch.no_grad():
        err = (field(x)[:, 0] - _smooth(x)).abs().max()
    assert err < 2e-2, err


def test_tensor_operator_applies_only_to_square_2d_grids() -> None:
    lin = (torch.arange(8) + 0.5) / 8 * 2 - 1
    x = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)
    assert lsq_tensor.applies(DInfGrid(2, 1, resolution=16, levels=2), x) is not None
    assert lsq_tensor.applies(DInfGrid(2, 1, resolution=[16, 16], levels=2), x) is not None
    assert lsq_tensor.applies(DInfGrid(2, 1, resolution=[16, 8], levels=2), x) is None
    x3 = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(-1, 3)
    assert lsq_tensor.applies(DInfGrid(3, 1, resolution=8, levels=2, rho=2), x3) is None


# --- other fields on three axes and per-axis LinearGrid ------------------------------------
@pytest.mark.parametrize("resolution", [[8, 4, 16], [16, 4]])
@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_linear_grid_per_axis_matches_finite_differences(resolution, decoder: str) -> None:
    torch.manual_seed(0)
    field = randomise_grids(LinearGrid(len(resolution), 2, resolution=resolution, levels=2, decoder=decoder,
                                       decoder_hidden=8).double())
    x = in_cell_points(40, resolution)
    jet = field.jet(x, 2)
    assert jet.hess.shape == (40, 2, len(resolution), len(resolution))
    check_against_fd(field, x, 1e-5 * (2 / max(resolution)), jet, hess_floor=1.0)
    # d-linear cells: the pure second derivatives vanish, on every axis.
    if decoder == "linear":
        assert (jet.hess.diagonal(dim1=-2, dim2=-1) == 0).all()


def test_linear_grid_per_axis_interpolates_nodes() -> None:
    torch.manual_seed(0)
    field = randomise_grids(LinearGrid(3, 3, resolution=[8, 2, 4], levels=1, features=3).double())
    with torch.no_grad():
        field.decoder.layer.weight.copy_(torch.eye(3))
        field.decoder.layer.bias.zero_()
    g = torch.Generator().manual_seed(8)
    cells = torch.tensor([8, 2, 4])
    idx = (torch.rand(40, 3, generator=g) * (cells + 1)).floor().long()
    idx[0], idx[1] = 0, cells  # the extreme corners
    with torch.no_grad():
        got = field(-1.0 + 2.0 * idx / cells)
    torch.testing.assert_close(got, field.grids[0][tuple(idx.t())], rtol=0, atol=1e-14)


@pytest.mark.parametrize("make_field", [
    lambda: Siren(3, 2, hidden=24, layers=2),
    lambda: MLP(3, 2, hidden=24, layers=2, activation="tanh"),
], ids=["siren", "mlp"])
def test_autograd_fields_on_three_axes(make_field) -> None:
    torch.manual_seed(0)
    field = make_field().double()
    x = random_points(40, 3)
    jet = field.jet(x, 2)
    assert jet.grad.shape == (40, 2, 3) and jet.hess.shape == (40, 2, 3, 3)
    assert jet.hess.abs().max() > 1e-3
    torch.testing.assert_close(jet.hess, jet.hess.transpose(-1, -2), rtol=1e-10, atol=1e-12)
    check_against_fd(field, x, 1e-5, jet)


def test_dinf_trains_on_three_axes() -> None:
    """A few Adam steps on a 3-axis Laplacian loss through the fused kernel lower it."""
    torch.manual_seed(0)
    field = DInfGrid(3, 1, resolution=[8, 8, 4], levels=2, rho=2, init_scale=1e-2).double()
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    x = random_points(256, 3)
    target = -3 * math.pi**2 / 4 * torch.sin(math.pi * x / 2).prod(1, keepdim=True)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        jet = field.jet(x, 2)
        loss = (jet.laplacian() - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
