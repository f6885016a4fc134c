"""Coefficient tables (dinf/equations/tables.py, dinf/pdes/tables.py): PINNacle's Poisson2d-MS
block coefficient and block source against PINNacle's own formula, interpolated tables against
the functions they sample, tables in least-squares rows and compiled residuals, and one clear
line for each mistake."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dinf.equations import Vocabulary, parse
from dinf.equations.evaluate import evaluate, evaluate_tree
from dinf.errors import ConfigError
from dinf.pdes.equation_problem import SEARCH_DIRS, EquationProblem
from dinf.pdes.tables import read_functions
from tests.test_equations import Exact

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = torch.tensor([[-10.0, 10.0], [-10.0, 10.0]], dtype=torch.float64)
MS = {  # conf/pde/poisson2d_ms.yaml's tables and source
    "a": {"table": "poisson_a_coef.dat", "blocks": {"x": 5, "y": 5}},
    "c00": {"table": "poisson_f_coef.dat", "shape": [5, 5, 2, 2], "select": [0, 0], "blocks": {"x": 5, "y": 5}},
    "c11": {"table": "poisson_f_coef.dat", "shape": [5, 5, 2, 2], "select": [1, 1], "blocks": {"x": 5, "y": 5}},
    "f": "c00 + c11*abs(sin(pi*(x + 10)/4))*abs(sin(pi*(y + 10)/4))",
}


def _pinnacle(x: float, y: float):
    """PINNacle's Poisson2D_ManyArea a(x) and f(x), as its src/pde/poisson.py computes them."""
    a_cof = np.loadtxt(ROOT / "data/pinnacle/poisson_a_coef.dat")
    f_cof = np.loadtxt(ROOT / "data/pinnacle/poisson_f_coef.dat").reshape(5, 5, 2, 2)
    bbox = [-10, 10, -10, 10]
    block_size = np.array([(bbox[1] - bbox[0] + 2e-5) / 5, (bbox[3] - bbox[2] + 2e-5) / 5])
    p = np.array([x, y])
    reduced = p - np.array(bbox[::2]) + 1e-5
    dom = np.floor(reduced / block_size).astype("int32")
    res = reduced - dom * block_size
    coef = f_cof[dom[0], dom[1]]
    f = coef[0, 0]
    for i in range(2):
        for j in range(2):
            tmp = np.sin(np.pi * np.array((i, j)) * (res / block_size))
            f += coef[i, j] * tmp[0] * tmp[1]
    return a_cof[dom[0], dom[1]], f


def _expr(text: str, functions):
    return parse(text, Vocabulary(["u"], ["x", "y"], {}, functions), "test")


# Block borders (−6, −2, 2, 6), corners, the domain's far edges and points inside blocks. A point
# on a border takes the upper block's value. PINNacle's borders sit up to 6e-6 off the nominal ones
# (blocks 4.000004 wide from −10.00001), so on the borders it is compared just above them.
POINTS = [(-10, -10), (-6, -10), (-6.001, 3.3), (-2, -2), (0.5, 7.9), (2, 6), (6, 9.999), (9.999, 9.999),
          (10, 10), (-9.5, 4.2), (3.1, -8.7), (-5.999, -6.0)]
BORDERS = (-6, -2, 2, 6)


def _above_border(v: float) -> float:
    return v + 1e-4 if v in BORDERS else v


def test_poisson2d_ms_tables_match_pinnacle_at_hand_picked_points():
    fns = read_functions(MS, ["x", "y"], BOUNDS, SEARCH_DIRS)
    a, f = _expr("a", fns), _expr("f", fns)
    x = torch.tensor([p[0] for p in POINTS], dtype=torch.float64)
    y = torch.tensor([p[1] for p in POINTS], dtype=torch.float64)
    got_a, got_f = evaluate(a, {"x": x, "y": y}, x), evaluate(f, {"x": x, "y": y}, x)
    for k, p in enumerate(POINTS):
        want_a, want_f = _pinnacle(*map(_above_border, p))
        assert float(got_a[k]) == want_a, p
        # Its sines are of coordinates up to 1e-4 off ours (the nudge, its offsets).
        assert float(got_f[k]) == pytest.approx(want_f, abs=1e-3 * max(1.0, abs(want_f))), p
    # The walk and the compiled code agree bit for bit, in float32 too.
    assert torch.equal(got_f, evaluate_tree(f, {"x": x, "y": y}, x))
    x32, y32 = x.float(), y.float()
    assert evaluate(a, {"x": x32, "y": y32}, x32).dtype == torch.float32


def test_gridded_and_scattered_tables_reproduce_what_they_sample(tmp_path):
    nx, ny = np.linspace(0, 1, 41), np.linspace(0, 2, 81)
    X, Y = np.meshgrid(nx, ny, indexing="ij")
    np.savetxt(tmp_path / "grid.dat", np.sin(X) * np.cos(Y))
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0], [1, 2], size=(4000, 2))
    np.savetxt(tmp_path / "scatter.csv", np.c_[pts, pts[:, 0] + 2 * pts[:, 1]], delimiter=",")
    bounds = torch.tensor([[0.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    fns = read_functions({"g": {"table": "grid.dat", "grid": {"x": [0, 1], "y": [0, 2]}, "method": "cubic"},
                          "s": {"table": "scatter.csv", "scattered": ["x", "y"]}}, ["x", "y"], bounds, [tmp_path])
    x = torch.tensor([0.0, 0.31, 0.77, 1.0, 1.5], dtype=torch.float64)  # 1.5: outside, the border's value
    y = torch.tensor([0.0, 1.23, 0.05, 2.0, 1.0], dtype=torch.float64)
    g = evaluate(_expr("g", fns), {"x": x, "y": y}, x)
    want = torch.sin(x.clamp(0, 1)) * torch.cos(y)
    torch.testing.assert_close(g, want, atol=1e-6, rtol=0)
    s = evaluate(_expr("s", fns), {"x": x[1:3], "y": y[1:3]}, x[1:3])  # linear data: exact inside the hull
    torch.testing.assert_close(s, x[1:3] + 2 * y[1:3], atol=1e-10, rtol=0)


def _ms_problem(**kw) -> EquationProblem:
    spec = dict(unknowns=["u"], domain={"space": {"x": [-10, 10], "y": [-10, 10]}}, functions=MS,
                residuals={"pde": "a*(u_xx + u_yy) + f"},
                conditions={"r": {"type": "robin", "piece": "box", "a": 1, "b": 1, "value": "c11"}},
                reference={"exact": {"u": "x"}}, evaluation={"resolution": 9}, batch_size=400)
    spec.update(kw)
    return EquationProblem(**spec)


def test_tables_reach_least_squares_rows_and_conditions():
    p = _ms_problem()
    batch = p.sample(400, torch.Generator().manual_seed(0))
    field = Exact(lambda x: torch.sin(x[:, :1] / 3) * torch.cos(x[:, 1:] / 5), 2, 1)
    jet = field.jet(batch.data["x64"], 2)
    system = p.linear_system(batch)
    assert float(system.loss(jet)) == pytest.approx(float(p.loss(jet, batch)["loss"]), rel=1e-10)


def test_piecewise_coefficient_reaches_least_squares():
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1], "z": [0, 1]}},
                        functions={"k2": "where(z < 0.5, 64, 100)"}, residuals={"pde": "-(u_xx + u_zz) + k2*u - 1"},
                        conditions={"n": {"type": "neumann", "piece": "box", "value": 0}},
                        reference={"exact": {"u": "x"}}, evaluation={"resolution": 9}, batch_size=300)
    batch = p.sample(300, torch.Generator().manual_seed(1))
    field = Exact(lambda x: torch.exp(x[:, :1]) * x[:, 1:] ** 2, 2, 1)
    jet = field.jet(batch.data["x64"], 2)
    system = p.linear_system(batch)
    assert float(system.loss(jet)) == pytest.approx(float(p.loss(jet, batch)["loss"]), rel=1e-10)
    # The coefficient of u really jumps at z = 0.5: rows' value coefficients are 64 or 100 there.
    inner = batch.data["sizes"][0]
    z = batch.data["x64"][:inner, 1]
    coef_u = system.coef[:inner, 0, 0, 0] * math.sqrt(inner)
    assert torch.allclose(coef_u, torch.where(z < 0.5, 64.0, 100.0).double())


@pytest.mark.parametrize("functions, key, words", [
    ({"a": {"table": "no_such.dat", "blocks": {"x": 5, "y": 5}}}, "functions.a.table", "no such file"),
    ({"a": {"values": [[1, 2], [3, 4]], "blocks": {"x": 5, "y": 5}}}, "functions.a.blocks.x", "asks for 5 blocks"),
    ({"a": {"values": [1, 2, 3], "blocks": {"x": 2, "y": 2}}}, "functions.a", "has shape 3"),
    ({"a": {"values": [[1, 2], [3, 4]], "blocks": {"x": [-10, 0, 8], "y": 2}}}, "functions.a.blocks.x",
     "the domain's x is [-10, 10]"),
    ({"a": {"table": "poisson_f_coef.dat", "shape": [5, 5, 4], "blocks": {"x": 5, "y": 5}}}, "functions.a",
     "need 2 axes"),
    ({"a": {"table": "poisson_f_coef.dat", "shape": [5, 5, 5], "blocks": {"x": 5, "y": 5}}}, "functions.a.shape",
     "needs 125 values; the table has 100"),
    ({"a": {"values": [[1, 2], [3, 4]], "blocks": {"x": 2, "q": 2}}}, "functions.a.blocks.q", "not a coordinate"),
    ({"a": {"values": [[1, 2], [3, 4]]}}, "functions.a", "exactly one of blocks, grid, scattered"),
    ({"a": {"values": [[1, 2], [3, 4]], "blocks": {"x": 2, "y": 2}, "size": 3}}, "functions.a.size", "not an option"),
])
def test_bad_tables_are_one_clear_line(functions, key, words):
    with pytest.raises(ConfigError) as err:
        read_functions(functions, ["x", "y"], BOUNDS, SEARCH_DIRS)
    assert err.value.key == key, str(err.value)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_table_of_a_coordinate_the_problem_lacks_is_refused():
    with pytest.raises(ConfigError, match="not a coordinate"):
        _ms_problem(domain={"space": {"x": [-10, 10], "z": [-10, 10]}},
                    residuals={"pde": "u_xx + u_zz"}, conditions={})


def test_pictures_read_a_long_reference_file_on_its_nearest_slice(tmp_path):
    # A space-time file (x, y, t, u) with snapshots: the picture at t = 0.5 reads the t = 0.5 rows
    # and interpolates in x, y only (no Delaunay triangulation in three coordinates).
    from dinf.pdes.equation_pictures import reference_at

    g = np.linspace(0, 1, 21)
    X, Y, T = (a.ravel() for a in np.meshgrid(g, g, [0.0, 0.5, 1.0], indexing="ij"))
    np.savez(tmp_path / "ref.npz", x=X, y=Y, t=T, u=np.sin(X) * np.cos(Y) * (1 + T))
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1], "y": [0, 1]}, "time": {"t": [0, 1]}},
                        residuals={"pde": "u_t - u_xx"}, reference={"file": str(tmp_path / "ref.npz")}, batch_size=64)
    x = torch.rand(200, 3, dtype=torch.float64)
    x[:, 2] = 0.5
    got = reference_at(p, x, {2: 0.49})[:, 0]
    want = (torch.sin(x[:, 0]) * torch.cos(x[:, 1]) * 1.5).numpy()
    assert np.abs(got - want).max() < 2e-3  # linear interpolation on a 0.05 grid
