"""Domains: shapes' signed distances, interior and boundary samples, normals, measures, config."""
import math

import pytest
import torch

from dinf.errors import ConfigError
from dinf.geometry import Ball, Box, Domain, Polygon, shape_from_config

F64 = torch.float64
CFG = {
    "space": {"x": [-0.5, 0.5], "y": [-0.5, 0.5]},
    "holes": {"c1": {"disk": {"center": [0.3, 0.3], "radius": 0.1}},
              "c2": {"disk": {"center": [-0.3, 0.3], "radius": 0.1}}},
    "additions": {"bump": {"rectangle": {"lo": [0.5, -0.1], "hi": [0.7, 0.1]}}},
}
# An L-shape, counter-clockwise, and the same one clockwise.
L_CCW = [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [1.0, 1.0], [1.0, 2.0], [0.0, 2.0]]
L_CW = L_CCW[::-1]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unit(normal: torch.Tensor) -> bool:
    return bool(torch.allclose(normal.norm(dim=1), torch.ones(normal.shape[0], dtype=F64), atol=1e-12))


# ----------------------------------------------------------------------------- interior

def test_interior_points_avoid_holes_stay_in_box_or_additions_and_spread_evenly():
    dom = Domain.from_config(CFG)
    holes, bump = [dom.holes["c1"], dom.holes["c2"]], dom.additions["bump"]
    for n in (1, 7, 1000):
        assert dom.sample_interior(n, gen()).shape == (n, 2)
    x = dom.sample_interior(8000, gen(1))
    assert x.shape == (8000, 2) and x.dtype == F64
    assert dom.contains(x).all()
    for hole in holes:
        assert (hole.sdf(x) > 0).all()
    assert ((dom.box.sdf(x) <= 0) | (bump.sdf(x) <= 0)).all()
    # Shares of a plain sub-square and of the bump match their area shares.
    area = dom.interior_measure()
    assert area == pytest.approx(1.0 - 2 * math.pi * 0.01 + 0.04, abs=2e-3)
    quarter = ((x[:, 0] < 0) & (x[:, 1] < 0)).double().mean()
    assert float(quarter) == pytest.approx(0.25 / area, abs=0.015)
    in_bump = (x[:, 0] > 0.5).double().mean()
    assert float(in_bump) == pytest.approx(0.04 / area, abs=0.008)
    # The same seed draws the same points.
    assert torch.equal(dom.sample_interior(100, gen(3)), dom.sample_interior(100, gen(3)))


def test_interior_points_are_stratified():
    # A plain box with n = 20²: one point in each cell of the 20 × 20 grid.
    dom = Domain({"x": (0.0, 1.0), "y": (0.0, 2.0)})
    x = dom.sample_interior(800, gen())  # 20 × 40 cells of side 0.05
    cells = (x / 0.05).floor().long()
    assert torch.unique(cells[:, 0] * 40 + cells[:, 1]).numel() == 800
    # A long time axis still leaves the space axis its share of cells: 20 points per x-bin.
    dom = Domain({"x": (0.0, 1.0)}, ("t", 0.0, 100.0))
    x = dom.sample_interior(400, gen())
    assert torch.equal(torch.bincount((x[:, 0] / 0.05).floor().long(), minlength=20), torch.full((20,), 20))


def test_interior_measure_is_exact_for_a_plain_box():
    dom = Domain({"x": (0.0, 2.0), "y": (-1.0, 0.5)}, ("t", 0.0, 3.0))
    assert dom.interior_measure() == 2.0 * 1.5 * 3.0


# ----------------------------------------------------------------------------- boundary

def test_hole_and_addition_boundaries_lie_on_their_circles_with_normals_out_of_the_domain():
    cfg = {"space": {"x": [-0.5, 0.5], "y": [-0.5, 0.5]},
           "holes": {"c1": {"disk": {"center": [0.3, 0.3], "radius": 0.1}}},
           "additions": {"lobe": {"disk": {"center": [0.0, 0.5], "radius": 0.2}}}}
    dom = Domain.from_config(cfg)
    c1 = torch.tensor([0.3, 0.3], dtype=F64)
    x, n = dom.sample_boundary("c1", 500, gen())
    assert x.shape == n.shape == (500, 2)
    r = (x - c1).norm(dim=1)
    assert ((r - 0.1).abs() < 1e-12).all()
    assert unit(n) and ((n * (x - c1)).sum(1) < 0).all()  # into the hole
    # Uniform by arc length: half the points within 22.5° of a diagonal.
    theta = torch.atan2(x[:, 1] - 0.3, x[:, 0] - 0.3)
    assert float((torch.cos(2 * theta).abs() < math.cos(math.pi / 4)).double().mean()) == pytest.approx(0.5, abs=0.05)
    lobe = torch.tensor([0.0, 0.5], dtype=F64)
    x, n = dom.sample_boundary("lobe", 500, gen())
    assert (((x - lobe).norm(dim=1) - 0.2).abs() < 1e-12).all()
    assert unit(n) and ((n * (x - lobe)).sum(1) > 0).all()  # away from the addition
    assert (x[:, 1] > 0.5).all()                             # its part inside the box is not boundary
    # The group "holes" is the one hole here.
    x, n = dom.sample_boundary("holes", 50, gen())
    assert (((x - c1).norm(dim=1) - 0.1).abs() < 1e-12).all()


@pytest.mark.parametrize("piece,axis,side", [("x_min", 0, -1), ("x_max", 0, 1), ("y_min", 1, -1), ("y_max", 1, 1),
                                             ("left", 0, -1), ("right", 0, 1), ("bottom", 1, -1), ("top", 1, 1)])
def test_faces_and_their_aliases_have_normals_plus_minus_e_a(piece, axis, side):
    dom = Domain({"x": (-0.5, 0.5), "y": (0.0, 2.0)})
    x, n = dom.sample_boundary(piece, 200, gen())
    want = torch.zeros(2, dtype=F64)
    want[axis] = side
    assert (n == want).all()
    assert (x[:, axis] == dom.bounds[axis, 0 if side < 0 else 1]).all()
    assert dom.piece_measure(piece) == (2.0 if axis == 0 else 1.0)


def test_a_face_cut_by_a_hole_has_no_points_in_it_and_loses_the_chord():
    dom = Domain({"x": (-0.5, 0.5), "y": (-0.5, 0.5)}, holes={"h": Ball([0.5, 0.0], 0.2)})
    x, n = dom.sample_boundary("x_max", 2000, gen())
    assert (x[:, 0] == 0.5).all() and (x[:, 1].abs() > 0.2).all()
    assert dom.piece_measure("x_max") == pytest.approx(1.0 - 0.4, abs=0.01)
    # Only the hole's half inside the box is boundary, with normals into the hole.
    x, n = dom.sample_boundary("h", 2000, gen())
    assert (x[:, 0] <= 0.5).all()
    assert ((n * (x - torch.tensor([0.5, 0.0], dtype=F64))).sum(1) < 0).all()
    assert dom.piece_measure("h") == pytest.approx(math.pi * 0.2, rel=0.01)
    assert dom.piece_measure("boundary") == pytest.approx(3.0 + 0.6 + math.pi * 0.2, rel=0.01)


def test_a_circle_fully_inside_measures_its_circumference():
    dom = Domain.from_config(CFG)
    assert dom.piece_measure("c1") == pytest.approx(2 * math.pi * 0.1, rel=1e-12)
    assert dom.piece_measure("holes") == pytest.approx(4 * math.pi * 0.1, rel=1e-12)
    assert dom.piece_measure("y_min") == 1.0  # nothing cuts it: exact


def test_an_addition_flush_with_a_face_removes_both_sides_of_the_seam():
    dom = Domain.from_config(CFG)  # the bump's left edge lies on x_max for |y| < 0.1
    x, _ = dom.sample_boundary("x_max", 2000, gen())
    assert (x[:, 1].abs() > 0.1).all()
    x, n = dom.sample_boundary("bump", 2000, gen())
    assert not ((x[:, 0] == 0.5) & (x[:, 1].abs() < 0.1)).any()
    assert unit(n)
    assert dom.piece_measure("x_max") == pytest.approx(0.8, abs=0.01)
    assert dom.piece_measure("bump") == pytest.approx(0.6, abs=0.01)


def test_groups_split_n_by_measure():
    dom = Domain({"x": (0.0, 3.0), "y": (0.0, 1.0)})
    x, n = dom.sample_boundary("box", 4000, gen())
    assert x.shape == (4000, 2)
    on_long = (n[:, 1] != 0).double().mean()  # y faces are 3 long, x faces 1
    assert float(on_long) == pytest.approx(6 / 8, abs=1e-3)
    dom = Domain.from_config(CFG)
    x, n = dom.sample_boundary("boundary", 3001, gen())
    assert x.shape == (3001, 2) and unit(n)
    share = ((x - torch.tensor([0.3, 0.3], dtype=F64)).norm(dim=1) < 0.1 + 1e-9).double().mean()
    assert float(share) == pytest.approx(dom.piece_measure("c1") / dom.piece_measure("boundary"), abs=2e-3)


def test_unknown_piece_and_a_piece_without_boundary_raise_with_the_callers_key():
    dom = Domain.from_config({"space": {"x": [0, 1], "y": [0, 1]},
                              "additions": {"inner": {"disk": {"center": [0.5, 0.5], "radius": 0.1}}}})
    with pytest.raises(ConfigError) as err:
        dom.sample_boundary("foo", 3, gen(), key="pde.bc.wall.on")
    assert err.value.key == "pde.bc.wall.on"
    assert "no boundary piece 'foo'; pieces: x_min, x_max, y_min, y_max, inner" in str(err.value)
    with pytest.raises(ConfigError) as err:
        dom.piece_measure("front")  # no third axis, no front
    assert err.value.key == "on"
    with pytest.raises(ConfigError, match="'inner' has \\(almost\\) no boundary left"):
        dom.sample_boundary("inner", 3, gen())
    x, _ = dom.sample_boundary("boundary", 100, gen())  # the group leaves it out
    assert (dom.box.sdf(x).abs() < 1e-12).all()


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("vertices", [L_CCW, L_CW], ids=["ccw", "cw"])
def test_polygon_sdf_boundary_points_and_outward_normals(vertices):
    poly = Polygon(vertices)
    pts = torch.tensor([[0.5, 0.5], [1.5, 0.5], [0.5, 1.9], [1.5, 1.5], [3.0, 2.0], [3.0, 0.5], [1.0, 1.5]], dtype=F64)
    want = torch.tensor([-0.5, -0.5, -0.1, 0.5, math.sqrt(2.0), 1.0, 0.0], dtype=F64)
    assert torch.allclose(poly.sdf(pts), want, atol=1e-12)
    assert poly.boundary_measure() == 8.0
    x, n = poly.sample_boundary(2000, gen())
    assert (poly.sdf(x).abs() < 1e-12).all() and unit(n)
    # Outward: a small step along the normal leaves the polygon, against it enters.
    assert (poly.sdf(x + 1e-7 * n) > 0).all() and (poly.sdf(x - 1e-7 * n) < 0).all()
    # On the edge x = 2 (0 < y < 1) the normal is +e_x, on y = 2 it is +e_y, on x = 0 it is −e_x.
    right, top, left = x[:, 0] == 2.0, x[:, 1] == 2.0, x[:, 0] == 0.0
    assert right.any() and top.any() and left.any()
    assert (n[right] == torch.tensor([1.0, 0.0], dtype=F64)).all()
    assert (n[top] == torch.tensor([0.0, 1.0], dtype=F64)).all()
    assert (n[left] == torch.tensor([-1.0, 0.0], dtype=F64)).all()


@pytest.mark.parametrize("vertices", [L_CCW, L_CW], ids=["ccw", "cw"])
def test_polygon_hole_normals_point_into_it(vertices):
    dom = Domain.from_config({"space": {"x": [-1, 3], "y": [-1, 3]}, "holes": {"L": {"polygon": vertices}}})
    poly = dom.holes["L"]
    x, n = dom.sample_boundary("L", 500, gen())
    assert (poly.sdf(x).abs() < 1e-12).all()
    assert (poly.sdf(x + 1e-7 * n) < 0).all()
    assert dom.piece_measure("L") == pytest.approx(8.0, rel=1e-12)
    xi = dom.sample_interior(2000, gen())
    assert (poly.sdf(xi) > 0).all()


def test_box_boundary_is_drawn_face_by_face_by_measure():
    box = Box([0.0, 0.0, 0.0], [3.0, 1.0, 2.0])
    x, n = box.sample_boundary(6000, gen())
    assert (box.sdf(x).abs() < 1e-12).all() and unit(n)
    assert (box.sdf(x + 1e-7 * n) > 0).all()
    share = torch.stack([(n[:, a] != 0).double().mean() for a in range(3)])
    want = torch.tensor([2.0, 6.0, 3.0], dtype=F64) / 11.0  # faces normal to x, y, z: 1·2, 3·2, 3·1
    assert torch.allclose(share, want, atol=0.02)


def test_box_sdf_is_exact_and_ball_sdf_signs():
    box = Box([0.0, 0.0], [2.0, 1.0])
    pts = torch.tensor([[1.0, 0.5], [1.0, 0.9], [3.0, 0.5], [3.0, 2.0], [2.0, 1.0]], dtype=F64)
    want = torch.tensor([-0.5, -0.1, 1.0, math.sqrt(2.0), 0.0], dtype=F64)
    assert torch.allclose(box.sdf(pts), want, atol=1e-12)
    ball = Ball([0.0, 0.0, 0.0], 2.0)
    assert torch.allclose(ball.sdf(torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=F64)),
                          torch.tensor([-2.0, 1.0], dtype=F64))
    assert ball.boundary_measure() == pytest.approx(16 * math.pi)
    assert Ball([0.5], 0.1).boundary_measure() == 2.0 and Box([0.0], [1.0]).boundary_measure() == 2.0


def test_a_self_crossing_polygon_is_refused():
    with pytest.raises(ConfigError) as err:
        shape_from_config("p", {"polygon": [[0, 0], [2, 2], [2, 0], [0, 1]]}, 2, key="pde.domain.holes")
    assert err.value.key == "pde.domain.holes.p.polygon" and "simple" in err.value.detail


# ----------------------------------------------------------------------------- time and 3D

def test_space_time_samples():
    dom = Domain({"x": (0.0, 1.0), "y": (0.0, 1.0)}, ("t", 0.5, 2.0), holes={"c": Ball([0.5, 0.5], 0.2)})
    assert dom.coords == ["x", "y", "t"] and dom.dim == 3 and dom.space_dim == 2
    assert torch.equal(dom.bounds, torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.5, 2.0]], dtype=F64))
    x = dom.sample_interior(3000, gen())
    assert x.shape == (3000, 3) and dom.contains(x).all()
    assert ((x[:, 2] >= 0.5) & (x[:, 2] <= 2.0)).all()
    assert float((x[:, 2] < 1.25).double().mean()) == pytest.approx(0.5, abs=0.02)
    x0 = dom.sample_initial(500, gen())
    assert x0.shape == (500, 3) and (x0[:, 2] == 0.5).all() and dom.contains(x0).all()
    for piece in ("boundary", "c", "x_min"):
        xb, nb = dom.sample_boundary(piece, 400, gen())
        assert xb.shape == nb.shape == (400, 3)
        assert (nb[:, 2] == 0).all() and unit(nb)
        assert ((xb[:, 2] >= 0.5) & (xb[:, 2] <= 2.0)).all()
    assert dom.piece_measure("x_min") == 1.5
    assert dom.piece_measure("c") == pytest.approx(2 * math.pi * 0.2 * 1.5, rel=1e-12)
    assert dom.interior_measure() == pytest.approx((1 - math.pi * 0.04) * 1.5, abs=5e-3)
    outside_time = torch.tensor([[0.1, 0.1, 0.4], [0.1, 0.1, 2.1], [0.1, 0.1, 2.0]], dtype=F64)
    assert dom.contains(outside_time).tolist() == [False, False, True]
    with pytest.raises(ConfigError) as err:
        Domain({"x": (0.0, 1.0)}).sample_initial(3, gen())
    assert err.value.key == "domain.time"


def test_3d_box_with_a_spherical_hole():
    dom = Domain.from_config({"space": {"x": [0, 1], "y": [0, 1], "z": [0, 1]},
                              "holes": {"s": {"sphere": {"center": [0.5, 0.5, 0.5], "radius": 0.25}}}})
    c = torch.tensor([0.5, 0.5, 0.5], dtype=F64)
    x = dom.sample_interior(3000, gen())
    assert x.shape == (3000, 3) and ((x - c).norm(dim=1) > 0.25).all() and (dom.box.sdf(x) < 0).all()
    xs, ns = dom.sample_boundary("s", 1000, gen())
    assert (((xs - c).norm(dim=1) - 0.25).abs() < 1e-12).all()
    assert unit(ns) and ((ns * (xs - c)).sum(1) < 0).all()
    # Uniform on the sphere: each octant gets about an eighth.
    octant = ((xs - c) > 0).all(1).double().mean()
    assert float(octant) == pytest.approx(1 / 8, abs=0.03)
    for piece, axis, side in (("front", 2, -1), ("back", 2, 1), ("z_max", 2, 1), ("left", 0, -1)):
        xf, nf = dom.sample_boundary(piece, 100, gen())
        want = torch.zeros(3, dtype=F64)
        want[axis] = side
        assert (nf == want).all() and (xf[:, axis] == (0.0 if side < 0 else 1.0)).all()
    assert dom.piece_measure("s") == pytest.approx(4 * math.pi * 0.25 ** 2, rel=1e-12)
    assert dom.interior_measure() == pytest.approx(1 - 4 / 3 * math.pi * 0.25 ** 3, abs=3e-3)


def test_1d_interval_with_a_hole():
    dom = Domain({"x": (0.0, 1.0)}, holes={"h": Ball([0.5], 0.1)})
    x, n = dom.sample_boundary("boundary", 400, gen())
    ends = {0.0: -1.0, 1.0: 1.0, 0.4: 1.0, 0.6: -1.0}  # a hole's end normals point into it
    for xi, ni in zip(x[:, 0].tolist(), n[:, 0].tolist()):
        assert ends[round(xi, 12)] == ni
    assert dom.piece_measure("h") == 2.0 and dom.piece_measure("left") == 1.0
    xi = dom.sample_interior(500, gen())
    assert ((xi[:, 0] - 0.5).abs() > 0.1).all()


# ----------------------------------------------------------------------------- config

def test_from_config_round_trip():
    cfg = {**CFG, "time": {"t": [0.0, 1.0]}}
    dom = Domain.from_config(cfg)
    assert dom.to_config() == cfg
    assert Domain.from_config(dom.to_config()).to_config() == cfg
    assert dom.coords == ["x", "y", "t"]
    assert dom.pieces == ["x_min", "x_max", "y_min", "y_max", "c1", "c2", "bump"]
    assert torch.equal(dom.bounds, torch.tensor([[-0.5, 0.7], [-0.5, 0.5], [0.0, 1.0]], dtype=F64))
    assert isinstance(dom.holes["c1"], Ball) and isinstance(dom.additions["bump"], Box)
    # As Hydra hands it over: an OmegaConf DictConfig.
    from omegaconf import OmegaConf
    assert Domain.from_config(OmegaConf.create(cfg)).to_config() == cfg


def _with(**parts):
    return {"space": {"x": [0, 1], "y": [0, 1]}, **parts}


def _hole(spec):
    return _with(holes={"c1": spec})


BAD = [
    ({"space": {"x": [1, 0]}}, "pde.domain.space.x", "lo must be < hi"),
    ({"space": {"x": [0, 0]}}, "pde.domain.space.x", "lo must be < hi"),
    ({"space": {}}, "pde.domain.space", "1 to 6 axes, got 0"),
    ({"space": {c: [0, 1] for c in "xyzwvsq"}}, "pde.domain.space", "1 to 6 axes, got 7"),
    ({"space": {"xy": [0, 1]}}, "pde.domain.space.xy", "single letter"),
    (_with(time={"t": [0, 1], "s": [0, 1]}), "pde.domain.time", "one name"),
    (_with(time={"t": [1, 0]}), "pde.domain.time.t", "lo must be < hi"),
    (_with(time={"tt": [0, 1]}), "pde.domain.time.tt", "single letter"),
    (_with(time={"x": [0, 1]}), "pde.domain.time.x", "also a space axis"),
    (_hole({"disk": {"center": [3.0, 3.0], "radius": 0.1}}), "pde.domain.holes.c1", "does not intersect"),
    (_hole({"disk": {"center": [0.3, 0.3], "radius": -1}}), "pde.domain.holes.c1.disk.radius", "must be > 0, got -1"),
    (_hole({"disc": {"center": [0.3, 0.3], "radius": 0.1}}), "pde.domain.holes.c1", "unknown shape 'disc'"),
    (_hole({"sphere": {"center": [0.3, 0.3], "radius": 0.1}}), "pde.domain.holes.c1.sphere", "3D"),
    (_hole({"disk": {"center": [0.3, 0.3, 0.3], "radius": 0.1}}), "pde.domain.holes.c1.disk.center", "3 coordinates"),
    (_hole({"rectangle": {"lo": [0.3, 0.3], "hi": [0.5, 0.2]}}), "pde.domain.holes.c1.rectangle.hi", "must be > lo"),
    (_hole({"polygon": [[0.1, 0.1], [0.5, 0.5]]}), "pde.domain.holes.c1.polygon", "at least 3 vertices"),
    (_hole({"disk": {"center": [0.5, 0.5], "radius": 5}}), "pde.domain.holes", "cover the whole region"),
    (_with(additions={"x_max": {"disk": {"center": [1, 1], "radius": 0.1}}}), "pde.domain.additions.x_max", "clashes"),
    (_with(holes={"box": {"disk": {"center": [0.5, 0.5], "radius": 0.1}}}), "pde.domain.holes.box", "clashes"),
    (_with(tiem={"t": [0, 1]}), "pde.domain.tiem", "no such key"),
]


@pytest.mark.parametrize("cfg,key,text", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_config_names_the_key(cfg, key, text):
    with pytest.raises(ConfigError) as err:
        Domain.from_config(cfg)
    assert err.value.key == key
    assert text in err.value.detail
    assert "\n" not in str(err.value)


# --- lists of shapes, named groups, `within`, up to six axes --------------------------------------
def test_a_list_of_disks_is_one_group_of_pieces_and_groups_combine_them():
    from dinf.geometry.domain import Domain

    d = Domain.from_config({"space": {"x": [-8, 8], "y": [-12, 12]},
                            "holes": {"large": {"disk": {"center": [[-4, -3], [4, 3], [0, 0]], "radius": 1}},
                                      "small": [{"disk": {"center": [3.2, 0], "radius": 0.4}},
                                                {"disk": {"center": [-3.2, 6], "radius": 0.4}}]},
                            "groups": {"circles": ["large", "small_1"], "walls": ["left", "right"]}})
    assert d.resolve("large") == ["large_0", "large_1", "large_2"]
    assert d.resolve("circles") == ["large_0", "large_1", "large_2", "small_1"]
    assert d.resolve("walls") == ["x_min", "x_max"]
    x, n = d.sample_boundary("large", 3000, torch.Generator().manual_seed(0))
    centers = torch.tensor([[-4.0, -3.0], [4.0, 3.0], [0.0, 0.0]], dtype=torch.float64)
    dist = torch.cdist(x, centers).min(1)
    assert dist.values.sub(1).abs().max() < 1e-12
    # The domain's outward normal points into the disk: toward its centre.
    c = centers[dist.indices]
    torch.testing.assert_close(n, (c - x) / (c - x).norm(dim=1, keepdim=True))
    counts = torch.bincount(dist.indices, minlength=3)  # equal circles: about equal shares
    assert counts.min() > 800
    assert d.piece_measure("large") == pytest.approx(3 * 2 * math.pi, rel=1e-12)
    assert Domain.from_config(d.to_config()).resolve("circles") == d.resolve("circles")


@pytest.mark.parametrize("cfg, key, words", [
    ({"holes": {"h": {"disk": {"center": [[0, 0], [0.5, 0.5]], "radius": [0.1]}}}}, "d.holes.h.disk.radius",
     "1 radii for 2 centers"),
    ({"groups": {"g": ["nowhere"]}}, "d.groups.g", "no boundary piece 'nowhere'"),
    ({"groups": {"box": ["x_min"]}}, "d.groups.box", "clashes"),
    ({"holes": {"h": []}}, "d.holes.h", "empty list"),
])
def test_bad_lists_and_groups_are_one_line(cfg, key, words):
    from dinf.geometry.domain import Domain

    with pytest.raises(ConfigError) as err:
        Domain.from_config({"space": {"x": [-1, 1], "y": [-1, 1]}, **cfg}, key="d")
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_five_ball_times_time_samples_and_normals():
    from dinf.geometry.domain import Domain

    names = "xyzvw"
    d = Domain.from_config({"space": {c: [-1, 1] for c in names}, "time": {"t": [0, 1]},
                            "within": {"sphere": {"ball": {"center": [0] * 5, "radius": 1}}}})
    g = torch.Generator().manual_seed(0)
    x = d.sample_interior(20000, g)
    r = x[:, :5].norm(dim=1)
    assert x.shape == (20000, 6) and r.max() < 1 and x[:, 5].min() >= 0 and x[:, 5].max() <= 1
    # Uniform in the ball: P(r < s) = s⁵ (0.5⁵ = 3.1 %, 0.9⁵ = 59 %).
    assert float((r < 0.5).double().mean()) == pytest.approx(0.5**5, abs=0.005)
    assert float((r < 0.9).double().mean()) == pytest.approx(0.9**5, abs=0.015)
    xb, n = d.sample_boundary("boundary", 5000, g)  # the faces touch the ball only at points: all sphere
    torch.testing.assert_close(xb[:, :5].norm(dim=1), torch.ones(5000, dtype=torch.float64))
    torch.testing.assert_close(n[:, :5], xb[:, :5])  # outward: the unit sphere's normal is the point
    assert n[:, 5].abs().max() == 0
    assert d.piece_measure("sphere") == pytest.approx(8 * math.pi**2 / 3, rel=1e-12)  # |S⁴| · (t1 − t0)
    assert d._space_volume() == pytest.approx(8 * math.pi**2 / 15, rel=0.02)  # |B⁵|, Monte Carlo


def test_more_than_six_space_axes_is_one_line():
    from dinf.geometry.domain import Domain

    with pytest.raises(ConfigError, match="1 to 6 axes, got 7"):
        Domain.from_config({"space": {c: [0, 1] for c in "abcdfgh"}})


LSHAPE = {"space": {"x": [-1, 1], "y": [-1, 1]}, "holes": {"quadrant": {"rectangle": {"lo": [0, -1], "hi": [1, 0]}}}}


@pytest.mark.parametrize("lo, hi, length, n", [
    ([-0.01, -0.01], [0.02, 0.02], 0.03, 1 << 28),  # the re-entrant corner: the hole's two faces, 0.01 and 0.02 of them
    ([-1.1, 0.4], [-0.9, 0.6], 0.2, 1 << 26),       # across the outer face x = -1
])
def test_a_window_draws_the_boundary_points_a_whole_draw_would_put_there(lo, hi, length, n):
    # n: the density asked for, far more points than could be drawn over the whole boundary
    dom = Domain.from_config(LSHAPE)
    lo, hi = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
    x, normal, share = dom.sample_boundary_within("boundary", n, torch.Generator().manual_seed(0), lo, hi)
    expected = n * length / 8.0  # the boundary is 8 long
    assert share == 1.0 and abs(len(x) - expected) < 5 * math.sqrt(expected)
    assert bool(((x >= lo) & (x <= hi)).all())
    # the same points and normals a whole draw keeps there (fewer of them: 2^22 over the boundary)
    whole, wn = dom.sample_boundary("boundary", 1 << 22, torch.Generator().manual_seed(1))
    inside = ((whole >= lo) & (whole <= hi)).all(1)
    assert abs(int(inside.sum()) - (1 << 22) * length / 8.0) < 5 * math.sqrt((1 << 22) * length / 8.0)
    for pts, nrm in ((x, normal), (whole[inside], wn[inside])):
        on_hole = ((pts[:, 0] == 0.0) & (pts[:, 1] <= 0)) | ((pts[:, 1] == 0.0) & (pts[:, 0] >= 0))
        assert bool((on_hole | (pts.abs().max(1).values == 1.0)).all())  # on the boundary
        on_x = (pts[:, 0] == 0.0) | (pts[:, 0] == -1.0)  # faces normal to x: their normals ±e_x
        assert torch.equal(nrm[on_x, 1], torch.zeros(int(on_x.sum()), dtype=torch.float64))
        assert torch.equal(nrm[~on_x, 0], torch.zeros(int((~on_x).sum()), dtype=torch.float64))
    share_x = float(((x[:, 0] == 0.0) | (x[:, 0] == -1.0)).double().mean())
    share_whole = float(((whole[inside][:, 0] == 0.0) | (whole[inside][:, 0] == -1.0)).double().mean())
    assert share_x == pytest.approx(share_whole, abs=0.05)


def test_a_window_in_time_and_a_capped_density():
    dom = Domain({"x": (-1.0, 1.0)}, ("t", 0.0, 1.0))
    lo, hi = torch.tensor([0.9, 0.0], dtype=torch.float64), torch.tensor([1.1, 0.5], dtype=torch.float64)
    x, normal, share = dom.sample_boundary_within("box", 4_000_000, torch.Generator().manual_seed(0), lo, hi)
    assert share == 1.0 and abs(len(x) - 1_000_000) < 5000  # half on x = 1, half of those at t ≤ 0.5
    assert bool((x[:, 0] == 1.0).all()) and bool((normal[:, 0] == 1.0).all()) and float(x[:, 1].max()) <= 0.5
    x, _, share = dom.sample_boundary_within("box", 4_000_000, torch.Generator().manual_seed(0), lo, hi, most=1000)
    assert share == pytest.approx(1000 / 1_000_000) and abs(len(x) - 1000) < 200
