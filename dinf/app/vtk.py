"""A run's solution for ParaView: VTK image data (``.vti``) on a regular grid over the domain.

``export_vtk(problem, field, output_dir)`` samples a problem stated in a config file on a
regular grid over its box (space coordinates; time in snapshots, one ``.vti`` each and a
``.pvd`` naming them, except for one space coordinate and time, which is one image over x–t) and
writes per point:

* each unknown's channels (``u``, or ``u_re``/``u_im`` for a complex one), NaN outside the domain;
* ``inside``: 1 in the domain (or on its boundary), 0 outside (ParaView: *Threshold* on it);
* ``error_<channel>``: the field minus the reference, where the problem has one (the exact
  solution, else its data file interpolated as the pictures do; not for a file in three free
  coordinates, whose triangulation takes minutes);
* ``residual_<equation>``: the equation's residual at the point (the root of the sum of squares
  over its parts), from the field's jet (not for a classical solver's solution: values only).

The files are VTK's XML format, written here (the arrays inline, base64 float64 with a 64-bit
header), so no VTK library is needed to write them; ParaView, pyvista and VTK read them.

``export_mesh`` writes a classical solver's solution on its own mesh (finite elements' P1 or P2
triangles, ``<problem>_fem.vtu``, by meshio), ``export_grid`` on its own grid (the method of
lines' nodes, ``<problem>_mol.vti``); ``export_on_mesh`` the same arrays as the image on the
mesh of a domain read from a file (``<problem>_mesh.vtu``).
"""
from __future__ import annotations

import base64
import logging
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import quoteattr

import numpy as np
import torch

from dinf.errors import ConfigError
from dinf.fields.base import innermost
from dinf.fields.interpolant import Interpolant
from dinf.geometry.domain import closed_contains
from dinf.geometry.mesh import read_meshio
from dinf.pdes.base import field_dtype

log = logging.getLogger(__name__)

# Points along the longest space axis by default, per space dimension: about 40 000 an image, and
# 11 snapshots of 128² or 32³ in time (Gray–Scott's 11 of 192² took 36 s, their residuals' jets).
POINTS = {1: 1024, 2: 192, 3: 48}
POINTS_IN_TIME = {1: 256, 2: 128, 3: 32}  # with time: x–t images 256 × 256
SNAPSHOTS = 11  # time snapshots by default (ends included)
CHUNK = 16384  # points per jet (the residuals)


def check_resolution(resolution: Optional[int], key: str = "--resolution") -> None:
    """One line for a resolution ≤ 0 (points along the longest axis); None: the default."""
    if resolution is not None and int(resolution) <= 0:
        raise ConfigError(key, f"must be > 0 (points along the longest axis), got {resolution}")


def exportable(problem: Any) -> Optional[str]:
    """None where ``export_vtk`` applies to ``problem``, else why not."""
    if not stated_in_config(problem):
        return f"{type(problem).__name__} is not stated in a config file (coordinates, a domain, unknowns)"
    space = [c for c in problem.coords if c != getattr(problem, "time", None)]
    if len(space) > 3:
        return f"{problem.name} has {len(space)} space coordinates, and a VTK image holds three"
    return None


def stated_in_config(problem: Any) -> bool:
    """A problem of a config file (coordinates, a domain, unknowns), not a Python class."""
    return all(hasattr(problem, k) for k in ("coords", "domain", "unknowns", "jet_at"))


def writable(problem: Any) -> Optional[str]:
    """None where ``export_run`` writes something for ``problem`` (a class problem: its values
    only, ``export_values``), else why not."""
    if stated_in_config(problem):
        return exportable(problem)
    if problem.in_dim > 3:
        return f"{type(problem).__name__} has {problem.in_dim} coordinates, and a VTK image holds three"
    return None


def class_name(problem: Any) -> str:
    """A class problem's file name: ``HelmholtzPMLProblem`` → ``helmholtz_pml``, ``KirchhoffPlate``
    → ``kirchhoff_plate``."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+", type(problem).__name__)
    return "_".join(w.lower() for w in words if w != "Problem") or "problem"


def export_values(problem: Any, field: Any, output_dir: str, resolution: Optional[int] = None,
                  key: str = "--resolution") -> List[str]:
    """A problem written as a Python class (``pde=helmholtz``, ``plate``, ``cloth``, the Poisson
    images): the field's channels (``u``, or ``u_0``, ``u_1``, …) on a regular grid over its box
    (``problem.bounds``, else [−1, 1]^d), and ``error_u`` where it has an exact ``solution(x)``;
    no mask (its domain is the box) and no residuals (its equations are code, not texts).
    ``<name>.vti``, the name from the class."""
    check_resolution(resolution, key)
    why = writable(problem)
    if why is not None:
        raise ConfigError("vtk", why)
    d = problem.in_dim
    bounds = np.asarray(problem.bounds if problem.bounds is not None else [[-1.0, 1.0]] * d, dtype=np.float64)
    n = int(resolution or POINTS[d])
    longest = float((bounds[:, 1] - bounds[:, 0]).max())
    axes = [_axis(bounds[a], n, longest) for a in range(d)]
    x = _lattice(d, dict(enumerate(axes)))
    values = problem.predict(field, x.to(field_dtype(field, x.dtype))).detach().double().cpu().numpy()
    names = ["u"] if values.shape[1] == 1 else [f"u_{c}" for c in range(values.shape[1])]
    arrays = {nm: values[:, c] for c, nm in enumerate(names)}
    solution = getattr(problem, "solution", None)
    if callable(solution):
        exact = solution(x).detach().double().cpu().numpy().reshape(len(x), -1)
        for c, nm in enumerate(names[: exact.shape[1]]):
            arrays[f"error_{nm}"] = values[:, c] - exact[:, c]
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{class_name(problem)}.vti")
    _write_lattice(path, axes, arrays, list("xyz"[:d]))
    return [path]


def export_vtk(problem: Any, field: Any, output_dir: str, resolution: Optional[int] = None,
               snapshots: Optional[int] = None, name: Optional[str] = None,
               key: str = "--resolution") -> List[str]:
    """Write ``<name>.vti`` (or ``<name>_<k>.vti`` per snapshot and ``<name>.pvd``) into
    ``output_dir``; returns the paths. ``resolution``: points along the longest space axis (the
    others in proportion), ``snapshots``: time snapshots (module docstring)."""
    check_resolution(resolution, key)
    if snapshots is not None and int(snapshots) <= 0:
        raise ConfigError("--snapshots", f"must be > 0, got {snapshots}")
    why = exportable(problem)
    if why is not None:
        raise ConfigError("vtk", f"writes problems stated in a config file; {why}")
    name = name or problem.name
    coords = list(problem.coords)
    bounds = problem.domain.bounds.double().numpy()
    time = problem.coords.index(problem.time) if getattr(problem, "time", None) else None
    space = [a for a in range(len(coords)) if a != time]
    n = int(resolution or (POINTS if time is None else POINTS_IN_TIME)[min(len(space), 3)])
    axes = {a: _axis(bounds[a], n, max(bounds[b, 1] - bounds[b, 0] for b in space)) for a in space}
    os.makedirs(output_dir, exist_ok=True)
    if time is not None and len(space) == 1:  # one image over x–t
        axes[time] = _axis(bounds[time], n, bounds[time, 1] - bounds[time, 0])
        return [_write_image(problem, field, axes, [space[0], time], {}, os.path.join(output_dir, f"{name}.vti"))]
    if time is None:
        return [_write_image(problem, field, axes, space, {}, os.path.join(output_dir, f"{name}.vti"))]
    times = np.linspace(bounds[time, 0], bounds[time, 1], int(snapshots or SNAPSHOTS))
    paths = []
    for k, t in enumerate(times):
        paths.append(_write_image(problem, field, axes, space, {time: float(t)},
                                  os.path.join(output_dir, f"{name}_{k:03d}.vti")))
    return paths + [_write_pvd(os.path.join(output_dir, f"{name}.pvd"), times, paths)]


def _write_pvd(pvd: str, times: Sequence[float], paths: Sequence[str]) -> str:
    """A ParaView collection naming one file per time."""
    rows = "\n".join(f'    <DataSet timestep="{t:.10g}" part="0" file={quoteattr(os.path.basename(p))}/>'
                     for t, p in zip(times, paths))
    with open(pvd, "w") as f:
        f.write(f'<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
                f"  <Collection>\n{rows}\n  </Collection>\n</VTKFile>\n")
    return pvd


def export_run(problem: Any, field: Any, solver: Any, output_dir: str, resolution: Optional[int] = None,
               snapshots: Optional[int] = None) -> Tuple[List[str], Optional[str]]:
    """What a run writes for ParaView: ``(files, the solver's own)``. A problem of a config file:
    ``export_vtk``'s images, ``export_on_mesh``'s files on a mesh domain, and a classical
    solver's own mesh or grid (``export_mesh``, ``export_grid``; the grid's series before its
    ``.pvd``, which is the second item). A class problem: ``export_values``' image, and None."""
    os.makedirs(output_dir, exist_ok=True)
    if not stated_in_config(problem):
        return export_values(problem, field, output_dir, resolution), None
    own = export_mesh(solver, problem, output_dir)
    grid = export_grid(solver, problem, output_dir, snapshots)
    return (export_vtk(problem, field, output_dir, resolution, snapshots)
            + export_on_mesh(problem, field, output_dir, snapshots) + grid[:-1],
            own or (grid[-1] if grid else None))


def export_grid(solver: Any, problem: Any, output_dir: str, snapshots: Optional[int] = None,
                name: Optional[str] = None) -> List[str]:
    """A classical solver's solution on its own grid (``solver.grid_solution(times)``: the method
    of lines' nodes) as ``<name>_<solver prefix>.vti``, with ``error_<channel>`` against the
    reference: one x–t image (256 times from the integrator's dense output) for one space
    coordinate, else one image per snapshot and a ``.pvd`` (the main file last); ``[]`` where
    the solver has no grid."""
    found = getattr(solver, "grid_solution", None)
    if not callable(found) or getattr(problem, "time", None) is None:
        return []
    bounds = problem.domain.bounds.double().numpy()
    ti = problem.coords.index(problem.time)
    space = [a for a in range(len(problem.coords)) if a != ti]
    one = len(space) == 1
    times = np.linspace(bounds[ti, 0], bounds[ti, 1], POINTS_IN_TIME[1] if one else int(snapshots or SNAPSHOTS))
    got = found(times)
    if got is None:
        return []
    axes, values = got
    channel = problem.unknowns.channel_names()[0]
    base = os.path.join(output_dir, f"{name or problem.name}_{getattr(solver, 'prefix', 'grid')}")
    from dinf.pdes.equation_pictures import file_dims, reference_at

    def arrays(pts: torch.Tensor, u: np.ndarray, fixed: Optional[Dict[int, float]]) -> Dict[str, np.ndarray]:
        out = {channel: u}
        if getattr(problem, "reference", None) is not None and file_dims(problem, fixed) < 3:
            ref = reference_at(problem, pts, fixed)
            if ref is not None:
                out[f"error_{channel}"] = u - ref[:, 0]
        return out

    os.makedirs(output_dir, exist_ok=True)
    if one:  # one x–t image: x fastest, then t
        x = _lattice(len(problem.coords), {space[0]: axes[0], ti: times})
        _write_lattice(base + ".vti", [axes[0], times], arrays(x, values.reshape(-1), None),
                       [problem.coords[space[0]], problem.time])
        return [base + ".vti"]
    paths = []
    for k, t in enumerate(times):
        x = _lattice(len(problem.coords), dict(zip(space, axes)), {ti: float(t)})
        paths.append(f"{base}_{k:03d}.vti")
        _write_lattice(paths[-1], axes, arrays(x, values[k].ravel(order="F"), {ti: float(t)}),
                       [problem.coords[a] for a in space])
    return paths + [_write_pvd(base + ".pvd", times, paths)]


def export_on_mesh(problem: Any, field: Any, output_dir: str, snapshots: Optional[int] = None,
                   name: Optional[str] = None) -> List[str]:
    """For a domain read from a mesh file, the same arrays at the mesh's own points, on its
    triangles or tetrahedra (or on its boundary's facets, an STL's surface), as
    ``<name>_mesh.vtu`` (by meshio); with time one file per snapshot and ``<name>_mesh.pvd``.
    Nothing (``[]``) for other domains."""
    region = getattr(problem.domain, "mesh", None)
    if region is None:
        return []
    kind, cells = region.cells if region.cells is not None else (
        "line" if region.dim == 2 else "triangle", region.facets.numpy())
    cut = problem.domain.holes or problem.domain.additions or problem.domain.within
    return _write_on_points(problem, field, region.points.numpy(), [(kind, cells)], output_dir,
                            f"{name or problem.name}_mesh", snapshots, all_inside=not cut)


def export_at_mesh(problem: Any, field: Any, mesh_file: str, output_dir: str, snapshots: Optional[int] = None,
                   key: str = "--mesh") -> List[str]:
    """The arrays at the points of any mesh meshio reads (``python -m dinf.export <run> --mesh
    F``), on its cells, as ``<problem>_on_<file stem>.vtu`` (a series with time); points outside
    the domain are NaN, as in the image."""
    why = exportable(problem)
    if why is not None:
        raise ConfigError("vtk", f"writes problems stated in a config file; {why}")
    if not os.path.isfile(mesh_file):
        raise ConfigError(key, f"no such file {mesh_file}")
    m = read_meshio(mesh_file, key)
    space = [c for c in problem.coords if c != getattr(problem, "time", None)]
    points = np.asarray(m.points, dtype=np.float64)
    if points.shape[1] < len(space) or (points.shape[1] > len(space) and np.ptp(points[:, len(space):]) > 0):
        raise ConfigError(key, f"{os.path.basename(mesh_file)} has points in {points.shape[1]} coordinates; "
                               f"{problem.name} has {len(space)} space coordinates ({', '.join(space)})")
    stem = os.path.splitext(os.path.basename(mesh_file))[0]
    return _write_on_points(problem, field, points[:, : len(space)], [(b.type, b.data) for b in m.cells],
                            output_dir, f"{problem.name}_on_{stem}", snapshots, all_inside=False)


def _write_on_points(problem: Any, field: Any, points: np.ndarray, blocks: List[Tuple[str, np.ndarray]],
                     output_dir: str, name: str, snapshots: Optional[int], all_inside: bool) -> List[str]:
    """``point_arrays`` at the points the ``blocks``' cells use, written with those cells as
    ``<name>.vtu`` (or ``<name>_<k>.vtu`` per snapshot and ``<name>.pvd``)."""
    import meshio

    used = np.unique(np.concatenate([np.asarray(c).reshape(-1) for _, c in blocks]))
    renumber = np.full(len(points), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    pts = torch.as_tensor(points[used], dtype=torch.float64)
    xyz = np.zeros((len(used), 3))
    xyz[:, : pts.shape[1]] = pts.numpy()
    cells = [(kind, renumber[np.asarray(c, dtype=np.int64)]) for kind, c in blocks]
    time = problem.coords.index(problem.time) if getattr(problem, "time", None) else None
    bounds = problem.domain.bounds.double().numpy()
    times = [None] if time is None else np.linspace(bounds[time, 0], bounds[time, 1], int(snapshots or SNAPSHOTS))
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for k, t in enumerate(times):
        x = pts if t is None else torch.cat([pts, torch.full((len(pts), 1), float(t), dtype=torch.float64)], 1)
        data = point_arrays(problem, field, x, None if t is None else {time: float(t)}, all_inside=all_inside)
        paths.append(os.path.join(output_dir, f"{name}.vtu" if t is None else f"{name}_{k:03d}.vtu"))
        meshio.write(paths[-1], meshio.Mesh(xyz, cells, point_data=data))
    if time is not None:
        paths.append(_write_pvd(os.path.join(output_dir, f"{name}.pvd"), times, paths))
    return paths


def export_mesh(solver: Any, problem: Any, output_dir: str, name: Optional[str] = None) -> Optional[str]:
    """A classical solver's solution on its own mesh (``solver.mesh_solution()``: finite
    elements' triangles) as ``<name>_<solver prefix>.vtu``, with ``error_<channel>`` against the
    reference where there is one, written by meshio; None where the solver has no mesh."""
    found = getattr(solver, "mesh_solution", None)
    found = found() if callable(found) else None
    if found is None:
        return None
    import meshio

    points, kind, cells, values = found
    xyz = np.zeros((len(points), 3))
    xyz[:, : points.shape[1]] = points
    channel = problem.unknowns.channel_names()[0]
    data = {channel: values}
    from dinf.pdes.equation_pictures import file_dims, reference_at

    if getattr(problem, "reference", None) is not None and file_dims(problem) < 3:
        ref = reference_at(problem, torch.as_tensor(points, dtype=torch.float64))
        if ref is not None:
            data[f"error_{channel}"] = values - ref[:, 0]
    path = os.path.join(output_dir, f"{name or problem.name}_{getattr(solver, 'prefix', 'mesh')}.vtu")
    meshio.write(path, meshio.Mesh(xyz, [(kind, cells.astype(np.int64))], point_data=data))
    return path


def _axis(bound: Sequence[float], n: int, longest: float) -> np.ndarray:
    """Evenly spaced points over ``bound``, ``n`` along the longest axis and as many per unit length."""
    lo, hi = float(bound[0]), float(bound[1])
    count = max(2, int(round(n * (hi - lo) / longest)))
    return np.linspace(lo, hi, count)


def _write_image(problem: Any, field: Any, axes: Dict[int, np.ndarray], free: List[int],
                 fixed: Dict[int, float], path: str) -> str:
    """Sample ``field`` on the lattice of ``axes[free]`` (the first fastest, as VTK orders
    points), the ``fixed`` coordinates held, and write it to ``path``."""
    x = _lattice(len(problem.coords), {a: axes[a] for a in free}, fixed)
    _write_lattice(path, [axes[a] for a in free], point_arrays(problem, field, x, fixed),
                   [problem.coords[a] for a in free])
    return path


def _lattice(width: int, axes: Dict[int, np.ndarray], fixed: Optional[Dict[int, float]] = None) -> torch.Tensor:
    """``[N, width]`` float64 points of the lattice of ``axes`` (coordinate → its values; the
    first fastest, as VTK orders points), the ``fixed`` coordinates held."""
    keys = list(axes)
    grids = np.meshgrid(*[axes[a] for a in reversed(keys)], indexing="ij")  # the last axis slowest
    x = torch.zeros(grids[0].size, width, dtype=torch.float64)
    for a, g in zip(reversed(keys), grids):
        x[:, a] = torch.from_numpy(g.reshape(-1))
    for a, v in (fixed or {}).items():
        x[:, a] = v
    return x


def _write_lattice(path: str, axes: Sequence[np.ndarray], arrays: Dict[str, np.ndarray], names: Sequence[str]) -> None:
    """``_write_vti`` for the lattice of evenly spaced ``axes`` (1 to 3; its extent, origin and
    spacing read off them)."""
    pad = 3 - len(axes)
    _write_vti(path, [len(a) for a in axes] + [1] * pad, [float(a[0]) for a in axes] + [0.0] * pad,
               [float(a[1] - a[0]) for a in axes] + [1.0] * pad, arrays, names)


def point_arrays(problem: Any, field: Any, x: torch.Tensor, fixed: Optional[Dict[int, float]] = None,
                 all_inside: bool = False) -> Dict[str, np.ndarray]:
    """The arrays written per point at ``x`` (module docstring), by name; ``fixed``: the
    coordinates held (a snapshot's time: a data file's nearest slice is read there);
    ``all_inside``: every point is in the closed domain (the domain's own mesh points, some on its
    boundary, where the inside test may go either way)."""
    inside = np.ones(len(x), dtype=bool) if all_inside else closed_contains(problem.domain, x).numpy()
    values = problem.predict(field, x).numpy()
    names = problem.unknowns.channel_names()
    out: Dict[str, np.ndarray] = {}
    for c, nm in enumerate(names):
        out[nm] = np.where(inside, values[:, c], np.nan)
    out["inside"] = inside.astype(np.float64)
    from dinf.pdes.equation_pictures import file_dims, reference_at

    ref, dims = None, file_dims(problem, fixed) if getattr(problem, "reference", None) is not None else 0
    if dims >= 3:
        # A data file interpolated in three coordinates: its Delaunay triangulation took 217 s of
        # a Poisson3d-CG run's export, 14 s a snapshot of Gray–Scott's (its times too many to slice).
        log.info("vtk: no error_* arrays: the reference is a data file in %d coordinates, which takes minutes to "
                 "interpolate onto the image", dims)
    elif getattr(problem, "reference", None) is not None:
        ref = reference_at(problem, x, fixed)
    if ref is not None:
        for c, nm in enumerate(names[: ref.shape[1]]):
            out[f"error_{nm}"] = np.where(inside, values[:, c] - ref[:, c], np.nan)
    # A classical solver's solution has values only: no jets to take the residual of.
    for eq, r in problem.equations().items() if not isinstance(innermost(field), Interpolant) else ():
        res = np.zeros(len(x))
        for start in range(0, len(x), CHUNK):
            part = x[start:start + CHUNK]
            with torch.enable_grad():
                jet, data = problem.jet_at(field, part)
                res[start:start + len(part)] = r.evaluate(jet, data).detach().double().pow(2).sum(1).sqrt().cpu().numpy()
        out[f"residual_{eq}"] = np.where(inside, res, np.nan)
    return out


def _b64(data: np.ndarray) -> str:
    """VTK's inline binary: a UInt64 byte count, then the little-endian values, base64 encoded."""
    raw = np.ascontiguousarray(data, dtype="<f8").tobytes()
    return base64.b64encode(np.uint64(len(raw)).tobytes() + raw).decode("ascii")


def _write_vti(path: str, dims: Sequence[int], origin: Sequence[float], spacing: Sequence[float],
               arrays: Dict[str, np.ndarray], coords: Sequence[str]) -> None:
    extent = " ".join(f"0 {d - 1}" for d in dims)
    body = "\n".join(f'        <DataArray type="Float64" Name={quoteattr(k)} format="binary">{_b64(v)}</DataArray>'
                     for k, v in arrays.items())
    first = next(iter(arrays))
    with open(path, "w") as f:
        f.write('<?xml version="1.0"?>\n'
                '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
                f"  <!-- axes: {', '.join(coords)} -->\n"
                f'  <ImageData WholeExtent="{extent}" Origin="{" ".join(f"{o:.17g}" for o in origin)}" '
                f'Spacing="{" ".join(f"{s:.17g}" for s in spacing)}" Direction="1 0 0 0 1 0 0 0 1">\n'
                f'    <Piece Extent="{extent}">\n'
                f'      <PointData Scalars={quoteattr(first)}>\n{body}\n      </PointData>\n'
                "      <CellData/>\n    </Piece>\n  </ImageData>\n</VTKFile>\n")


def image_axes(path: str) -> Tuple[List[int], List[float], List[float]]:
    """``(dims, origin, spacing)`` of a ``.vti`` written here (for tests and tools)."""
    import re

    text = open(path).read(4096)
    ext = [int(v) for v in re.search(r'WholeExtent="([^"]+)"', text).group(1).split()]
    origin = [float(v) for v in re.search(r'Origin="([^"]+)"', text).group(1).split()]
    spacing = [float(v) for v in re.search(r'Spacing="([^"]+)"', text).group(1).split()]
    return [ext[2 * i + 1] - ext[2 * i] + 1 for i in range(3)], origin, spacing
