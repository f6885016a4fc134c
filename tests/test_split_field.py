"""Unknowns on their own axes (``pde.coefficients``, ``dinf.fields.split``): the split field's jets
against float64 autograd, its node-value map against its jets, and a coefficient a(x) identified
beside u(x, t) by Gauss–Newton."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid, Siren
from dinf.fields.base import autograd_jet
from dinf.fields.mapped import MappedField
from dinf.fields.split import SplitField, embedding
from dinf.jet import entry_axes
from dinf.solvers.least_squares import read_back, write_back
from dinf.solvers.linalg.split_jets import SplitNodeJets, node_jets
from tests.helpers import build_spec, solve_steps


def _grid(d: int, out: int, res, bounds, seed: int) -> MappedField:
    torch.manual_seed(seed)
    # The PyTorch path: what is tested is the embedding, and a fused kernel in float64 would compile
    g = DInfGrid(d, out, resolution=res, levels=2, features=2, rho=2, eps=1.0, backend="torch").double()
    with torch.no_grad():
        for grid in g.grids:
            grid.normal_()
    return MappedField(g, bounds)


def _split() -> SplitField:
    """u(x, y, t) (channel 1) beside a(y, x) (channel 0): the part's axes in another order."""
    u = _grid(3, 1, [4, 4, 2], [[-1, 1], [0, 2], [0, 1]], 0)
    a = _grid(2, 1, 4, [[0, 2], [-1, 1]], 1)
    return SplitField([u, a], [[0, 1, 2], [1, 0]], [[1], [0]], 3)


def _points(n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 1.0]) + torch.tensor([-1.0, 0.0, 0.0])


# Order 4: autograd through both parts takes ~15 s here (the part alone < 1 s): a slow test.
@pytest.mark.parametrize("order", [1, 2, 3, pytest.param(4, marks=pytest.mark.slow)])
def test_the_jet_matches_float64_autograd_up_to_order_four(order):
    field, x = _split(), _points(12)  # autograd to order 4 over three axes is slow: few points
    ours, ref = field.jet(x, order).entries(), autograd_jet(field, x, order).entries().detach()
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) < 1e-9 * max(1.0, float(ref.abs().max()))


def test_derivatives_along_a_coefficients_missing_axis_are_exactly_zero():
    field, x = _split(), _points()
    jet = field.jet(x, 3)
    for axes in entry_axes(3, 3):
        if 2 in axes:  # t: channel 0 (a(y, x)) does not depend on it
            assert bool((jet.entry(axes)[:, 0] == 0).all()), axes
    assert float(jet.entry((2,))[:, 1].abs().max()) > 1e-3  # u does


def test_a_parts_derivative_lands_in_the_entry_of_its_own_axes():
    index = embedding([1, 0], 3, 2)  # a part over (y, x) in a problem over (x, y, t)
    full = entry_axes(2, 3)
    assert index[full.index(())] == 0 and index[full.index((0,))] == 2 and index[full.index((1,))] == 1
    assert index[full.index((0, 1))] == 1 + 2 + 1 * 2 + 0  # ∂x∂y is the part's ∂1∂0
    assert index[full.index((2,))] == -1 and index[full.index((0, 2))] == -1


def test_the_node_values_map_reproduces_the_jet_and_writes_back():
    field, x = _split(), _points()
    used = torch.ones(2, len(entry_axes(3, 3)), dtype=torch.bool)
    nodes = node_jets(field, x, 3, used)
    assert isinstance(nodes, SplitNodeJets)
    z, bias = read_back(field)
    assert nodes.entries.shape == (x.shape[0] * len(nodes.used), z.shape[0])
    ref = field.jet(x, 3).entries()
    assert float((nodes.jet_at(z, bias).entries() - ref).abs().max()) < 1e-10
    # E's transpose against the dense product; then new node values written into the field
    g = np.random.default_rng(0).standard_normal(nodes.entries.shape[0])
    assert np.allclose(nodes.transpose(g), nodes.entries.T @ g)
    z2 = z + np.random.default_rng(1).standard_normal(z.shape)
    write_back(field, z2, None, bias)
    assert float((field.jet(x, 3).entries() - nodes.jet_at(z2, bias).entries()).abs().max()) < 1e-10
    assert np.allclose(read_back(field)[0], z2)


def test_a_split_field_refuses_parts_that_do_not_fit():
    u = _grid(3, 1, 4, [[-1, 1]] * 3, 0)
    with pytest.raises(ValueError, match="must be a field 2 → 1"):
        SplitField([u], [[0, 1]], [[0]], 3)
    with pytest.raises(ValueError, match="cover 0 … 1 once each"):
        SplitField([u, u], [[0, 1, 2], [0, 1, 2]], [[0], [0]], 3)


# u(x, t) = e^{−t}(1 + x²) and a(x) = 1 + x/2 solve u_t = (a u_x)_x + f with this f; u is observed
# at 400 random points (clean), a at no point: a comes from the equation (u_xx ≠ 0 everywhere).
HEAT = {
    "_target_": "dinf.pdes.EquationProblem", "name": "coefficient_1d", "in_dim": 2, "out_dim": 2,
    "unknowns": ["u", "a"],
    "domain": {"space": {"x": [0, 1]}, "time": {"t": [0, 1]}},
    "coefficients": {"a": {"axes": ["x"], "init": 1.0}},
    "functions": {"ue": "exp(-t)*(1 + x + x^2/2)", "ae": "1 + x/2", "f": "-exp(-t)*(5/2 + 2*x + x^2/2)"},
    "residuals": {"pde": "u_t - a*u_xx - a_x*u_x - f"},
    "conditions": {"observed": {"type": "data", "at": {"random": 400, "seed": 0}, "value": {"u": "ue"},
                                "weight": 10},
                   "a_ends": {"type": "dirichlet", "piece": "box", "unknown": "a", "value": "ae", "weight": 10}},
    "reference": {"exact": {"u": "ue", "a": "ae"}},
    "evaluation": {"resolution": 33, "times": 5},
    "batch_size": 2048,
}
SOLVE = ["solver=gauss_newton", "grid.resolution=[8,4]", "grid.levels=1", "kernel=gaussian_wide",
         "solver.points=4096", "solver.max_solves=40"]


def test_gauss_newton_identifies_a_coefficient_on_its_own_axis():
    problem, field, solver = build_spec(HEAT, SOLVE)
    assert isinstance(field, SplitField) and field.axes == [[0, 1], [0]]
    u_part, a_part = (p.inner for p in field.parts)
    assert a_part.in_dim == 1 and [int(s) for s in a_part.grids[0].shape[:-1]] == [8 + 2 * 5 + 1]
    info = solve_steps(problem, field, solver, 40)
    assert info["unknowns"] == (8 + 11) * (4 + 11) + (8 + 11)
    with torch.no_grad():
        metrics = problem.evaluate(field)
    # Measured: u 5.5e-5, a 5.8e-3 (a is read from u's derivatives; ε = 1, ρ = 3 gives 0.5 for a)
    assert metrics["l2re_u"] < 2e-4 and metrics["l2re_a"] < 2e-2, metrics
    # The Laplace map of a: one value per point, no spread along t (a does not depend on it)
    x = torch.tensor([[0.3, 0.1], [0.3, 0.9], [0.7, 0.5]], dtype=torch.float64)
    std = solver.pointwise_std(field, problem, x)
    assert std.shape == (3, 2) and abs(std[0, 1] - std[1, 1]) < 1e-12 * max(std[0, 1], 1e-300)


def test_a_coefficient_on_its_own_axes_runs_with_adam_and_is_refused_by_least_squares():
    problem, field, solver = build_spec(HEAT, ["model=siren", "solver=adam"])
    assert isinstance(field, SplitField) and isinstance(field.parts[1].inner, Siren) and field.parts[1].in_dim == 1
    batch = problem.sample(256, torch.Generator().manual_seed(0))
    loss = sum(problem.loss(field.jet(batch.x, problem.jet_order), batch).values())
    loss.backward()  # Adam reaches both parts
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in field.parameters())
    source = {**HEAT, "residuals": {"pde": "u_t - u_xx - a"}}  # linear in (u, a): least squares would apply
    with pytest.raises(ConfigError, match="pde.coefficients puts an unknown on its own axes: use solver=gauss_newton"):
        build_spec(source, ["solver=least_squares"])


@pytest.mark.parametrize("change, key, message", [
    ({"a": {"axes": ["z"]}}, "coefficients.a.axes", "'z' is not a coordinate of this problem; its coordinates are"),
    ({"b": {"axes": ["x"]}}, "coefficients.b", "'b' is not an unknown; the unknowns are ['u', 'a']"),
    ({"a": {"axes": []}}, "coefficients.a.axes", "the coordinates it depends on"),
    ({"a": {"axes": ["x", "x"]}}, "coefficients.a.axes", "lists a coordinate twice"),
    ({"a": {"axes": ["t", "x"]}}, "coefficients.a.axes", "lists every coordinate (x, t): a is an ordinary unknown"),
    ({"a": {"axes": ["x"], "init": "one"}}, "coefficients.a.init", "the value it starts from, a number"),
    ({"a": {"axes": ["x"], "grid": 3}}, "coefficients.a.grid", "not an option of a coefficient (axes, model, init)"),
])
def test_each_mistake_is_one_line(change, key, message):
    with pytest.raises(ConfigError) as e:
        build_spec({**HEAT, "coefficients": change}, ["solver=gauss_newton"])
    assert e.value.key.endswith(key) and message in str(e.value)


def test_windows_and_a_graded_grid_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="pde.coefficients.a is one field over the whole interval; no time windows"):
        build_spec(HEAT, SOLVE + ["solver.windows=2"])
    with pytest.raises(ConfigError, match="grades one field; pde.coefficients splits"):
        build_spec(HEAT, SOLVE + ["grid.focus={x: {at: 0.5, ratio: 2}}"])


def test_auto_hands_a_linear_problem_with_a_coefficient_to_gauss_newton():
    source = {**HEAT, "residuals": {"pde": "u_t - u_xx - a"}}  # least squares would take it without a(x)
    _, _, solver = build_spec(source, ["solver=auto"])
    assert type(solver).__name__ == "GaussNewton"
