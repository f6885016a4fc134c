"""Domains read from mesh files (dinf.geometry.mesh): gmsh .msh/.geo in 2D, STL in 3D. Inside,
distance and normals against independent computations (the exact box, dense samples of the
facets, the mesh's own triangles), pieces from physical groups, set operations, one-line
refusals, and the whole path: least squares and P2 finite elements on the same mesh, and the
.vtu on it."""
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from dinf.app.run import build, train
from dinf.errors import ConfigError
from dinf.geometry import Domain
from dinf.geometry.mesh import read_mesh
from dinf.geometry.shapes import Box
from tests.helpers import compose_cfg

MESHES = Path(__file__).resolve().parents[1] / "data" / "meshes"
D = torch.float64


def _box_stl(path, lo=(0.0, 0.0, 0.0), hi=(1.0, 2.0, 3.0), flip=(), drop=()):
    """A box's surface as 12 triangles (``flip``: these reversed, ``drop``: these left out)."""
    lo, hi = np.array(lo), np.array(hi)
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float) * (hi - lo) + lo
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]  # outward
    tri = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    for k in flip:
        tri[k] = tri[k][::-1]
    tri = np.delete(tri, list(drop), axis=0)
    meshio.write(str(path), meshio.Mesh(corners, [("triangle", tri)]), file_format="stl")
    return path


def _dense(region, per_edge: int = 60) -> np.ndarray:
    """Points spread densely over every boundary facet: a brute-force distance's targets."""
    corners = [c.numpy() for c in region._corners]
    if region.dim == 2:
        t = np.linspace(0, 1, per_edge)[:, None, None]
        return (corners[0][None] + t * (corners[1] - corners[0])[None]).reshape(-1, 2)
    k = np.array([(i, j) for i in range(per_edge + 1) for j in range(per_edge + 1 - i)], float) / per_edge
    a, b, c = corners
    return (a[None] + k[:, 0, None, None] * (b - a)[None] + k[:, 1, None, None] * (c - a)[None]).reshape(-1, 3)


def test_a_gmsh_file_names_its_boundary_pieces_by_physical_group():
    region = read_mesh(MESHES / "channel.msh")
    assert region.dim == 2 and region.pieces == ["inlet", "outlet", "walls", "obstacle"]
    lengths = [region.piece_measure(k) for k in range(4)]
    assert lengths[:3] == pytest.approx([1.0, 1.0, 4.0], rel=1e-12)
    assert lengths[3] == pytest.approx(2 * np.pi * 0.2, rel=1e-3)  # a polygon in the circle
    # The area from the boundary (divergence theorem) against the triangles' own areas.
    p, t = region.points.numpy(), region.cells[1]
    e1, e2 = p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]
    assert region.volume == pytest.approx(np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() / 2, rel=1e-12)
    # Normals: outward, as the pieces' geometry says.
    gen = torch.Generator().manual_seed(0)
    for k, normal in enumerate([(-1.0, 0.0), (1.0, 0.0)]):
        x, n = region.sample_piece(k, 100, gen)
        assert torch.allclose(n, torch.tensor(normal, dtype=D).expand(100, 2))
        assert torch.allclose(x[:, 0], torch.full((100,), float(k) * 2, dtype=D))
    x, n = region.sample_piece(3, 500, gen)
    into_obstacle = (torch.tensor([0.6, 0.5], dtype=D) - x) / 0.2
    assert bool(((n * into_obstacle).sum(1) > 0.99).all())  # out of the fluid, into the obstacle


def test_the_geo_file_meshed_by_gmsh_is_the_msh_file():
    pytest.importorskip("gmsh")
    geo, msh = read_mesh(MESHES / "channel.geo"), read_mesh(MESHES / "channel.msh")
    assert geo.pieces == msh.pieces and geo.facets.shape == msh.facets.shape
    assert geo.volume == pytest.approx(msh.volume, rel=1e-12)


def test_inside_and_distance_in_2d_against_the_shapes_and_brute_force():
    region = read_mesh(MESHES / "channel.msh")
    x = torch.rand(4000, 2, generator=torch.Generator().manual_seed(1), dtype=D) * torch.tensor([2.4, 1.4], dtype=D) \
        - 0.2
    r = (x - torch.tensor([0.6, 0.5], dtype=D)).norm(dim=1)
    exact = (Box([0, 0], [2, 1]).sdf(x) < 0) & (r > 0.2)
    clear = ((r - 0.2).abs() > 3e-4) & (Box([0, 0], [2, 1]).sdf(x).abs() > 1e-9)  # off the polygon's sag
    assert torch.equal(region.contains(x)[clear], exact[clear])
    dist, _ = cKDTree(_dense(region, 400)).query(x.numpy())
    d = region.distance(x).numpy()
    longest = float(region.measures.max())
    assert (d <= dist + 1e-12).all() and (dist - d <= longest / 400).all()
    assert torch.equal(region.sdf(x) < 0, region.contains(x))


def test_an_stl_box_is_the_box_whatever_its_triangles_orientation(tmp_path):
    region = read_mesh(_box_stl(tmp_path / "box.stl", flip=(0, 3, 7)))
    assert region.dim == 3 and region.pieces == ["surface"]
    assert region.volume == pytest.approx(6.0, rel=1e-12) and region.boundary_measure() == pytest.approx(22.0)
    box = Box([0, 0, 0], [1, 2, 3])
    x = torch.rand(3000, 3, generator=torch.Generator().manual_seed(2), dtype=D) * 4 - 0.5
    assert torch.allclose(region.sdf(x), box.sdf(x), atol=1e-12)
    gen = torch.Generator().manual_seed(3)
    p, n = region.sample_boundary(2000, gen)
    assert torch.allclose(box.sdf(p), torch.zeros(2000, dtype=D), atol=1e-12)
    assert bool((box.sdf(p + 1e-3 * n) > 0).all() and (box.sdf(p - 1e-3 * n) < 0).all())  # outward
    faces = torch.stack([p[:, 0], p[:, 1] / 2, p[:, 2] / 3], 1)
    area = {a: float(((faces[:, a] < 1e-12) | (faces[:, a] > 1 - 1e-12)).double().mean()) for a in range(3)}
    assert area[2] == pytest.approx(2 * 2 / 22, abs=0.03)  # uniform by area: the z faces' share


def test_a_cavity_in_an_stl_is_outside_and_its_normals_point_into_it(tmp_path):
    outer = meshio.read(str(_box_stl(tmp_path / "outer.stl", (0, 0, 0), (3, 3, 3))))
    inner = meshio.read(str(_box_stl(tmp_path / "inner.stl", (1, 1, 1), (2, 2, 2))))
    points = np.concatenate([outer.points, inner.points])
    tri = np.concatenate([outer.cells[0].data, inner.cells[0].data + len(outer.points)])
    meshio.write(str(tmp_path / "shell.stl"), meshio.Mesh(points, [("triangle", tri)]), file_format="stl")
    region = read_mesh(tmp_path / "shell.stl")
    assert region.volume == pytest.approx(26.0, rel=1e-12)
    x = torch.tensor([[0.5, 0.5, 0.5], [1.5, 1.5, 1.5], [2.5, 1.5, 1.5], [3.5, 1, 1]], dtype=D)
    assert region.contains(x).tolist() == [True, False, True, False]
    p, n = region.sample_boundary(4000, torch.Generator().manual_seed(4))
    assert bool((region.contains(p - 1e-6 * n) & ~region.contains(p + 1e-6 * n)).all())


def test_distance_to_triangles_in_3d_against_brute_force():
    region = read_mesh(MESHES / "bracket.stl")
    x = torch.rand(300, 3, generator=torch.Generator().manual_seed(5), dtype=D) * torch.tensor([1.4, 1.4, 0.9], dtype=D) \
        - 0.2
    dist, _ = cKDTree(_dense(region, 24)).query(x.numpy())
    d = region.distance(x).numpy()
    assert (d <= dist + 1e-12).all() and (dist - d).max() < 0.01  # the samples' spacing bounds the gap
    assert (dist - d).mean() < 2e-3


def test_bad_files_and_names_are_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"domain.mesh.file: no such file 'nothere.msh'"):
        Domain.from_config({"mesh": "nothere.msh"}, key="domain")
    (tmp_path / "junk.msh").write_text("this is not a mesh\n")
    with pytest.raises(ConfigError, match="domain.mesh: cannot read the mesh"):
        Domain.from_config({"mesh": str(tmp_path / "junk.msh")}, key="domain")
    with pytest.raises(ConfigError, match=r"not closed \(not watertight\): 3 of its 18 edges"):
        read_mesh(_box_stl(tmp_path / "open.stl", drop=(5,)))
    with pytest.raises(ConfigError, match="give either space .* or mesh"):
        Domain.from_config({"mesh": "channel.msh", "space": {"x": [0, 1], "y": [0, 1]}}, key="domain")
    with pytest.raises(ConfigError, match="domain.mesh.axes: must name the mesh's 2 axes"):
        Domain.from_config({"mesh": {"file": "channel.msh", "axes": ["x", "y", "z"]}}, key="domain")
    with pytest.raises(ConfigError, match="domain.mesh.size: must be > 0"):
        Domain.from_config({"mesh": {"file": "channel.geo", "size": 0}}, key="domain")
    cfg = compose_cfg(["pde=channel", "pde.conditions.inlet.piece=inlett"])
    with pytest.raises(ConfigError) as err:
        build(cfg)
    assert "no boundary piece 'inlett'; pieces: inlet, outlet, walls, obstacle" in str(err.value)
    assert "\n" not in str(err.value)


def test_shapes_cut_from_a_mesh_domain_and_its_config_round_trip():
    spec = {"mesh": {"file": "channel.msh", "axes": ["x", "y"]},
            "holes": {"pin": {"disk": {"center": [1.5, 0.5], "radius": 0.1}}}}
    d = Domain.from_config(spec, key="domain")
    assert d.pieces == ["inlet", "outlet", "walls", "obstacle", "pin"] and d.groups["mesh"][-1] == "obstacle"
    assert d.interior_measure() == pytest.approx(d.mesh.volume - np.pi * 0.01, rel=0.02)
    gen = torch.Generator().manual_seed(6)
    x = d.sample_interior(2000, gen)
    assert bool(((x - torch.tensor([1.5, 0.5], dtype=D)).norm(dim=1) > 0.1).all())
    p, n = d.sample_boundary("pin", 200, gen)
    assert torch.allclose((p - torch.tensor([1.5, 0.5], dtype=D)).norm(dim=1), torch.full((200,), 0.1, dtype=D))
    assert Domain.from_config(d.to_config(), key="domain").to_config() == d.to_config()


def test_least_squares_on_the_mesh_meets_p2_elements_on_the_same_mesh(tmp_path):
    from dinf.export import load_run

    lsq = train(compose_cfg(["pde=channel", "solver=least_squares", "grid=default", "pde.resolution=[64,32]",
                             "pde.batch_size=8192", "vtk=true"]), output_dir=str(tmp_path / "lsq"))
    assert lsq["l2re"] < 1e-5  # against the exact solution (measured 6.2e-7)
    problem, field, _ = load_run(str(tmp_path / "lsq"))
    fem_problem, fem_field, fem = build(compose_cfg(["pde=channel", "solver=fem", "solver.h=1"]))
    fem.solve(fem_field, fem_problem, torch.Generator().manual_seed(0))
    points, kind, _, values = fem.mesh_solution()
    assert kind == "triangle6" and fem.info["elements"] == 2862  # the file's own triangles
    ours = problem.predict(field, torch.as_tensor(points)).numpy()[:, 0]
    exact = problem.reference.exact_values(torch.as_tensor(points)).numpy()[:, 0]
    assert np.linalg.norm(ours - values) / np.linalg.norm(values) < 1e-4  # the bar
    assert np.linalg.norm(values - exact) / np.linalg.norm(exact) < 3e-5  # P2 itself (8.6e-6 measured)
    # The .vtu on the domain's mesh: its points are the mesh's, its values the field's there.
    out = meshio.read(str(tmp_path / "lsq" / "channel_mesh.vtu"))
    assert set(out.point_data) == {"u", "inside", "error_u", "residual_poisson"}
    assert len(out.cells_dict["triangle"]) == 2862
    at = problem.predict(field, torch.as_tensor(out.points[:, :2])).numpy()[:, 0]
    assert np.allclose(out.point_data["u"], at, rtol=0, atol=1e-12)
    assert np.allclose(out.point_data["error_u"], at - problem.reference.exact_values(
        torch.as_tensor(out.points[:, :2])).numpy()[:, 0], atol=1e-12)


def test_a_neumann_condition_on_a_mesh_piece_uses_its_outward_normals(tmp_path):
    # u_n = ∂u/∂x on the outlet (normal +x) and −∂u/∂x on the inlet: wrong normals would miss.
    metrics = train(compose_cfg(["pde=channel", "solver=least_squares", "grid=default", "pde.resolution=[64,32]",
                                 "pde.batch_size=8192", "pde.conditions.outlet.type=neumann",
                                 "pde.conditions.outlet.value='2*cos(2*x)*cos(3*y) + y'",
                                 "pde.conditions.inlet.type=neumann",
                                 "pde.conditions.inlet.value='-(2*cos(2*x)*cos(3*y) + y)'"]),
                    output_dir=str(tmp_path))
    assert metrics["l2re"] < 1e-4


def test_export_at_any_mesh_masks_points_outside(tmp_path):
    from dinf.app.vtk import export_at_mesh

    problem, field, _ = build(compose_cfg(["pde=channel", "solver=least_squares"]))
    square = meshio.Mesh(np.array([[-0.5, 0.5], [0.3, 0.5], [0.3, 0.9], [1.0, 0.5]]), [("line", np.array([[0, 1], [1, 2], [2, 3]]))])
    meshio.write(str(tmp_path / "probe.vtu"), square)
    path, = export_at_mesh(problem, field, str(tmp_path / "probe.vtu"), str(tmp_path))
    out = meshio.read(path)
    u = out.point_data["u"]
    assert np.isnan(u[0]) and np.isfinite(u[1:]).all()  # (−0.5, 0.5) lies outside the channel
    with pytest.raises(ConfigError, match="--mesh: cannot read the mesh"):
        (tmp_path / "junk.msh").write_text("junk")
        export_at_mesh(problem, field, str(tmp_path / "junk.msh"), str(tmp_path))


def test_linear_interpolation_of_a_reference_file_is_scipys():
    from scipy.interpolate import griddata

    from dinf.pdes.equation_pictures import _linear

    rng = np.random.default_rng(0)
    for d in (2, 3):
        nodes, vals, pts = rng.random((300, d)), rng.random((300, 2)), rng.random((1000, d)) * 1.2 - 0.1
        ours, theirs = _linear(nodes, vals, pts), griddata(nodes, vals, pts, method="linear")
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))
        assert np.nanmax(np.abs(ours - theirs)) < 1e-12


def test_the_ray_parity_in_3d_is_the_winding_number_also_through_vertices_and_edges():
    from dinf.geometry.mesh_kernels import winding_3d

    region = read_mesh(MESHES / "bracket.stl")
    axis = torch.linspace(0, 1, 41, dtype=D)[1:-1]  # 191 of the mesh's vertices lie on these lines
    grid = torch.stack(torch.meshgrid(axis, axis, torch.linspace(0.01, 0.49, 7, dtype=D), indexing="ij"), -1)
    x = torch.cat([grid.reshape(-1, 3), torch.rand(20000, 3, generator=torch.Generator().manual_seed(7), dtype=D)])
    winding = winding_3d(x.numpy(), *[np.ascontiguousarray(c.numpy()) for c in region._corners]) > 0.5
    assert np.array_equal(region.contains(x).numpy(), winding)


def test_a_time_dependent_problem_on_a_mesh_writes_a_series_on_it(tmp_path):
    from dinf.app.vtk import export_on_mesh
    from tests.helpers import build_spec

    spec = {"_target_": "dinf.pdes.EquationProblem", "name": "heat_channel", "in_dim": 3, "out_dim": 1,
            "unknowns": ["u"], "domain": {"mesh": "channel.msh", "time": {"t": [0, 1]}},
            "residuals": {"heat": "u_t - 0.1*(u_xx + u_yy)"},
            "conditions": {"start": {"type": "initial", "value": "sin(x)"},
                           "sides": {"type": "dirichlet", "piece": "boundary", "value": "0"}},
            "batch_size": 256}
    problem, field, _ = build_spec(spec)
    paths = export_on_mesh(problem, field, str(tmp_path), snapshots=3)
    assert [Path(p).name for p in paths] == ["heat_channel_mesh_000.vtu", "heat_channel_mesh_001.vtu",
                                             "heat_channel_mesh_002.vtu", "heat_channel_mesh.pvd"]
    last = meshio.read(paths[2])
    xyt = torch.cat([torch.as_tensor(last.points[:, :2]), torch.ones(len(last.points), 1, dtype=D)], 1)
    assert np.allclose(last.point_data["u"], problem.predict(field, xyt).numpy()[:, 0], atol=1e-12)
    assert 'timestep="0.5"' in Path(paths[3]).read_text()


def test_a_3d_gmsh_file_of_tetrahedra_names_its_faces_and_p2_solves_on_it(tmp_path):
    gmsh = pytest.importorskip("gmsh")
    from dinf.pdes.equation_problem import EquationProblem
    from dinf.solvers.classical.fem import FiniteElements

    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        cube = gmsh.model.occ.addBox(0, 0, 0, 1, 1, 1)
        gmsh.model.occ.synchronize()
        faces = [s for _, s in gmsh.model.getEntities(2)]
        gmsh.model.addPhysicalGroup(2, faces[:1], name="left")
        gmsh.model.addPhysicalGroup(2, faces[1:], name="rest")
        gmsh.model.addPhysicalGroup(3, [cube], name="solid")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.25)
        gmsh.model.mesh.generate(3)
        gmsh.write(str(tmp_path / "cube.msh"))
    finally:
        gmsh.finalize()
    region = read_mesh(tmp_path / "cube.msh")
    assert region.cells[0] == "tetra" and region.pieces == ["left", "rest"]
    assert [region.piece_measure(k) for k in range(2)] == pytest.approx([1.0, 5.0], rel=1e-12)
    x = torch.rand(1000, 3, generator=torch.Generator().manual_seed(8), dtype=D) * 1.4 - 0.2
    assert torch.allclose(region.sdf(x), Box([0, 0, 0], [1, 1, 1]).sdf(x), atol=1e-12)
    exact = "exp(x)*sin(y) + z^2"
    problem = EquationProblem(unknowns=["u"], domain={"mesh": str(tmp_path / "cube.msh")},
                              residuals={"pde": "u_xx + u_yy + u_zz - 2"},
                              conditions={"left": {"type": "dirichlet", "piece": "left", "value": exact},
                                          "rest": {"type": "dirichlet", "piece": "rest", "value": exact}},
                              reference={"exact": {"u": exact}}, evaluation={"resolution": 11}, batch_size=64)
    fem = FiniteElements(in_dim=3, h=1.0, order=2)
    field = fem.result_field()
    fem.solve(field, problem)
    assert fem.info["elements"] == len(region.cells[1])  # the file's own tetrahedra
    assert problem.evaluate(field)["l2re"] < 1e-3
