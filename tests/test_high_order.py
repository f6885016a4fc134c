"""Derivatives of order 3 and 4: the jet's layout, ∂∞-Grid's closed-form weights and basis against
autograd and finite differences, autograd jets, coordinate maps, products (hard conditions),
residual rows, a fourth-order equation solved from config, and the one-line refusals.

Everything runs in float64 with grid features randomised to O(1)."""
from __future__ import annotations

import pytest
import torch

from dinf.app.run import build
from dinf.equations.linearize import autograd_rows
from dinf.equations.parse import Vocabulary
from dinf.equations.residual import Residual, Unknowns, jet_width
from dinf.errors import ConfigError
from dinf.fields import DInfGrid, autograd_jet
from dinf.fields.kernels import gaussian_weights_1d
from dinf.fields.mapped import MappedField
from dinf.jet import Jet, entry_count, entry_position, higher_axes, order_of_width
from dinf.solvers.linalg.node_jets import random_jet
from tests.helpers import compose_cfg


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _grid(d: int, window: float = 0.0, **kw) -> DInfGrid:
    torch.manual_seed(0)
    return DInfGrid(in_dim=d, out_dim=2, resolution=6, levels=2, features=2, eps=kw.get("eps", 0.7),
                    rho=kw.get("rho", 3), window=window, backend="torch", init_scale=1.0)


def _fd_entry(fn, x: torch.Tensor, axes, h: float = 1e-3) -> torch.Tensor:
    """∂^axes fn at x by nested central differences (fn: [N, d] -> [N, C])."""
    if not axes:
        return fn(x)
    a, rest = axes[0], axes[1:]
    e = torch.zeros(x.shape[1])
    e[a] = h
    return (_fd_entry(fn, x + e, rest, h) - _fd_entry(fn, x - e, rest, h)) / (2 * h)


def test_the_layout_counts_each_mixed_derivative_once():
    assert higher_axes(2, 4) == ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1),
                                 (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 1, 1, 1), (1, 1, 1, 1))
    assert entry_count(4, 2) == 16 and entry_count(2, 3) == 13 and jet_width(4, 3) == 1 + 3 + 9 + 10 + 15
    assert entry_position((1, 0, 0), 2) == entry_position((0, 0, 1), 2) == 1 + 2 + 4 + 1
    assert [order_of_width(entry_count(k, 3), 3) for k in range(6)] == list(range(6))
    jet = random_jet(3, 2, 2, entry_count(4, 2))
    assert jet.order == 4
    back = Jet.from_entries(jet.entries(), 2)
    assert all(torch.equal(a, b) for a, b in zip(back.entries().unbind(-1), jet.entries().unbind(-1)))
    assert jet.truncated(3).order == 3 and jet.truncated(3).higher.shape[-1] == 4


def test_gaussian_weights_to_order_six_match_autograd():
    p = torch.arange(-4, 6, dtype=torch.float64)
    for window in (0.0, 1.0):
        got = gaussian_weights_1d(torch.tensor([[0.37]]) - p, 0.7, 6, window, 5)[0]
        for k in range(p.numel()):  # one node at a time: a graph per node stays small
            t = torch.tensor([0.37], requires_grad=True)
            cur = gaussian_weights_1d(t.unsqueeze(-1) - p, 0.7, 0, window, 5)[0, 0, k]
            for n in range(1, 7):
                (cur,) = torch.autograd.grad(cur, t, create_graph=True)
                cur = cur[0]
                assert abs(got[n, k] - cur) < 1e-12 * got[n].abs().max(), (window, k, n)
        assert got[1:].sum(-1).abs().max() < 1e-12  # the weights sum to one: their derivatives to zero


@pytest.mark.parametrize("d, window", [(1, 0.0), (2, 0.0), (2, 1.0), pytest.param(3, 1.0, marks=pytest.mark.slow)])
def test_grid_jets_of_order_four_match_autograd_and_finite_differences(d, window):
    field = _grid(d, window)
    x = torch.rand(12 if d < 3 else 3, d, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    jet = field.jet(x, 4)
    assert jet.order == 4
    reference = autograd_jet(lambda y: field(y), x.clone(), 4)  # autograd through the order-0 weights
    scale = reference.entries().abs().max()
    assert (jet.entries() - reference.entries()).abs().max() < 1e-11 * scale
    # Finite differences: not for the truncated Gaussian, which jumps (by ~exp(−ε²ρ²)) at cell
    # borders, so differences across one mislead; not in 3D, where they take a minute (autograd above).
    if window == 0 or d == 3:
        return
    for axes in [(0, 0, 0), (0,) * 4] + ([(0, 1, 1), (0, 0, 1, 1), (0, 1, 1, 1)] if d > 1 else []):
        # differences of values lose 1e-16 / hᵏ to round-off: differences of autograd's Hessian instead
        # (and Richardson's extrapolation of h and h/2: the central differences' error is even in h)
        def hess(y):
            return autograd_jet(field, y, 2).hess[..., axes[-2], axes[-1]]

        fd = (4 * _fd_entry(hess, x, axes[:-2], 5e-4) - _fd_entry(hess, x, axes[:-2], 1e-3)) / 3
        assert (jet.entry(axes) - fd).abs().max() < 1e-5 * scale, axes  # measured: 2-3e-6 at order 4


def test_the_basis_rows_of_order_four_are_the_jet():
    field = _grid(2, 1.0)
    x = torch.rand(9, 2, generator=torch.Generator().manual_seed(2)) * 1.8 - 0.9
    features = field.features_jet(x, 4).entries()  # [N, levels·F, A]
    for s in range(field.levels):
        cols, w = field.basis(x, s, 4)
        grid = field.grids[s].reshape(-1, field.features)
        got = torch.einsum("nam,nmf->nfa", w, grid[cols])
        torch.testing.assert_close(got, features[:, s * field.features:(s + 1) * field.features], rtol=0, atol=1e-11)


def test_autograd_jets_and_box_maps_reach_order_four():
    class Wave(torch.nn.Module):
        def forward(self, x):
            return torch.sin(2 * x[:, :1] + 3 * x[:, 1:2]) * torch.exp(x[:, 1:2])

    x = torch.rand(6, 2, generator=torch.Generator().manual_seed(3))
    jet = autograd_jet(Wave(), x, 4)
    for axes in higher_axes(2, 4):
        fd = _fd_entry(Wave(), x, axes, 1e-2 if len(axes) == 4 else 1e-3)
        assert (jet.entry(axes) - fd).abs().max() < 2e-3 * fd.abs().max().clamp_min(1), axes
    inner = _grid(2)
    mapped = MappedField(inner, [(0.0, 4.0), (-1.0, 2.0)])
    y = torch.rand(7, 2) * torch.tensor([4.0, 3.0]) + torch.tensor([0.0, -1.0])
    got = mapped.jet(y, 4)
    want = autograd_jet(lambda z: mapped(z), y.clone(), 4)
    assert (got.entries() - want.entries()).abs().max() < 1e-11 * want.entries().abs().max()
    feats = torch.cat([torch.einsum("nam,nmf->nfa", w, inner.grids[s].reshape(-1, 2)[cols])
                       for s, (cols, w) in enumerate(mapped.basis(y, s, 4) for s in range(2))], 1)
    decoded = torch.einsum("nfa,cf->nca", feats, inner.decoder.layer.weight)
    decoded[:, :, 0] += inner.decoder.layer.bias
    assert (decoded - want.entries()).abs().max() < 1e-11 * want.entries().abs().max()  # the basis in box units


def test_products_of_jets_follow_leibniz_to_order_four():
    field = _grid(2)
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(4)) * 1.6 - 0.8

    def factor(y):
        return (torch.sin(y[:, :1]) * torch.cos(2 * y[:, 1:])) + y[:, :1] ** 3

    a = autograd_jet(factor, x.clone(), 4)
    both = a * field.jet(x, 4)  # one channel broadcasts over two
    want = autograd_jet(lambda y: factor(y) * field(y), x.clone(), 4)
    assert (both.entries() - want.entries()).abs().max() < 1e-10 * want.entries().abs().max()


def test_hard_conditions_carry_order_four_jets_and_rows():
    problem, field, _ = build(compose_cfg(["pde=plate_biharmonic", "solver=least_squares",
                                           "+pde.conditions.supported.hard=true"], tiny=False))
    hard = problem.hard
    assert hard and problem.jet_order == 4
    x = torch.rand(6, 2, generator=torch.Generator().manual_seed(5)) * 1.8 - 0.9
    net = _grid(2)
    got = hard.jet(net.jet(x, 4), x)
    want = autograd_jet(lambda y: hard.values(net(y), y), x.clone(), 4)
    assert (got.entries() - want.entries()).abs().max() < 1e-10 * want.entries().abs().max()
    # rows over the unknowns' entries → rows over the field's: the same residual either way
    coef = torch.randn(6, 1, 2, entry_count(4, 2), generator=torch.Generator().manual_seed(6))
    rhs = torch.zeros(6, 1)
    c2, r2 = hard.rows(coef, rhs, x)
    field_jet = net.jet(x, 4)
    direct = torch.einsum("neca,nca->ne", coef, got.entries()) - rhs
    through = torch.einsum("neca,nca->ne", c2, field_jet.entries()) - r2
    torch.testing.assert_close(through, direct, rtol=1e-10, atol=1e-10)


def test_fourth_order_residuals_read_any_spelling_and_give_the_same_rows_as_autograd():
    vocab = Vocabulary(["u"], ["x", "t"], {"a": 2.0}, time="t")
    r = Residual("u_t + a*u*u_x + u_xx + 0.1*u_xxxx + u_txxt - u_xtx", vocab, Unknowns(["u"]), "r", {"a": 2.0})
    assert r.order == 4 and not r.linear
    assert {s.name for s in r.entries} == {"u", "u_t", "u_x", "u_xx", "u_xxxx", "u_xxtt", "u_xxt"}
    jet = random_jet(8, 1, 2, entry_count(4, 2))
    x = torch.rand(8, 2, dtype=torch.float64)
    data = {"x": x[:, 0], "t": x[:, 1]}
    e = jet.entry
    want = (e((1,)) + 2.0 * e(()) * e((0,)) + e((0, 0)) + 0.1 * e((0, 0, 0, 0)) + e((0, 0, 1, 1)) - e((0, 0, 1)))[:, 0]
    torch.testing.assert_close(r.evaluate(jet, data)[:, 0], want)
    coef, rhs = r.linearized_rows(jet, data, 2, 4)
    coef_ag, rhs_ag = autograd_rows(r.evaluate, jet, data, 2, 4)
    torch.testing.assert_close(coef, coef_ag)
    torch.testing.assert_close(rhs, rhs_ag)
    lin = Residual("u_xxxx + 3*u_xxyy", Vocabulary(["u"], ["x", "y"]), Unknowns(["u"]), "r")
    coef, rhs = lin.rows({"x": x[:, 0], "y": x[:, 1]}, 2, 4, x[:, 0])
    assert coef[0, 0, 0, entry_position((0, 0, 0, 0), 2)] == 1 and coef[0, 0, 0, entry_position((0, 0, 1, 1), 2)] == 3


def test_the_plate_as_a_fourth_order_equation_solves_from_config(tmp_path):
    from dinf.app.run import train

    torch.set_default_dtype(torch.float32)  # as a run has it (the fixture restores float64 after)
    metrics = train(compose_cfg(["pde=plate_biharmonic"], tiny=False), output_dir=str(tmp_path))
    assert metrics["l2re"] < 1e-6


def test_a_field_that_cannot_give_the_order_is_refused_in_one_line():
    plate = ["pde=plate_biharmonic", "solver=least_squares"]
    cases = [(["model=dinf_cp"], "model", "order 4"), (["kernel=inverse_quadratic"], "model", "kernel=gaussian"),
             (["+grid.focus={x: {at: 0.0, ratio: 2}}"], "grid.focus", "remove grid.focus")]
    for extra, key, words in cases:
        with pytest.raises(ConfigError) as err:
            build(compose_cfg(plate[:1] + extra, tiny=False))
        assert err.value.key == key and words in str(err.value) and "\n" not in str(err.value), extra
