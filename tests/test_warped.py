"""Graded grids (grid.focus): the map, the chain-rule jets and basis, the points, the config."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.fields.base import autograd_jet
from dinf.fields.mapped import MappedField
from dinf.fields.warped import AxisFocus, WarpedField, focus_axes
from dinf.solvers.least_squares import read_back
from dinf.solvers.linalg.node_jets import NodeJets
from dinf.pdes.equation_problem import EquationProblem
from dinf.app.run import build
from tests.helpers import compose_cfg

BOUNDS = [[-1.0, 1.0], [0.0, 2.0]]


def _warped(kernel="gaussian", focus=None):
    torch.manual_seed(0)
    inner = DInfGrid(in_dim=2, out_dim=1, resolution=[8, 4], levels=2, features=2, kernel=kernel, backend="torch")
    for g in inner.grids:
        g.data.normal_()
    focus = focus or {"x": {"at": 0.3, "ratio": 8}, "t": {"at": 2.0, "ratio": 3}}
    return WarpedField(MappedField(inner, BOUNDS), focus_axes(focus, ["x", "t"], BOUNDS)).double()


def _points(n=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([2 * x[:, 0] - 1, 2 * x[:, 1]], 1)


def test_the_map_fixes_the_ends_inverts_and_grades_by_the_ratio():
    f = AxisFocus(-1.0, 3.0, at=0.5, ratio=10.0)
    ends, _, _ = f(torch.tensor([-1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([-1.0, 3.0], dtype=torch.float64))
    y = torch.linspace(-1, 3, 101, dtype=torch.float64)
    torch.testing.assert_close(f(f.inverse(y))[0], y, rtol=0, atol=1e-13)
    _, d1, _ = f(torch.tensor([0.5, -1.0, 3.0], dtype=torch.float64))
    assert float(d1[0] / d1[2]) == pytest.approx(10.0)  # the far end is x = 3
    assert float(d1[0]) == pytest.approx(float(d1.max()))  # the finest cells are at the focus
    # φ' and φ'' against central differences of φ.
    x = torch.linspace(-0.9, 2.9, 37, dtype=torch.float64)
    h = 1e-5
    _, d1, d2 = f(x)
    torch.testing.assert_close(d1, (f(x + h)[0] - f(x - h)[0]) / (2 * h), rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(d2, (f(x + h)[1] - f(x - h)[1]) / (2 * h), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", ["gaussian", "inverse_quadratic"])  # separable and not
def test_jets_equal_float64_autograd_through_the_map(kernel):
    field, x = _warped(kernel), _points()
    got, want = field.jet(x, 2), autograd_jet(field, x, 2)
    torch.testing.assert_close(got.value, want.value)
    torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got.hess, want.hess, rtol=1e-10, atol=1e-9)
    assert float(got.hess.detach()[:, 0, 0, 0].abs().max()) > 1.0  # a Hessian worth comparing


def test_the_basis_gives_the_jet_least_squares_and_gauss_newton_read():
    field, x = _warped(), _points()
    jet = field.jet(x, 2)
    entries = NodeJets(field, x, 2, torch.ones(1, 7, dtype=torch.bool)).entries
    z, bias = read_back(field)
    values = (entries @ z).reshape(x.shape[0], 7)
    values[:, 0] += bias[0]
    want = torch.cat([jet.value, jet.grad[:, 0], jet.hess[:, 0].reshape(-1, 4)], 1).detach().numpy()
    np.testing.assert_allclose(values, want, rtol=1e-10, atol=1e-9)


def test_points_spread_evenly_over_the_graded_cells():
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [-1, 1]}, "time": {"t": [0, 2]}},
                        residuals={"pde": "u_t - u_xx"}, batch_size=64)
    field = _warped(focus={"x": {"at": 0.3, "ratio": 8}})
    x = p.sample(20000, torch.Generator().manual_seed(0), field.spacing()).data["x64"][:p.counts(20000)[0]]
    inner_x = field.axes[0](x[:, 0])[0]  # where the inner grid sees them: uniform, as without a focus
    counts = np.histogram(inner_x.numpy(), bins=16, range=(-1, 1))[0]
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean(), counts
    near = np.histogram(x[:, 0].numpy(), bins=16, range=(-1, 1))[0]
    assert near.argmax() == 10  # [0.25, 0.375): the focus's bin holds the most points


def test_bad_focus_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"grid.focus: 'y' is not a coordinate"):
        focus_axes({"y": {"ratio": 4}}, ["x", "t"], BOUNDS)
    with pytest.raises(ConfigError, match=r"grid.focus.x.ratio: must be > 1"):
        focus_axes({"x": {"ratio": 0.5}}, ["x", "t"], BOUNDS)
    with pytest.raises(ConfigError, match=r"grid.focus.x.at: must lie in the axis"):
        focus_axes({"x": {"at": 2.0, "ratio": 4}}, ["x", "t"], BOUNDS)
    with pytest.raises(ConfigError, match=r"grid.focus.x: give \{at"):
        focus_axes({"x": 4}, ["x", "t"], BOUNDS)
    with pytest.raises(ConfigError, match="grid.focus: needs a problem stated in a config file"):
        build(compose_cfg(["pde=poisson", "grid.focus={x: {ratio: 4}}"]))


def test_the_config_grades_the_grids_and_not_the_networks():
    cfg = compose_cfg(["pde=burgers1d", "grid.focus={x: {at: 0.0, ratio: 4}}"])
    _, field, _ = build(cfg)
    assert isinstance(field, WarpedField) and set(field.axes) == {0}
    _, net, _ = build(compose_cfg(["pde=burgers1d", "model=siren", "grid.focus={x: {at: 0.0, ratio: 4}}"]))
    assert not isinstance(net, WarpedField)


def test_solvers_draw_their_points_over_the_graded_cells(tmp_path):
    from hydra.utils import instantiate

    from dinf.app.run import train

    common = ["pde=burgers1d", "grid.levels=1", "pde.resolution=[16,4]", "grid.focus={x: {at: 0.0, ratio: 8}}"]
    cfg = compose_cfg(common + ["solver=gauss_newton", "solver.points=4096"])
    problem, field, _ = build(cfg)
    gn = instantiate(cfg.solver)
    gn.solve(field, problem, torch.Generator().manual_seed(0))
    inside = gn._state.x[:int(gn._state.batch.data["sizes"][0]), 0]
    near = float((inside.abs() < 0.1).double().mean())
    assert near > 0.2, near  # 0.26 of the graded cells lie in |x| < 0.1, against 0.1 of the box
    metrics = train(compose_cfg(common + ["solver=adam"]), output_dir=str(tmp_path))  # Adam's batches too
    assert metrics["steps"] == 4 and np.isfinite(metrics["l2re"])
