"""Regularisation (``pde.regularization``, ``dinf.pdes.regularization``): terms that share one weight,
the searches for it (``dinf.solvers.weight_search``: discrepancy principle, least predictive risk,
L-curve)
run by Gauss–Newton, and each mistake refused in one line."""
from __future__ import annotations

import logging
import math

import pytest
import torch

from dinf.errors import ConfigError
from dinf.pdes import EquationProblem
from dinf.solvers.weight_search import DiscrepancySearch, LCurveSearch, RiskSearch
from tests.helpers import build_spec, solve_steps

# g = u' recovered from 200 noisy observations of u = sin 2πx (σ = 0.05), with Tikhonov on g'.
SLOPE = {
    "_target_": "dinf.pdes.EquationProblem", "name": "slope", "unknowns": ["u", "g"],
    "domain": {"space": {"x": [0, 1]}},
    "functions": {"ue": "sin(2*pi*x)", "ge": "2*pi*cos(2*pi*x)"},
    "residuals": {"slope": "u_x - g"},
    "regularization": {"terms": {"smooth": "g_x"}, "weight": "discrepancy", "init": 1e-8},
    "conditions": {"obs": {"type": "data", "at": {"random": 200, "seed": 1}, "value": {"u": "ue"},
                           "noise": {"sigma": 0.05, "seed": 0}}},
    "reference": {"exact": {"u": "ue", "g": "ge"}},
    "in_dim": 1, "out_dim": 2, "batch_size": 1024, "resolution": [32],
}
GRID = ["grid.levels=1", "grid.resolution=[32]", "kernel.eps=0.7", "kernel.rho=5"]


def _slope(regularization=None, solver=("solver=gauss_newton", "solver.max_solves=60")):
    spec = dict(SLOPE, regularization={**SLOPE["regularization"], **(regularization or {})})
    spec["regularization"] = {k: v for k, v in spec["regularization"].items() if v is not None}
    return build_spec(spec, GRID + list(solver))


def _solve(regularization=None):
    problem, field, solver = _slope(regularization)
    return problem, field, solve_steps(problem, field, solver, 60)


def test_the_search_brackets_the_target_then_narrows_it():
    for alpha0, power in ((1e-8, 0.3), (10.0, 0.3), (1e-3, 2.0)):
        search, alpha = DiscrepancySearch(tolerance=0.02), alpha0
        for _ in range(16):
            ratio = (alpha / 1e-3) ** power  # the misfit reaches 1 at α = 1e-3
            nxt = search.propose(alpha, ratio, 1.0)
            if nxt is None:
                break
            alpha = nxt
        assert abs(ratio - 1.0) <= 0.02 and search.solves <= 12, (alpha0, power, search.seen)


def test_the_risk_search_steps_by_decades_then_takes_the_parabolas_vertex():
    for alpha0 in (1e-8, 1e-3, 1.0):
        search, alpha, tried = RiskSearch(), alpha0, []
        for _ in range(12):
            tried.append(alpha)
            nxt = search.propose(alpha, (math.log10(alpha) + 3.3) ** 2)  # least at α = 10^−3.3
            if nxt is None:
                break
            alpha = nxt
        assert abs(math.log10(alpha) + 3.3) < 1e-9 and len(tried) <= 9, tried  # a parabola's vertex is exact


def test_the_least_predictive_risk_picks_a_weight_from_the_data_alone():
    problem, field, info = _solve({"weight": "risk"})
    assert info["converged"] and math.isfinite(info["risk"])
    chosen = problem.regularization.weight
    assert 1e-8 < chosen < 1e-4, chosen  # moved from the first weight, to where g is best resolved
    assert problem.evaluate(field)["l2re_g"] < 0.06


def test_the_lcurve_search_visits_seven_decades_then_solves_at_the_corner():
    # fit = 1 + α, penalty = 1 + 1/α: flat in the fit for α ≪ 1, in the penalty for α ≫ 1; the
    # corner of (log fit, log penalty) is at α = 1.
    search, alpha, tried = LCurveSearch(), 1e-1, []
    for _ in range(10):
        tried.append(alpha)
        nxt = search.propose(alpha, 1 + alpha, 1 + 1 / alpha)
        if nxt is None:
            break
        alpha = nxt
    assert [round(math.log10(a)) for a in tried] == [-1, -2, -3, -4, 0, 1, 2, 0] and alpha == pytest.approx(1.0)
    assert search.solves == 8


def test_the_lcurve_picks_a_weight_without_the_noise_level():
    spec = {**SLOPE, "conditions": {"obs": {**SLOPE["conditions"]["obs"]}}}
    spec["conditions"]["obs"].pop("noise")  # the observations as measured: no σ given
    spec["conditions"]["obs"]["value"] = {"u": "ue + 0.05*sin(97*x)"}  # a known, rough "noise"
    problem, field, solver = build_spec({**spec, "regularization": {**SLOPE["regularization"], "weight": "lcurve",
                                                                     "init": 1e-5}},
                                        GRID + ["solver=gauss_newton", "solver.max_solves=80"])
    info = solve_steps(problem, field, solver, 80)
    assert info["converged"] and math.isfinite(info["lcurve_fit"]) and "misfit_ratio" not in info
    assert solver._state.search.solves == 8
    chosen = problem.regularization.weight
    assert chosen != 1e-5 and 1e-8 <= chosen <= 1e-2, chosen
    assert problem.evaluate(field)["l2re_g"] < 0.3


def test_the_discrepancy_principle_meets_the_noise_level():
    problem, field, info = _solve()
    assert info["converged"] and info["misfit_target"] == 1.0
    assert abs(info["misfit_ratio"] - 1.0) <= 0.05, info
    assert problem.regularization.weight > 1e-7  # moved up from the first weight, where the fit takes noise in
    m = problem.evaluate(field)
    assert m["regularization_weight"] == problem.regularization.weight
    assert abs(m["obs_rms_per_sigma"] ** 2 - info["misfit_ratio"]) < 1e-3 and m["l2re_g"] < 0.1, m


def test_counting_the_fits_degrees_of_freedom_lowers_the_target_and_the_error():
    fixed, _, low = _solve({"weight": 1e-8, "init": None})  # the first weight alone: it takes noise in
    problem, field, info = _solve({"dof": True})
    plain, plain_field, _ = _solve()
    assert low["misfit_ratio"] < 0.9 < info["misfit_target"] < 1.0  # the fit spends a few % of the data's freedom
    assert abs(info["misfit_ratio"] / info["misfit_target"] - 1.0) <= 0.05, info
    assert problem.regularization.weight < plain.regularization.weight
    assert problem.evaluate(field)["l2re_g"] < plain.evaluate(plain_field)["l2re_g"]
    assert fixed.regularization.weight == 1e-8 and "misfit_target" not in low


def test_regularisation_terms_weigh_in_the_loss_and_not_in_the_residual_rms():
    spec = {k: v for k, v in SLOPE.items() if k != "_target_"}
    spec["regularization"] = {"terms": {"smooth": "g_x", "prior": "g - 1"}, "weight": 0.5}
    p = EquationProblem(**spec)
    assert p.residual_weights == {"slope": 1.0, "smooth": 0.5, "prior": 0.5}
    p.set_regularization_weight(2.0)
    assert p.residual_weights["prior"] == 2.0 and p.nonlinear_term() is None
    bare = EquationProblem(**{**spec, "regularization": None})
    _, field, _ = _slope()
    x = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    assert p.residual_rms(field, x) == pytest.approx(bare.residual_rms(field, x), rel=1e-12)


@pytest.mark.parametrize("change,key,message", [
    ({"weight": None}, "regularization.weight", r"give a number > 0 \(a number, discrepancy, risk or lcurve\), got None"),
    ({"weight": 0.1}, "regularization.init", "is the first weight a search tries"),
    ({"weight": 0.1, "init": None, "tau": 2}, "regularization.tau", "is for weight: discrepancy"),
    ({"terms": {}}, "regularization.terms", "give the terms by name"),
    ({"terms": {"slope": "g_x"}}, "regularization.terms.slope", "residuals.slope has this name already"),
    ({"terms": {"smooth": "h_x"}}, "regularization.terms.smooth", "unknown symbol 'h_x'"),
    ({"lambda": 1}, "regularization.lambda", "not an option of regularization"),
    ({"dof": "yes"}, "regularization.dof", "true or false"),
])
def test_each_mistake_is_one_line(change, key, message):
    spec = {k: v for k, v in SLOPE.items() if k != "_target_"}
    reg = {**spec["regularization"], **change}
    spec["regularization"] = {k: v for k, v in reg.items() if v is not None or k == "weight"}
    with pytest.raises(ConfigError, match=message) as e:
        EquationProblem(**spec)
    assert e.value.key == key and "\n" not in str(e.value)


def test_the_discrepancy_principle_needs_a_noise_level_and_other_solvers_keep_the_first_weight(caplog):
    spec = {k: v for k, v in SLOPE.items() if k != "_target_"}
    spec["conditions"] = {"obs": {**spec["conditions"]["obs"], "noise": None}}
    with pytest.raises(ConfigError, match="needs the observations' noise level") as e:
        EquationProblem(**spec)
    assert e.value.key == "regularization.weight"
    with pytest.raises(ConfigError, match="least squares needs .*regularization.weight is chosen by discrepancy"):
        _slope(solver=["solver=least_squares"])
    with caplog.at_level(logging.WARNING, logger="dinf.app.run"):
        problem, _, _ = _slope(solver=["solver=adam"])
    assert "keeps the first weight, 1e-08" in caplog.text and problem.regularization.weight == 1e-8
