"""The a-posteriori error indicator (issue 31, item 1): zero for the exact solution, positive
where the field is wrong, zero outside the domain, the scaling under refinement the module doc
states, and a run that writes it."""
from __future__ import annotations

import json
import logging
import math
from typing import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from dinf.fields.base import Field
from dinf.pdes import EquationProblem
from dinf.pdes.indicator import cell_indicator, equation_order, picture, uniform_edges

BOX = {"x": [-1, 1], "y": [-1, 1]}


class Formula(Field):
    """``u = f(x)`` in float64 (a parameter that is not used fixes the dtype), jets by autograd."""

    def __init__(self, f: Callable[[Tensor], Tensor], in_dim: int = 2):
        super().__init__(in_dim, 1)
        self.f = f
        self.dtype_anchor = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.f(x.double())[:, None]


def quadratic(x: Tensor) -> Tensor:
    return x[:, 0] ** 2 + x[:, 1] ** 2


def _plate(conditions=None, residual: str = "u_xx + u_yy - 4", hole: float = 0.45) -> EquationProblem:
    """Δu = 4 on the square minus a disk; u = x² + y² solves it with these conditions."""
    domain = {"space": dict(BOX)}
    if hole:
        domain["holes"] = {"h": {"disk": {"center": [0, 0], "radius": hole}}}
    return EquationProblem(unknowns=["u"], domain=domain, residuals={"pde": residual},
                           conditions=conditions if conditions is not None else {
                               "walls": {"type": "dirichlet", "piece": "box", "value": "x^2 + y^2"},
                               "hole": {"type": "neumann", "piece": "h", "value": "2*x*n_x + 2*y*n_y"},
                               "pin": {"type": "point", "at": {"x": 0.8, "y": 0.8}, "value": 1.28}})


def test_zero_for_the_exact_solution_and_positive_for_a_wrong_field():
    problem = _plate()
    edges = uniform_edges(problem, [8, 8])
    exact = cell_indicator(problem, Formula(quadratic), edges)
    assert exact.total < 1e-10, exact.parts
    assert set(exact.parts) == {"pde", "walls", "hole"}
    assert "pin" in exact.skipped  # a point has no measure
    wrong = cell_indicator(problem, Formula(lambda x: quadratic(x) + 0.1 * x[:, 0] ** 3), edges)
    assert wrong.equations > 0.1 and wrong.conditions > 0.1
    inside = wrong.covered
    assert (wrong.eta[inside] > 0).all()
    assert wrong.total == pytest.approx(math.sqrt((wrong.eta ** 2).sum()))
    assert wrong.total == pytest.approx(math.hypot(wrong.equations, wrong.conditions))


def test_cells_outside_the_domain_get_zero():
    problem = _plate()
    # A lattice wider than the box: its outer ring is outside; the four middle cells lie in the hole.
    edges = [np.linspace(-1.5, 1.5, 13)] * 2
    ind = cell_indicator(problem, Formula(lambda x: quadratic(x) + 0.1 * x[:, 0] ** 3), edges)
    outer = np.ones((12, 12), dtype=bool)
    outer[2:10, 2:10] = False
    hole = np.zeros((12, 12), dtype=bool)
    hole[5:7, 5:7] = True
    assert (ind.eta[outer] == 0).all() and (ind.eta[hole] == 0).all()
    assert not ind.covered[outer].any() and not ind.covered[hole].any()
    assert (ind.eta[~outer & ~hole] > 0).all()


def test_equation_part_scales_as_h_squared_times_the_integral():
    """On a fixed smooth residual (R = 1 + 0.3·x, polynomial: the rule integrates R² exactly), the
    four children of a cell hold a quarter of its h_K² ∫ R²: each about 2^-(2+d) of it."""
    problem = _plate(conditions={}, residual="u_xx + u_yy - 3", hole=0.0)
    field = Formula(lambda x: quadratic(x) + 0.05 * x[:, 0] ** 3)
    coarse = cell_indicator(problem, field, uniform_edges(problem, [4, 4])).eta_equations ** 2
    fine = cell_indicator(problem, field, uniform_edges(problem, [8, 8])).eta_equations ** 2
    children = fine.reshape(4, 2, 4, 2).transpose(0, 2, 1, 3).reshape(4, 4, 4)
    np.testing.assert_allclose(children.mean(-1) * 2 ** (2 + 2), coarse, rtol=1e-10)
    ratio = children / coarse[..., None] * 16
    assert ratio.min() > 0.6 and ratio.max() < 1.6


def test_condition_parts_scale_with_their_order():
    """On the same points, halving h multiplies a Dirichlet part (h⁻¹) by 2 and a Neumann part (h¹)
    by 1/2, summed over the cells (m = 2)."""
    problem = _plate(conditions={
        "walls": {"type": "dirichlet", "piece": "box", "value": "x^2 + y^2 + 0.1"},
        "hole": {"type": "neumann", "piece": "h", "value": "2*x*n_x + 2*y*n_y + 0.1"}})
    assert equation_order(problem) == 2
    field = Formula(quadratic)
    coarse = cell_indicator(problem, field, uniform_edges(problem, [4, 4]), boundary_points=2000)
    fine = cell_indicator(problem, field, uniform_edges(problem, [8, 8]), boundary_points=2000)
    assert fine.parts["walls"] ** 2 == pytest.approx(2 * coarse.parts["walls"] ** 2, rel=1e-9)
    assert fine.parts["hole"] ** 2 == pytest.approx(0.5 * coarse.parts["hole"] ** 2, rel=1e-9)
    # The walls' misfit 0.1 over their length 8: h⁻¹ · 0.01 · 8 in total.
    h = math.hypot(0.5, 0.5)
    assert coarse.parts["walls"] ** 2 == pytest.approx(0.08 / h, rel=1e-9)


def test_space_time_periodic_and_initial_conditions():
    """u = sin(πx)·exp(−π²t) solves the heat equation with a periodic x and its initial value."""
    problem = EquationProblem(
        unknowns=["u"], domain={"space": {"x": [-1, 1]}, "time": {"t": [0, 0.5]}},
        residuals={"heat": "u_t - u_xx"},
        conditions={"start": {"type": "initial", "value": "sin(pi*x)"},
                    "wrap": {"type": "periodic", "axis": "x"}})
    exact = Formula(lambda x: torch.sin(math.pi * x[:, 0]) * torch.exp(-math.pi ** 2 * x[:, 1]))
    edges = uniform_edges(problem, [16, 8])
    ind = cell_indicator(problem, exact, edges)
    assert ind.total < 1e-9, ind.parts
    wrong = cell_indicator(problem, Formula(lambda x: torch.sin(math.pi * x[:, 0]) + 0.1 * x[:, 0]), edges)
    assert wrong.parts["wrap"] > 0 and wrong.parts["start"] > 0 and wrong.parts["heat"] > 0
    fig = picture(wrong, "t")
    assert fig.axes


def test_edges_must_cover_the_box():
    problem = _plate()
    with pytest.raises(ValueError, match="cover"):
        cell_indicator(problem, Formula(quadratic), [np.linspace(-1, 0.5, 5), np.linspace(-1, 1, 5)])


def test_skipped_with_a_reason_for_problems_and_fields_without_residuals(caplog):
    from dinf.app.indicator import RunIndicator
    from dinf.fields.interpolant import Interpolant
    from dinf.pdes import PoissonImage

    with caplog.at_level(logging.INFO, logger="dinf.app.indicator"):
        image = RunIndicator(True, PoissonImage.__new__(PoissonImage), Formula(quadratic))
        classical = RunIndicator(True, _plate(), Interpolant(2, 1))
        off = RunIndicator(False, _plate(), Formula(quadratic))
    assert not image.active and "PoissonImage" in image.reason
    assert not classical.active and "classical" in classical.reason
    assert not off.active and off.final(Formula(quadratic), ".") == ({}, {})
    said = [r.getMessage() for r in caplog.records]
    assert sum("indicator: skipped" in m for m in said) == 2  # off says nothing


def test_a_run_writes_the_indicator(tmp_path):
    from dinf.app.run import train
    from tests.helpers import compose_cfg

    cfg = compose_cfg(["pde=example_hole", "solver=least_squares", "grid.resolution=[16,8]", "grid.levels=1"])
    results = train(cfg, output_dir=str(tmp_path))
    assert results["final"]["indicator"] > 0 and results["indicator_s"] > 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["final"]["indicator"] == pytest.approx(results["indicator"])
    data = np.load(tmp_path / "indicator.npz")
    assert data["eta"].shape == (16, 8)
    assert list(data["coords"]) == ["x", "y"] and data["edges_x"].shape == (17,)
    assert float(data["total"]) == pytest.approx(results["indicator"])
    assert (tmp_path / "indicator.png").stat().st_size > 1000


@pytest.mark.parametrize("coords, time, panels", [(["x"], None, 1), (["x", "t"], "t", 1), (["x", "y"], None, 1),
                                                  (["x", "y", "t"], "t", 3), (["x", "y", "z"], None, 1)])
def test_the_picture_has_a_panel_per_time_slice(coords, time, panels):
    from dinf.pdes.indicator import Indicator

    shape = (6,) * len(coords)
    eta = np.random.default_rng(0).uniform(1e-6, 1.0, shape)
    eta[(0,) * len(coords)] = 0.0  # a cell outside: blank, not the bottom of the log scale
    ind = Indicator(eta=eta, edges=[np.linspace(0, 1, 7)] * len(coords), coords=coords,
                    total=float(np.sqrt((eta ** 2).sum())), equations=0.0, conditions=0.0, eta_equations=eta,
                    eta_conditions=0 * eta, covered=eta > 0)
    fig = picture(ind, time)
    drawn = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(drawn) == panels
