"""Marching in time windows (``solver.windows``): the edges, the window problems and their
handed-over initial values, the windowed field, and a windowed solve against an exact solution."""
from __future__ import annotations

import pytest
import torch

from dinf.app.run import build
from dinf.errors import ConfigError
from dinf.fields.windowed import WindowedField
from dinf.pdes.windows import Handover, window_edges, window_ends
from dinf.solvers.marching import Marching
from tests.helpers import compose_cfg

# Wave1d (u_tt = 4 u_xx, exact solution) on a small grid: value and rate are handed over.
WAVE = ["pde=wave1d", "solver=least_squares", "grid.levels=1", "grid.resolution=[24,24]", "kernel.eps=0.7",
        "kernel.rho=5", "solver.points=12000"]


def test_edges_from_a_count_or_a_list_and_bad_ones_refused():
    assert window_edges(4, 0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert window_edges([0, 0.1, 3], 0.0, 3.0) == [0.0, 0.1, 3.0]
    with pytest.raises(ConfigError, match=r"solver.windows: the edges \[0.0, 0.5, 2.0\] do not tile the time "
                                          r"interval \[0, 3\]"):
        window_edges([0, 0.5, 2], 0.0, 3.0)
    with pytest.raises(ConfigError, match="do not tile"):
        window_edges([0, 2, 1, 3], 0.0, 3.0)
    with pytest.raises(ConfigError, match="must be >= 1 window"):
        window_edges(0, 0.0, 1.0)
    with pytest.raises(ConfigError, match="give a number of equal windows"):
        window_edges("four", 0.0, 1.0)


def test_the_field_answers_each_time_from_its_window_in_the_callers_order():
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
            for _ in range(3)]
    fields = [_Net(n) for n in nets]
    field = WindowedField(fields, [0.0, 0.2, 0.5, 1.0], axis=1)
    x = torch.rand(50, 2, dtype=torch.float64)
    x[:3, 1] = torch.tensor([0.2, 0.5, 1.0])  # inner edges belong to the later window, the end to the last
    which = field.window_of(x)
    assert which[:3].tolist() == [1, 2, 2]
    jet = field.jet(x, 2)
    for k, f in enumerate(fields):
        mine = which == k
        ref = f.jet(x[mine], 2)
        for got, want in ((jet.value[mine], ref.value), (jet.grad[mine], ref.grad), (jet.hess[mine], ref.hess)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(field(x), jet.value, rtol=0, atol=1e-15)


def test_a_windowed_solve_matches_the_exact_solution_and_hands_over_value_and_rate():
    problem, field, solver = build(compose_cfg(WAVE + ["solver.windows=2"]))
    assert isinstance(field, WindowedField) and isinstance(solver, Marching) and len(field.windows) == 2
    later = solver.problems[1]
    tables = solver.handovers[1]
    assert sorted((t.rate, t.at) for t in tables) == [(False, 0.5), (True, 0.5)]
    assert all(isinstance(later.functions[f"start_{k}u"], Handover) for k in ("", "rate_"))
    solver.solve(field, problem, torch.Generator().manual_seed(0))
    metrics = problem.evaluate(field)
    assert metrics["l2re"] < 5e-3, metrics
    # The handed-over tables are the first window's field at t = 0.5, to round-off.
    x = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    at = torch.stack([x, torch.full_like(x, 0.5)], 1)
    before = field.windows[0].jet(at.float(), 2)
    value = next(t for t in tables if not t.rate)(x)
    rate = next(t for t in tables if t.rate)(x)
    torch.testing.assert_close(value, before.value[:, 0].double(), rtol=0, atol=1e-12)
    torch.testing.assert_close(rate, before.grad[:, 0, 1].double(), rtol=0, atol=1e-12)
    # Across the edge the solution is continuous to the fit's accuracy (the conditions are soft).
    after = field.windows[1].jet(at.float(), 2)
    assert float((after.value - before.value).abs().max().detach()) < 2e-3
    assert float((after.grad[:, 0, 1] - before.grad[:, 0, 1]).abs().max().detach()) < 5e-2


def test_an_overlap_solves_each_window_further_and_hands_over_inside_it():
    assert window_ends([0.0, 0.5, 1.0], 0.5) == [0.75, 1.0]  # the last window ends at the interval's end
    with pytest.raises(ConfigError, match=r"solver.overlap: give a fraction of a window's length in \[0, 1\]"):
        window_ends([0.0, 1.0], 2, "solver.overlap")
    with pytest.raises(ConfigError, match="solver.overlap: is for time windows: set solver.windows too"):
        build(compose_cfg(WAVE + ["solver.overlap=0.5"]))
    problem, field, solver = build(compose_cfg(WAVE + ["solver.windows=2", "solver.overlap=0.5"]))
    first, later = solver.problems
    assert list(first.bounds[1]) == [0.0, 0.75] and list(later.bounds[1]) == [0.5, 1.0]
    assert field.edges.tolist() == [0.0, 0.5, 1.0]  # the run sees each window on its own interval
    assert [t.at for t in solver.handovers[1]] == [0.5, 0.5]
    solver.solve(field, problem, torch.Generator().manual_seed(0))
    assert problem.evaluate(field)["l2re"] < 5e-3


def test_auto_marches_the_solver_it_chose_in_its_own_windows():
    auto = [o for o in WAVE if not o.startswith("solver")] + ["solver.least_squares.points=12000"]
    _, field, solver = build(compose_cfg(auto + ["solver.windows=2", "solver.overlap=0.5"]))
    assert isinstance(solver, Marching) and solver.name == "least squares, 2 time windows"
    assert list(solver.problems[0].bounds[1]) == [0.0, 0.75]
    # auto's overlap with the chosen solver's own windows (a problem's best block sets those)
    _, _, solver = build(compose_cfg(auto + ["solver.least_squares.windows=2", "solver.overlap=0.5"]))
    assert len(solver.problems) == 2 and list(solver.problems[0].bounds[1]) == [0.0, 0.75]
    with pytest.raises(ConfigError, match="solver.overlap: is for time windows"):
        build(compose_cfg(auto + ["solver.overlap=0.5"]))
    with pytest.raises(ConfigError, match="solver.windows: marching in time windows works with least squares"):
        build(compose_cfg(auto + ["model=siren", "solver.windows=2"]))


def test_the_windowed_run_reports_one_solution(tmp_path):
    from dinf.app.run import train

    metrics = train(compose_cfg(WAVE + ["solver.windows=[0, 0.4, 1]"]), output_dir=str(tmp_path))
    assert metrics["steps"] == 1 and metrics["l2re"] < 5e-3, metrics["l2re"]
    assert (tmp_path / "wave1d.png").exists()


def test_exact_conditions_stay_exact_in_the_first_window_and_the_run_sees_the_solution():
    # Heat2d-MS imposes its initial value and walls exactly on the grids (best: exact_conditions).
    problem, field, solver = build(compose_cfg(["pde=heat2d_ms", "solver=least_squares", "solver.windows=2",
                                                "grid.resolution=[12,3,2]", "grid.levels=1", "solver.points=4000"]))
    first, later = solver.problems
    assert first.hard is not None and later.hard is not None  # the walls stay exact in both
    assert {c.name for c in later.conditions} == {c.name for c in first.conditions} | {"initial"}
    assert problem.hard is None and field.exact == [first.hard, later.hard]
    solver.solve(field, problem, torch.Generator().manual_seed(0))
    x = torch.rand(64, 3, dtype=torch.float64)
    x[:, 2] = 0.0
    u0 = problem.predict(field, x)[:, 0]  # u = g + B·N: the initial value at t = 0, whatever N is
    torch.testing.assert_close(u0, torch.sin(20 * torch.pi * x[:, 0]) * torch.sin(torch.pi * x[:, 1]),
                               rtol=0, atol=1e-5)  # float32 round-off


def test_what_windows_cannot_carry_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"solver.windows: poisson2d_c has no time axis"):
        build(compose_cfg(["pde=poisson2d_c", "solver=least_squares", "solver.windows=2"]))
    with pytest.raises(ConfigError, match="do not tile the time interval"):
        build(compose_cfg(WAVE + ["solver.windows=[0, 0.5]"]))
    with pytest.raises(ConfigError, match=r"pde.functions.start_u: the name start_u is a later window's initial"):
        build(compose_cfg(WAVE + ["solver.windows=2", "+pde.functions.start_u=x"]))
    with pytest.raises(ConfigError, match="works with least squares and Gauss–Newton so far"):
        build(compose_cfg(["pde=wave1d", "solver=adam", "+solver.windows=2"]))


class _Net(torch.nn.Module):
    """A small network as a field (autograd jets)."""

    smooth_order = None

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.in_dim, self.out_dim = net, 2, 1

    def forward(self, x):
        return self.net(x)

    def jet(self, x, order=2):
        from dinf.fields.base import autograd_jet

        return autograd_jet(self, x, order)


def test_gauss_newton_marches_each_window_to_convergence():
    # Burgers (nonlinear) on a small grid: Gauss–Newton's steps run on each window in turn.
    cfg = compose_cfg(["pde=burgers1d", "solver=gauss_newton", "solver.windows=2", "grid.levels=1",
                       "grid.resolution=[96,8]", "solver.points=6000", "solver.max_solves=12", "grid.focus=null", "trainer.max_steps=100"])
    problem, field, solver = build(cfg)
    assert isinstance(solver, Marching) and solver.iterative
    assert solver.trainer_steps(cfg.trainer) == {"max_steps": 1, "val_check_interval": 1} and solver.steps == 12
    info = solver.solve(field, problem, torch.Generator().manual_seed(0))
    assert info["windows"] == 2 and 2 <= info["solves"] <= 24
    assert solver.inner._state is None  # each window solved by its own copy
    # Without the shock's grading this grid is coarse: one space-time solve of the same cells per
    # unit time ([96, 16]) gives 0.24, the two windows 0.17–0.18; a lost handover would give O(1).
    windowed = problem.evaluate(field)["l2re"]
    assert windowed < 0.22, windowed


def test_the_march_stops_after_the_window_that_crosses_trainer_max_time(caplog):
    # The march is one training step, so it keeps Lightning's budget itself: with a budget of zero
    # seconds it solves the first window only and says so.
    cfg = compose_cfg(WAVE + ["solver.windows=3", "trainer.max_time=00:00:00:00"])
    problem, field, solver = build(cfg)
    solver.trainer_steps(cfg.trainer)
    assert solver.budget_s == 0.0
    with caplog.at_level("WARNING"):
        info = solver.solve(field, problem, torch.Generator().manual_seed(0))
    assert info["windows"] == 3 and info["windows_solved"] == 1
    assert "after 1 of 3 windows" in caplog.text and "trainer.max_time=null" in caplog.text
    solver.trainer_steps(compose_cfg(WAVE + ["solver.windows=3", "trainer.max_time=null"]).trainer)
    assert solver.budget_s is None


def test_max_time_in_seconds():
    from dinf.solvers.marching import seconds_of

    assert seconds_of("01:02:03:04") == ((24 + 2) * 60 + 3) * 60 + 4
    assert seconds_of({"minutes": 5}) == 300.0 and seconds_of(None) is None
    with pytest.raises(ConfigError, match="DD:HH:MM:SS"):
        seconds_of("5:00")
