"""solver=mol: the method of lines converges at its order in space on problems with exact solutions,
its Jacobian is F's, its time error stays below its space error, it refuses in one line."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
import torch

from dinf.solvers.classical.fd_stencils import axis_matrix, grid_matrix
from dinf.solvers.classical.mol import Lines, MethodOfLines, TimeForm
from dinf.errors import ConfigError
from dinf.pdes.equation_problem import EquationProblem
from dinf.app.run import build, train
from tests.helpers import compose_cfg

WALLS = {"type": "dirichlet", "piece": "box", "value": 0}
HOLED = {"space": {"x": [-1, 1], "y": [-1, 1]}, "time": {"t": [0, 1]},
         "holes": {"disk": {"disk": {"center": [0, 0], "radius": 0.3}}}}


def _problem(residual, initial, space=None, time=(0, 1), exact=None, conditions=None, params=None, **extra):
    conditions = conditions if conditions is not None else {
        "initial": {"type": "initial", "value": initial}, "walls": WALLS}
    domain = {"space": space or {"x": [0, 1]}, **({"time": {"t": list(time)}} if time else {})}
    extra.setdefault("evaluation", {"resolution": 9, "times": 3})  # a small grid where none is scored
    return EquationProblem(unknowns=["u"], domain=domain, residuals={"pde": residual}, conditions=conditions,
                           params=params or {}, reference={"exact": exact} if exact else None, batch_size=64, **extra)


@lru_cache(maxsize=None)  # a problem holds no solver state: the tests share each one
def _heat():
    """Heat2d-MS-like: two scales along x and y with their own diffusivities, exact."""
    return _problem("u_t - a*u_xx - b*u_yy", "sin(2*pi*x)*sin(pi*y)", {"x": [0, 1], "y": [0, 1]}, (0, 0.5),
                    {"u": "sin(2*pi*x)*sin(pi*y)*exp(-(4*a + b)*pi^2*t)"}, params={"a": 0.05, "b": 0.1},
                    evaluation={"resolution": 41, "times": 6})


@lru_cache(maxsize=None)
def _wave():
    """PINNacle's Wave1d-C (exact) over half a period of its fast mode."""
    problem, _, _ = build(compose_cfg(["pde=wave1d", "solver=mol", "pde.domain.time.t=[0,0.125]",
                                    "pde.evaluation.times=21"]))
    return problem


@lru_cache(maxsize=None)
def _burgers():
    """Smooth viscous Burgers (ν = 0.05) against the exact Cole–Hopf solution."""
    return _problem("u_t + u*u_x - nu*u_xx", "-sin(pi*x)", {"x": [-1, 1]}, (0, 1), {"python": "burgers_cole_hopf"},
                    params={"nu": 0.05}, evaluation={"resolution": 81, "times": 11})


def _rates(problem, cells, order):
    """L2RE at each grid of one refinement sequence and the orders measured between them."""
    mol = MethodOfLines(in_dim=problem.in_dim, n=cells, order=order)
    errors = []
    for _ in cells:
        field = mol.result_field()
        mol.solve(field, problem)
        errors.append(problem.evaluate(field)["l2re"])
    return [math.log2(a / b) for a, b in zip(errors, errors[1:])], errors


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("order", [2, 4])
def test_derivative_matrices_are_exact_on_polynomials_of_their_degree(order, m):
    # Every row (one-sided ones at the ends too) is exact up to degree order + m − 1.
    x = np.linspace(-0.3, 1.1, 12)
    D = axis_matrix(11, x[1] - x[0], m, order)
    for k in range(order + m):
        exact = k * x ** (k - 1) if m == 1 else k * (k - 1) * x ** max(k - 2, 0)
        assert np.allclose(D @ x**k, exact, atol=1e-9), (k, np.abs(D @ x**k - exact).max())


@pytest.mark.parametrize("order", [2, 4])
def test_mixed_derivative_on_a_grid_is_exact_on_a_product_polynomial(order):
    nx, ny = 7, 9
    x, y = np.meshgrid(np.linspace(0, 1, nx + 1), np.linspace(0, 2, ny + 1), indexing="ij")
    p = order // 2 + 1  # u = x^p y^p: the central first differences are exact for it
    D = grid_matrix([nx, ny], [1 / nx, 2 / ny], (0, 1), order)
    assert np.allclose(D @ (x**p * y**p).ravel(), (p * p * x ** (p - 1) * y ** (p - 1)).ravel(), atol=1e-8)


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("order", [2, 4])
def test_derivative_matrices_converge_at_their_order_on_a_sine(order, m):
    errors = []
    for n in (16, 32, 64):
        x = np.linspace(0.0, 2.0, n + 1)
        exact = 3 * np.cos(3 * x + 0.5) if m == 1 else -9 * np.sin(3 * x + 0.5)
        errors.append(np.abs(axis_matrix(n, 2.0 / n, m, order) @ np.sin(3 * x + 0.5) - exact).max())
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(abs(r - order) < 0.3 for r in rates), (rates, errors)


@pytest.mark.parametrize("name, order, cells", [
    ("heat", 2, [8, 16, 32]), ("heat", 4, [[16, 8], [32, 16], [64, 32]]),  # per axis: y is the smoother
    ("wave", 2, [16, 32, 64]), ("wave", 4, [32, 64, 128]),
    ("burgers", 2, [32, 64, 128]), ("burgers", 4, [32, 64, 128]),
])
def test_converges_at_its_order_under_refinement(name, order, cells):
    problem = {"heat": _heat, "wave": _wave, "burgers": _burgers}[name]()
    rates, errors = _rates(problem, cells, order)
    assert all(abs(r - order) < 0.3 for r in rates), (rates, errors)


@pytest.mark.parametrize("name, order, cells", [("heat", 4, 16), ("wave", 2, 16), ("burgers", 2, 64)])
def test_the_time_error_stays_well_below_the_space_error(name, order, cells):
    # The tolerance tied to the grid against 1e-9: the difference is the time error.
    problem = {"heat": _heat, "wave": _wave, "burgers": _burgers}[name]()
    truth = problem.eval_values[:, :1]
    preds = []
    for rtol in (None, 1e-9):
        mol = MethodOfLines(in_dim=problem.in_dim, n=cells, order=order, rtol=rtol)
        field = mol.result_field()
        mol.solve(field, problem)
        preds.append(problem.predict(field, problem.eval_x))
    time_error, space_error = (float((a - b).norm() / truth.norm()) for a, b in ((preds[0], preds[1]), (preds[1], truth)))
    assert time_error < 0.1 * space_error, (time_error, space_error)


@pytest.mark.parametrize("residual, space, order", [
    ("u_t - 0.1*u_xx + u*u_x", {"x": [-1, 1]}, 2),
    ("u_t - u_xx - u_yy - 0.3*u_xy + x*u*u_y - sin(t)*u^2", {"x": [0, 1], "y": [0, 2]}, 4),
    ("(1 + u^2)*u_t - u_xx", {"x": [0, 1]}, 4),
    ("u_tt + 0.2*u*u_t - u_xx + u^3", {"x": [0, 1]}, 2),
])
def test_the_jacobian_is_the_derivative_of_the_right_hand_side(residual, space, order):
    second = "u_tt" in residual
    conditions = {"initial": {"type": "initial", "value": "sin(x)"}, "walls": {**WALLS, "value": "cos(x + t)"}}
    if second:
        conditions["rate"] = {"type": "initial_rate", "value": 0}
    problem = _problem(residual, None, space, conditions=conditions)
    form = TimeForm(problem)
    lines = Lines(form, problem, [7] * len(space), order)
    y = np.random.default_rng(0).normal(size=lines.size * (2 if second else 1))
    J = lines.jacobian(0.3, y).toarray()
    eps = 1e-6
    fd = np.stack([(lines.rhs(0.3, y + eps * e) - lines.rhs(0.3, y - eps * e)) / (2 * eps) for e in np.eye(y.size)], 1)
    assert np.abs(J - fd).max() < 1e-6 * np.abs(fd).max(), np.abs(J - fd).max()
    assert not form.constant_jacobian


def test_a_linear_equation_with_constant_coefficients_has_a_constant_jacobian():
    assert TimeForm(_heat()).constant_jacobian and TimeForm(_wave()).constant_jacobian
    assert not TimeForm(_problem("u_t - exp(-t)*u_xx", "sin(pi*x)")).constant_jacobian


def test_time_dependent_dirichlet_values_are_met():
    # u = exp(-t)·cos(x) solves u_t = u_xx; its walls move with it.
    exact = "exp(-t)*cos(x)"
    conditions = {"initial": {"type": "initial", "value": "cos(x)"}, "walls": {**WALLS, "value": exact}}
    problem = _problem("u_t - u_xx", None, {"x": [0, 2]}, conditions=conditions, exact={"u": exact},
                       evaluation={"resolution": 41, "times": 5})
    rates, errors = _rates(problem, [8, 16, 32], 2)
    assert errors[-1] < 1e-4 and all(abs(r - 2) < 0.3 for r in rates), (rates, errors)


def _refusal(problem) -> str:
    with pytest.raises(ConfigError) as info:
        MethodOfLines(in_dim=problem.in_dim).check(None, problem)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 200, msg
    return msg


@pytest.mark.parametrize("make, words", [
    (lambda: _problem("u_xx + u_yy", None, {"x": [0, 1], "y": [0, 1]}, None, conditions={"walls": WALLS}),
     "time-dependent"),
    (lambda: _problem("u_t - u_xx", "0", conditions={"initial": {"type": "initial", "value": 0},
                      "n": {"type": "neumann", "piece": "box", "value": 0}}),
     "solver=mol takes Dirichlet, initial and initial_rate conditions; conditions.n is neumann"),
    (lambda: _problem("u_t - u_xx", "0", conditions={"initial": {"type": "initial", "value": 0},
                      "p": {"type": "periodic", "axis": "x"}}), "conditions.p is periodic"),
    (lambda: _problem("u_t - u_xx", "0", conditions={"initial": {"type": "initial", "value": 0},
                      "left": {**WALLS, "piece": "x_min"}}), "x_max has none"),
    (lambda: _problem("u_t - u_xx", "0", conditions={"walls": WALLS}), "needs an initial condition"),
    (lambda: _problem("u_tt - u_xx", "0"), "needs an initial_rate condition"),
    (lambda: _problem("u_t - u_xx", "0", conditions={"initial": {"type": "initial", "value": 0}, "walls": WALLS,
                      "rate": {"type": "initial_rate", "value": 0}}), "conditions.rate is one for an equation first"),
    (lambda: _problem("u_t - u_xx", None, conditions={"initial": {"type": "initial", "value": "sin(pi*x)", "hard": True},
                      "walls": WALLS}), "makes some exact"),
    (lambda: _problem("u_t - u_xt", "0"), "mixed space-time derivative; residuals.pde has u_xt"),
    (lambda: _problem("u_t^2 - u_xx", "0"), "not linear in it"),
    (lambda: EquationProblem(unknowns=["u", "v"], domain={"space": {"x": [0, 1]}, "time": {"t": [0, 1]}},
                             residuals={"a": "u_t - v", "b": "v_t - u"}, batch_size=64), "one real unknown"),
    (lambda: EquationProblem(unknowns=["u"], residuals={"pde": "u_t - u_xx - u_yy"}, domain=HOLED, batch_size=64,
                             evaluation={"resolution": 9, "times": 3}), "domain has holes"),
])
def test_refusals_are_one_line(make, words):
    assert words in _refusal(make())


def test_bad_settings_name_their_key():
    with pytest.raises(ConfigError) as info:
        build(compose_cfg(["pde=wave1d", "solver=mol", "solver.n=[[16,8]]"]))
    assert info.value.key == "solver.n" and "\n" not in str(info.value), str(info.value)
    for option, words in ((dict(n=[4]), "at least 5 cells"), (dict(n=[]), "a list of grids"),
                          (dict(order=3), "one of (2, 4)"), (dict(method="RK45"), "auto, BDF, Radau"),
                          (dict(rtol=2.0), "in (0, 1)")):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
            MethodOfLines(**option)
        assert info.value.key == next(iter(option)) and "\n" not in str(info.value)


def test_train_runs_a_refinement_sequence_each_solve_timed_alone(tmp_path):
    cfg = compose_cfg(["pde=wave1d", "solver=mol", "solver.n=[16,32]", "solver.order=4"])
    metrics = train(cfg, output_dir=str(tmp_path))
    history = metrics["history"]
    assert metrics["classical"] and metrics["model"] == "MethodOfLines" and metrics["steps"] == 2
    assert metrics["params"] == 31  # the finest grid's interior nodes
    errors = [h["l2re"] for h in history]
    assert errors[0] == 1.0 and errors[1] > 10 * errors[2] and errors[2] < 1e-3, errors
    assert sum(h["train_time_s"] for h in history[1:]) <= metrics["train_time_s"] + 1e-9
    assert (tmp_path / "wave1d.png").exists()


def test_a_problems_best_settings_do_not_stop_the_classical_run(tmp_path):
    """pde=burgers1d's best settings name Gauss–Newton's options; solver=mol solves regardless."""
    cfg = compose_cfg(["pde=burgers1d", "solver=mol", "solver.n=[256]", "solver.order=2"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["status"] == "completed" and metrics["classical"] and metrics["l2re"] < 0.1


def test_probes_off_the_grid_and_zero_before_a_solve():
    problem = _heat()
    mol = MethodOfLines(in_dim=3, n=[[16, 8]])
    field = mol.result_field()
    x = torch.tensor([[0.31, 0.52, 0.123], [0.0, 0.5, 0.0], [0.77, 0.0, 0.4]], dtype=torch.float64)
    assert torch.equal(field(x), torch.zeros(3, 1, dtype=torch.float64))
    mol.solve(field, problem)
    truth = problem.reference.exact_values(x)
    assert torch.allclose(field(x), truth, atol=5e-3) and abs(field(x)[2, 0]) < 1e-12  # on a wall: its value


def test_its_own_grid_is_written_for_paraview(tmp_path):
    """The x–t image over the method's own nodes, and a 2D problem's snapshots with a .pvd: the
    values are the solution at its nodes, the error the exact solution's difference."""
    import pyvista as pv

    from dinf.app.vtk import export_grid, image_axes

    for problem, cells, name in ((_burgers(), [32], "b"), (_heat(), [[8, 8]], "h")):
        mol = MethodOfLines(in_dim=problem.in_dim, n=cells, order=2)
        field = mol.result_field()
        mol.solve(field, problem)
        paths = export_grid(mol, problem, str(tmp_path), snapshots=3, name=name)
        images = [p for p in paths if p.endswith(".vti")]
        assert len(paths) == (1 if name == "b" else 4)
        for k, path in enumerate(images):
            dims, origin, spacing = image_axes(path)
            axes = [o + s * np.arange(d) for d, o, s in zip(dims, origin, spacing)]
            z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
            pts = np.stack([x.ravel(), y.ravel()], 1)
            if name == "h":  # a snapshot: time from the series
                pts = np.concatenate([pts, np.full((len(pts), 1), 0.25 * k)], 1)
            image = pv.read(path)
            x = torch.as_tensor(pts)
            assert np.allclose(image["u"], mol.probe(x).numpy()[:, 0], atol=1e-10)  # the spline meets its nodes
            assert np.allclose(image["error_u"], image["u"] - problem.reference.exact_values(x).numpy()[:, 0],
                               atol=1e-10)
        assert len(axes[0]) == (33 if name == "b" else 9)  # the method's nodes, ends included
