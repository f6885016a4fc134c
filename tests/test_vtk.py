"""The solution for ParaView (dinf.app.vtk, python -m dinf.export): the files a run writes, read
back by pyvista (VTK's own reader), against the field at the same points."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from dinf.app.run import build, train
from dinf.app.vtk import export_vtk, image_axes
from dinf.errors import ConfigError
from dinf.export import load_run, main
from tests.helpers import compose_cfg

pv = pytest.importorskip("pyvista")  # the dev extra installs it


def _points(path):
    """The points of a .vti written here, in VTK's order (x fastest), as [N, 3]."""
    dims, origin, spacing = image_axes(path)
    axes = [o + s * np.arange(d) for d, o, s in zip(dims, origin, spacing)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return np.stack([x.ravel(), y.ravel(), z.ravel()], 1)


@pytest.fixture(scope="module")
def hole_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hole")
    train(compose_cfg(["pde=example_hole", "solver=least_squares", "vtk=true"]), output_dir=str(out))
    return out


def test_a_run_writes_its_solution_error_and_residual_for_paraview(hole_run):
    path = hole_run / "example_hole.vti"
    mesh = pv.read(str(path))  # VTK's reader
    assert set(mesh.array_names) == {"u", "inside", "error_u", "residual_poisson"}
    problem, field, _ = load_run(str(hole_run))
    xy = torch.as_tensor(_points(str(path))[:, :2])
    assert np.allclose(mesh.points[:, :2], xy.numpy())  # the image's points are where we sampled
    inside = mesh["inside"] == 1
    assert 0.5 < inside.mean() < 1.0  # the hole is outside
    values = problem.predict(field, xy).numpy()[:, 0]
    assert np.allclose(mesh["u"][inside], values[inside], rtol=0, atol=1e-12)
    assert np.isnan(mesh["u"][~inside]).all() and np.isnan(mesh["error_u"][~inside]).all()
    exact = problem.reference.exact_values(xy).numpy()[:, 0]
    assert np.allclose(mesh["error_u"][inside], values[inside] - exact[inside], atol=1e-12)
    assert np.nanmax(np.abs(mesh["error_u"])) < 0.1 * np.abs(exact).max()  # a solved field, not noise
    assert (mesh["residual_poisson"][inside] >= 0).all()


def test_export_samples_a_finished_run_again_at_any_resolution(hole_run, tmp_path):
    assert main([str(hole_run), "--resolution", "40", "--out", str(tmp_path)]) == 0
    mesh = pv.read(str(tmp_path / "example_hole.vti"))
    dims, _, _ = image_axes(str(tmp_path / "example_hole.vti"))
    assert max(dims) == 40 and mesh.n_points == dims[0] * dims[1]


def test_a_time_dependent_run_is_a_series_of_snapshots(tmp_path):
    problem, field, _ = build(compose_cfg(["pde=heat2d_ms", "model=siren"]))
    paths = export_vtk(problem, field, str(tmp_path), resolution=24, snapshots=3)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["heat2d_ms_000.vti", "heat2d_ms_001.vti", "heat2d_ms_002.vti",
                                                    "heat2d_ms.pvd"]
    reader = pv.get_reader(paths[-1])
    assert np.allclose(reader.time_values, [0.0, 2.5, 5.0])
    reader.set_active_time_value(2.5)
    mesh = reader.read()[0]
    xy = torch.as_tensor(mesh.points[:, :2], dtype=torch.float64)
    x = torch.cat([xy, torch.full((len(xy), 1), 2.5, dtype=torch.float64)], 1)
    assert np.allclose(mesh["u"], problem.predict(field, x).numpy()[:, 0], atol=1e-12)
    assert np.allclose(mesh["error_u"], mesh["u"] - problem.reference.exact_values(x).numpy()[:, 0], atol=1e-12)


def test_one_space_coordinate_and_time_is_one_image_over_x_and_t(tmp_path):
    problem, field, _ = build(compose_cfg(["pde=burgers1d", "model=siren"]))
    (path,) = export_vtk(problem, field, str(tmp_path), resolution=30)
    dims, origin, spacing = image_axes(path)
    assert dims == [30, 30, 1] and origin[:2] == [-1.0, 0.0]  # as many along t as along x


@pytest.mark.parametrize("args, words", [
    (["{run}", "--resolution", "0"], "--resolution: must be > 0"),
    (["{missing}"], "no run folder"),
    (["{empty}"], "has no .hydra/config.yaml"),
])
def test_bad_export_requests_are_one_line(hole_run, tmp_path, args, words):
    (tmp_path / "empty").mkdir()
    names = {"run": str(hole_run), "missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty")}
    run = subprocess.run([sys.executable, "-m", "dinf.export"] + [a.format(**names) for a in args],
                         capture_output=True, text=True, timeout=300)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert run.returncode == 2 and len(lines) == 1 and words in lines[0], run.stderr


@pytest.mark.parametrize("order, kind", [(1, "triangle"), (2, "triangle6")])
def test_a_classical_solver_writes_its_own_mesh_and_no_residuals(tmp_path, order, kind):
    import meshio

    cfg = compose_cfg(["pde=helmholtz_manufactured_eq", "solver=fem", f"solver.order={order}", "solver.h=0.2", "vtk=true"])
    problem, field, solver = build(cfg)
    train(cfg, output_dir=str(tmp_path))
    image = pv.read(str(tmp_path / "helmholtz_manufactured.vti"))
    assert set(image.array_names) == {"u", "inside", "error_u"}  # values only: no jets for a residual
    mesh = meshio.read(str(tmp_path / "helmholtz_manufactured_fem.vtu"))  # the elements themselves
    assert [c.type for c in mesh.cells] == [kind] and set(mesh.point_data) == {"u", "error_u"}
    solver.solve(field, problem)  # the same solve again, to probe the solution where the file says
    pts = torch.as_tensor(mesh.points[:, :2])
    assert np.allclose(mesh.point_data["u"], solver.probe(pts).numpy()[:, 0], atol=1e-9)
    exact = problem.reference.exact_values(pts).numpy()[:, 0]
    assert np.allclose(mesh.point_data["error_u"], mesh.point_data["u"] - exact, atol=1e-12)
    assert pv.read(str(tmp_path / "helmholtz_manufactured_fem.vtu")).n_cells == len(mesh.cells[0].data)  # VTK reads it
    again = tmp_path / "again"  # from the finished run: solved again, as no checkpoint holds it
    assert main([str(tmp_path), "--out", str(again), "--resolution", "30"]) == 0
    assert np.allclose(meshio.read(str(again / "helmholtz_manufactured_fem.vtu")).point_data["u"], mesh.point_data["u"])


def test_more_than_three_space_coordinates_are_not_written():
    from dinf.app.vtk import exportable

    problem, _, _ = build(compose_cfg(["pde=pnd", "model=mlp"]))
    assert "5 space coordinates, and a VTK image holds three" in exportable(problem)


def test_a_problem_written_as_a_class_writes_its_values_and_error_over_its_box(tmp_path):
    from dinf.app.vtk import export_run

    problem, field, solver = build(compose_cfg(["pde=helmholtz_manufactured"]))
    with pytest.raises(ConfigError, match="not stated in a config file"):
        export_vtk(problem, field, str(tmp_path))  # the full export needs coordinates, a domain, unknowns
    paths, mesh = export_run(problem, field, solver, str(tmp_path), resolution=40)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["helmholtz_manufactured.vti"] and mesh is None
    image = pv.read(paths[0])
    assert set(image.array_names) == {"u", "error_u"}  # no mask, no residuals: its equations are code
    x = torch.as_tensor(_points(paths[0])[:, :2])
    assert np.allclose(x.min(0).values.numpy(), [-1, -1]) and np.allclose(x.max(0).values.numpy(), [1, 1])
    u = problem.predict(field, x).numpy()[:, 0]
    assert np.allclose(image["u"], u, atol=1e-12)
    assert np.allclose(image["error_u"], u - problem.solution(x).numpy().reshape(-1), atol=1e-12)
    with pytest.raises(ConfigError, match="--resolution: must be > 0"):
        export_run(problem, field, solver, str(tmp_path), resolution=0)
