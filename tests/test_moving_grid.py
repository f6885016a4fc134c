"""A moving grid (grid.adapt: r): the loop in a run, the transfer onto moved cells, resume, refusals."""
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from dinf.app.run import build, train
from dinf.errors import ConfigError
from dinf.fields.monitor_map import AxisMonitorMap
from dinf.fields.warped import WarpedField
from dinf.solvers.moving_grid import MovingGrid
from dinf.solvers.transfer import fit_values
from tests.helpers import assert_refused, compose_cfg, killed_in_cycle_two

# A layer of width 0.03 at x = 0 (u = tanh(x/d)): 32 uniform cells cannot resolve it.
LAYER = {"_target_": "dinf.pdes.EquationProblem", "name": "layer", "in_dim": 1, "out_dim": 1, "unknowns": ["u"],
         "domain": {"space": {"x": [-1, 1]}}, "params": {"d": 0.03},
         "functions": {"exact": "tanh(x/d)"},
         "residuals": {"poisson": "u_xx + 2/d^2*tanh(x/d)*(1 - tanh(x/d)^2)"},
         "conditions": {"ends": {"type": "dirichlet", "piece": "box", "value": "exact", "weight": 100}},
         "reference": {"exact": {"u": "exact"}}, "batch_size": 4096, "resolution": 32}
LAYER_RUN = ["solver=least_squares", "grid.levels=1", "grid.moving.coarsen=2", "trainer.max_time=null"]


def _cfg(overrides, spec=LAYER):
    cfg = compose_cfg(LAYER_RUN + list(overrides))
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(spec)
    return cfg


def test_the_moving_grid_finds_the_layer_and_beats_the_uniform_grid(tmp_path):
    uniform = train(_cfg([]), output_dir=str(tmp_path / "uniform"))
    # A narrower monitor than the default (2 cells, not 4): on 16 coarse cells the default's
    # Gaussians are as wide as a quarter of the axis, and the layer is 0.03 wide.
    moved = train(_cfg(["grid.adapt=r", "grid.moving.smoothing=2"]), output_dir=str(tmp_path / "moved"))
    # Measured 0.56 uniform, 0.048 moved (2026-12-07; 0.16 with the default smoothing).
    assert moved["final"]["l2re"] < uniform["final"]["l2re"] / 4
    rows = moved["adaptation"]  # the report: a row per solve on the fine grid, the same unknowns each
    assert [r["cycle"] for r in rows] == list(range(1, len(rows) + 1)) and len({r["unknowns"] for r in rows}) == 1
    kept = [r for r in rows if not r.get("rejected")]
    assert kept[-1]["l2re"] == pytest.approx(moved["final"]["l2re"]) and (tmp_path / "moved" / "adaptation.png").exists()
    data = np.load(tmp_path / "moved" / "indicator.npz")  # the final indicator on the moved cells
    widths = np.diff(data["edges_x"])
    finest = 0.5 * (data["edges_x"][np.argmin(widths)] + data["edges_x"][np.argmin(widths) + 1])
    assert widths.max() / widths.min() > 3 and abs(finest) < 0.1


def test_each_cycle_lowers_the_estimate_or_the_best_grid_comes_back():
    problem, field, solver = build(_cfg(["grid.adapt=r", "grid.moving.cycles=4"]))
    assert isinstance(solver, MovingGrid) and isinstance(field, WarpedField)
    gen = torch.Generator().manual_seed(0)
    etas = []
    for _ in range(8):
        info = solver.solve(field, problem, gen)
        etas.append(info["indicator"])
        if info["converged"]:
            break
    assert info["converged"]
    kept = solver.best["eta"]
    assert info["indicator"] == kept == min(solver.etas)
    assert all(b < a for a, b in zip(solver.etas, solver.etas[1:-1]))  # it went on only while η fell
    # The field holds the best grid and its solution: its indicator is the kept one.
    assert solver._indicator(field, problem).total == pytest.approx(kept, rel=1e-6)


def test_the_transfer_reproduces_a_field_on_moved_cells():
    problem, field, _ = build(_cfg(["grid.adapt=r", "grid.resolution=64"]))
    x = torch.linspace(-1, 1, 4001, dtype=torch.float64)[:, None]
    u = torch.tanh(x / 0.2)  # smooth enough for 64 cells anywhere
    fit_values(field, x, u)
    before = field(x.float()).double()
    edges = np.linspace(-1, 1, 65)
    density = np.exp(-((0.5 * (edges[1:] + edges[:-1]) - 0.3) / 0.1) ** 2)
    old = dict(field.axes)
    field.axes = {0: AxisMonitorMap.equidistribute(edges, density, ratio=4)}
    assert (field(x.float()).double() - before).abs().max() > 1e-3  # the same node values, another function
    with torch.no_grad():
        field.axes = old
        values = field(x.float())
        field.axes = {0: AxisMonitorMap.equidistribute(edges, density, ratio=4)}
    misfit = fit_values(field, x, values)
    after = field(x.float()).double()
    assert misfit < 1e-4 and (after - before).abs().max() < 1e-3


def test_a_resumed_run_continues_on_the_grid_it_had_reached(tmp_path, monkeypatch):
    cfg = _cfg(["grid.adapt=r", "grid.moving.cycles=3", "checkpoint.registry=null"])
    # Killed as cycle 2 ends: its one least-squares step left no checkpoint, so the last is cycle
    # 1's, with the move its end chose still to be made.
    state = killed_in_cycle_two(monkeypatch, MovingGrid, cfg, tmp_path)
    assert state["cycle"] == 2 and state["estimated"] and state["pending"]
    moved = AxisMonitorMap(**{k: state["pending"][0][k] for k in ("lo", "hi", "centres", "c", "sigma")})

    seen = {}
    real_load = MovingGrid.load_state

    def load(self, s):
        real_load(self, s)
        seen["map"] = self.pending[0]
        seen["cycle"] = self.cycle

    monkeypatch.setattr(MovingGrid, "load_state", load)
    results = train(cfg, output_dir=str(tmp_path))
    assert results["attempts"] == 2 and seen["cycle"] == 2
    probe = torch.linspace(-1, 1, 101, dtype=torch.float64)
    assert torch.allclose(seen["map"](probe)[0], moved(probe)[0], atol=1e-14)
    assert json.loads((tmp_path / "metrics.json").read_text())["final"]["l2re"] < 0.2


@pytest.mark.parametrize("overrides, key, words", [
    (["grid.adapt=q"], "grid.adapt", "unknown 'q'"),
    (["grid.adapt=rh", "grid.focus={x: {at: 0, ratio: 4}}"], "grid.adapt", "remove one of the two"),
    (["grid.adapt=r", "model=siren"], "grid.adapt", "Siren has none"),
    (["grid.adapt=r", "solver=adam"], "grid.adapt", "solver=gauss_newton or least_squares"),
    (["grid.adapt=r", "grid.focus={x: {at: 0, ratio: 4}}"], "grid.adapt", "remove one of the two"),
    (["grid.adapt=r", "grid.moving.axes=[y]"], "grid.moving.axes", "not a coordinate"),
    (["grid.adapt=r", "grid.moving.coarsen=3"], "grid.moving.coarsen", "does not divide"),
    (["grid.adapt=r", "grid.moving.coarsen=0"], "grid.moving.coarsen", "must be >= 1"),
    (["grid.adapt=r", "grid.moving.cycles=0"], "grid.adapt", "cycles must be >= 1"),
    (["grid.adapt=r", "grid.moving.ratio=0.5"], "grid.adapt", "ratio must be >= 1"),
])
def test_bad_moving_grids_are_refused_in_one_line(overrides, key, words):
    assert_refused(_cfg(overrides), key, words)


def test_a_periodic_axis_is_not_moved():
    with pytest.raises(ConfigError, match="periodic"):
        build(_cfg(["grid.adapt=r", "grid.periodic=[x]", "grid.moving.axes=[x]"]))


def test_the_problem_default_keeps_its_focus_and_gives_way_to_the_user():
    # A problem whose best: block holds a focus beside adapt: r (none shipped does since Burgers
    # moved its cells by default).
    base = ["pde=burgers1d", "grid.resolution=[64,8]", "solver=gauss_newton", "+pde.best.grid.focus={x: {at: 0.0, ratio: 4}}"]
    _, field, solver = build(compose_cfg(base, tiny=False))  # best: focus and adapt: the measured focus
    assert not isinstance(solver, MovingGrid) and isinstance(field, WarpedField)
    _, field, solver = build(compose_cfg(base + ["grid.focus=null"], tiny=False))  # the command: the grid moves
    assert isinstance(solver, MovingGrid) and isinstance(field.axes[0], AxisMonitorMap)
    _, field, solver = build(compose_cfg(base + ["model=siren", "solver=adam"], tiny=False))  # not a grid: its default is dropped
    assert not isinstance(solver, MovingGrid)
    _, field, solver = build(compose_cfg(base[:3], tiny=False))  # Burgers' own default: the cells move
    assert isinstance(solver, MovingGrid) and isinstance(field, WarpedField)
