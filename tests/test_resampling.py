"""Residual-based adaptive points (``solver.resample=rar_d``, ``dinf.solvers.resampling``): where
the drawn points go, what is refused, and a run that trains with them."""
from __future__ import annotations

import pytest
import torch

from dinf.app.run import build, train
from dinf.errors import ConfigError
from tests.helpers import compose_cfg

BURGERS = ["pde=burgers1d", "model=siren", "solver=adam", "solver.resample=rar_d"]


def _pinned(problem, where):
    """``problem`` whose residual is 1 where ``where(x)`` holds and 0 elsewhere."""
    problem.residual_values = lambda field, x: where(x).double()
    return problem


@pytest.mark.parametrize("c, low, high", [(0.0, 1.0, 1.0), (1.0, 0.6, 0.75), (1e6, 0.0, 0.35)])
def test_the_interior_points_follow_the_residual_and_the_conditions_keep_theirs(c, low, high):
    # x ∈ [-1, 1]: the residual lives on x > 0.5, a quarter of the interval. With c = 0 every
    # interior point lands there; with c = 1 a share 0.25·(1/0.25 + 1)/(1 + 1) = 0.625 is
    # expected; with c → ∞ the quarter of uniform sampling.
    problem, field, solver = build(compose_cfg(BURGERS + [f"solver.resample_c={c}", "solver.resample_pool=4000"]))
    _pinned(problem, lambda x: x[:, 0] > 0.5)
    g = torch.Generator().manual_seed(0)
    batch = solver.batch(field, problem, 2000, g, step=0)
    inner = int(batch.data["sizes"][0])
    share = float((batch.x[:inner, 0] > 0.5).double().mean())
    assert low <= share <= high, share
    assert torch.equal(batch.x[:inner].double(), batch.data["x64"][:inner].to(batch.x.dtype).double())
    # the conditions' points (initial line t = 0 and the two walls) are the problem's own
    rest = batch.x[inner:]
    on_pieces = (rest[:, 1] <= 1e-6) | (rest[:, 0].abs() >= 1 - 1e-6)
    assert bool(on_pieces.all())


def test_the_candidates_are_redrawn_every_so_many_steps():
    problem, field, solver = build(compose_cfg(BURGERS + ["solver.resample_every=3", "solver.resample_pool=500"]))
    _pinned(problem, lambda x: x[:, 0] > 0)
    g = torch.Generator().manual_seed(0)
    first = None
    for step in range(4):
        solver.batch(field, problem, 200, g, step)
        if step == 0:
            first = solver.resampler.candidates
        assert (solver.resampler.candidates is first) == (step < 3)


def test_a_run_trains_with_residual_based_points(tmp_path):
    metrics = train(compose_cfg(BURGERS + ["solver.resample_every=2", "solver.resample_pool=2048"]),
                    output_dir=str(tmp_path))
    assert metrics["steps"] == 4 and metrics["l2re"] < 10


@pytest.mark.parametrize("override, key", [
    ("solver.resample=rard", "solver.resample"),
    ("solver.resample_k=-1", "solver.resample_k"),
    ("solver.resample_every=0", "solver.resample_every"),
    ("solver.resample_pool=0", "solver.resample_pool"),
])
def test_bad_settings_are_refused_in_one_line(override, key):
    with pytest.raises(ConfigError) as e:
        build(compose_cfg(BURGERS + [override]))
    assert e.value.key == key and "\n" not in str(e.value)


def test_a_problem_without_residuals_is_refused():
    with pytest.raises(ConfigError, match="problem stated in a config file"):
        build(compose_cfg(["pde=helmholtz", "model=siren", "solver=adam", "solver.resample=rar_d"]))
