"""Unknown parameters (``params: {a: {unknown: true, init: …}}``, ``dinf.pdes.inferred``): read from
config, carried as jet channels, linearised like the unknowns, identified by Gauss–Newton with a
Laplace standard deviation, trained by Adam; each mistake refused in one line."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from dinf.equations.linearize import autograd_rows
from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.pdes import EquationProblem
from dinf.pdes.inferred import InferredParams, split_params
from dinf.solvers.linalg.node_jets import NodeJets
from tests.helpers import build_spec, compose_cfg, solve_steps

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
    spec = {**HEAT, "conditions": {**HEAT["conditions"]}}
    if noise is not None:
        spec["conditions"]["observed"] = {**spec["conditions"]["observed"], "noise": {"sigma": noise, "seed": 0}}
    return build_spec(spec, GRID + list(overrides))


def _identify(noise=None):
    problem, field, solver = _heat(noise)
    return problem, solve_steps(problem, field, solver, 12)


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


# --- the Jacobian, the Laplace covariance, exact recovery -----------------------------------------
# u' + k·u = 0 on [0, 1], u(0) = 1, k = 1.5 unknown (from 1): u = e^{−1.5x} observed at 20 points.
DECAY = {
    "_target_": "dinf.pdes.EquationProblem", "name": "decay", "unknowns": ["u"],
    "domain": {"space": {"x": [0, 1]}},
    "params": {"k": {"unknown": True, "init": 1.0, "truth": 1.5}},
    "functions": {"exact": "exp(-1.5*x)"},
    "residuals": {"decay": "u_x + k*u"},
    "conditions": {"start": {"type": "dirichlet", "piece": "x_min", "value": 1},
                   "observed": {"type": "data", "at": {"lattice": {"x": 20}}, "value": {"u": "exact"}}},
    "reference": {"exact": {"u": "exact"}},
    "in_dim": 1, "out_dim": 1, "batch_size": 512, "resolution": [6],
}
SMALL = ["grid.levels=1", "grid.resolution=[6]", "kernel.eps=0.7", "kernel.rho=3", "grid.exact_conditions=false",
         "solver=gauss_newton", "solver.points=300", "solver.max_solves=30"]


def _small(spec, overrides=()):
    problem, field, solver = build_spec(spec, SMALL + list(overrides))
    info = solve_steps(problem, field, solver, 30)
    _small.last = (solver, field)  # for the pointwise map
    return problem, solver._state, info


def _objective(st, z):
    """What Gauss–Newton minimises, at ``z``: the loss and μ‖z_nodes‖² (float64)."""
    jet = st.jet_at(z.copy())
    return float(st.linearize(jet).loss(st.full(jet))) + st.mu * st.norm2(z)


def test_a_parameters_jacobian_column_is_the_finite_difference_of_the_residuals():
    problem, st, _ = _small(DECAY)
    z = st.z.copy()
    z[-1] = 1.3  # away from the solution, so the residuals are not small
    column = st.jacobian(st.linearize(st.jet_at(z.copy()))).toarray()[:, -1]

    def residuals(zz):
        jet = st.jet_at(zz.copy())
        return st.linearize(jet).residual(st.full(jet)).reshape(-1).double().numpy()

    h = 1e-6
    fd = (residuals(z + h * np.eye(len(z))[-1]) - residuals(z - h * np.eye(len(z))[-1])) / (2 * h)
    assert np.abs(column).max() > 1e-3
    np.testing.assert_allclose(column, fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max())


def test_the_laplace_covariance_is_the_inverse_of_a_finite_difference_hessian():
    spec = {**DECAY, "conditions": {**DECAY["conditions"], "observed": {
        **DECAY["conditions"]["observed"], "noise": {"sigma": 0.01, "seed": 3}}}}
    problem, st, info = _small(spec)
    z, n = st.z.copy(), len(st.z)
    h = 1e-4 * np.maximum(np.abs(z), 1.0)
    H = np.zeros((n, n))  # ∇²(loss + μ‖z‖²) by central second differences of its values alone
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            H[i, j] = H[j, i] = (_objective(st, z + ei + ej) - _objective(st, z + ei - ej)
                                 - _objective(st, z - ei + ej) + _objective(st, z - ei - ej)) / (4 * h[i] * h[j])
    # loss/(2c) is the negative log-posterior (c: the noise scale), so cov = 2c·H⁻¹
    with torch.no_grad():
        c = problem.noise_scale(st.batch, st.jet)
    std = math.sqrt(2 * c * np.linalg.inv(H)[-1, -1])
    assert info["param_k_std"] == pytest.approx(std, rel=2e-3), (info["param_k_std"], std)
    assert abs(info["param_k"] - 1.5) < 3 * std  # and the deviation is of the size of the error
    # The pointwise map: u(x) = e(x)ᵀz, so var u(x) = 2c·e(x)ᵀH⁻¹e(x), e from the field's basis.
    solver, field = _small.last
    x = torch.tensor([[0.0], [0.3], [0.77], [1.0]], dtype=torch.float64)
    E = NodeJets(field, x, 0, torch.ones(1, 1, dtype=torch.bool)).entries.toarray()
    E = np.c_[E, np.zeros(len(x))]
    want = np.sqrt(2 * c * np.einsum("ij,jk,ik->i", E, np.linalg.inv(H), E))
    np.testing.assert_allclose(solver.pointwise_std(field, problem, x)[:, 0], want, rtol=2e-3)


def test_exact_data_from_a_field_in_the_span_recover_the_parameter_to_round_off(tmp_path):
    # u' = lam·w' with (u, w) = (2.5·w, w) for a w drawn at random from the grid's own span: the data
    # leave no discretisation error, so Gauss–Newton must land on lam = 2.5 to round-off.
    spec = {"_target_": "dinf.pdes.EquationProblem", "name": "span", "unknowns": ["u", "w"],
            "domain": {"space": {"x": [0, 1]}}, "params": {"lam": {"unknown": True, "init": 1.0, "truth": 2.5}},
            "residuals": {"link": "u_x - lam*w_x"}, "in_dim": 1, "out_dim": 2, "batch_size": 512, "resolution": [6]}
    placeholder = {"obs": {"type": "data", "at": {"lattice": {"x": 5}}, "value": {"w": 0}}}
    _, truth, _ = build_spec({**spec, "conditions": placeholder}, SMALL)  # the same grid, for the truth
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random node values, u's decoder row 2.5 times w's, no bias
        for name, p in truth.named_parameters():
            p.copy_(0 * p if "bias" in name else torch.randn(p.shape, generator=gen))
            if "decoder.layer.weight" in name:
                p[0] = 2.5 * p[1]
    x = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None]
    values = truth.double().jet(x, 0).value.detach().numpy()
    table = str(tmp_path / "obs.csv")
    np.savetxt(table, np.c_[x[:, 0].numpy(), values], delimiter=",", header="x,u,w", comments="")
    spec["conditions"] = {"obs": {"type": "data", "at": {"file": table, "columns": {"x": 0}},
                                  "value": {"file": table, "columns": {"u": 1, "w": 2}}}}
    problem, st, info = _small(spec, ["solver.damping=1e-14"])
    assert info["loss"] < 1e-16 and problem.inferred.metrics()["lam_error"] < 1e-12, (info, problem.inferred.metrics())


def test_an_unknown_parameter_no_residual_uses_is_refused():
    spec = {k: v for k, v in HEAT.items() if k != "_target_"}
    spec["params"] = {**spec["params"], "b": {"unknown": True, "init": 1.0}}
    with pytest.raises(ConfigError, match="params.b: is unknown but no residual or condition uses it") as e:
        EquationProblem(**spec)
    assert "\n" not in str(e.value)


def test_a_run_with_observations_writes_its_uncertainty_map(tmp_path):
    from dinf.app.run import train

    spec = {**HEAT, "conditions": {**HEAT["conditions"], "observed": {
        **HEAT["conditions"]["observed"], "noise": {"sigma": 0.01, "seed": 0}}}}
    cfg = compose_cfg(GRID + GN + ["trainer.max_steps=12", "trainer.val_check_interval=12"])
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(spec)
    out = train(cfg, output_dir=str(tmp_path))
    assert 0 < out["std_u"] < 0.05 and 0.5 <= out["coverage_u"] <= 1.0, out  # the noise, not the grid, dominates
    assert out["final"]["std_u"] == out["std_u"] and (tmp_path / "uncertainty.png").exists()
    assert out["observed_rms_per_sigma"] == pytest.approx(1.0, abs=0.15)
