"""Fields: closed-form and autograd jets against each other and against finite differences.

Derivatives are the product, so everything runs in float64 with grid features randomised to
O(1) (the 1e-4 init would make every derivative tiny and every comparison vacuous).
"""
from __future__ import annotations

import itertools
import math
from typing import List

import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import dinf_grid
from dinf.fields import FIELDS, MLP, DInfGrid, Field, LinearGrid, Siren, autograd_jet
from dinf.jet import Jet
from dinf.fields.kernels import KERNELS, _gaussian, gaussian_weights_1d, radial_weights



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: intra-op threads only add contention (10x slower under load)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _float64():
    """Every tensor and field in this module is float64; restore the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)

RES, LEVELS = 8, 2  # finest level 8 cells, coarser 4: small but has nested borders
FD_REL = 1e-6  # central differences with h = 1e-5 cells: truncation ~1e-10, round-off ~1e-11
EXACT_REL = 1e-9  # two exact computations of the same quantity in float64


# --- helpers -----------------------------------------------------------------------------
def assert_close_rel(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float, what: str = "", min_scale: float = 0.0
) -> None:
    """``max |a - e| <= rtol * max |e|``: errors relative to the tensor's largest entry.

    ``min_scale`` floors that scale where the reference may legitimately be all zeros.
    """
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(expected.abs().max().item(), min_scale)
    err = (actual - expected).abs().max().item()
    assert scale > 0, f"{what}: reference is identically zero, the comparison would be vacuous"
    assert err <= rtol * scale, f"{what}: max error {err:.3e} > {rtol:.0e} * {scale:.3e}"


def randomise_grids(field: Field, seed: int = 0) -> Field:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in field.named_parameters():
            if name.startswith(("grids", "gates")):  # gates too, or they would be the constant 1
                p.copy_(torch.randn(p.shape, generator=g))
    return field


def make_dinf(in_dim: int = 2, **kw) -> DInfGrid:
    torch.manual_seed(0)
    kw = {"resolution": RES, "levels": LEVELS, "features": 2, "out_dim": 2, "decoder_hidden": 8, **kw}
    return randomise_grids(DInfGrid(in_dim=in_dim, **kw).double())


def make_linear_grid(in_dim: int = 2, **kw) -> LinearGrid:
    torch.manual_seed(0)
    kw = {"resolution": RES, "levels": LEVELS, "features": 2, "out_dim": 2, "decoder_hidden": 8, **kw}
    return randomise_grids(LinearGrid(in_dim=in_dim, **kw).double())


def random_points(n: int, d: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g) * 2 - 1


def in_cell_points(n: int, d: int, cells: int, seed: int = 2, margin: float = 0.05) -> torch.Tensor:
    """Random points at least ``margin`` cells away from every border of a ``cells``-cell grid.

    Finite differences must not straddle a cell border: there the (2ρ)^d neighbourhood shifts
    by one node, and the field jumps by roughly exp(-ρ²ε²) of its size (the truncation of the
    kernel), which a difference quotient with h ~ 1e-5 cells turns into a huge "derivative".
    Coarser levels' borders are a subset of the finest level's, so one margin covers all.
    """
    g = torch.Generator().manual_seed(seed)
    cell = torch.randint(0, cells, (n, d), generator=g)
    frac = margin + (1 - 2 * margin) * torch.rand(n, d, generator=g)
    return -1.0 + 2.0 * (cell + frac) / cells


def border_points(d: int, cells: List[int], seed: int = 3) -> torch.Tensor:
    """Points with one or all coordinates exactly on cell borders x = -1 + 2i/n of each level."""
    g = torch.Generator().manual_seed(seed)
    pts = []
    for n in cells:
        b = -1.0 + 2.0 * torch.arange(n + 1) / n  # exact in binary for power-of-two n
        for a in range(d):  # one coordinate on a border, the others random
            x = torch.rand(n + 1, d, generator=g) * 2 - 1
            x[:, a] = b
            pts.append(x)
        pts.append(b[torch.randint(0, n + 1, (n + 1, d), generator=g)])  # grid nodes
    return torch.cat(pts)


def edge_points(d: int, seed: int = 4) -> torch.Tensor:
    """Points at and just inside the domain boundary, including all corners."""
    g = torch.Generator().manual_seed(seed)
    edge = torch.tensor([-1.0, 1.0, -(1 - 1e-9), 1 - 1e-9])
    corners = torch.tensor(list(itertools.product(edge.tolist(), repeat=d)))
    faces = []
    for a in range(d):
        x = torch.rand(len(edge), d, generator=g) * 2 - 1
        x[:, a] = edge
        faces.append(x)
    return torch.cat([corners] + faces)


def fd_grad(field: Field, x: torch.Tensor, h: float) -> torch.Tensor:
    """``[N, C, d]``: central differences of the values."""
    cols = []
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = h
        with torch.no_grad():
            cols.append((field(x + e) - field(x - e)) / (2 * h))
    return torch.stack(cols, -1)


def fd_hess(grad_fn, x: torch.Tensor, h: float) -> torch.Tensor:
    """``[N, C, d, d]``: central differences of an exact gradient; [..., i, j] = ∂_j ∂_i u."""
    cols = []
    for j in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, j] = h
        cols.append((grad_fn(x + e) - grad_fn(x - e)) / (2 * h))
    return torch.stack(cols, -1)


def check_against_fd(field: Field, x: torch.Tensor, h: float, jet: Jet, hess_floor: float = 0.0) -> None:
    assert_close_rel(jet.grad, fd_grad(field, x, h), FD_REL, "grad vs FD")
    hess = fd_hess(lambda y: field.jet(y, 1).grad.detach(), x, h)
    assert_close_rel(jet.hess, hess, FD_REL, "hess vs FD of grad", min_scale=hess_floor)


# --- DInfGrid configurations -------------------------------------------------------------
DINF_2D = [
    dict(in_dim=2, kernel=k, decoder=dec, edge=edge, eps=0.8)
    for k in KERNELS
    for dec in ("linear", "mlp")
    for edge in ("pad", "clamp")
]
DINF_WINDOW = [  # the bump window (kernels.window_log): the field C∞ across cell borders
    dict(in_dim=2, kernel="gaussian", decoder="linear", edge="pad", eps=0.8, window=1.0),
    dict(in_dim=2, kernel="gaussian", decoder="mlp", edge="clamp", eps=0.7, window=0.5),
    dict(in_dim=3, kernel="gaussian", decoder="linear", edge="pad", rho=2, eps=1.3, window=2.0),
]
DINF_3D = [
    dict(in_dim=3, kernel="gaussian", decoder="mlp", edge="pad", rho=2, eps=1.3),
    dict(in_dim=3, kernel="inverse_multiquadric", decoder="linear", edge="clamp", rho=2, eps=1.3),
]
DINF_GATED = [
    dict(in_dim=2, kernel="gaussian", decoder="linear", edge="pad", gates="scalar"),
    dict(in_dim=2, kernel="gaussian", decoder="mlp", edge="pad", gates="spatial", gate_resolution=4),
    dict(in_dim=2, kernel="inverse_quadratic", decoder="linear", edge="clamp", gates="spatial", gate_resolution=2),
    dict(in_dim=3, kernel="gaussian", decoder="linear", edge="pad", rho=2, gates="spatial", gate_resolution=2),
]
DINF_CONFIGS = DINF_2D + DINF_WINDOW + DINF_3D + DINF_GATED


def _cfg_id(cfg: dict) -> str:
    return "-".join(f"{k}{v}" if k == "window" else f"{v}" for k, v in cfg.items()
                    if k in ("in_dim", "kernel", "decoder", "edge", "gates", "window"))


dinf_configs = pytest.mark.parametrize("cfg", DINF_CONFIGS, ids=[_cfg_id(c) for c in DINF_CONFIGS])


@dinf_configs
@pytest.mark.parametrize("where", ["random", "borders", "edges"])
def test_dinf_closed_form_matches_autograd(cfg: dict, where: str) -> None:
    field = make_dinf(**cfg)
    d = cfg["in_dim"]
    x = {
        "random": lambda: random_points(64, d),
        "borders": lambda: border_points(d, field.cells),
        "edges": lambda: edge_points(d),
    }[where]()
    closed = field.jet(x, 2)
    auto = autograd_jet(field, x, 2)
    assert_close_rel(closed.value, auto.value, EXACT_REL, "value")
    assert_close_rel(closed.grad, auto.grad, EXACT_REL, "grad")
    assert_close_rel(closed.hess, auto.hess, EXACT_REL, "hess")


@dinf_configs
def test_dinf_matches_finite_differences(cfg: dict) -> None:
    field = make_dinf(**cfg)
    n = field.cells[0]
    x = in_cell_points(48, cfg["in_dim"], n)
    check_against_fd(field, x, 1e-5 * (2 / n), field.jet(x, 2))


@dinf_configs
def test_dinf_jet_orders_agree(cfg: dict) -> None:
    field = make_dinf(**cfg)
    x = torch.cat([random_points(32, cfg["in_dim"]), edge_points(cfg["in_dim"])])
    j0, j1, j2 = (field.jet(x, k) for k in range(3))
    assert j0.order == 0 and j1.order == 1 and j2.order == 2
    assert_close_rel(j0.value, j2.value, 1e-12, "order-0 value")
    assert_close_rel(j1.value, j2.value, 1e-12, "order-1 value")
    assert_close_rel(j1.grad, j2.grad, 1e-12, "order-1 grad")
    assert_close_rel(field(x), j2.value, 1e-12, "forward")


def naive_dinf_forward(field: DInfGrid, x: torch.Tensor) -> torch.Tensor:
    """DInfGrid's value written from its definition: no patch tables, no fused gathers.

    Level s: t_a = (x_a + 1) n_a / 2 in node units (n_a cells along axis a), neighbours
    floor(t) + {-ρ+1..ρ}^d (clamped into [0, n_a] for ``edge="clamp"``, ghost nodes read from the
    padded grid for ``edge="pad"``), weights ψ(|t - p|²) / Σ ψ, features concatenated over
    levels, then the decoder. With a window c > 0 each weight is also multiplied by
    Π_a exp(−c s_a⁴ / (1 − s_a²)), s_a = (t_a − p_a) / ρ (0 where |s_a| ≥ 1).
    """
    psi = KERNELS[field.kernel]

    def bump(s: torch.Tensor) -> torch.Tensor:
        inside = s.abs() < 1
        return torch.where(inside, torch.exp(-field.window * s**4 / torch.where(inside, 1 - s * s, 1.0)), 0.0)

    ghost = field.rho if field.edge == "pad" else 0
    offsets = range(-field.rho + 1, field.rho + 1)
    feats = []
    for cells, grid in zip(field.cells_per_axis, field.grids):
        n = torch.tensor(cells)  # [d]
        t = (x + 1.0) * (0.5 * n)
        base = torch.minimum(t.floor().clamp_min(0), n).long()
        num = torch.zeros(x.shape[0], field.features)
        den = torch.zeros(x.shape[0], 1)
        for off in itertools.product(offsets, repeat=field.in_dim):
            node = base + torch.tensor(off)
            if field.edge == "clamp":
                node = torch.minimum(node.clamp_min(0), n)
            w = psi(((t - node) ** 2).sum(-1, keepdim=True), field.eps)[0]
            if field.window > 0:
                w = w * bump((t - node) / field.rho).prod(-1, keepdim=True)
            num = num + w * grid[tuple((node + ghost).t())]
            den = den + w
        feats.append(num / den)
    gated = field.gates(Jet(torch.cat(feats, 1)), x).value  # the gates' own jets are tested above
    return field.decoder(gated)


@dinf_configs
def test_dinf_matches_naive_reference(cfg: dict) -> None:
    """Checks the patch-table layout and row indexing, which the autograd comparison shares."""
    field = make_dinf(**cfg)
    d = cfg["in_dim"]
    x = torch.cat([random_points(32, d), border_points(d, field.cells)[::3], edge_points(d)])
    with torch.no_grad():
        assert_close_rel(field(x), naive_dinf_forward(field, x), 1e-12, "value vs naive")


@dinf_configs
def test_dinf_backward_to_features_matches_autograd(cfg: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loss on the closed-form jet backpropagates to every parameter like autograd does.

    The reference gathers with plain indexing (PyTorch's own backward), so the custom
    ``gather_rows`` scatter-add backward is checked rather than shared by both sides.
    """
    field = make_dinf(**cfg)
    x = torch.cat([random_points(48, cfg["in_dim"]), edge_points(cfg["in_dim"])])
    g = torch.Generator().manual_seed(5)
    n, c, d = x.shape[0], field.out_dim, field.in_dim
    a, b, h = torch.randn(n, c, generator=g), torch.randn(n, c, d, generator=g), torch.randn(n, c, d, d, generator=g)

    def loss(j: Jet) -> torch.Tensor:
        return (a * j.value).sum() + (b * j.grad).sum() + (h * j.hess).sum() + j.laplacian().square().sum()

    params = list(field.parameters())
    closed = torch.autograd.grad(loss(field.jet(x, 2)), params)
    monkeypatch.setattr(dinf_grid, "gather_rows", lambda table, rows: table[rows])
    auto = torch.autograd.grad(loss(autograd_jet(field, x, 2)), params)
    names = [name for name, _ in field.named_parameters()]
    for name, gc, ga in zip(names, closed, auto):
        assert_close_rel(gc, ga, EXACT_REL, f"d loss / d {name}")


# --- kernel weights ----------------------------------------------------------------------
def _offsets(d: int, rho: int, n: int = 20, seed: int = 6) -> torch.Tensor:
    """Per-axis offsets ``[N, d, K]`` t - p_k of a query to its 2ρ nearest nodes per axis."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, d, 1, generator=g)  # position inside the cell
    t[0] = 0.0  # on a node
    return t - torch.arange(-rho + 1, rho + 1).to(t.dtype)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("eps", [0.6, 1.0, 1.7])
def test_gaussian_separable_equals_radial(d: int, eps: float) -> None:
    """Tensor products of the 1D weight jets equal the d-dimensional radial weight jets."""
    r = _offsets(d, rho=3)
    n, _, k = r.shape
    w1 = gaussian_weights_1d(r, eps, 2)  # [N, d, 3, K]

    def outer(orders) -> torch.Tensor:  # Π_a w1[:, a, orders[a]] over the K^d tensor grid
        out = torch.ones(n, *([1] * d))
        for a, o in enumerate(orders):
            shape = [n] + [1] * d
            shape[1 + a] = k
            out = out * w1[:, a, o].reshape(shape)
        return out.reshape(n, -1)

    unit = lambda *axes: [sum(1 for b in axes if b == a) for a in range(d)]  # noqa: E731
    rows = [outer(unit())]
    rows += [outer(unit(i)) for i in range(d)]
    rows += [outer(unit(i, j)) for i in range(d) for j in range(d)]
    separable = torch.stack(rows, 1)  # [N, 1 + d + d², K^d]

    # All K^d offsets, axis 0 slowest, matching the flattening of ``outer``.
    grids = torch.meshgrid(*[torch.arange(k)] * d, indexing="ij")
    idx = torch.stack([gi.reshape(-1) for gi in grids], -1)  # [K^d, d]
    delta = torch.stack([r[:, a, idx[:, a]] for a in range(d)], -1)  # [N, K^d, d]
    radial = radial_weights(delta, _gaussian, eps, 2)
    assert_close_rel(separable, radial, 1e-12, "separable vs radial")


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_weights_partition_of_unity(kernel: str, d: int) -> None:
    """Normalised weights sum to 1, so every derivative of the sum is 0."""
    r = _offsets(d, rho=2)
    n, _, k = r.shape
    grids = torch.meshgrid(*[torch.arange(k)] * d, indexing="ij")
    idx = torch.stack([gi.reshape(-1) for gi in grids], -1)
    delta = torch.stack([r[:, a, idx[:, a]] for a in range(d)], -1)
    w = radial_weights(delta, KERNELS[kernel], 1.3, 2)  # [N, 1 + d + d², K^d]
    assert w.shape == (n, 1 + d + d * d, k**d)
    sums = w.sum(-1)
    assert (w[:, 0] > 0).all()
    torch.testing.assert_close(sums[:, 0], torch.ones(n), rtol=0, atol=1e-13)
    torch.testing.assert_close(sums[:, 1:], torch.zeros(n, d + d * d), rtol=0, atol=1e-12)
    assert w[:, 1:].abs().max() > 0.1 * w[:, 0].max()  # the derivative rows are not trivially zero
    if kernel == "gaussian":
        w1 = gaussian_weights_1d(r, 1.3, 2).sum(-1)  # [N, d, 3]
        torch.testing.assert_close(w1[..., 0], torch.ones(n, d), rtol=0, atol=1e-13)
        torch.testing.assert_close(w1[..., 1:], torch.zeros(n, d, 2), rtol=0, atol=1e-12)


# --- LinearGrid --------------------------------------------------------------------------
@pytest.mark.parametrize("in_dim", [1, 2, 3])
@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_linear_grid_matches_finite_differences(in_dim: int, decoder: str) -> None:
    field = make_linear_grid(in_dim, decoder=decoder)
    n = field.cells[0]
    x = in_cell_points(48, in_dim, n)
    # A 1D linear-decoder grid is piecewise linear: its Hessian is identically zero.
    check_against_fd(field, x, 1e-5 * (2 / n), field.jet(x, 2), hess_floor=1.0)


def test_linear_grid_laplacian_vanishes_inside_cells() -> None:
    """The failure mode ∂∞-Grid fixes: d-linear cells have zero pure second derivatives."""
    field = make_linear_grid(2, decoder="linear")
    x = in_cell_points(100, 2, field.cells[0])
    hess = field.jet(x, 2).hess
    assert (hess.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert (field.jet(x, 2).laplacian() == 0).all()
    mixed = hess[..., 0, 1].abs()
    assert (mixed > 1e-3).float().mean() > 0.9, "mixed derivative should generally be nonzero"
    torch.testing.assert_close(hess[..., 0, 1], hess[..., 1, 0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("in_dim", [1, 2, 3])
def test_linear_grid_continuous_across_borders(in_dim: int) -> None:
    field = make_linear_grid(in_dim, resolution=16, levels=3, decoder="mlp")
    g = torch.Generator().manual_seed(7)
    x = torch.rand(60, in_dim, generator=g) * 1.6 - 0.8
    n = field.cells[0]
    x[:, 0] = -1.0 + 2.0 * torch.randint(1, n, (60,), generator=g) / n  # interior borders
    e = torch.zeros(in_dim)
    e[0] = 1e-12
    with torch.no_grad():
        left, mid, right = field(x - e), field(x), field(x + e)
    # Lipschitz constant ~ (n/2)·|features|·|decoder|, so 1e-12 moves values by ~1e-10.
    assert (left - right).abs().max() < 1e-8
    assert (mid - right).abs().max() < 1e-8
    assert left.abs().max() > 0.1


@pytest.mark.parametrize("in_dim", [1, 2, 3])
def test_linear_grid_interpolates_nodes(in_dim: int) -> None:
    """At a node (including x = ±1) the field reads exactly that node's features."""
    field = make_linear_grid(in_dim, levels=1, features=3, out_dim=3)
    with torch.no_grad():
        field.decoder.layer.weight.copy_(torch.eye(3))
        field.decoder.layer.bias.zero_()
    n = field.cells[0]
    g = torch.Generator().manual_seed(8)
    idx = torch.randint(0, n + 1, (50, in_dim), generator=g)
    idx[0], idx[1] = 0, n  # the two extreme corners
    x = -1.0 + 2.0 * idx / n
    with torch.no_grad():
        got = field(x)
    want = field.grids[0][tuple(idx.t())]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)


# --- SIREN and MLP -----------------------------------------------------------------------
@pytest.mark.parametrize("in_dim", [1, 2, 3])
def test_siren_matches_finite_differences(in_dim: int) -> None:
    torch.manual_seed(0)
    field = Siren(in_dim, 2, hidden=32, layers=2).double()
    x = random_points(64, in_dim)
    check_against_fd(field, x, 1e-5, field.jet(x, 2))


@pytest.mark.parametrize("activation", ["tanh", "sin", "softplus", "gelu"])
def test_mlp_matches_finite_differences(activation: str) -> None:
    torch.manual_seed(0)
    field = MLP(2, 2, hidden=32, layers=3, activation=activation).double()
    x = random_points(64, 2)
    jet = field.jet(x, 2)
    assert jet.hess.abs().max() > 1e-3  # smooth activation: curvature is really there
    check_against_fd(field, x, 1e-5, jet)


# --- config errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, key, words",
    [
        (lambda: DInfGrid(kernel="foo"), "kernel", ["gaussian", "inverse_quadratic", "inverse_multiquadric", "multiquadric"]),
        (lambda: DInfGrid(resolution=100, levels=4), "resolution", ["100", "8"]),
        (lambda: DInfGrid(resolution=[64, 100], levels=4), "resolution", ["[64, 100]", "axis 1", "100 cells", "8"]),
        (lambda: DInfGrid(resolution=[64, 64, 64], levels=4), "resolution", ["in_dim = 2", "[64, 64, 64]"]),
        (lambda: DInfGrid(in_dim=3, resolution=[8, 4, 2], levels=3), "resolution", ["axis 2 (2 cells)", "4"]),
        (lambda: DInfGrid(resolution=[16, 8.0], levels=2), "resolution", ["integers"]),
        (lambda: DInfGrid(resolution="16", levels=2), "resolution", ["'16'"]),
        (lambda: DInfGrid(rho=0), "rho", []),
        (lambda: DInfGrid(window=-1.0), "window", [">= 0"]),
        (lambda: DInfGrid(kernel="inverse_quadratic", window=1.0), "window", ["Gaussian", "inverse_quadratic"]),
        (lambda: DInfGrid(decoder="foo"), "decoder", ["linear", "mlp"]),
        (lambda: DInfGrid(edge="foo"), "edge", ["pad", "clamp"]),
        (lambda: DInfGrid(levels=0), "levels", []),
        (lambda: LinearGrid(resolution=100, levels=4), "resolution", ["100", "8"]),
        (lambda: LinearGrid(resolution=[10, 16], levels=3), "resolution", ["axis 0 (10 cells)", "4"]),
        (lambda: LinearGrid(decoder="foo"), "decoder", ["linear", "mlp"]),
        (lambda: LinearGrid(features=0), "features", []),
        (lambda: Siren(layers=0), "layers", []),
        (lambda: Siren(hidden=0), "hidden", []),
        (lambda: Siren(omega0=0.0), "omega0", []),
        (lambda: MLP(activation="relu"), "activation", ["tanh", "sin", "softplus", "gelu"]),
        (lambda: MLP(layers=0), "layers", []),
    ],
)
def test_config_errors(make, key: str, words: List[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.key == key
    for w in words:
        assert w in str(info.value)


# --- initialisation and registry --------------------------------------------------------
@pytest.mark.parametrize("cls", [DInfGrid, LinearGrid])
@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_grid_init_matches_spec(cls, decoder: str) -> None:
    torch.manual_seed(0)
    field = cls(resolution=16, levels=3, decoder=decoder)
    for p in field.grids:
        assert p.abs().max() <= 1e-4
        assert p.abs().max() > 1e-5  # actually random, not zeros
    for name, p in field.decoder.named_parameters():
        if name.endswith("bias"):
            assert (p == 0).all(), name
    ghost = 2 * field.rho if cls is DInfGrid else 0  # pad edge: ρ ghost nodes per side
    assert [p.shape[0] for p in field.grids] == [17 + ghost, 9 + ghost, 5 + ghost]


def test_siren_and_mlp_init() -> None:
    torch.manual_seed(0)
    s = Siren(2, 1, hidden=64, layers=3, omega0=30.0)
    assert s.hidden[0].weight.abs().max() <= 1 / 2
    bound = math.sqrt(6 / 64) / 30
    for layer in list(s.hidden[1:]) + [s.out]:
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.5 * bound
    m = MLP(2, 1, hidden=64, layers=3)
    assert all((layer.bias == 0).all() for layer in m.layers)
    assert len(m.layers) == 4


@pytest.mark.parametrize("name", list(FIELDS))
def test_registry_builds_small_fields(name: str) -> None:
    small = {
        "dinf": dict(resolution=8, levels=2),
        "linear_grid": dict(resolution=8, levels=2),
        "siren": dict(hidden=16, layers=2),
        "mlp": dict(hidden=16, layers=2),
    }
    field = FIELDS[name](in_dim=2, out_dim=3, **small.get(name, {}))
    x = random_points(7, 2)
    jet = field.jet(x, 2)
    assert jet.value.shape == (7, 3) and jet.grad.shape == (7, 3, 2) and jet.hess.shape == (7, 3, 2, 2)


@pytest.mark.parametrize("gates", ["scalar", "spatial"])
def test_gates_start_as_the_ungated_field(gates: str) -> None:
    """Gates start at exactly 1 (normalised weights reproduce a constant): training starts from
    the ungated field, and the gates only learn a departure from it."""
    torch.manual_seed(0)
    plain = DInfGrid(resolution=RES, levels=LEVELS, out_dim=2).double()
    torch.manual_seed(0)
    gated = DInfGrid(resolution=RES, levels=LEVELS, out_dim=2, gates=gates, gate_resolution=4).double()
    x = torch.cat([random_points(32, 2), edge_points(2)]).double()
    a, b = plain.jet(x, 2), gated.jet(x, 2)
    for name in ("value", "grad", "hess"):
        assert_close_rel(getattr(b, name), getattr(a, name), 1e-13, name)
    extra = sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == (LEVELS if gates == "scalar" else (4 + 1 + 2 * 3) ** 2 * LEVELS)


def test_least_squares_refuses_gated_grids() -> None:
    from dinf.errors import ConfigError
    from dinf.solvers.least_squares import check_linear
    from dinf.pdes import PoissonImage

    with pytest.raises(ConfigError, match="model.gates"):
        check_linear(DInfGrid(resolution=16, levels=2, gates="scalar"), PoissonImage(resolution=16))
