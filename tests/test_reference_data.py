"""Reference files (COMSOL exports, CSV, NPZ), their mapping onto a problem, and the L2RE."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dinf.errors import ConfigError
from dinf.pdes.reference_data import (
    ReferenceData, l2re, load_reference, max_abs_error, read_comsol, read_table,
)

PINNACLE = Path(__file__).resolve().parents[1] / "data" / "pinnacle"

STEADY_2D = """\
% Model:              test.mph
% Version:            COMSOL 6.0.0.354
% Dimension:          2
% Nodes:              3
% Expressions:        2
% Description:        因变量 u, v
% Length unit:        m
% X                       Y                        u (1)                    v (1)
0                         0                        1.5                      -2
1                         -0.25                    2.5E-1                   3
0.5                       1                        0                        4e2
"""

WIDE_1D = """\
% Model:              wide.mph
% Dimension:          1
% Nodes:              3
% X                       u (1) @ t=0              u (1) @ t=0.5            u (1) @ t=1
-1                        0                        0                        0
0                         1                        2                        3
1                         4                        5                        6
"""

# Two outputs, snapshots interleaved: grouping must go by name, not by position.
WIDE_TWO = """\
% x                       u @ t=0                  v @ t=0                  u @ t=2                  v @ t=2
0                         1                        10                       2                        20
1                         3                        30                       4                        40
"""

UVP = """\
% Dimension:          2
% x                       y                        u @ Re=100               v @ Re=100               p @ Re=100
0                         0                        1                        2                        3
1                         0                        4                        5                        6
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- COMSOL --------------------------------------------------------------------------------


def test_steady_2d(tmp_path):
    ref = read_comsol(write(tmp_path, "s.dat", STEADY_2D))
    assert ref.coord_names == ["x", "y"]
    assert ref.dimension == 2 and ref.times is None
    np.testing.assert_array_equal(ref.coords, [[0, 0], [1, -0.25], [0.5, 1]])
    assert ref.coords.dtype == np.float64
    assert list(ref.values) == ["u", "v"]
    np.testing.assert_array_equal(ref.values["u"], [1.5, 0.25, 0.0])
    np.testing.assert_array_equal(ref.values["v"], [-2, 3, 400])
    assert ref.columns == {"u": "u (1)", "v": "v (1)"}
    assert ref.points() is ref.coords and ref.point_names() == ["x", "y"]
    np.testing.assert_array_equal(ref.points(order=["y", "x"]), ref.coords[:, ::-1])
    np.testing.assert_array_equal(ref.stacked(["v", "u"]), [[-2, 1.5], [3, 0.25], [400, 0]])


def test_wide_1d_node_major(tmp_path):
    ref = read_comsol(write(tmp_path, "w.txt", WIDE_1D))
    assert ref.coord_names == ["x"] and ref.dimension == 1
    np.testing.assert_array_equal(ref.times, [0, 0.5, 1])
    np.testing.assert_array_equal(ref.coords[:, 0], [-1, 0, 1])
    np.testing.assert_array_equal(ref.values["u"], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    pts = ref.points()
    assert ref.point_names() == ["x", "t"] and pts.shape == (9, 2) and ref.n_points == 9
    # node-major: row m*T + k is node m at times[k], the C-order flattening of values
    np.testing.assert_array_equal(pts[:3], [[-1, 0], [-1, 0.5], [-1, 1]])
    np.testing.assert_array_equal(pts[3:6, 0], [0, 0, 0])
    np.testing.assert_array_equal(ref.stacked(["u"])[:, 0], [0, 0, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(ref.stacked(["u"])[:, 0], ref.values["u"].reshape(-1))
    np.testing.assert_array_equal(ref.points(time_name="tau", order=["tau", "x"]), pts[:, ::-1])
    with pytest.raises(ValueError):
        ref.points(order=["x", "y"])
    with pytest.raises(KeyError):
        ref.stacked(["w"])


def test_wide_two_outputs_interleaved(tmp_path):
    ref = read_comsol(write(tmp_path, "w2.dat", WIDE_TWO))
    assert ref.coord_names == ["x"] and ref.dimension is None
    np.testing.assert_array_equal(ref.times, [0, 2])
    np.testing.assert_array_equal(ref.values["u"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ref.values["v"], [[10, 20], [30, 40]])
    np.testing.assert_array_equal(ref.stacked(["u", "v"]), [[1, 10], [2, 20], [3, 30], [4, 40]])


def test_non_time_qualifier_is_one_snapshot(tmp_path):
    ref = read_comsol(write(tmp_path, "uvp.dat", UVP))
    assert ref.times is None and list(ref.values) == ["u", "v", "p"]
    np.testing.assert_array_equal(ref.values["p"], [3, 6])
    assert ref.columns["u"] == "u @ Re=100"


def test_complex_values(tmp_path):
    text = "% x  u (1)\n0  1+2i\n1  -0.5-1E-3i\n2  3\n"
    ref = read_comsol(write(tmp_path, "c.dat", text))
    np.testing.assert_array_equal(ref.values["u"], [1 + 2j, -0.5 - 1e-3j, 3])


@pytest.mark.parametrize("name, nodes, outputs, dim", [
    ("burgers1d.dat", 101, ["u"], 1),
    ("poisson1_cg_data.dat", 1246, ["u"], 2),
    ("poisson_boltzmann2d.dat", 3236, ["u"], 2),
    ("lid_driven_a4.dat", 10201, ["u", "v", "p"], 2),
])
def test_pinnacle_files(name, nodes, outputs, dim):
    ref = read_comsol(PINNACLE / name)
    assert ref.n_nodes == nodes and ref.dimension == dim
    assert ref.coord_names == ["x", "y"][:dim]
    assert list(ref.values) == outputs
    if name == "burgers1d.dat":
        np.testing.assert_allclose(ref.times, np.linspace(0, 1, 11), rtol=0, atol=1e-15)
        assert ref.values["u"].shape == (101, 11) and ref.points().shape == (1111, 2)
        np.testing.assert_allclose(ref.coords[:, 0], np.linspace(-1, 1, 101), atol=1e-12)
        # the initial snapshot is -sin(πx) up to COMSOL's own discretisation
        np.testing.assert_allclose(ref.values["u"][:, 0], -np.sin(np.pi * ref.coords[:, 0]), atol=1e-5)
    else:
        assert ref.times is None
        assert all(v.shape == (nodes,) and v.dtype == np.float64 for v in ref.values.values())
    assert all(np.isfinite(v).all() for v in ref.values.values())


def test_load_reference_search_dirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not found in the current directory: found in a search dir
    ref = load_reference("lid_driven_a4.dat", ["x", "y"], ["p", "U"], search_dirs=[tmp_path / "nope", PINNACLE])
    assert list(ref.values) == ["p", "U"]  # the problem's names and order, matched case-insensitively
    assert ref.source == str(PINNACLE / "lid_driven_a4.dat")
    ref = load_reference("burgers1d.dat", ["t", "x"], ["u"], search_dirs=[PINNACLE])
    assert ref.coord_names == ["x"] and len(ref.times) == 11


# ---- tables --------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, t, u, v = rng.normal(size=(4, 7))
    p = tmp_path / "r.csv"
    np.savetxt(p, np.stack([x, t, u, v], 1), delimiter=",", header="x,t,u,v", comments="", fmt="%.17g")
    ref = read_table(p)
    assert ref.coord_names == ["x", "t"] and ref.times is None  # time stays a coordinate
    np.testing.assert_array_equal(ref.coords, np.stack([x, t], 1))
    np.testing.assert_array_equal(ref.values["u"], u)
    np.testing.assert_array_equal(ref.values["v"], v)
    np.testing.assert_array_equal(ref.points(), ref.coords)
    # the problem's coordinate order wins
    ref = load_reference(p, ["t", "x"], ["v"])
    np.testing.assert_array_equal(ref.coords, np.stack([t, x], 1))
    assert list(ref.values) == ["v"]


def test_whitespace_csv_and_comments(tmp_path):
    p = write(tmp_path, "r.txt", "# made by hand\nX   Y   u\n0 1 2\n\n3 4 5\n")
    ref = load_reference(p, ["x", "y"], ["u"])  # a .txt without '%' header is a table
    np.testing.assert_array_equal(ref.coords, [[0, 1], [3, 4]])
    np.testing.assert_array_equal(ref.values["u"], [2, 5])


def test_npz_round_trip(tmp_path):
    x = np.linspace(0, 1, 5)
    y = x ** 2
    u = np.exp(x) + 1j * np.cos(x)
    p = tmp_path / "named.npz"
    np.savez(p, x=x, y=y, u=u)
    ref = read_table(p)
    assert ref.coord_names == ["x", "y"]
    np.testing.assert_array_equal(ref.coords, np.stack([x, y], 1))
    np.testing.assert_array_equal(ref.values["u"], u)
    assert np.iscomplexobj(ref.values["u"])

    q = tmp_path / "table.npz"
    np.savez(q, data=np.stack([x, y, x + y], 1), columns=np.array(["x", "y", "w"]))
    ref = load_reference(q, ["x", "y"], ["u"], columns={"u": "w"})
    np.testing.assert_array_equal(ref.values["u"], x + y)
    assert ref.columns == {"u": "w"}


# ---- errors: one line each, under the config key ---------------------------------------------


def error(tmp_path, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_reference(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    K = "pde.reference.file: "
    uvp = write(tmp_path, "uvp.dat", UVP)
    wide = write(tmp_path, "wide.dat", WIDE_1D)

    assert error(tmp_path, "nope.dat", ["x"], ["u"], search_dirs=["/somewhere"]) == (
        f"{K}no such file 'nope.dat' (looked in {tmp_path}, /somewhere)")
    assert error(tmp_path, uvp, ["x", "y"], ["u", "w"]) == (
        f"{K}uvp.dat has outputs u, v, p; the problem's unknowns are u, w")
    assert error(tmp_path, uvp, ["x", "y"], ["u", "w"], columns={"w": "q"}) == (
        f"{K}the columns mapping sends w to 'q', but uvp.dat has outputs u, v, p")
    assert error(tmp_path, uvp, ["x", "y"], ["u"], columns={"q": "v"}) == (
        f"{K}the columns mapping names q, which the problem does not have (unknowns: u)")
    assert error(tmp_path, uvp, ["x", "z"], ["u"]) == (
        f"{K}uvp.dat has coordinates x, y; the problem's space coordinates are x, z")
    assert error(tmp_path, uvp, ["x", "y", "t"], ["u"]) == (
        f"{K}uvp.dat is steady (no '@ t=' columns) but the problem has time coordinate t")
    assert error(tmp_path, wide, ["x"], ["u"]) == (
        f"{K}wide.dat has 3 '@ t=' snapshots but the problem has no time coordinate t")

    bad = write(tmp_path, "bad.dat", STEADY_2D.replace("2.5E-1", "abc"))
    assert error(tmp_path, bad, ["x", "y"], ["u"]) == f"{K}{bad} line 10: cannot read 'abc' as a number"
    short = write(tmp_path, "short.dat", STEADY_2D.replace("-2\n", "\n"))
    assert error(tmp_path, short, ["x", "y"], ["u"]) == f"{K}{short} line 9 has 3 values, the header names 4 columns"
    trunc = write(tmp_path, "trunc.dat", STEADY_2D.rsplit("0.5", 1)[0])
    assert error(tmp_path, trunc, ["x", "y"], ["u"]) == f"{K}{trunc}: the header says 3 nodes, the file has 2 rows"
    nohead = write(tmp_path, "nohead.dat", "% just a comment\n")
    assert "has a header but no data rows" in error(tmp_path, nohead, ["x"], ["u"])
    mixed = write(tmp_path, "mixed.dat", "% x  u @ t=0  v\n0  1  2\n")
    assert error(tmp_path, mixed, ["x", "t"], ["u"]) == (
        f"{K}{mixed} mixes '@ t=' snapshots with steady columns (v)")

    h5 = write(tmp_path, "ref.h5", "")
    assert error(tmp_path, h5, ["x"], ["u"]) == (
        f"{K}cannot read ref.h5: unsupported file type '.h5' "
        "(use .dat or .txt for a COMSOL export, .csv or .npz for a table)")
    csv = write(tmp_path, "r.csv", "x,t,u\n0,0,1\n1,0,2\n")
    assert error(tmp_path, csv, ["x", "y"], ["u"]) == (
        f"{K}{csv} has columns x, t, u; the problem's coordinates are x, y (no column y)")
    assert error(tmp_path, csv, ["x"], ["u"]) == f"{K}r.csv has coordinate column t; the problem's coordinates are x"
    badcsv = write(tmp_path, "b.csv", "x,u\n0,1\n1,\n")
    assert error(tmp_path, badcsv, ["x"], ["u"]) == f"{K}{badcsv} line 3: cannot read '' as a number"
    npz = write(tmp_path, "broken.npz", "not a zip")
    assert error(tmp_path, npz, ["x"], ["u"]).startswith(f"{K}cannot read {npz} as .npz: ")

    # the key is the caller's
    with pytest.raises(ConfigError) as info:
        load_reference(uvp, ["x", "y"], ["w"], key="pde.reference")
    assert info.value.key == "pde.reference"


# ---- metrics -------------------------------------------------------------------------------


def test_l2re_by_hand():
    ref = {"u": np.array([3.0, 4.0]), "v": np.array([0.0, 1.0])}
    pred = {"u": np.array([3.0, 5.0]), "v": np.array([0.0, 2.0]), "extra": np.zeros(9)}
    got = l2re(pred, ref)
    assert got["l2re_u"] == pytest.approx(1 / 5)
    assert got["l2re_v"] == pytest.approx(1.0)
    # pooled: ‖(0, 1, 0, 1)‖ / ‖(3, 4, 0, 1)‖ = √2/√26, not the mean of the two (0.6)
    assert got["l2re"] == pytest.approx(np.sqrt(2 / 26))
    assert got["l2re"] != pytest.approx((got["l2re_u"] + got["l2re_v"]) / 2)
    assert set(got) == {"l2re", "l2re_u", "l2re_v"}
    assert max_abs_error(pred, ref) == 1.0
    assert max_abs_error({"u": ref["u"], "v": ref["v"] - 3}, ref) == 3.0


def test_l2re_wide_flat_and_complex():
    ref = {"u": np.arange(6.0).reshape(3, 2) + 1}
    flat = ref["u"].reshape(-1) + np.array([1, 0, 0, 0, 0, 0])  # points() order
    assert l2re({"u": flat}, ref)["l2re"] == pytest.approx(1 / np.linalg.norm(ref["u"]))
    assert l2re({"u": flat[:, None]}, ref)["l2re"] == pytest.approx(1 / np.linalg.norm(ref["u"]))
    c = {"u": np.array([1 + 1j, 2.0])}
    assert l2re({"u": np.array([1.0, 2.0])}, c)["l2re"] == pytest.approx(1 / np.sqrt(6))
    assert max_abs_error({"u": np.array([0.0, 2.0 + 1j])}, c) == pytest.approx(np.sqrt(2))
    assert l2re({"u": np.zeros(2)}, {"u": np.zeros(2)})["l2re"] == 0.0
    with pytest.raises(ValueError, match="no output 'u'"):
        l2re({"v": flat}, ref)
    with pytest.raises(ValueError, match="shape"):
        l2re({"u": np.zeros(5)}, ref)


def test_reference_data_is_a_plain_dataclass():
    ref = ReferenceData(np.zeros((2, 1)), ["x"], None, {"u": np.ones(2)})
    assert ref.n_points == 2 and ref.source == "" and ref.dimension is None
