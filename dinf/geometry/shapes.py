"""Closed regions of R^d: exact signed distances and boundary samples with outward normals.

Conventions
-----------
* Points are float64 tensors ``[N, d]``; a shape's ``dim`` is ``d``.
* ``sdf`` is negative inside, positive outside and exact (the Euclidean distance to the
  boundary), so ``sdf(x) < 0`` is "strictly inside".
* ``sample_boundary`` draws points uniformly by boundary measure (arc length in 2D, area in
  3D, the two end points in 1D) and returns the shape's OUTWARD unit normals there. A domain
  that uses the shape as a hole flips them.
* Bad input raises ``ConfigError`` with a short key (``radius``, ``hi``, ``polygon``);
  ``shape_from_config`` places it under the config path the user typed.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from dinf.errors import ConfigError, check

DTYPE = torch.float64


def as_vector(value: Any, key: str, dim: int | None = None) -> Tensor:
    """A finite float64 vector ``[dim]`` from a tensor or a list of numbers."""
    if isinstance(value, Tensor):
        check(value.dim() == 1, key, f"must be a vector, got shape {tuple(value.shape)}")
        out = value.detach().to("cpu", DTYPE)
    else:
        ok = isinstance(value, Sequence) and not isinstance(value, str) and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        check(ok, key, f"must be a list of numbers, got {value!r}")
        out = torch.tensor([float(v) for v in value], dtype=DTYPE)
    check(out.numel() > 0, key, "must not be empty")
    check(bool(torch.isfinite(out).all()), key, f"must be finite, got {out.tolist()}")
    if dim is not None:
        check(out.numel() == dim, key, f"has {out.numel()} coordinates, the domain has {dim} space axes")
    return out


def as_number(value: Any, key: str) -> float:
    """A finite float from a number (not a bool)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    check(ok, key, f"must be a finite number, got {value!r}")
    return float(value)


def _points(x: Tensor, dim: int) -> Tensor:
    """``x`` as float64 ``[N, dim]``; a clear error for the wrong width."""
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"expected points of shape [N, {dim}], got {tuple(x.shape)}")
    return x.to(DTYPE)


class Shape:
    """A closed region of R^d (``dim = d``)."""

    dim: int

    def sdf(self, x: Tensor) -> Tensor:
        """Signed distance ``[N]`` of points ``[N, d]``: negative inside, positive outside."""
        raise NotImplementedError

    def contains(self, x: Tensor) -> Tensor:
        """``[N]`` bool: strictly inside."""
        return self.sdf(x) < 0

    def bounds(self) -> Tuple[Tensor, Tensor]:
        """The bounding box ``(lo, hi)``, each ``[d]``."""
        raise NotImplementedError

    def boundary_measure(self) -> float:
        """Perimeter (2D), surface area (3D), number of end points (1D: 2)."""
        raise NotImplementedError

    def sample_boundary(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """``n`` points ``[n, d]`` uniform on the boundary and the outward unit normals ``[n, d]``."""
        raise NotImplementedError

    def to_config(self) -> Dict[str, Any]:
        """The config entry ``{type: spec}`` that ``shape_from_config`` reads back."""
        raise NotImplementedError


class Ball(Shape):
    """``|x - center| <= radius``: an interval (1D), a disk (2D), a solid sphere (3D)."""

    def __init__(self, center: Sequence[float] | Tensor, radius: float):
        self.center = as_vector(center, "center")
        self.radius = as_number(radius, "radius")
        check(self.radius > 0, "radius", f"must be > 0, got {radius!r}")
        self.dim = self.center.numel()

    def sdf(self, x: Tensor) -> Tensor:
        return torch.linalg.vector_norm(_points(x, self.dim) - self.center, dim=1) - self.radius

    def bounds(self) -> Tuple[Tensor, Tensor]:
        return self.center - self.radius, self.center + self.radius

    def boundary_measure(self) -> float:
        # Surface of the unit (d-1)-sphere, 2 π^{d/2} / Γ(d/2): 2, 2π, 4π for d = 1, 2, 3.
        d = self.dim
        return 2.0 * math.pi ** (d / 2) / math.gamma(d / 2) * self.radius ** (d - 1)

    def sample_boundary(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        # A normalised Gaussian is uniform on the sphere in any d (in 1D: ±1 with equal odds).
        g = torch.randn(n, self.dim, generator=generator, dtype=DTYPE)
        u = g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp_min(1e-300)
        return self.center + self.radius * u, u

    def to_config(self) -> Dict[str, Any]:
        name = {2: "disk", 3: "sphere"}.get(self.dim, "ball")
        return {name: {"center": self.center.tolist(), "radius": self.radius}}

    def __repr__(self) -> str:
        return f"Ball(center={self.center.tolist()}, radius={self.radius})"


class Box(Shape):
    """The axis-aligned box ``lo <= x <= hi`` in any dimension."""

    def __init__(self, lo: Sequence[float] | Tensor, hi: Sequence[float] | Tensor):
        self.lo = as_vector(lo, "lo")
        self.hi = as_vector(hi, "hi", self.lo.numel())
        bad = [a for a in range(self.lo.numel()) if not self.lo[a] < self.hi[a]]
        check(not bad, "hi", f"must be > lo on every axis, got lo {self.lo.tolist()}, hi {self.hi.tolist()}")
        self.dim = self.lo.numel()

    @property
    def lengths(self) -> Tensor:
        return self.hi - self.lo

    def sdf(self, x: Tensor) -> Tensor:
        # Exact box distance: q_a = |x_a - c_a| - h_a; outside the norm of q's positive part,
        # inside the largest (least negative) q_a.
        q = (_points(x, self.dim) - (self.lo + self.hi) / 2).abs() - self.lengths / 2
        return torch.linalg.vector_norm(q.clamp_min(0.0), dim=1) + q.max(dim=1).values.clamp_max(0.0)

    def bounds(self) -> Tuple[Tensor, Tensor]:
        return self.lo.clone(), self.hi.clone()

    def face_measure(self, axis: int) -> float:
        """Measure of one face normal to ``axis`` (1 in 1D: a face is a point)."""
        return float(torch.cat([self.lengths[:axis], self.lengths[axis + 1:]]).prod())

    def boundary_measure(self) -> float:
        return 2.0 * sum(self.face_measure(a) for a in range(self.dim))

    def sample_face(self, axis: int, side: int, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """``n`` points uniform on the face ``x_axis = lo`` (``side=-1``) or ``hi`` (``side=+1``)
        and its outward normal ``side · e_axis``."""
        x = self.lo + torch.rand(n, self.dim, generator=generator, dtype=DTYPE) * self.lengths
        x[:, axis] = self.lo[axis] if side < 0 else self.hi[axis]
        normal = torch.zeros(n, self.dim, dtype=DTYPE)
        normal[:, axis] = float(side)
        return x, normal

    def sample_boundary(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        # Faces in the order (axis 0: lo, hi), (axis 1: lo, hi), ..., each drawn in proportion
        # to its measure, then a uniform point on the chosen face.
        weights = torch.tensor([self.face_measure(a) for a in range(self.dim) for _ in (0, 1)], dtype=DTYPE)
        face = (torch.multinomial(weights, n, replacement=True, generator=generator) if n
                else torch.zeros(0, dtype=torch.long))
        axis, upper = face // 2, face % 2 == 1
        x = self.lo + torch.rand(n, self.dim, generator=generator, dtype=DTYPE) * self.lengths
        rows = torch.arange(n)
        x[rows, axis] = torch.where(upper, self.hi[axis], self.lo[axis])
        normal = torch.zeros(n, self.dim, dtype=DTYPE)
        normal[rows, axis] = torch.where(upper, 1.0, -1.0).to(DTYPE)
        return x, normal

    def face_in(self, axis: int, side: int, lo: Tensor, hi: Tensor) -> Tuple[Tensor, Tensor, float]:
        """The part of a face inside the window ``[lo, hi]``: its low and high corners and its
        measure (0 where the face misses the window)."""
        plane = self.lo[axis] if side < 0 else self.hi[axis]
        flo, fhi = torch.maximum(self.lo, lo), torch.minimum(self.hi, hi)
        flo[axis] = fhi[axis] = plane
        if not (float(lo[axis]) <= float(plane) <= float(hi[axis])) or bool((flo > fhi).any()):
            return flo, fhi, 0.0
        sides = torch.cat([(fhi - flo)[:axis], (fhi - flo)[axis + 1:]])
        return flo, fhi, float(sides.prod())

    def boundary_in(self, n: int, generator: torch.Generator, lo: Tensor, hi: Tensor,
                    faces: Optional[Sequence[Tuple[int, int]]] = None) -> Tuple[Tensor, Tensor, float]:
        """``n`` points uniform on the part of the boundary (or of ``faces``, ``(axis, side)``
        pairs) inside the window ``[lo, hi]``, their outward normals, and that part's measure."""
        faces = list(faces) if faces is not None else [(a, s) for a in range(self.dim) for s in (-1, 1)]
        parts = [self.face_in(a, s, lo, hi) for a, s in faces]
        measure = sum(m for _, _, m in parts)
        if n == 0 or measure <= 0:
            return torch.zeros(0, self.dim, dtype=DTYPE), torch.zeros(0, self.dim, dtype=DTYPE), measure
        which = torch.multinomial(torch.tensor([m for _, _, m in parts], dtype=DTYPE), n, replacement=True,
                                  generator=generator)
        flo = torch.stack([p[0] for p in parts])[which]
        fhi = torch.stack([p[1] for p in parts])[which]
        x = flo + torch.rand(n, self.dim, generator=generator, dtype=DTYPE) * (fhi - flo)
        normal = torch.zeros(n, self.dim, dtype=DTYPE)
        axes = torch.tensor([a for a, _ in faces])[which]
        normal[torch.arange(n), axes] = torch.tensor([float(s) for _, s in faces], dtype=DTYPE)[which]
        return x, normal, measure

    def to_config(self) -> Dict[str, Any]:
        return {"rectangle" if self.dim == 2 else "box": {"lo": self.lo.tolist(), "hi": self.hi.tolist()}}

    def __repr__(self) -> str:
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


class Polygon(Shape):
    """A simple polygon in 2D, vertices ``[V, 2]`` in either orientation (not repeated at the end)."""

    dim = 2

    def __init__(self, vertices: Sequence[Sequence[float]] | Tensor):
        key = "polygon"
        if isinstance(vertices, Tensor):
            check(vertices.dim() == 2 and vertices.shape[1] == 2, key,
                  f"must be a list of [x, y] vertices, got shape {tuple(vertices.shape)}")
            v = vertices.detach().to("cpu", DTYPE)
        else:
            check(isinstance(vertices, Sequence) and not isinstance(vertices, str), key,
                  f"must be a list of [x, y] vertices, got {vertices!r}")
            v = torch.stack([as_vector(p, f"{key}[{i}]", 2) for i, p in enumerate(vertices)]) if len(vertices) else \
                torch.zeros(0, 2, dtype=DTYPE)
        check(bool(torch.isfinite(v).all()), key, "vertices must be finite")
        if v.shape[0] > 3 and bool((v[0] == v[-1]).all()):
            v = v[:-1]  # a closing repeat of the first vertex adds nothing
        check(v.shape[0] >= 3, key, f"needs at least 3 vertices, got {v.shape[0]}")
        self.vertices = v
        self.edges = torch.roll(v, -1, 0) - v
        self.lengths = torch.linalg.vector_norm(self.edges, dim=1)
        check(bool((self.lengths > 0).all()), key, "has a repeated vertex (an edge of length 0)")
        area2 = float(_cross(v, torch.roll(v, -1, 0)).sum())  # twice the signed (shoelace) area
        check(area2 != 0, key, "has zero area")
        self._check_simple()
        # For a counter-clockwise polygon the outward normal of edge e is (e_y, -e_x)/|e|;
        # a clockwise one has the interior on the other side.
        sign = 1.0 if area2 > 0 else -1.0
        self.normals = sign * torch.stack([self.edges[:, 1], -self.edges[:, 0]], 1) / self.lengths[:, None] + 0.0

    def _check_simple(self) -> None:
        """Raise unless no two edges meet other than neighbours at their shared vertex."""
        a, e = self.vertices, self.edges
        b = a + e
        E = a.shape[0]
        # Orientation of each edge's end points against each other edge's line, [E, E].
        o1 = _cross(e[:, None], a[None] - a[:, None])   # edge i vs start of j
        o2 = _cross(e[:, None], b[None] - a[:, None])   # edge i vs end of j
        proper = (o1 * o2 < 0) & (o1 * o2).T.lt(0)
        # Collinear touching: an end point of j on segment i.
        def on_seg(o: Tensor, p: Tensor) -> Tensor:
            lo, hi = torch.minimum(a, b), torch.maximum(a, b)
            within = ((p[None] >= lo[:, None]) & (p[None] <= hi[:, None])).all(-1)
            return (o == 0) & within
        touch = on_seg(o1, a) | on_seg(o2, b)
        touch = touch | touch.T
        i = torch.arange(E)
        adjacent = ((i[:, None] - i[None]) % E == 1) | ((i[None] - i[:, None]) % E == 1) | (i[:, None] == i[None])
        bad = (proper | touch) & ~adjacent
        # Neighbours only share their vertex; folding back along the same line overlaps.
        nxt = torch.roll(e, -1, 0)
        folded = (_cross(e, nxt) == 0) & ((e * nxt).sum(1) < 0)
        if bool(bad.any()) or bool(folded.any()):
            if bool(bad.any()):
                p, q = (int(k) for k in torch.nonzero(bad)[0])
            else:
                p = int(torch.nonzero(folded)[0]); q = (p + 1) % E
            raise ConfigError("polygon", f"edges {p} and {q} overlap or cross; the polygon must be simple")

    def sdf(self, x: Tensor) -> Tensor:
        x = _points(x, 2)
        a, e = self.vertices, self.edges
        w = x[:, None, :] - a[None]                                    # [N, E, 2]
        t = ((w * e).sum(-1) / self.lengths ** 2).clamp(0.0, 1.0)
        dist = torch.linalg.vector_norm(w - t[..., None] * e, dim=-1).min(dim=1).values
        # Even–odd crossing test: a ray towards +x crosses edges whose y-range straddles the
        # point's y (half-open, so a vertex is counted once) to the right of the point.
        ay, by = a[:, 1], a[:, 1] + e[:, 1]
        y = x[:, 1:2]
        straddle = (ay > y) != (by > y)
        safe_ey = torch.where(e[:, 1] == 0, torch.ones_like(e[:, 1]), e[:, 1])
        x_cross = a[:, 0] + (y - ay) * e[:, 0] / safe_ey
        inside = (straddle & (x[:, 0:1] < x_cross)).sum(1) % 2 == 1
        return torch.where(inside, -dist, dist)

    def bounds(self) -> Tuple[Tensor, Tensor]:
        return self.vertices.min(0).values, self.vertices.max(0).values

    def boundary_measure(self) -> float:
        return float(self.lengths.sum())

    def sample_boundary(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        edge = torch.multinomial(self.lengths, n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long)
        t = torch.rand(n, 1, generator=generator, dtype=DTYPE)
        return self.vertices[edge] + t * self.edges[edge], self.normals[edge].clone()

    def to_config(self) -> Dict[str, Any]:
        return {"polygon": self.vertices.tolist()}

    def __repr__(self) -> str:
        return f"Polygon({self.vertices.tolist()})"


MAX_SPACE_AXES = 6  # space axes a domain (and its balls and boxes) may have

# Config type → (constructor reading the spec, the space dimensions it allows).
SHAPE_TYPES: Dict[str, Tuple[Any, Tuple[int, ...]]] = {
    "disk": (lambda s: Ball(s["center"], s["radius"]), (2,)),
    "sphere": (lambda s: Ball(s["center"], s["radius"]), (3,)),
    "ball": (lambda s: Ball(s["center"], s["radius"]), tuple(range(1, MAX_SPACE_AXES + 1))),
    "rectangle": (lambda s: Box(s["lo"], s["hi"]), (2,)),
    "box": (lambda s: Box(s["lo"], s["hi"]), tuple(range(1, MAX_SPACE_AXES + 1))),
    "polygon": (lambda s: Polygon(s), (2,)),
}
SHAPE_FIELDS: Dict[str, Tuple[str, ...]] = {
    "disk": ("center", "radius"), "sphere": ("center", "radius"), "ball": ("center", "radius"),
    "rectangle": ("lo", "hi"), "box": ("lo", "hi"),
}


def shape_from_config(name: str, spec: Any, dim: int, key: str = "shapes") -> Shape:
    """The shape of the config entry ``name: {type: spec}`` (e.g. ``c1: {disk: {center: [0.3, 0.3],
    radius: 0.1}}``) in ``dim`` space dimensions; errors name ``<key>.<name>.<type>.<field>``."""
    where = f"{key}.{name}"
    types = ", ".join(SHAPE_TYPES)
    check(isinstance(spec, Mapping) and len(spec) == 1, where,
          f"must be one shape, {{type: spec}} with type one of {types}; got {spec!r}")
    (kind, body), = spec.items()
    check(kind in SHAPE_TYPES, where, f"unknown shape {kind!r}; one of {types}")
    where = f"{where}.{kind}"
    make, dims = SHAPE_TYPES[kind]
    check(dim in dims, where, f"a {kind} is {'/'.join(f'{d}D' for d in dims)}, the domain has {dim} space axes")
    fields = SHAPE_FIELDS.get(kind)
    if fields is not None:
        check(isinstance(body, Mapping), where, f"must map {', '.join(fields)}; got {body!r}")
        for f in fields:
            check(f in body, f"{where}.{f}", "is missing")
        extra = [str(k) for k in body if k not in fields]
        check(not extra, f"{where}.{extra[0] if extra else ''}", f"no such key; a {kind} has {', '.join(fields)}")
        for f in fields:
            if f != "radius":  # vectors: one coordinate per space axis
                as_vector(body[f], f"{where}.{f}", dim)
    try:
        shape = make(body)
    except ConfigError as err:
        # The shape's own key (radius, hi, polygon[2], ...) under the path the user typed.
        sub = err.key.removeprefix("polygon")
        raise ConfigError(f"{where}{sub}" if kind == "polygon" else f"{where}.{err.key}", err.detail) from None
    check(shape.dim == dim, where, f"is {shape.dim}D, the domain has {dim} space axes")
    return shape


def shapes_from_config(name: str, spec: Any, dim: int, key: str = "shapes") -> Dict[str, Shape]:
    """The shapes of one config entry: ``{name: shape}`` for one shape; ``{name_0: …, name_1: …}``
    for a list of shapes, or for one ball whose ``center`` is a list of centers (``radius`` one
    number, or one per center)."""
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        check(len(spec) > 0, f"{key}.{name}", "is an empty list of shapes")
        return {f"{name}_{i}": shape_from_config(f"{name}[{i}]", s, dim, key) for i, s in enumerate(spec)}
    if isinstance(spec, Mapping) and len(spec) == 1:
        (kind, body), = spec.items()
        centers = body.get("center") if isinstance(body, Mapping) else None
        if kind in ("disk", "sphere", "ball") and _is_list_of_vectors(centers):
            where = f"{key}.{name}.{kind}"
            radii = body.get("radius")
            if isinstance(radii, Sequence) and not isinstance(radii, str):
                check(len(radii) == len(centers), f"{where}.radius",
                      f"gives {len(radii)} radii for {len(centers)} centers; give one radius or one per center")
            else:
                radii = [radii] * len(centers)
            return {f"{name}_{i}": shape_from_config(f"{name}.{kind}.center[{i}]", {kind: {**body, "center": c, "radius": r}},
                                                     dim, key) for i, (c, r) in enumerate(zip(centers, radii))}
    return {name: shape_from_config(name, spec, dim, key)}


def _is_list_of_vectors(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
            and all(isinstance(v, Sequence) and not isinstance(v, str) for v in value))


__all__: List[str] = ["Shape", "Ball", "Box", "Polygon", "shape_from_config", "shapes_from_config", "as_vector",
                      "as_number"]
