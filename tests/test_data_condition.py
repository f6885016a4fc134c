"""``type: data`` (observations): points from files, a lattice or seeded random draws; values from
expressions or files; seeded noise; the loss and its least-squares rows; a solve with data in
place of part of the walls; every refusal in one line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dinf.app.run import build
from dinf.errors import ConfigError
from dinf.pdes.conditions import Data
from dinf.pdes.equation_problem import SEARCH_DIRS, EquationProblem
from tests.helpers import compose_cfg
from tests.test_equations import Exact

EXACT = "sin(pi*x)*sin(pi*y)"
HEAT = {"space": {"x": [-1, 1], "y": [-1, 1]}, "time": {"t": [0, 1]}}


def _problem(observed, domain=None, unknowns=("u",)) -> EquationProblem:
    """Poisson on [0, 1]² (or ``domain``) with the one condition ``obs``."""
    return EquationProblem(unknowns=list(unknowns), domain=domain or {"space": {"x": [0, 1], "y": [0, 1]}},
                           residuals={"pde": " + ".join(f"{u}_xx" for u in unknowns)},
                           functions={"exact": EXACT}, params={"k": 2.0},
                           conditions={"obs": dict(observed, type="data")}, evaluation={"resolution": 5},
                           batch_size=256)


def _data(observed, **kw) -> Data:
    (c,) = _problem(observed, **kw).conditions
    return c


def _exact(x):
    return (torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1]))[:, None]


# --- points ---------------------------------------------------------------------------------------
def test_points_from_a_whitespace_dat_file_in_any_column_order(tmp_path):
    rows = np.array([[0.1, 0.2, 0.3], [0.5, 0.9, 1.0], [1.0, -1.0, 0.0]])  # (t, x, y) per row, no header
    np.savetxt(tmp_path / "pts.dat", rows)
    c = _data({"at": {"file": str(tmp_path / "pts.dat"), "columns": {"x": 1, "y": 2, "t": 0}}, "value": {"u": "x + 10*t"}},
              domain=HEAT)
    torch.testing.assert_close(c.at, torch.tensor(rows[:, [1, 2, 0]]))
    torch.testing.assert_close(c.observed[:, 0], torch.tensor(rows[:, 1] + 10 * rows[:, 0]))
    assert c.points == 3 and c.fixed_points and c.quantities == ["u"]
    x, normal = c.sample(None, 999, torch.Generator())
    assert x is c.at and normal is None


@pytest.mark.parametrize("name", ["obs.csv", "obs.txt", "obs.npz"])
def test_named_columns_from_csv_comsol_text_and_npz(tmp_path, name):
    table = np.array([[0.25, 0.5, 7.0], [0.75, 0.0, 8.0]])  # x, y, u
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("x,y,u\n" + "\n".join(",".join(map(str, r)) for r in table))
    elif name.endswith(".txt"):  # COMSOL: % lines, the last naming the columns
        path.write_text("% Model: p.mph\n% Nodes: 2\n% x    y    u\n" + "\n".join("  ".join(map(str, r)) for r in table))
    else:
        np.savez(path, x=table[:, 0], y=table[:, 1], u=table[:, 2])
    c = _data({"at": {"file": str(path)}, "value": {"file": str(path), "columns": {"u": "u"}}})
    torch.testing.assert_close(c.at, torch.tensor(table[:, :2]))
    torch.testing.assert_close(c.observed[:, 0], torch.tensor(table[:, 2]))


def test_pinnacle_heatinv_points_by_name():
    name = "heatinv_points.dat"
    if not any((Path(d) / name).is_file() for d in SEARCH_DIRS):
        pytest.skip(f"{name} is not in data/pinnacle (its copy: ../shared/pinnacle/)")
    c = _data({"at": {"file": name, "columns": {"x": 0, "y": 1, "t": 2}}, "value": {"u": "exp(-t)*" + EXACT}}, domain=HEAT)
    assert c.at.shape == (2500, 3) and c.observed.shape == (2500, 1)


def test_lattice_is_pinnacles_linspace_with_ends_first_coordinate_fastest():
    c = _data({"at": {"lattice": {"x": 50, "y": 50}}, "value": {"u": "exact"}})
    g = np.linspace(0, 1, 50)  # PoissonInv's observation points
    gx, gy = np.meshgrid(g, g)
    torch.testing.assert_close(c.at, torch.tensor(np.stack((gx.reshape(-1), gy.reshape(-1))).T))
    torch.testing.assert_close(c.observed, _exact(c.at))
    # in space-time every coordinate; points in a hole are left out
    holed = {"space": {"x": [-1, 1], "y": [-1, 1]}, "holes": {"h": {"disk": {"center": [0, 0], "radius": 0.5}}},
             "time": {"t": [0, 1]}}
    c = _data({"at": {"lattice": {"x": 11, "y": 11, "t": 3}}, "value": {"u": 1}}, domain=holed)
    g = np.linspace(-1, 1, 11)
    outside_hole = int((g[:, None] ** 2 + g[None, :] ** 2 > 0.25).sum())
    assert len(c.at) == 3 * outside_hole and bool((c.at[:, :2].norm(dim=1) > 0.5).all())
    assert sorted(set(c.at[:, 2].tolist())) == [0.0, 0.5, 1.0]


def test_random_points_are_seeded_uniform_and_inside():
    holed = {"space": {"x": [-1, 1], "y": [-1, 1]}, "holes": {"h": {"disk": {"center": [0, 0], "radius": 0.5}}}}
    spec = {"at": {"random": 4000, "seed": 3}, "value": {"u": "x*y"}}
    a, b = _data(spec, domain=holed), _data(spec, domain=holed)
    other = _data({**spec, "at": {"random": 4000, "seed": 4}}, domain=holed)
    torch.testing.assert_close(a.at, b.at, rtol=0, atol=0)
    assert not torch.equal(a.at, other.at) and a.at.shape == (4000, 2)
    assert bool((a.at.abs() <= 1).all()) and bool((a.at.norm(dim=1) > 0.5).all())
    assert abs(float((a.at[:, 0] > 0).double().mean()) - 0.5) < 0.03  # uniform: half on each side
    torch.testing.assert_close(a.observed[:, 0], a.at[:, 0] * a.at[:, 1])


# --- values and noise -------------------------------------------------------------------------------
def test_values_from_expressions_of_functions_and_params_for_a_value_and_a_derivative():
    c = _data({"at": {"lattice": {"x": 4, "y": 3}}, "value": {"u": "k*exact", "u_x": "pi*cos(pi*x)"}})
    assert c.quantities == ["u", "u_x"]
    torch.testing.assert_close(c.observed, torch.stack([2 * _exact(c.at)[:, 0], math.pi * torch.cos(math.pi * c.at[:, 0])], 1))


def test_values_from_a_file_with_the_points_rows(tmp_path):
    np.savetxt(tmp_path / "obs.csv", np.array([[9.0, 1.5], [9.0, 2.5], [9.0, 3.5], [9.0, 4.5]]), delimiter=",")
    c = _data({"at": {"lattice": {"x": 2, "y": 2}}, "value": {"file": str(tmp_path / "obs.csv"), "columns": {"u": 1}}})
    assert c.observed[:, 0].tolist() == [1.5, 2.5, 3.5, 4.5]


def test_noise_is_seeded_gaussian_of_the_given_sigma():
    spec = {"at": {"random": 10000, "seed": 0}, "value": {"u": "exact"}, "noise": {"sigma": 0.1, "seed": 7}}
    a, b = _data(spec), _data(spec)
    clean = _exact(a.at)
    noise = (a.observed - clean)[:, 0]
    torch.testing.assert_close(a.observed, b.observed, rtol=0, atol=0)
    assert float(noise.std()) == pytest.approx(0.1, rel=0.03)
    assert abs(float(noise.mean())) < 4 * 0.1 / math.sqrt(10000)
    c = _data({**spec, "noise": {"sigma": 0.1, "seed": 8}})
    assert not torch.equal(a.observed, c.observed)
    torch.testing.assert_close(_data({**spec, "noise": {"sigma": 0, "seed": 1}}).observed, clean)


# --- loss and rows ----------------------------------------------------------------------------------
FIELD = Exact(lambda x: torch.sin(3 * x[:, :1]) * torch.exp(x[:, 1:]) + x[:, :1] * x[:, 1:], 2, 1)


def test_the_loss_is_weight_times_the_mean_squared_misfit():
    p = _problem({"at": {"random": 300, "seed": 1}, "value": {"u": "exact", "u_y": "x"},
                  "noise": {"sigma": 0.05, "seed": 0}, "weight": 3.5})
    c = p.conditions[0]
    batch = p.sample(400, torch.Generator().manual_seed(0))
    jet = FIELD.jet(batch.data["x64"], 2)
    x = c.at
    u = FIELD(x)[:, 0]
    u_y = torch.sin(3 * x[:, 0]) * torch.exp(x[:, 1]) + x[:, 0]
    want = 3.5 * ((u - c.observed[:, 0]) ** 2 + (u_y - c.observed[:, 1]) ** 2).mean()
    assert float(p.loss(jet, batch)["loss_obs"].detach()) == pytest.approx(float(want.detach()), rel=1e-12)


def test_linear_and_linearised_rows_reproduce_the_loss():
    p = _problem({"at": {"lattice": {"x": 7, "y": 5}}, "value": {"u": "exact", "u_x": "y"},
                  "noise": {"sigma": 0.1, "seed": 0}, "weight": 4})
    batch = p.sample(300, torch.Generator().manual_seed(0))
    jet = FIELD.jet(batch.data["x64"], 2)
    loss = float(p.loss(jet, batch)["loss"])
    assert float(p.linear_system(batch).loss(jet)) == pytest.approx(loss, rel=1e-9)
    assert float(p.linearized_system(batch, jet).loss(jet)) == pytest.approx(loss, rel=1e-9)


def test_least_squares_with_data_in_place_of_two_walls_recovers_the_exact_solution():
    # Helmholtz with u = sin(πx)·sin(πy) on [−1, 1]²: Dirichlet on x = ±1, and on y = ±1 observations
    # of the exact u on a 41 × 2 lattice (its y ends are the walls) instead of a Dirichlet condition.
    base = ["pde=helmholtz_manufactured_eq", "pde.params.a=1", "solver=least_squares", "grid.levels=1",
            "grid.resolution=[16,16]", "kernel.eps=0.7", "kernel.rho=5", "solver.points=6000",
            "pde.evaluation.resolution=33"]
    walls = ["~pde.conditions.edges", "+pde.conditions.left={type: dirichlet, piece: x_min, value: 0}",
             "+pde.conditions.right={type: dirichlet, piece: x_max, value: 0}"]
    errors = {}
    for name, extra in (("dirichlet", []), ("data", walls + [
            "+pde.conditions.obs={type: data, at: {lattice: {x: 41, y: 2}}, value: {u: exact}, weight: 100}"])):
        problem, field, solver = build(compose_cfg(base + extra))
        solver.solve(field, problem, torch.Generator().manual_seed(0))
        errors[name] = problem.evaluate(field)["l2re"]
    assert isinstance(problem.conditions[-1], Data)
    assert errors["data"] < 5e-4 and errors["data"] < 1.5 * errors["dirichlet"], errors


# --- refusals -----------------------------------------------------------------------------------------
def _refused(tmp_path):
    np.savetxt(tmp_path / "p.dat", np.array([[0.5, 0.5], [0.2, 0.3], [2.0, 0.1], [0.1, -3.0]]))
    np.savetxt(tmp_path / "v.dat", np.array([[1.0], [2.0]]))
    np.savetxt(tmp_path / "in.dat", np.array([[0.5, 0.5], [0.2, 0.3]]))
    lat = {"lattice": {"x": 3, "y": 3}}
    return [
        ({"at": {"file": "no_such_file.dat"}, "value": {"u": 0}}, r"conditions.obs.at.file: no such file 'no_such_file.dat'"),
        ({"at": {"file": str(tmp_path / "in.dat"), "columns": {"x": 0, "y": 5}}, "value": {"u": 0}},
         r"conditions.obs.at.columns.y: column 5 is out of range: in.dat has 2 columns \(0 … 1\)"),
        ({"at": {"file": str(tmp_path / "in.dat")}, "value": {"file": str(tmp_path / "v.dat"), "columns": {"u": 2}}},
         r"conditions.obs.value.columns.u: column 2 is out of range"),
        ({"at": lat, "value": {"file": str(tmp_path / "v.dat"), "columns": {"u": 0}}},
         r"conditions.obs.value.file: v.dat has 2 rows; there are 9 points"),
        ({"at": lat, "value": {"w": 0}}, r"conditions.obs.value.w: 'w' is not an unknown or a derivative of one"),
        ({"at": lat, "value": {"u_q": 0}}, r"conditions.obs.value.u_q: .*unknown derivative 'u_q'"),
        ({"at": lat, "value": {"u": 0}, "noise": {"sigma": -0.1, "seed": 0}},
         r"conditions.obs.noise.sigma: must be a number >= 0, got -0.1"),
        ({"at": lat, "value": {"u": 0}, "noise": {"sigma": 0.1}}, r"conditions.obs.noise.seed: noise needs an integer seed"),
        ({"at": {"file": str(tmp_path / "p.dat")}, "value": {"u": 0}},
         r"conditions.obs.at.file: 2 of 4 points of p.dat lie outside the domain \(the first: x=2, y=0.1\)"),
        ({"value": {"u": 0}}, r"conditions.obs.at: a data condition needs its points: give at: \{file"),
        ({"at": {"grid": 3}, "value": {"u": 0}}, r"conditions.obs.at: grid is not a form of at: give at:"),
        ({"at": {"lattice": {"x": 3}}, "value": {"u": 0}}, r"conditions.obs.at.lattice: give the number of points along "
                                                           r"every coordinate \(x, y\)"),
        ({"at": {"random": 10}, "value": {"u": 0}}, r"conditions.obs.at.seed: random points need an integer seed"),
        ({"at": lat}, r"conditions.obs.value: give \{u: expression\} per observed quantity"),
        ({"at": lat, "value": {"u": 0}, "points": 5}, r"conditions.obs.points: a data condition uses all its observations"),
        ({"at": lat, "value": {"u": 0}, "nosie": 1}, r"conditions.obs.nosie: not an option of a condition"),
        ({"at": lat, "value": {"u": 0}, "sigma": -1}, r"conditions.obs.sigma: the observations' noise level, a number"),
        ({"at": lat, "value": {"u": 0}, "sigma": 0.1, "noise": {"sigma": 0.1, "seed": 0}},
         r"conditions.obs.sigma: noise: \{sigma: …\} gives the noise added and its level; leave sigma out"),
    ]


def test_a_known_noise_level_without_added_noise():
    c = _data({"at": {"lattice": {"x": 3, "y": 3}}, "value": {"u": "exact"}, "sigma": 0.05})
    assert c.sigma == 0.05 and torch.allclose(c.observed, _exact(c.at), atol=1e-12)


def test_noise_and_sigma_belong_to_observations_only():
    with pytest.raises(ConfigError, match=r"conditions.obs.sigma: is an option of observations \(type: data\), "
                                          r"not of a dirichlet condition"):
        EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1]}}, residuals={"pde": "u_xx"},
                        conditions={"obs": {"type": "dirichlet", "piece": "box", "value": 0, "sigma": 0.1}})


def test_each_mistake_is_one_line(tmp_path):
    for spec, message in _refused(tmp_path):
        with pytest.raises(ConfigError, match=message) as err:
            _problem(spec)
        assert "\n" not in str(err.value), str(err.value)
