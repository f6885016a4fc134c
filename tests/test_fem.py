"""solver=fem: finite elements on config problems converge at their order; the pipeline runs them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("skfem")

from dinf.solvers.classical.fem import FiniteElements  # noqa: E402
from dinf.errors import ConfigError  # noqa: E402
from dinf.pdes.equation_problem import EquationProblem  # noqa: E402
from dinf.app.run import build, train  # noqa: E402
from tests.helpers import compose_cfg  # noqa: E402

SQUARE = {"space": {"x": [0, 1], "y": [0, 1]}}
SINE = "sin(pi*x)*sin(pi*y)"


def _problem(residual, exact, domain=SQUARE, walls=None, **extra):
    conditions = {"walls": {"type": "dirichlet", "piece": "boundary", "value": walls or exact}}
    extra.setdefault("evaluation", {"resolution": 41})
    return EquationProblem(unknowns=["u"], domain=domain, residuals={"pde": residual}, conditions=conditions,
                           reference={"exact": {"u": exact}}, batch_size=64, **extra)


def _error(problem, h, order):
    fe = FiniteElements(in_dim=problem.in_dim, h=h, order=order)
    field = fe.result_field()
    info = fe.solve(field, problem)
    assert info["loss"] < 1e-9  # the linear system is solved
    return problem.evaluate(field)["l2re"]


def _orders(problem, hs, order):
    errors = [_error(problem, h, order) for h in hs]
    return [math.log(a / b) / math.log(h0 / h1) for a, b, h0, h1 in zip(errors, errors[1:], hs, hs[1:])], errors


@pytest.mark.parametrize("order", [1, 2])
def test_poisson_on_the_square_converges_at_the_elements_order(order):
    p = _problem(f"u_xx + u_yy + 2*pi**2*{SINE}", SINE)
    rates, errors = _orders(p, [1 / 8, 1 / 16, 1 / 32], order)
    assert all(abs(r - (order + 1)) < 0.3 for r in rates), (rates, errors)


def test_an_indefinite_reaction_term_converges_too():
    # u_xx + u_yy + 4u = (4 − 2π²) sin sin: not SPD, solved by LU.
    p = _problem(f"u_xx + u_yy + 4*u + (2*pi**2 - 4)*{SINE}", SINE)
    rates, errors = _orders(p, [1 / 8, 1 / 16, 1 / 32], 2)
    assert all(abs(r - 3) < 0.3 for r in rates), (rates, errors)


@pytest.mark.parametrize("order", [1, 2])
def test_a_domain_with_a_disk_hole_converges_with_curved_edges(order):
    pytest.importorskip("gmsh")
    domain = {"space": {"x": [-1, 1], "y": [-1, 1]}, "holes": {"disk": {"disk": {"center": [0.2, -0.1], "radius": 0.4}}}}
    p = _problem("u_xx + u_yy", "exp(x)*cos(y)", domain)  # harmonic, so the source is zero
    rates, errors = _orders(p, [0.2, 0.1, 0.05], order)
    assert all(abs(r - (order + 1)) < 0.35 for r in rates), (rates, errors)


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match="solver=fem solves steady problems"):
        build(compose_cfg(["pde=burgers1d", "solver=fem"]))
    with pytest.raises(ConfigError, match="solver=fem needs a linear equation"):
        FiniteElements().check(None, _problem("u_xx + u_yy + u*u_x", SINE))
    neumann = EquationProblem(unknowns=["u"], domain=SQUARE, residuals={"pde": "u_xx + u_yy"},
                              conditions={"n": {"type": "neumann", "piece": "boundary", "value": 0}}, batch_size=64)
    with pytest.raises(ConfigError, match="solver=fem takes Dirichlet conditions; conditions.n is neumann"):
        FiniteElements().check(None, neumann)
    with pytest.raises(ConfigError, match="solver.order: must be one of"):
        build(compose_cfg(["pde=poisson2d_c", "solver=fem", "solver.order=3"]))


def test_train_runs_it_as_one_solve_and_writes_its_metrics(tmp_path):
    pytest.importorskip("gmsh")
    cfg = compose_cfg(["pde=poisson2d_c", "solver=fem", "solver.h=0.05"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["steps"] == 1 and metrics["model"] == "FiniteElements"
    assert metrics["params"] > 1000  # its degrees of freedom
    assert metrics["l2re"] < 1e-3  # PINNacle's COMSOL file, from P2 at h = 0.05
    assert (tmp_path / "poisson2d_c.png").exists()
    assert np.isfinite(metrics["train_time_s"]) and metrics["history"][0]["step"] == 0


def test_a_resumed_run_solves_again_where_its_checkpoint_holds_no_solution(tmp_path):
    import json

    pytest.importorskip("gmsh")
    cfg = compose_cfg(["pde=poisson2d_c", "solver=fem", "solver.h=0.1"])
    first = train(cfg, output_dir=str(tmp_path))
    state = json.loads((tmp_path / "run_state.json").read_text())
    state.update(status="running", pid=0)  # as if killed after its solve, before its outputs
    (tmp_path / "run_state.json").write_text(json.dumps(state))
    again = train(cfg, output_dir=str(tmp_path))
    # Before: the resumed run scored the empty field (l2re 1).
    assert again["attempts"] == 2 and again["l2re"] == pytest.approx(first["l2re"], rel=1e-9)


@pytest.mark.parametrize("element, hs, order", [("morley", [1 / 4, 1 / 8, 1 / 16], 2), ("argyris", [1.0, 0.5, 0.25], 6)])
def test_plate_elements_converge_at_their_order_to_the_exact_plate(element, hs, order):
    # The sine load's deflection is one Navier term, exact: Morley's L2 order is 2, Argyris's (quintic) 6.
    from dinf.pdes.plate import KirchhoffPlate

    plate = KirchhoffPlate(load="sine", resolution=33)
    fe = FiniteElements(h=hs, plate_element=element)
    field = fe.result_field()
    errors = []
    for _ in hs:
        assert fe.solve(field, plate)["loss"] < 1e-9
        errors.append(plate.evaluate(field)["rel_l2"])
    rates = [math.log(a / b) / math.log(2) for a, b in zip(errors, errors[1:])]
    assert all(abs(r - order) < 0.5 for r in rates), (rates, errors)


def test_a_refinement_sequence_is_one_run_each_solve_timed_alone(tmp_path):
    cfg = compose_cfg(["pde=plate", "method=fem", "solver.h=[1.0,0.5,0.25]", "pde.resolution=33"])
    metrics = train(cfg, output_dir=str(tmp_path))
    history = metrics["history"]
    assert metrics["steps"] == 3 and [h["step"] for h in history] == [0, 1, 2, 3] and metrics["classical"]
    errors = [h["rel_l2"] for h in history]
    assert errors[0] == 1.0 and errors[1] > 10 * errors[2] > 100 * errors[3]  # each solve finer
    # Each point is that solve's own time, not the running total.
    assert sum(h["train_time_s"] for h in history[1:]) <= metrics["train_time_s"] + 1e-9
    assert metrics["time_to_target"]["rel_l2<=0.01"]["step"] == 1


@pytest.mark.parametrize("order", [1, 2])
def test_tetrahedra_on_the_cube_converge_at_the_elements_order(order):
    cube = {"space": {"x": [0, 1], "y": [0, 1], "z": [0, 1]}}
    exact = "sin(pi*x)*sin(pi*y)*sin(pi*z)"
    p = _problem(f"u_xx + u_yy + u_zz + 3*pi**2*{exact}", exact, cube, evaluation={"resolution": 14})  # off the nodes
    rates, errors = _orders(p, [1 / 4, 1 / 8], order)
    assert abs(rates[0] - (order + 1)) < 0.35, (rates, errors)


def test_an_stl_is_filled_with_tetrahedra_whose_boundary_is_its_triangles():
    pytest.importorskip("gmsh")
    from dinf.geometry.mesh import _boundary_of, _facet_keys
    from dinf.solvers.classical.fem import tetrahedralize

    problem, field, fem = build(compose_cfg(["pde=bracket", "solver=fem", "solver.h=1"]))
    region = problem.domain.mesh
    points, tets = tetrahedralize(region)
    assert np.array_equal(points[: len(region.points)], region.points.numpy())  # the STL's points first
    outer = _boundary_of(tets, 3, points)
    assert np.array_equal(np.sort(_facet_keys(outer, len(points))), np.sort(_facet_keys(region.facets.numpy(), len(points))))
    fem.solve(field, problem)
    xyz, kind, cells, values = fem.mesh_solution()
    assert kind == "tetra10" and len(cells) == len(tets)
    # VTK's quadratic tetrahedron: edge nodes at the midpoints of (0,1), (1,2), (0,2), (0,3), (1,3), (2,3).
    for k, (a, b) in enumerate([(0, 1), (1, 2), (0, 2), (0, 3), (1, 3), (2, 3)]):
        assert np.allclose(xyz[cells[:, 4 + k]], (xyz[cells[:, a]] + xyz[cells[:, b]]) / 2, atol=1e-14)
    exact = problem.reference.exact_values(torch.as_tensor(xyz)).numpy()[:, 0]
    assert np.linalg.norm(values - exact) / np.linalg.norm(exact) < 5e-5  # measured 1.6e-5
    assert problem.evaluate(field)["l2re"] < 1e-4  # every evaluation point found its tetrahedron (4.2e-5)
