"""Unknown parameters (``params: {a: {unknown: true, init: …}}``, ``dinf.pdes.inferred``): read from
config, carried as jet channels, linearised like the unknowns, identified by Gauss–Newton with a
Laplace standard deviation, trained by Adam; each mistake refused in one line."""
from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from dinf.app.run import build
from dinf.equations.linearize import autograd_rows
from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.pdes import EquationProblem
from dinf.pdes.inferred import InferredParams, split_params
from tests.helpers import compose_cfg

# u_t = a·u_xx on x ∈ [0, π], t ∈ [0, 1], u = e^{−a t} sin x with a = 0.5 unknown (starting at
# 0.2): walls and the initial value known, u observed on a 16 × 8 lattice.
HEAT = {
    "_target_": "dinf.pdes.EquationProblem", "name": "heat_inverse", "unknowns": ["u"],
    "domain": {"space": {"x": [0, math.pi]}, "time": {"t": [0, 1]}},
    "params": {"a": {"unknown": True, "init": 0.2, "bounds": [0, 2], "truth": 0.5}},
    "functions": {"exact": "exp(-0.5*t)*sin(x)"},
    "residuals": {"heat": "u_t - a*u_xx"},
    "conditions": {"walls": {"type": "dirichlet", "piece": "box", "value": 0, "weight": 10},
                   "initial": {"type": "initial", "value": "sin(x)", "weight": 10},
                   "observed": {"type": "data", "at": {"lattice": {"x": 16, "t": 8}}, "value": {"u": "exact"}}},
    "reference": {"exact": {"u": "exact"}},
    "in_dim": 2, "out_dim": 1, "batch_size": 2048, "resolution": [16, 8],
}
GRID = ["grid.levels=1", "grid.resolution=[16,8]", "kernel.eps=0.7", "kernel.rho=5"]
GN = ["solver=gauss_newton", "solver.points=3000", "solver.max_solves=12"]


def _heat(noise=None, overrides=GN):
    cfg = compose_cfg(GRID + list(overrides))
    spec = {**HEAT, "conditions": {**HEAT["conditions"]}}
    if noise is not None:
        spec["conditions"]["observed"] = {**spec["conditions"]["observed"], "noise": {"sigma": noise, "seed": 0}}
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(spec)
    return build(cfg)


def _identify(noise=None):
    problem, field, solver = _heat(noise)
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):
        info = solver.solve(field, problem, gen)
        if info["converged"]:
            break
    return problem, info


def test_gauss_newton_identifies_the_parameter_and_its_deviation_covers_the_truth():
    problem, info = _identify()
    m = problem.inferred.metrics()
    assert m["a_error"] < 1e-3, m  # clean data: 1.9e-4 on these 16 × 8 cells
    assert info["param_a"] == pytest.approx(m["a"]) and info["param_a_std"] == pytest.approx(m["a_std"])
    noisy, info = _identify(noise=0.01)
    n = noisy.inferred.metrics()
    assert 0 < n["a_std"] < 0.05 and abs(n["a"] - 0.5) < 4 * n["a_std"], n


def test_the_deviation_grows_with_the_noise():
    stds = [_identify(noise=s)[0].inferred.metrics()["a_std"] for s in (0.01, 0.04)]
    assert 3.0 < stds[1] / stds[0] < 5.0, stds  # σ·4 → std·4 (the noise's scale, not the misfit's)


def test_the_parameter_is_a_jet_channel_and_its_rows_equal_autograds():
    problem, _, _ = _heat()
    assert problem.symbols.names == ["u", "a"] and problem.out_dim == 1
    jet = Jet(torch.rand(9, 1, dtype=torch.float64), torch.rand(9, 1, 2, dtype=torch.float64),
              torch.rand(9, 1, 2, 2, dtype=torch.float64))
    full = problem.extended(jet)
    assert full.value.shape == (9, 2) and torch.all(full.value[:, 1] == 0.2) and torch.all(full.grad[:, 1] == 0)
    r = problem.residuals["heat"]
    data = {"x": torch.rand(9, dtype=torch.float64), "t": torch.rand(9, dtype=torch.float64)}
    coef, rhs = r.linearized_rows(full, data, 2, 2)
    want, want_rhs = autograd_rows(r.evaluate_tree, full, data, 2, 2)
    torch.testing.assert_close(coef, want)
    torch.testing.assert_close(rhs, want_rhs)
    torch.testing.assert_close(coef[:, 0, 1, 0], -full.hess[:, 0, 0, 0])  # ∂r/∂a = −u_xx


def test_adam_trains_the_parameter_with_the_field():
    problem, field, _ = _heat(overrides=["solver=adam"])
    assert problem.inferred.names == ["a"]
    assert [p is problem.inferred.theta for p in problem.parameters()] == [True]
    batch = problem.sample(512, torch.Generator().manual_seed(0))
    problem.loss(field.jet(batch.x, problem.jet_order), batch)["loss"].backward()
    assert problem.inferred.theta.grad is not None and float(problem.inferred.theta.grad.abs()) > 0


def test_bounds_clamp_what_the_residuals_see():
    p = InferredParams({"a": {"unknown": True, "init": 0.5, "bounds": [0, 1]}})
    p.set([3.0])
    assert p.values().tolist() == [1.0] and p.metrics() == {"a": 1.0}


@pytest.mark.parametrize("params,key,message", [
    ({"a": {"init": 1}}, "params.a", "write {unknown: true, init: …}"),
    ({"a": {"unknown": True}}, "params.a.init", "give the starting value"),
    ({"a": {"unknown": True, "init": 1, "bounds": [2, 1]}}, "params.a.bounds", "low < high"),
    ({"a": {"unknown": True, "init": 5, "bounds": [0, 1]}}, "params.a.init", "outside the bounds"),
    ({"a": {"unknown": True, "init": 1, "prior": 2}}, "params.a.prior", "not an option of a parameter"),
    ({"a_1": {"unknown": True, "init": 1}}, "params.a_1", "letters and digits"),
])
def test_bad_parameters_are_refused_in_one_line(params, key, message):
    with pytest.raises(ConfigError, match=message) as e:
        known, unknown = split_params(params)
        InferredParams(unknown)
    assert e.value.key == key and "\n" not in str(e.value)


def test_solvers_that_cannot_identify_say_so():
    with pytest.raises(ConfigError, match="params.a is unknown"):
        _heat(overrides=["solver=least_squares"])
    with pytest.raises(ConfigError, match="unknown parameters are identified over the whole interval"):
        _heat(overrides=GN + ["solver.windows=2"])
    spec = {k: v for k, v in HEAT.items() if k != "_target_"}
    assert len(EquationProblem(**spec).inferred) == 1


def test_the_warm_start_trains_the_parameters_with_the_field(tmp_path, monkeypatch):
    from dinf.app.run import train

    given = []
    init = torch.optim.Adam.__init__
    monkeypatch.setattr(torch.optim.Adam, "__init__",
                        lambda self, params, *a, **k: (given.append(list(params)), init(self, given[-1], *a, **k))[1])

    def after_one_solve(warm: int) -> float:
        cfg = compose_cfg(GRID + GN + [f"solver.warm_start_steps={warm}", "solver.warm_start_lr=0.05",
                                       "trainer.max_steps=1", "trainer.val_check_interval=1"])
        with open_dict(cfg):
            cfg.pde = OmegaConf.create(HEAT)
            cfg.solver.max_solves = 1
        return train(cfg, output_dir=str(tmp_path / str(warm)))["history"][-1]["a"]

    # From the zero field a's column (−u_xx) is zero: the first solve cannot move a.
    assert after_one_solve(0) == pytest.approx(0.2, abs=1e-12) and not given
    after_one_solve(20)
    (params,) = given  # the warm start's Adam: the field's weights and a
    assert any(p.dtype == torch.float64 and p.shape == (1,) for p in params)
