"""Regions read from mesh files: gmsh's ``.msh`` (2D, 3D) and ``.geo`` (meshed by gmsh), STL
surfaces (3D), and whatever else meshio reads.

A ``MeshRegion`` is a ``Shape`` bounded by the mesh's boundary facets (edges in 2D, triangles in
3D): the facets of its triangles or tetrahedra that belong to one cell only, or, for a mesh of the
boundary alone (an STL, or a ``.msh`` of lines), its cells. It answers inside/outside (a crossing
number in 2D, the winding number in 3D), the exact signed distance to its facets, and draws
boundary points uniformly with the outward normals of their facets.

Boundary pieces are gmsh's physical groups of dimension d − 1 (``Physical Curve("inlet")`` in 2D,
``Physical Surface("wall")`` in 3D), by name; facets in no group form the piece ``unnamed``, and a
mesh without groups (an STL) is the one piece ``surface``. Curved boundaries are their facets:
the domain is the polygon (polyhedron) of the mesh, as a finite-element solve on it sees it.

Everything is float64 on the CPU. Bad files raise a one-line ``ConfigError`` under the config key.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.errors import ConfigError, check
from dinf.geometry.mesh_kernels import bin_triangles, distance_2d, distance_3d, parity_2d, ray_parity_3d, winding_3d
from dinf.geometry.shapes import DTYPE, Shape, _points

UNNAMED = "unnamed"     # facets in no physical group
SURFACE = "surface"     # the one piece of a mesh without groups
# meshio cell types: domain cells (their corner nodes first) and boundary cells, by dimension.
VOLUME_CELLS = {2: ("triangle", "triangle6", "triangle7", "quad", "quad8", "quad9"),
                3: ("tetra", "tetra10")}
FACET_CELLS = {2: ("line", "line3"), 3: ("triangle", "triangle6", "triangle7")}
CORNERS = {"triangle": 3, "triangle6": 3, "triangle7": 3, "quad": 4, "quad8": 4, "quad9": 4,
           "tetra": 4, "tetra10": 4, "line": 2, "line3": 2}


class MeshRegion(Shape):
    """The region bounded by a mesh's boundary facets.

    ``points`` ``[P, d]``; ``facets`` ``[F, d]`` vertex indices, ordered so that the facet's
    right-hand normal points out; ``piece_of`` ``[F]`` the piece index of each facet, ``pieces``
    their names; ``cells`` (meshio type, ``[C, k]``) the triangles or tetrahedra when the file has
    them (for a finite-element solve and the ``.vtu`` export), else None. ``source`` is what the
    config said (``file``, ``size``), for ``to_config``.
    """

    def __init__(self, points: np.ndarray, facets: np.ndarray, piece_of: np.ndarray, pieces: Sequence[str],
                 cells: Optional[Tuple[str, np.ndarray]] = None, source: Optional[Dict[str, Any]] = None,
                 key: str = "mesh", oriented: bool = False):
        self.key = key
        self.dim = int(points.shape[1])
        self.points = torch.as_tensor(np.ascontiguousarray(points), dtype=DTYPE)
        self.facets = torch.as_tensor(np.ascontiguousarray(facets), dtype=torch.long)
        self.piece_of = torch.as_tensor(np.asarray(piece_of), dtype=torch.long)
        self.pieces = list(pieces)
        self.cells = cells
        self.source = dict(source or {})
        self._bins: Optional[Tuple[Any, ...]] = None
        check(self.facets.shape[0] > 0, key, "the mesh has no boundary facets")
        self._closed_or_raise()
        self._corners = [self.points[self.facets[:, k]] for k in range(self.dim)]
        self._geometry()
        if not oriented:
            self._orient()
        self._lo, self._hi = self.points[self.facets.unique()].min(0).values, self.points[self.facets.unique()].max(0).values

    # ------------------------------------------------------------------------ construction

    def _closed_or_raise(self) -> None:
        """Each vertex (2D) or edge (3D) of the boundary must be shared by exactly two facets."""
        f = self.facets.numpy()
        if self.dim == 2:
            keys = f.reshape(-1)
            what = "vertices"
        else:
            edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
            keys = np.sort(edges, axis=1)
            keys = keys[:, 0] * (int(keys.max()) + 1) + keys[:, 1]
            what = "edges"
        _, counts = np.unique(keys, return_counts=True)
        bad = int((counts != 2).sum())
        check(bad == 0, self.key, f"the mesh's boundary is not closed (not watertight): {bad} of its {len(counts)} "
              f"{what} belong to {'one or more than two' if self.dim == 3 else 'other than two'} facets; "
              "close the surface (e.g. in gmsh or MeshLab) or mesh the volume")

    def _set_facets(self, facets: Tensor) -> None:
        self.facets, self._bins = facets, None
        self._corners = [self.points[facets[:, k]] for k in range(self.dim)]
        self._geometry()

    def _orient(self) -> None:
        """Turn every facet's normal outward, for a boundary read without cells (an STL, lines).

        2D: a facet whose normal enters the region (the parity test a hair along it) is flipped.
        3D: facets are made consistent across their shared edges (breadth first), each closed
        component then outward (positive volume), and a component inside an odd number of others
        (a cavity) inward."""
        if self.dim == 2:
            size = float((self.points.max(0).values - self.points.min(0).values).max())
            centre = sum(self._corners) / 2
            self._flip(self._winding(centre + 1e-7 * size * self.normals) > 0.5)
            return
        flips, component = _consistent(self.facets.numpy())
        self._flip(torch.as_tensor(flips))
        comp = torch.as_tensor(component)
        centre = sum(self._corners) / 3
        parts = int(comp.max()) + 1
        signed = torch.zeros(parts, dtype=DTYPE).index_add_(0, comp, self.measures * (centre * self.normals).sum(1))
        self._flip(signed[comp] < 0)
        if parts > 1:  # a component inside an odd number of others bounds a cavity: inward
            depth = torch.zeros(parts, dtype=torch.long)
            probe = torch.stack([self.points[self.facets[comp == k][0, 0]] for k in range(parts)])
            for k in range(parts):
                inside = torch.from_numpy(winding_3d(probe.numpy(), *[np.ascontiguousarray(c[comp == k].numpy())
                                                              for c in self._corners])) > 0.5
                inside[k] = False
                depth += inside.long()
            self._flip((depth % 2 == 1)[comp])

    def _flip(self, which: Tensor) -> None:
        """Reverse the facets ``which`` (a mask): their normals turn round."""
        f = self.facets.clone()
        a, b = (0, 1) if self.dim == 2 else (1, 2)
        f[which, a], f[which, b] = self.facets[which, b], self.facets[which, a]
        self._set_facets(f)

    def _geometry(self) -> None:
        """Facet normals (right-hand: ``(b − a)`` turned clockwise in 2D, ``(b − a) × (c − a)`` in
        3D), measures and the region's volume (divergence theorem)."""
        a = self._corners[0]
        if self.dim == 2:
            e = self._corners[1] - a
            raw = torch.stack([e[:, 1], -e[:, 0]], 1)
        else:
            raw = torch.linalg.cross(self._corners[1] - a, self._corners[2] - a)
        length = torch.linalg.vector_norm(raw, dim=1)
        check(bool((length > 0).all()), self.key, f"the mesh has {int((length <= 0).sum())} degenerate boundary "
              "facets (zero length or area)")
        self.normals = raw / length[:, None]
        self.measures = length if self.dim == 2 else length / 2
        centre = sum(self._corners) / self.dim
        self.volume = float((self.measures * (centre * self.normals).sum(1)).sum()) / self.dim

    # ------------------------------------------------------------------------ Shape

    def _winding(self, x: Tensor) -> Tensor:
        """``[N]``: 1 inside, 0 outside: the parity of a ray's crossings (towards +x in 2D, +z in
        3D, where only the triangles under the point's cell of an xy grid are tried)."""
        pts = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)
        if self.dim == 2:
            return torch.from_numpy(parity_2d(pts, *[np.ascontiguousarray(c.numpy()) for c in self._corners]))
        if self._bins is None:  # triangles binned by their xy extent, for rays along z
            xyz, tri = self.points.numpy(), self.facets.numpy()
            lo, hi = xyz[tri.reshape(-1), :2].min(0), xyz[tri.reshape(-1), :2].max(0)
            n = max(1, int(1.5 * math.sqrt(len(tri))))
            step = (hi - lo) * (1 + 1e-9) / n + 1e-300
            self._bins = (xyz, tri, *bin_triangles(xyz, tri, lo, step, n), lo, step, n)
        return torch.from_numpy(ray_parity_3d(pts, *self._bins))

    def contains(self, x: Tensor) -> Tensor:
        return self._winding(_points(x, self.dim)) > 0.5

    def distance(self, x: Tensor, facets: Optional[Tensor] = None) -> Tensor:
        """``[N]``: the distance of points to the boundary (or to the facets ``facets``, a bool or
        index tensor)."""
        pts = np.ascontiguousarray(_points(x, self.dim).detach().cpu().numpy())
        corners = [np.ascontiguousarray((c if facets is None else c[facets]).numpy()) for c in self._corners]
        if self.dim == 2:
            return torch.from_numpy(distance_2d(pts, *corners))
        normal = np.ascontiguousarray((self.normals if facets is None else self.normals[facets]).numpy())
        return torch.from_numpy(distance_3d(pts, *corners, normal))

    def sdf(self, x: Tensor) -> Tensor:
        d = self.distance(x)
        return torch.where(self.contains(x), -d, d)

    def bounds(self) -> Tuple[Tensor, Tensor]:
        return self._lo.clone(), self._hi.clone()

    def boundary_measure(self) -> float:
        return float(self.measures.sum())

    def piece_measure(self, k: int) -> float:
        """Length (2D) or area (3D) of piece ``k``."""
        return float(self.measures[self.piece_of == k].sum())

    def sample_facets(self, which: Tensor, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """``n`` points uniform on the facets ``which`` (indices) and their outward normals."""
        if n == 0 or which.numel() == 0:
            return torch.zeros(0, self.dim, dtype=DTYPE), torch.zeros(0, self.dim, dtype=DTYPE)
        pick = which[torch.multinomial(self.measures[which], n, replacement=True, generator=generator)]
        a = self._corners[0][pick]
        if self.dim == 2:
            t = torch.rand(n, 1, generator=generator, dtype=DTYPE)
            x = a + t * (self._corners[1][pick] - a)
        else:  # uniform in a triangle: √r₁ spreads the points evenly over its area
            r = torch.rand(n, 2, generator=generator, dtype=DTYPE)
            s = r[:, :1].sqrt()
            x = (1 - s) * a + s * (1 - r[:, 1:]) * self._corners[1][pick] + s * r[:, 1:] * self._corners[2][pick]
        return x, self.normals[pick].clone()

    def sample_piece(self, k: int, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """``n`` points uniform on piece ``k`` and their outward normals."""
        return self.sample_facets(torch.nonzero(self.piece_of == k)[:, 0], n, generator)

    def sample_boundary(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        return self.sample_facets(torch.arange(self.facets.shape[0]), n, generator)

    def to_config(self) -> Dict[str, Any]:
        return {"mesh": dict(self.source)}

    def __repr__(self) -> str:
        return (f"MeshRegion({self.source.get('file', '?')}: {self.dim}D, {self.facets.shape[0]} boundary facets, "
                f"pieces {', '.join(self.pieces)})")


def _consistent(f: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For triangles ``[F, 3]`` of closed surfaces: which to flip so that neighbours run through
    their shared edge in opposite directions, and each triangle's connected component."""
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    owner = np.tile(np.arange(len(f)), 3)
    key = _facet_keys(directed, int(f.max()) + 1)
    order = np.argsort(key, kind="stable")
    pairs = order.reshape(-1, 2)  # a closed surface: each edge exactly twice (checked before)
    i, j = owner[pairs[:, 0]], owner[pairs[:, 1]]
    same = directed[pairs[:, 0], 0] == directed[pairs[:, 1], 0]  # same direction: one must flip
    neighbours: List[List[Tuple[int, bool]]] = [[] for _ in range(len(f))]
    for a, b, s in zip(i.tolist(), j.tolist(), same.tolist()):
        neighbours[a].append((b, s))
        neighbours[b].append((a, s))
    flip = np.zeros(len(f), dtype=bool)
    component = np.full(len(f), -1)
    for start in range(len(f)):
        if component[start] >= 0:
            continue
        label = int(component.max()) + 1
        component[start] = label
        stack = [start]
        while stack:
            a = stack.pop()
            for b, s in neighbours[a]:
                if component[b] < 0:
                    component[b] = label
                    flip[b] = flip[a] ^ s
                    stack.append(b)
    return flip, component


# ---------------------------------------------------------------------------------- reading


def _facet_keys(f: np.ndarray, base: int) -> np.ndarray:
    """One integer per facet, the same for the same vertices in any order (``base``: more than
    any vertex index)."""
    s = np.sort(f, axis=1).astype(np.int64)
    out = np.zeros(len(s), dtype=np.int64)
    for k in range(s.shape[1]):
        out = out * base + s[:, k]
    return out


def _boundary_of(cells: np.ndarray, dim: int, points: np.ndarray) -> np.ndarray:
    """The facets of triangles (2D) or tetrahedra (3D) that belong to one cell only, ordered so
    that their right-hand normal points away from their cell."""
    if dim == 2:
        local = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]       # edge (i, j), opposite vertex k
    else:
        local = [(0, 1, 2, 3), (0, 1, 3, 2), (0, 2, 3, 1), (1, 2, 3, 0)]
    facets = np.concatenate([cells[:, list(t[:dim])] for t in local])
    opposite = np.concatenate([cells[:, t[dim]] for t in local])
    _, inverse, counts = np.unique(_facet_keys(facets, len(points)), return_inverse=True, return_counts=True)
    once = counts[inverse] == 1
    facets, opposite = facets[once], opposite[once]
    p = points[facets]
    if dim == 2:
        e = p[:, 1] - p[:, 0]
        normal = np.stack([e[:, 1], -e[:, 0]], 1)
    else:
        normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    inward = ((points[opposite] - p[:, 0]) * normal).sum(1) > 0
    facets[inward, 0], facets[inward, 1] = facets[inward, 1].copy(), facets[inward, 0].copy()
    return facets


def _merge_points(points: np.ndarray, blocks: List[Tuple[str, np.ndarray, Optional[np.ndarray]]]):
    """Identical points merged (an STL repeats each vertex per triangle): the unique points and
    the blocks' cells renumbered."""
    scale = float(np.abs(points).max()) or 1.0
    _, first, inverse = np.unique(np.round(points / scale, 12), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return points[first], [(kind, inverse[c], tags) for kind, c, tags in blocks]


def _read_gmsh_geo(path: Path, size: Optional[float], key: str) -> Any:
    """gmsh meshes a ``.geo`` file (its own sizes, ``size`` the largest) into a temporary ``.msh``."""
    try:
        import gmsh
    except (ImportError, OSError) as err:  # the wheel needs the system's libGLU to import
        raise ConfigError(key, f"reading {path.name} needs gmsh, which failed to import ({err}); pip install gmsh "
                               "(on Linux also apt-get install libglu1-mesa libxcursor1 libxft2 libxinerama1)") from None
    import meshio

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Verbosity", 0)
        try:
            gmsh.open(str(path))
        except Exception as err:  # gmsh raises a bare Exception with its parser's message
            raise ConfigError(key, f"gmsh cannot read {path}: {str(err).splitlines()[0] if str(err) else err}") from None
        if size is not None:
            gmsh.option.setNumber("Mesh.MeshSizeMax", float(size))
        dim = gmsh.model.getDimension()
        check(dim in (2, 3), key, f"{path.name} describes a {dim}D model; a domain needs a 2D or 3D one")
        gmsh.model.mesh.generate(dim)
        gmsh.option.setNumber("Mesh.SaveAll", 0 if gmsh.model.getPhysicalGroups(dim) else 1)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "mesh.msh")
            gmsh.write(out)
            return meshio.read(out)
    finally:
        gmsh.finalize()


def read_meshio(path: Path, key: str) -> Any:
    """``meshio.read``, its errors one line under ``key``."""
    import meshio

    try:
        return meshio.read(str(path))
    except (Exception, SystemExit) as err:  # meshio raises ReadError, KeyError, …; its gmsh reader exits
        first = str(err).splitlines()[0] if str(err) and not isinstance(err, SystemExit) else "not a mesh meshio reads"
        raise ConfigError(key, f"cannot read the mesh {path}: {first}") from None


def read_mesh(path: Path, key: str = "mesh", size: Optional[float] = None, source: Optional[Dict[str, Any]] = None,
              dim: Optional[int] = None) -> MeshRegion:
    """The region of a mesh file (see the module docstring); ``size`` is the largest element size
    gmsh meshes a ``.geo`` with (other files are read as they are); ``dim`` 2 or 3 where the
    file's points do not tell (a flat surface read as 3D)."""
    path = Path(path)
    if path.suffix.lower() == ".geo":
        m = _read_gmsh_geo(path, size, key)
    else:
        m = read_meshio(path, key)
    points = np.asarray(m.points, dtype=np.float64)
    check(points.ndim == 2 and points.shape[0] > 0, key, f"{path.name} has no points")
    physical = m.cell_data.get("gmsh:physical")
    blocks = [(b.type, np.asarray(b.data)[:, :CORNERS[b.type]], None if physical is None else np.asarray(physical[i]))
              for i, b in enumerate(m.cells) if b.type in CORNERS]
    if dim is None:
        has_volume = any(kind in VOLUME_CELLS[3] for kind, _, _ in blocks)
        flat = points.shape[1] == 2 or float(np.ptp(points[:, 2])) <= 1e-12 * max(float(np.ptp(points)), 1e-300)
        dim = 3 if has_volume or not flat else 2
    points = points[:, :dim]
    if path.suffix.lower() == ".stl" or physical is None:
        points, blocks = _merge_points(points, blocks)
    names = {int(tag): name for name, (tag, d) in ((n, v[:2]) for n, v in m.field_data.items()) if int(d) == dim - 1}

    volume = [(kind, c) for kind, c, _ in blocks if kind in VOLUME_CELLS[dim]]
    boundary_cells = [(c, t) for kind, c, t in blocks if kind in FACET_CELLS[dim]]
    cells = None
    if volume:
        tri = []
        for kind, c in volume:  # quadrilaterals as two triangles
            tri += [c] if c.shape[1] == dim + 1 else [c[:, [0, 1, 2]], c[:, [0, 2, 3]]]
        cells_arr = np.concatenate(tri)
        cells = ("triangle" if dim == 2 else "tetra", cells_arr)
        facets = _boundary_of(cells_arr, dim, points)
        oriented = True
    else:
        check(bool(boundary_cells), key, f"{path.name} has no {'triangles or lines' if dim == 2 else 'tetrahedra or triangles'}"
              " to bound a region")
        facets = np.concatenate([c for c, _ in boundary_cells])
        oriented = False
    # Pieces: each named group of dimension d − 1, by the facets it shares with the boundary.
    piece_of = np.full(len(facets), -1)
    pieces: List[str] = []
    keys = _facet_keys(facets, len(points))
    order = np.argsort(keys)
    for tag, name in sorted(names.items()):
        tagged = [c[t == tag] for c, t in boundary_cells if t is not None]
        tagged = np.concatenate(tagged) if tagged else np.zeros((0, dim), dtype=np.int64)
        if not len(tagged):
            continue
        pos = np.searchsorted(keys, _facet_keys(tagged, len(points)), sorter=order)
        pos = order[np.clip(pos, 0, len(keys) - 1)]
        hit = pos[keys[pos] == _facet_keys(tagged, len(points))]
        check(len(hit) > 0, f"{key}.{name}", f"the physical group {name!r} of {path.name} does not lie on the mesh's "
              "boundary (an interface inside it?); a boundary piece must")
        fresh = hit[piece_of[hit] < 0]  # a facet in two groups belongs to the first
        piece_of[fresh] = len(pieces)
        pieces.append(name)
    if (piece_of < 0).any():
        piece_of[piece_of < 0] = len(pieces)
        pieces.append(UNNAMED if pieces else SURFACE)
    src = dict(source or {"file": str(path)})
    return MeshRegion(points, facets, piece_of, pieces, cells, src, key=key, oriented=oriented)


__all__ = ["MeshRegion", "read_mesh", "read_meshio", "UNNAMED", "SURFACE"]
