"""The solver interface: what solver=auto picks and why, the damped step Gauss–Newton and Newton
share, the budgets the solvers set, and the one-line answers to earlier spellings."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from dinf.app.cli import renamed
from dinf.app.run import build
from dinf.solvers.base import GradientSolver
from dinf.solvers.damped import damped_step, next_lm
from dinf.solvers.gauss_newton import GaussNewton
from dinf.solvers.least_squares import LeastSquares
from dinf.solvers.newton import Newton
from tests.helpers import compose_cfg


@pytest.mark.parametrize("overrides, kind, words", [
    (["pde=poisson2d_c"], LeastSquares, "the problem is linear"),
    (["pde=burgers1d"], GaussNewton, "the residuals are nonlinear"),
    (["pde=cloth", "grid.features=3"], Newton, "the problem is an energy"),
    (["pde=helmholtz", "model=siren"], GradientSolver, "least squares needs a grid field with a basis (model=dinf), not Siren"),
    (["pde=burgers1d", "model=linear_grid"], GradientSolver, "Gauss-Newton needs a grid field with a basis (model=dinf), not LinearGrid"),
])
def test_auto_picks_the_fastest_solver_that_applies_and_says_why(overrides, kind, words, caplog):
    with caplog.at_level(logging.INFO, logger="dinf.app.run"):
        _, _, solver = build(compose_cfg(overrides))
    assert isinstance(solver, kind)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("solver: "))
    assert words in line and "solver=adam forces" in line and "\n" not in line, line


def test_a_named_solver_is_checked_and_refuses_in_one_line():
    from dinf.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        build(compose_cfg(["pde=burgers1d", "solver=least_squares"]))
    assert info.value.key == "solver" and "residuals.burgers has the nonlinear term" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build(compose_cfg(["pde=poisson2d_c", "solver=newton"]))
    assert "Newton needs an energy density" in str(info.value)


def test_the_linear_grid_on_a_second_order_residual_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="dinf.app.run"):
        build(compose_cfg(["pde=helmholtz", "model=linear_grid"]))
    assert any("LinearGrid has zero derivatives of order 2" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dinf.app.run"):
        build(compose_cfg(["pde=poisson", "model=linear_grid"]))  # gradients: first order is enough
    assert not caplog.records


def test_gauss_newton_solves_are_bounded_by_max_solves_and_the_trainer():
    trainer = compose_cfg(["trainer.max_steps=20000"]).trainer
    assert GaussNewton(max_solves=30).trainer_steps(trainer) == {"max_steps": 30, "val_check_interval": 1}
    assert GaussNewton(max_solves=30).trainer_steps(compose_cfg(["trainer.max_steps=2"]).trainer)["max_steps"] == 2
    assert GaussNewton().trainer_steps(trainer)["max_steps"] == 20000
    assert LeastSquares().trainer_steps(trainer) == {"max_steps": 1, "val_check_interval": 1}


def test_the_damped_step_halves_until_the_objective_falls_and_adapts_lambda():
    f = lambda z: (float(np.sum((z - 1.0) ** 2)), "payload")  # noqa: E731
    z, delta = np.zeros(2), np.full(2, 4.0)  # overshoots: f(z + δ) = 18, f(z + δ/2) = 2 (no fall), f(z + δ/4) = 0
    step = damped_step(f, z, delta, objective=2.0, predicted=-2.0, lam=1.0, halvings=8, rtol=1e-6)
    assert step.alpha == 0.25 and np.allclose(step.z, 1.0) and step.objective == 0.0 and step.payload == "payload"
    assert step.lam == 2.0 and not step.converged  # a halved step: λ doubles
    refused = damped_step(lambda z: (np.inf, None), z, delta, 2.0, -2.0, lam=1e-3, halvings=2, rtol=1e-6)
    assert refused.z is None and refused.alpha == 0.0 and refused.lam == pytest.approx(1e-2)
    assert next_lm(1.0, 1.0, decrease=0.9, predicted=-1.0) == pytest.approx(1 / 3)  # a good full step
    assert next_lm(1.0, 1.0, decrease=0.1, predicted=-1.0) == 2.0  # a poor one
    # A trusted step (> 9/10 of the predicted decrease): ÷ trusted (Gauss–Newton's 10), else ÷ 3.
    assert next_lm(1.0, 1.0, decrease=0.95, predicted=-1.0) == pytest.approx(1 / 3)
    assert next_lm(1.0, 1.0, decrease=0.95, predicted=-1.0, trusted=10.0) == pytest.approx(0.1)
    assert next_lm(1.0, 1.0, decrease=0.8, predicted=-1.0, trusted=10.0) == pytest.approx(1 / 3)
    fast = damped_step(f, np.zeros(2), np.ones(2), objective=2.0, predicted=-2.0, lam=1.0, halvings=8, rtol=1e-6,
                       trusted=10.0)
    assert fast.alpha == 1.0 and fast.lam == pytest.approx(0.1)  # the exact step met all of the prediction


@pytest.mark.parametrize("arg, words", [
    ("optimizer=lsq", "solver=least_squares"),
    ("optimizer.gauss_newton.points=4096", "solver.points=4096"),
    ("optimizer.optim.lr=1e-3", "model.lr=1e-3"),
    ("lr=1e-3", "model.lr=1e-3"),
    ("model=dinf,fem", "solver=auto,fem"),
    ("fem.h=0.1", "solver.h=0.1 with solver=fem"),
    ("preset=pinnacle_burgers1d_gn", "pde=burgers1d"),
    ("preset=pinnacle_burgers1d", "experiment=pinnacle_burgers1d"),
    ("experiment=pinnacle_poisson2d_c", "pde=poisson2d_c"),
    ("experiment=helmholtz_lsq", "pde=helmholtz"),
])
def test_earlier_spellings_name_the_new_one(arg, words):
    line = renamed(arg)
    assert line is not None and words in line and "\n" not in line, line


@pytest.mark.parametrize("arg", ["solver=least_squares", "model=siren", "experiment=pinnacle_burgers1d", "pde=poisson",
                                 "model.lr=1e-3", "solver.h=0.1"])
def test_current_spellings_pass(arg):
    assert renamed(arg) is None
