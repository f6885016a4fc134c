"""A grid that wraps along an axis (``DInfGrid(periodic=...)``, ``grid.periodic``): the field and
every derivative agree on the two faces, its jets equal those of a plain grid holding the wrapped
nodes, its basis columns wrap, and a periodic solve needs no periodic condition."""
from __future__ import annotations

import pytest
import torch

from dinf.app.run import build
from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from tests.helpers import compose_cfg

ENTRIES = ("value", "grad", "hess", "higher")


def _grid(periodic, backend="torch", d=2, resolution=(8, 6), levels=2, seed=0) -> DInfGrid:
    torch.manual_seed(seed)
    g = DInfGrid(d, 1, resolution=list(resolution), levels=levels, features=2, eps=0.6, rho=4,
                 periodic=periodic, backend=backend).double()
    with torch.no_grad():
        for p in g.parameters():
            p.normal_()
    return g


def _faces(d: int, axis: int, n: int = 6):
    x = torch.rand(n, d, dtype=torch.float64) * 2 - 1
    lo, hi = x.clone(), x.clone()
    lo[:, axis], hi[:, axis] = -1.0, 1.0
    return lo, hi


@pytest.mark.parametrize("backend,d,axis", [("torch", 2, 0), ("numba", 2, 1), ("torch", 3, 1), ("numba", 3, 2)])
def test_value_and_every_derivative_to_order_four_agree_on_the_two_faces(backend, d, axis):
    g = _grid([axis], backend, d, resolution=[8, 6, 4][:d], levels=2)
    lo, hi = _faces(d, axis)
    a, b = g.jet(lo, 4), g.jet(hi, 4)
    for name in ENTRIES:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12)
    assert a.value.abs().max() > 0.1  # a field, not zero


def test_jets_and_parameter_gradients_equal_a_plain_grid_holding_the_wrapped_nodes():
    g = _grid([0])
    plain = DInfGrid(2, 1, resolution=[8, 6], levels=2, features=2, eps=0.6, rho=4).double()
    with torch.no_grad():
        for s in range(g.levels):
            plain.grids[s].copy_(g.full_grid(s))
        plain.decoder.load_state_dict(g.decoder.state_dict())
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    a, b = g.jet(x, 4), plain.jet(x, 4)
    for name in ENTRIES:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12)
    # The stored node's gradient is the sum over its copies in the wrapped layout.
    (a.value.sum() + a.higher.sum()).backward()
    (b.value.sum() + b.higher.sum()).backward()
    n, ghost = g.grids[0].shape[0], g.ghost
    folded = torch.zeros_like(g.grids[0])
    folded.index_add_(0, torch.arange(-ghost, n + 1 + ghost) % n, plain.grids[0].grad)
    torch.testing.assert_close(g.grids[0].grad, folded, rtol=1e-12, atol=1e-12)


def test_the_stored_grid_holds_each_periodic_node_once_and_the_basis_wraps():
    g = _grid([0], levels=1)
    assert tuple(g.grids[0].shape[:-1]) == (8, 6 + 1 + 2 * g.ghost)
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    x[:2, 0] = torch.tensor([-1.0, 1.0])
    cols, w = g.basis(x, 0, 2)
    assert int(cols.max()) < g.grids[0].shape[:-1].numel()
    table = g.grids[0].reshape(-1, g.features)
    feats = torch.einsum("nak,nkf->nfa", w, table[cols])
    jet = g.features_jet(x, 2)
    torch.testing.assert_close(feats[..., 0], jet.value, rtol=0, atol=1e-12)
    torch.testing.assert_close(feats[..., 1:3], jet.grad, rtol=0, atol=1e-12)


# The heat equation on x ∈ [0, 2π], periodic, with no periodic condition at all: only the grid's
# wrapping makes the solution periodic. Exact: e^{-t} sin x + e^{-4t} cos 2x.
HEAT = ["pde=ks", "solver=least_squares", "grid.levels=1", "grid.resolution=[16,8]", "kernel.eps=0.7",
        "kernel.rho=5", "~pde.residuals.ks", "+pde.residuals.heat='u_t - u_xx'", "~pde.conditions.periodic",
        "pde.conditions.initial.value='sin(x) + cos(2*x)'",
        "+pde.functions.exact='exp(-t)*sin(x) + exp(-4*t)*cos(2*x)'", "~pde.reference.file",
        "+pde.reference.exact.u=exact", "pde.domain.time.t=[0,0.5]", "~pde.best", "solver.points=4000"]


def test_a_periodic_solve_needs_no_periodic_condition():
    scores = {}
    for periodic in ("[x]", "null"):
        problem, field, solver = build(compose_cfg(HEAT + [f"grid.periodic={periodic}"]))
        solver.solve(field, problem, torch.Generator().manual_seed(0))
        scores[periodic] = problem.evaluate(field)["l2re"]
    assert scores["[x]"] < 1e-4  # 3.8e-5 measured
    assert scores["null"] > 1e-2  # no condition, no wrap: the faces are free


@pytest.mark.parametrize("overrides,key,message", [
    (["grid.periodic=[y]"], "grid.periodic", "'y' is not a coordinate of this problem; its coordinates are"),
    (["grid.periodic=[x]", "+grid.focus={x: {at: 1.0, ratio: 4}}"], "grid.focus", "which grid.periodic wraps"),
    (["grid.periodic=[x]", "model.edge=clamp"], "grid.periodic", "takes edge=pad"),
])
def test_bad_periodic_settings_are_refused_in_one_line(overrides, key, message):
    with pytest.raises(ConfigError, match=message) as e:
        build(compose_cfg(HEAT + overrides))
    assert e.value.key == key and "\n" not in str(e.value)
