"""The moving grid's map of one axis (``dinf.fields.monitor_map``): monotone and analytic, its
derivatives against finite differences and, through ``WarpedField``, against float64 autograd;
equidistribution puts the small cells where the density is and keeps the ratio bound."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.fields.base import autograd_jet
from dinf.fields.mapped import MappedField
from dinf.fields.monitor_map import AxisMonitorMap
from dinf.fields.warped import WarpedField

EDGES = np.linspace(-1.0, 3.0, 65)
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])
SHOCK = 1e3 * np.exp(-((CENTRES - 0.5) / 0.05) ** 2) + 1e-3  # a layer at x = 0.5


def test_the_map_fixes_the_ends_is_monotone_and_inverts():
    m = AxisMonitorMap.equidistribute(EDGES, SHOCK, ratio=8.0)
    x = torch.linspace(-1.0, 3.0, 4001, dtype=torch.float64)
    y, d1, _ = m(x)
    torch.testing.assert_close(y[[0, -1]], torch.tensor([-1.0, 3.0], dtype=torch.float64), rtol=0, atol=1e-13)
    assert bool((d1 > 0).all()) and bool((y[1:] > y[:-1]).all())
    torch.testing.assert_close(m(m.inverse(x))[0], x, rtol=0, atol=1e-12)


def test_derivatives_against_central_differences():
    m = AxisMonitorMap.equidistribute(EDGES, SHOCK, ratio=8.0)
    x = torch.linspace(-0.95, 2.95, 79, dtype=torch.float64)
    h = 1e-5
    _, d1, d2 = m(x)
    torch.testing.assert_close(d1, (m(x + h)[0] - m(x - h)[0]) / (2 * h), rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(d2, (m(x + h)[1] - m(x - h)[1]) / (2 * h), rtol=1e-6, atol=1e-6)


def test_equidistribution_puts_the_small_cells_at_the_layer_within_the_ratio():
    m = AxisMonitorMap.equidistribute(EDGES, SHOCK, ratio=8.0)
    edges = m.cell_edges(64)
    widths = np.diff(edges)
    middle = 0.5 * (edges[1:] + edges[:-1])
    assert abs(middle[np.argmin(widths)] - 0.5) < 0.1
    assert widths.max() / widths.min() == pytest.approx(8.0, rel=0.05)
    # A uniform density leaves the grid uniform; so does ratio 1.
    flat = AxisMonitorMap.equidistribute(EDGES, np.ones(64), ratio=8.0).cell_edges(64)
    assert np.diff(flat).max() / np.diff(flat).min() < 1.05
    one = AxisMonitorMap.equidistribute(EDGES, SHOCK, ratio=1.0).cell_edges(64)
    np.testing.assert_allclose(one, EDGES, atol=1e-12)


def test_a_mild_density_moves_the_grid_mildly():
    # De Boor's floor (the density's mean) keeps half the cells uniform: a density varying 3-fold
    # grades the cells less than 3-fold, far from the ratio bound.
    m = AxisMonitorMap.equidistribute(EDGES, 2.0 + np.sin(CENTRES), ratio=8.0, power=1.0)
    widths = np.diff(m.cell_edges(64))
    assert widths.max() / widths.min() < 3.0


def test_jets_equal_float64_autograd_through_the_map():
    torch.manual_seed(0)
    bounds = [[-1.0, 3.0], [0.0, 2.0]]
    inner = DInfGrid(in_dim=2, out_dim=1, resolution=[8, 4], levels=2, features=2, backend="torch")
    for g in inner.grids:
        g.data.normal_()
    field = WarpedField(MappedField(inner, bounds), {0: AxisMonitorMap.equidistribute(EDGES, SHOCK)}).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 2, generator=g, dtype=torch.float64) * torch.tensor([4.0, 2.0], dtype=torch.float64)
    x[:, 0] -= 1.0
    got, want = field.jet(x, 2), autograd_jet(field, x, 2)
    torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got.hess, want.hess, rtol=1e-10, atol=1e-9)


def test_bad_densities_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="one density per cell"):
        AxisMonitorMap.equidistribute(EDGES, np.ones(3))
    with pytest.raises(ConfigError, match="≥ 1"):
        AxisMonitorMap.equidistribute(EDGES, np.ones(64), ratio=0.5)
