"""A problem's domain: a box (or a mesh file's region) with holes cut out and shapes added,
optionally times a time axis.

The spatial region is ``((Box(space) ∪ additions) ∩ within) \\ holes`` with 1 to 6 space axes
(``within``: shapes the region must lie inside, e.g. the unit ball of five dimensions); ``time``
appends a last coordinate ``t ∈ [t0, t1]``. Everything is float64 on the CPU.

With ``mesh`` (``dinf.geometry.mesh.MeshRegion``, a gmsh or STL file) the mesh's region takes the
box's place, the box being its bounding box, and its physical groups the faces' (the group
``mesh`` in place of ``box``).

Boundary pieces
---------------
Each box face is a piece ``<axis>_min`` / ``<axis>_max`` (aliases ``left/right`` for the first
axis, ``bottom/top`` for the second, ``front/back`` for the third), each hole, addition and
``within`` shape a piece under its own name. An entry that is a list of shapes (or one shape with a
list of centers) is one piece per shape, ``<name>_0``, ``<name>_1``, …, and a group ``<name>`` of
them. Groups: ``box`` (all faces), ``holes``, ``additions``, ``within``, ``boundary`` (everything)
and the domain's own ``groups: {name: [pieces or groups]}``.

Only the part of a piece that is really the region's boundary is sampled. A candidate point ``p``
with the domain's outward normal ``n`` is kept when the region lies just inside it and not just
outside it: ``p - εn`` in the region, ``p + εn`` not (``ε`` = 1e-9 of the domain's size). That
rejects a face's points inside an addition or a hole, an addition's points inside the box,
another addition or a hole, a hole's points outside ``box ∪ additions`` or inside another hole,
and also the two sides of boundaries that coincide (an addition flush against a face).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from dinf.errors import ConfigError, check
from dinf.files import SEARCH_DIRS, resolve_path
from dinf.geometry.mesh import MeshRegion, read_mesh
from dinf.geometry.shapes import DTYPE, MAX_SPACE_AXES, Box, Shape, as_number, shape_from_config, shapes_from_config

ALIASES = (("left", "right"), ("bottom", "top"), ("front", "back"))
GROUPS = ("box", "mesh", "holes", "additions", "within", "boundary")
SHAPE_GROUPS = ("holes", "additions", "within")
MIN_ACCEPTANCE = 1e-3       # below this share of its shape, a piece counts as having no boundary
MEASURE_SAMPLES = 1 << 15   # Monte-Carlo points per piece measure (about 0.3 % error)
VOLUME_SAMPLES = 1 << 16    # stratified points for the region's volume
MEASURE_SEED = 0            # measures are estimates, but the same ones on every call and run
MAX_WINDOW_POINTS = 1 << 21  # sample_boundary_within: points per part at most
Spacing = Optional[Mapping[int, Callable[[Tensor], Tensor]]]  # per axis: even coordinates -> graded ones


@dataclass
class _Part:
    """One boundary piece: how to draw candidate points (with the DOMAIN's outward normals)."""

    kind: str                   # "face" | "hole" | "addition"
    measure: float              # of the whole face or shape boundary, before rejection
    draw: Callable[[int, torch.Generator], Tuple[Tensor, Tensor]]
    exact: bool = False         # nothing can cut it: every candidate is kept
    # Its candidates inside a window [lo, hi] drawn there directly, with that part's measure (box
    # faces and boxes; None: by rejection from draws of the whole piece).
    window: Optional[Callable[[int, torch.Generator, Tensor, Tensor], Tuple[Tensor, Tensor, float]]] = None


def _is_letter(name: Any) -> bool:
    return isinstance(name, str) and len(name) == 1 and name.isalpha()


def _interval(value: Any, key: str) -> Tuple[float, float]:
    """``[lo, hi]`` with ``lo < hi``."""
    ok = isinstance(value, (Sequence, Tensor)) and not isinstance(value, str) and len(value) == 2
    check(ok, key, f"must be [lo, hi], got {value!r}")
    lo, hi = (as_number(float(v) if isinstance(v, Tensor) else v, key) for v in value)
    check(lo < hi, key, f"lo must be < hi, got [{lo:g}, {hi:g}]")
    return lo, hi


def _check_space(space: Any, key: str) -> None:
    """1 to 6 axes named by single letters (the intervals are checked one by one later)."""
    check(isinstance(space, Mapping), key, f"must map axis names to [lo, hi], got {space!r}")
    check(1 <= len(space) <= MAX_SPACE_AXES, key, f"must have 1 to {MAX_SPACE_AXES} axes, got {len(space)}")
    for name in space:
        check(_is_letter(name), f"{key}.{name}", f"a coordinate name must be a single letter, got {name!r}")


def _jittered_grid(counts: List[int], lo: Tensor, hi: Tensor, generator: torch.Generator) -> Tensor:
    """One uniform point in each cell of the ``counts[0] × counts[1] × …`` grid over ``[lo, hi]``."""
    axes = [torch.arange(k, dtype=DTYPE) for k in counts]
    cells = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(counts))
    jitter = torch.rand(cells.shape, generator=generator, dtype=DTYPE)
    return lo + (cells + jitter) / torch.tensor(counts, dtype=DTYPE) * (hi - lo)


def _spaced(pts: Tensor, spacing: Spacing) -> Tensor:
    """``pts`` with ``spacing[a]`` applied to coordinate ``a`` (time last: spatial-only points
    skip it)."""
    if not spacing:
        return pts
    pts = pts.clone()
    for a, move in spacing.items():
        if a < pts.shape[1]:
            pts[:, a] = move(pts[:, a])
    return pts


class Domain:
    """``((Box(space) ∪ additions) ∩ within) \\ holes``, optionally × ``[t0, t1]``.

    ``space`` maps 1–6 single-letter axis names to ``(lo, hi)``; ``time`` is ``(name, t0, t1)``.
    ``groups`` maps a name to pieces (or other groups) it stands for. ``key`` is the config path
    that errors name.
    """

    def __init__(
        self,
        space: Mapping[str, Tuple[float, float]],
        time: Tuple[str, float, float] | None = None,
        holes: Mapping[str, Shape] | None = None,
        additions: Mapping[str, Shape] | None = None,
        key: str = "domain",
        within: Mapping[str, Shape] | None = None,
        groups: Mapping[str, Sequence[str]] | None = None,
        mesh: MeshRegion | None = None,
    ):
        self.key = key
        self.mesh = mesh
        if mesh is not None:  # the region starts from the mesh; its bounding box is the space
            check(len(space) == mesh.dim, f"{key}.mesh", f"is {mesh.dim}D, space names {len(space)} axes")
            lo, hi = mesh.bounds()
            space = {n: (float(a), float(b)) for n, a, b in zip(space, lo.tolist(), hi.tolist())}
        _check_space(space, f"{key}.space")
        self.space: Dict[str, Tuple[float, float]] = {n: _interval(v, f"{key}.space.{n}") for n, v in space.items()}
        self.time: Tuple[str, float, float] | None = None
        if time is not None:
            check(isinstance(time, Sequence) and len(time) == 3, f"{key}.time", f"must be (name, t0, t1), got {time!r}")
            tname = time[0]
            check(_is_letter(tname), f"{key}.time.{tname}", f"a coordinate name must be a single letter, got {tname!r}")
            check(tname not in self.space, f"{key}.time.{tname}", "is also a space axis")
            t0, t1 = _interval(list(time[1:]), f"{key}.time.{tname}")
            self.time = (tname, t0, t1)
        self.coords: List[str] = list(self.space) + ([self.time[0]] if self.time else [])
        self.space_dim = len(self.space)
        self.dim = len(self.coords)
        self.box = Box([lo for lo, _ in self.space.values()], [hi for _, hi in self.space.values()])
        self.base: Shape = mesh if mesh is not None else self.box  # what additions join and holes cut

        self.holes: Dict[str, Shape] = dict(holes or {})
        self.additions: Dict[str, Shape] = dict(additions or {})
        self.within: Dict[str, Shape] = dict(within or {})
        faces = [f"{c}_{s}" for c in self.space for s in ("min", "max")] if mesh is None else []
        self.aliases: Dict[str, str] = {alias: face for pair, c in zip(ALIASES, self.space)
                                        for alias, face in zip(pair, (f"{c}_min", f"{c}_max"))} if mesh is None else {}
        outline = faces if mesh is None else list(mesh.pieces)  # the base's own pieces
        for name in (mesh.pieces if mesh is not None else []):
            check(name not in GROUPS and name not in self.space, f"{key}.mesh",
                  f"its physical group {name!r} clashes with a group or axis name ({', '.join(GROUPS)}); rename it")
        taken = set(outline) | set(self.aliases) | set(GROUPS)
        for group, shapes in (("holes", self.holes), ("additions", self.additions), ("within", self.within)):
            for name, shape in shapes.items():
                where = f"{key}.{group}.{name}"
                check(isinstance(name, str) and name != "", where, f"a name must be a non-empty string, got {name!r}")
                check(name not in taken, where, "clashes with a boundary piece name (faces, aliases, groups "
                      f"{', '.join(GROUPS)} and the other holes/additions/within)")
                check(isinstance(shape, Shape), where, f"must be a Shape, got {type(shape).__name__}")
                check(shape.dim == self.space_dim, where,
                      f"is {shape.dim}D, the domain has {self.space_dim} space axes")
                taken.add(name)

        # The bounding box: additions may stick out of the box, holes never enlarge it, ``within``
        # shapes may shrink it.
        lo, hi = self.box.bounds()
        for shape in self.additions.values():
            slo, shi = shape.bounds()
            lo, hi = torch.minimum(lo, slo), torch.maximum(hi, shi)
        for shape in self.within.values():
            slo, shi = shape.bounds()
            lo, hi = torch.maximum(lo, slo), torch.minimum(hi, shi)
        check(bool((lo < hi).all()), f"{key}.within", "leaves nothing of the box and the additions")
        self._space_bounds = torch.stack([lo, hi], 1)
        rows = [self._space_bounds] + ([torch.tensor([[self.time[1], self.time[2]]], dtype=DTYPE)] if self.time else [])
        self._bounds = torch.cat(rows)
        # The probe step across a piece: far below any feature, far above float64 rounding.
        self._eps = 1e-9 * float((hi - lo).max())

        self._parts: Dict[str, _Part] = {}
        for k, name in enumerate(mesh.pieces if mesh is not None else []):
            self._parts[name] = _Part("mesh", mesh.piece_measure(k),
                                      lambda n, g, k=k: mesh.sample_piece(k, n, g),
                                      exact=not (self.holes or self.additions or self.within))
        for a, face_name in enumerate(faces):
            axis, side = a // 2, (-1 if a % 2 == 0 else 1)
            self._parts[face_name] = _Part(
                "face", self.box.face_measure(axis),
                lambda n, g, axis=axis, side=side: self.box.sample_face(axis, side, n, g),
                exact=not self._face_may_be_cut(axis, side),
                window=lambda n, g, lo, hi, axis=axis, side=side: self.box.boundary_in(n, g, lo, hi, [(axis, side)]))
        for name, shape in self.holes.items():
            self._parts[name] = _Part("hole", shape.boundary_measure(), self._flipped(shape), window=_window_of(shape, -1.0))
        for name, shape in self.additions.items():
            self._parts[name] = _Part("addition", shape.boundary_measure(), shape.sample_boundary,
                                      window=_window_of(shape, 1.0))
        for name, shape in self.within.items():
            self._parts[name] = _Part("within", shape.boundary_measure(), shape.sample_boundary,
                                      window=_window_of(shape, 1.0))
        self.pieces: List[str] = list(self._parts)
        self.groups: Dict[str, List[str]] = {
            "box" if mesh is None else "mesh": outline, "holes": list(self.holes), "additions": list(self.additions),
            "within": list(self.within), "boundary": list(self.pieces)}
        for gname, members in (groups or {}).items():
            where = f"{key}.groups.{gname}"
            check(isinstance(gname, str) and gname not in taken and gname not in self.groups, where,
                  "clashes with a boundary piece or group name")
            check(isinstance(members, Sequence) and not isinstance(members, str) and len(members) > 0, where,
                  f"must list boundary pieces or groups, got {members!r}")
            names: List[str] = []
            for m in members:
                names += [p for p in self.resolve(str(m), where) if p not in names]
            self.groups[gname] = names
        self._acceptance: Dict[str, float] = {}
        self._volume: float | None = None

        for name, shape in self.holes.items():
            check(self._hole_meets_region(shape), f"{key}.holes.{name}",
                  "does not intersect the region (box ∪ additions)")
        if self.holes:
            check(self.interior_measure() > 0, f"{key}.holes", "the holes cover the whole region")

    # ----------------------------------------------------------------------------- config

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], key: str = "pde.domain",
                    search_dirs: Sequence[str] = tuple(SEARCH_DIRS)) -> "Domain":
        """The domain of a config mapping ``{space: {x: [lo, hi], ...}, time: {t: [t0, t1]},
        holes: {name: {type: spec}}, additions: {...}, within: {...}, groups: {name: [pieces]}}``
        (all but ``space`` optional; a shape entry may be a list of shapes, or one shape with a
        list of centers), or with ``mesh: {file: part.msh, axes: [x, y], size: 0.05}`` (or
        ``mesh: part.msh``) in place of ``space``: the region of a mesh file, its boundary pieces
        its physical groups (``dinf.geometry.mesh``), the file found in the working directory or
        ``search_dirs``; errors name the key under ``key``."""
        fields = ("space", "mesh", "time", "holes", "additions", "within", "groups")
        check(isinstance(cfg, Mapping), key, f"must be a mapping with {', '.join(fields)}; got {cfg!r}")
        for k in cfg:
            check(k in fields, f"{key}.{k}", f"no such key; a domain has {', '.join(fields)}")
        mesh = None
        if cfg.get("mesh") is not None:
            check(cfg.get("space") is None, f"{key}.space", "give either space (a box) or mesh (a file), not both")
            mesh = mesh_from_config(cfg["mesh"], f"{key}.mesh", search_dirs)
            axes = cfg["mesh"].get("axes") if isinstance(cfg["mesh"], Mapping) else None
            axes = list(axes) if axes is not None else list("xyz"[: mesh.dim])
            check(len(axes) == mesh.dim and all(_is_letter(a) for a in axes) and len(set(axes)) == len(axes),
                  f"{key}.mesh.axes", f"must name the mesh's {mesh.dim} axes by distinct single letters, got {axes!r}")
            space: Any = {a: [0.0, 1.0] for a in axes}  # the mesh's bounding box replaces these
        else:
            check("space" in cfg, f"{key}.space",
                  f"is missing: map 1 to {MAX_SPACE_AXES} axis names to [lo, hi] (or give mesh: <file>)")
            space = cfg["space"]
        _check_space(space, f"{key}.space")
        time = None
        if cfg.get("time") is not None:
            tcfg = cfg["time"]
            check(isinstance(tcfg, Mapping) and len(tcfg) == 1, f"{key}.time",
                  "must map one name to [t0, t1], got "
                  + (f"{len(tcfg)} keys ({', '.join(map(str, tcfg))})" if isinstance(tcfg, Mapping) else repr(tcfg)))
            (tname, interval), = tcfg.items()
            check(_is_letter(tname), f"{key}.time.{tname}", f"a coordinate name must be a single letter, got {tname!r}")
            time = (tname, *_interval(interval, f"{key}.time.{tname}"))
        dim = len(space)
        shapes: Dict[str, Dict[str, Shape]] = {}
        groups: Dict[str, List[str]] = {}  # a list entry's members
        for group in SHAPE_GROUPS:
            entries = cfg.get(group) or {}
            check(isinstance(entries, Mapping), f"{key}.{group}", f"must map names to shapes, got {entries!r}")
            shapes[group] = {}
            for n, spec in entries.items():
                members = shapes_from_config(str(n), spec, dim, f"{key}.{group}")
                shapes[group].update(members)
                if list(members) != [str(n)]:
                    groups[str(n)] = list(members)
        own = cfg.get("groups") or {}
        check(isinstance(own, Mapping), f"{key}.groups", f"must map names to lists of pieces, got {own!r}")
        for n in own:
            check(str(n) not in groups, f"{key}.groups.{n}", "clashes with a list of shapes of that name")
        groups.update({str(n): list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
                       for n, v in own.items()})
        return cls(dict(space), time, shapes["holes"], shapes["additions"], key=key, within=shapes["within"],
                   groups=groups, mesh=mesh)

    def to_config(self) -> Dict[str, Any]:
        """The mapping ``from_config`` reads back (empty groups left out)."""
        cfg: Dict[str, Any] = ({"space": {n: [lo, hi] for n, (lo, hi) in self.space.items()}} if self.mesh is None
                               else {"mesh": {**self.mesh.source, "axes": list(self.space)}})
        if self.time:
            cfg["time"] = {self.time[0]: [self.time[1], self.time[2]]}
        for group, shapes in (("holes", self.holes), ("additions", self.additions), ("within", self.within)):
            if shapes:
                cfg[group] = {n: s.to_config() for n, s in shapes.items()}
        own = {n: list(v) for n, v in self.groups.items() if n not in GROUPS}
        if own:
            cfg["groups"] = own
        return cfg

    def __repr__(self) -> str:
        return f"Domain({self.to_config()})"

    # ----------------------------------------------------------------------------- region

    @property
    def bounds(self) -> Tensor:
        """``[dim, 2]``: the bounding box ``(lo, hi)`` of the space-time region."""
        return self._bounds.clone()

    def _in_space(self, xs: Tensor) -> Tensor:
        """``[N]``: spatial points strictly inside ``((box ∪ additions) ∩ within) \\ holes`` (the
        mesh's region in place of the box)."""
        inside = self.base.contains(xs)
        for shape in self.additions.values():
            inside |= shape.sdf(xs) < 0
        for shape in self.within.values():
            inside &= shape.sdf(xs) < 0
        for shape in self.holes.values():
            inside &= shape.sdf(xs) > 0
        return inside

    def contains(self, x: Tensor) -> Tensor:
        """``[N]`` bool: strictly inside the spatial region, with ``t ∈ [t0, t1]`` if timed."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape [N, {self.dim}] ({', '.join(self.coords)}), "
                             f"got {tuple(x.shape)}")
        x = x.to(DTYPE)
        inside = self._in_space(x[:, : self.space_dim])
        if self.time:
            t = x[:, -1]
            inside &= (t >= self.time[1]) & (t <= self.time[2])
        return inside

    def _time_length(self) -> float:
        return self.time[2] - self.time[1] if self.time else 1.0

    def _space_volume(self) -> float:
        """Length/area/volume of the spatial region: exact without holes and additions, else a
        stratified Monte-Carlo estimate over the bounding box with a fixed seed (cached)."""
        if self._volume is None:
            if not self.holes and not self.additions and not self.within:
                self._volume = float(self.box.lengths.prod()) if self.mesh is None else self.mesh.volume
            else:
                lo, hi = self._space_bounds[:, 0], self._space_bounds[:, 1]
                k = max(1, round(VOLUME_SAMPLES ** (1 / self.space_dim)))
                pts = _jittered_grid([k] * self.space_dim, lo, hi, torch.Generator().manual_seed(MEASURE_SEED))
                self._volume = float(self._in_space(pts).double().mean() * (hi - lo).prod())
        return self._volume

    def interior_measure(self) -> float:
        """Measure of the space-time region: spatial area/volume × (t1 − t0)."""
        return self._space_volume() * self._time_length()

    def _hole_meets_region(self, hole: Shape) -> bool:
        """Whether the hole's interior overlaps ``box ∪ additions`` (stratified points in the
        overlap of the two bounding boxes; a fixed seed)."""
        slo, shi = hole.bounds()
        lo, hi = torch.maximum(slo, self._space_bounds[:, 0]), torch.minimum(shi, self._space_bounds[:, 1])
        if bool((lo >= hi).any()):
            return False
        k = max(1, round(4096 ** (1 / self.space_dim)))
        pts = _jittered_grid([k] * self.space_dim, lo, hi, torch.Generator().manual_seed(MEASURE_SEED))
        solid = self.base.contains(pts)
        for shape in self.additions.values():
            solid |= shape.sdf(pts) < 0
        for shape in self.within.values():
            solid &= shape.sdf(pts) < 0
        return bool((solid & (hole.sdf(pts) < 0)).any())

    def _stratified(self, n: int, generator: torch.Generator, with_time: bool, spacing: Spacing = None) -> Tensor:
        """Exactly ``n`` points inside the region (spatial, or space-time ``with_time``).

        One jittered point per cell of a grid over the bounding box with about ``n / p`` cells
        (``p`` the region's share of the box), so about ``n`` land inside; those outside are
        rejected. Too many: a random subset of them. Too few: uniform points of the box, by
        rejection, top them up. Every kept point is uniform over the region, and the grid keeps
        the set evenly spread. The time axis is cut as if it were as long as the geometric mean of
        the space axes, so that neither is starved of cells. Returned in random order.
        """
        d = self.space_dim + (1 if with_time else 0)
        lo, hi = self._bounds[:d, 0], self._bounds[:d, 1]
        lengths = (hi - lo).clone()
        if with_time:
            lengths[-1] = lengths[:-1].prod() ** (1 / self.space_dim)
        share = self._space_volume() / float((self._space_bounds[:, 1] - self._space_bounds[:, 0]).prod())
        cells = min(max(1, math.ceil(n / share)), max(n, 1 << 22))  # bound memory for slivers
        side = (float(lengths.prod()) / cells) ** (1 / d)
        counts = [max(1, round(float(L) / side)) for L in lengths]
        inside = (lambda p: self.contains(p)) if with_time else self._in_space
        pts = _jittered_grid(counts, lo, hi, generator) if n else torch.zeros(0, d, dtype=DTYPE)
        pts = _spaced(pts, spacing)
        pts = pts[inside(pts)]
        if pts.shape[0] > n:
            pts = pts[torch.randperm(pts.shape[0], generator=generator)[:n]]
        chunks = [pts]
        have = pts.shape[0]
        while have < n:
            m = math.ceil((n - have) / share * 1.2) + 16
            extra = _spaced(lo + torch.rand(m, d, generator=generator, dtype=DTYPE) * (hi - lo), spacing)
            extra = extra[inside(extra)][: n - have]
            chunks.append(extra)
            have += extra.shape[0]
        pts = torch.cat(chunks)
        return pts[torch.randperm(n, generator=generator)]

    def sample_interior(self, n: int, generator: torch.Generator, spacing: Spacing = None) -> Tensor:
        """``[n, dim]`` near-uniform points inside the space-time region (see ``_stratified``);
        ``spacing`` ``{axis: map}`` moves the evenly spread coordinates of an axis first (a graded
        field's ``φ⁻¹``: then they are even per cell)."""
        return self._stratified(int(n), generator, with_time=self.time is not None, spacing=spacing)

    def sample_initial(self, n: int, generator: torch.Generator, spacing: Spacing = None) -> Tensor:
        """``[n, dim]`` points inside the spatial region at ``t = t0``."""
        check(self.time is not None, f"{self.key}.time", "the domain has no time axis, so no initial points")
        xs = self._stratified(int(n), generator, with_time=False, spacing=spacing)
        return torch.cat([xs, torch.full((xs.shape[0], 1), self.time[1], dtype=DTYPE)], 1)

    # ----------------------------------------------------------------------------- boundary

    def resolve(self, piece: str, key: str = "on") -> List[str]:
        """The pieces a name stands for: a piece, an alias of a face, or a group."""
        if piece in self.groups:
            return list(self.groups[piece])
        name = self.aliases.get(piece, piece)
        if name in self._parts:
            return [name]
        aliases = ", ".join(f"{a}={f}" for a, f in self.aliases.items())
        raise ConfigError(key, f"no boundary piece {piece!r}; pieces: {', '.join(self.pieces)}; "
                               f"groups: {', '.join(self.groups)}" + (f"; aliases: {aliases}" if aliases else ""))

    def _flipped(self, shape: Shape) -> Callable[[int, torch.Generator], Tuple[Tensor, Tensor]]:
        """A hole's sampler: the domain's outward normal points into the hole."""
        def draw(n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
            x, normal = shape.sample_boundary(n, generator)
            return x, 0.0 - normal  # (0.0 - keeps zero components +0.0)
        return draw

    def _face_may_be_cut(self, axis: int, side: int) -> bool:
        """Whether some hole or addition reaches the face's plane within the face's extent."""
        lo, hi = self.box.bounds()
        plane = float(lo[axis] if side < 0 else hi[axis])
        flo, fhi = lo.clone(), hi.clone()
        flo[axis] = fhi[axis] = plane
        for shape in list(self.holes.values()) + list(self.additions.values()) + list(self.within.values()):
            slo, shi = shape.bounds()
            if bool(((slo <= fhi + self._eps) & (shi >= flo - self._eps)).all()):
                return True
        return False

    def _keep(self, x: Tensor, normal: Tensor) -> Tensor:
        """``[N]``: candidates that are the region's boundary (region just inside, not just outside)."""
        return self._in_space(x - self._eps * normal) & ~self._in_space(x + self._eps * normal)

    def _acceptance_of(self, name: str) -> float:
        """The share of a piece's candidates that are boundary (Monte Carlo, fixed seed, cached)."""
        if name not in self._acceptance:
            part = self._parts[name]
            if part.exact:
                self._acceptance[name] = 1.0
            else:
                x, normal = part.draw(MEASURE_SAMPLES, torch.Generator().manual_seed(MEASURE_SEED))
                self._acceptance[name] = float(self._keep(x, normal).double().mean())
        return self._acceptance[name]

    def piece_measure(self, piece: str, key: str = "on") -> float:
        """Length/area of the boundary part of a piece (or group) × (t1 − t0) when timed;
        exact for faces nothing cuts, else the shape's measure × the Monte-Carlo acceptance."""
        names = self.resolve(piece, key)
        return sum(self._parts[p].measure * self._acceptance_of(p) for p in names) * self._time_length()

    def _sample_part(self, name: str, n: int, generator: torch.Generator, key: str) -> Tuple[Tensor, Tensor]:
        """``n`` spatial boundary points of one piece and the domain's outward normals."""
        part = self._parts[name]
        acc = self._acceptance_of(name)
        check(acc >= MIN_ACCEPTANCE, key, f"boundary piece {name!r} has (almost) no boundary left: "
              f"{acc:.2g} of it is the region's boundary, the rest lies inside the region or outside it")
        xs, ns, have = [], [], 0
        while have < n:
            m = math.ceil((n - have) / acc * 1.1) + 16
            x, normal = part.draw(m, generator)
            keep = self._keep(x, normal)
            x, normal = x[keep][: n - have], normal[keep][: n - have]
            xs.append(x); ns.append(normal)
            have += x.shape[0]
        if not xs:
            return torch.zeros(0, self.space_dim, dtype=DTYPE), torch.zeros(0, self.space_dim, dtype=DTYPE)
        return torch.cat(xs), torch.cat(ns)

    def sample_boundary(self, piece: str, n: int, generator: torch.Generator, key: str = "on") -> Tuple[Tensor, Tensor]:
        """``n`` points ``[n, dim]`` uniform on a piece (or group) and the domain's outward unit
        normals ``[n, dim]`` (zero time component; time uniform in ``[t0, t1]``).

        A group splits ``n`` in proportion to its members' measures (the fractional remainder
        drawn at random) and returns the points in random order; members with (almost) no
        boundary are left out.
        """
        n = int(n)
        names = self.resolve(piece, key)
        if len(names) == 1 and piece not in self.groups:
            x, normal = self._sample_part(names[0], n, generator, key)
        else:
            names = [p for p in names if self._acceptance_of(p) >= MIN_ACCEPTANCE]
            check(n == 0 or bool(names), key, f"boundary group {piece!r} has no boundary to sample")
            measures = torch.tensor([self._parts[p].measure * self._acceptance_of(p) for p in names], dtype=DTYPE)
            exact = n * measures / measures.sum() if names else measures
            counts = exact.floor().long()
            rest = n - int(counts.sum())
            if rest > 0:
                frac = (exact - counts).clamp_min(1e-12)
                counts[torch.multinomial(frac, rest, replacement=False, generator=generator)] += 1
            parts = [self._sample_part(p, int(c), generator, key) for p, c in zip(names, counts) if c > 0]
            if parts:
                order = torch.randperm(n, generator=generator)
                x, normal = torch.cat([p[0] for p in parts])[order], torch.cat([p[1] for p in parts])[order]
            else:
                x = normal = torch.zeros(0, self.space_dim, dtype=DTYPE)
        if self.time:
            t0, t1 = self.time[1], self.time[2]
            t = t0 + (t1 - t0) * torch.rand(x.shape[0], 1, generator=generator, dtype=DTYPE)
            x = torch.cat([x, t], 1)
            normal = torch.cat([normal, torch.zeros_like(t)], 1)
        return x, normal

    def sample_boundary_within(self, piece: str, n: int, generator: torch.Generator, lo: Tensor, hi: Tensor,
                               key: str = "on", most: int = MAX_WINDOW_POINTS) -> Tuple[Tensor, Tensor, float]:
        """The points that ``sample_boundary(piece, n)`` would put inside the window ``[lo, hi]``
        (space coordinates, then time when timed), in distribution, their outward normals, and
        the share of that density they have (1, less where capped): drawn inside the window
        directly where a part allows (box faces and boxes), so that ``n`` may be far larger than
        the points returned (a refined grid's finest boundary cells ask for the density of 2³⁰
        points over the whole piece); else by rejection from at most ``most`` draws of the part.
        Each part gets at most ``most`` draws, all parts the same share."""
        lo, hi = torch.as_tensor(lo, dtype=DTYPE), torch.as_tensor(hi, dtype=DTYPE)
        d = self.space_dim
        names = [p for p in self.resolve(piece, key) if self._acceptance_of(p) >= MIN_ACCEPTANCE]
        total = sum(self._parts[p].measure * self._acceptance_of(p) for p in names)
        share_t = 1.0
        if self.time:
            t0, t1 = self.time[1], self.time[2]
            tlo, thi = max(float(lo[d]), t0), min(float(hi[d]), t1)
            share_t = max(thi - tlo, 0.0) / (t1 - t0)
        # Per part its expected draws: inside the window where it can, else of the whole part.
        plans = []
        for name in names if share_t > 0 else []:
            part = self._parts[name]
            raw = n * part.measure / total  # the part's candidates in the whole draw (its acceptance of them kept)
            if part.window is not None:
                raw *= part.window(0, generator, lo[:d], hi[:d])[2] / part.measure * share_t
            plans.append((part, raw))
        share = min([1.0] + [most / raw for _, raw in plans if raw > most])
        xs, ns = [], []
        for part, raw in plans:
            m = int(math.floor(raw * share + float(torch.rand(1, generator=generator, dtype=DTYPE))))
            if part.window is not None:
                x, normal, _ = part.window(m, generator, lo[:d], hi[:d])
                t = (tlo + (thi - tlo) * torch.rand(m, 1, generator=generator, dtype=DTYPE)) if self.time else None
            else:
                x, normal = part.draw(m, generator)
                t = (t0 + (t1 - t0) * torch.rand(m, 1, generator=generator, dtype=DTYPE)) if self.time else None
            keep = self._keep(x, normal)
            if t is not None:
                x, normal = torch.cat([x, t], 1), torch.cat([normal, torch.zeros_like(t)], 1)
            keep &= ((x >= lo) & (x <= hi)).all(1)
            xs.append(x[keep])
            ns.append(normal[keep])
        width = d + (1 if self.time else 0)
        if not xs:
            return torch.zeros(0, width, dtype=DTYPE), torch.zeros(0, width, dtype=DTYPE), share
        return torch.cat(xs), torch.cat(ns), share


MESH_FIELDS = ("file", "axes", "size", "dim")


def mesh_from_config(spec: Any, key: str, search_dirs: Sequence[str] = tuple(SEARCH_DIRS)) -> MeshRegion:
    """The region of ``mesh: <file>`` or ``mesh: {file, axes, size, dim}`` (``size``: the largest
    element gmsh meshes a ``.geo`` with; ``dim``: 2 or 3 where the points do not tell)."""
    if isinstance(spec, str):
        spec = {"file": spec}
    check(isinstance(spec, Mapping), key, f"must be a file name or {{{', '.join(MESH_FIELDS)}}}, got {spec!r}")
    for k in spec:
        check(k in MESH_FIELDS, f"{key}.{k}", f"no such key; a mesh has {', '.join(MESH_FIELDS)}")
    check(spec.get("file") is not None, f"{key}.file", "is missing: the mesh file (.msh, .geo, .stl, …)")
    size = spec.get("size")
    if size is not None:
        check(as_number(size, f"{key}.size") > 0, f"{key}.size", f"must be > 0, got {size!r}")
    dim = spec.get("dim")
    check(dim in (None, 2, 3), f"{key}.dim", f"must be 2 or 3, got {dim!r}")
    path = resolve_path(str(spec["file"]), search_dirs, f"{key}.file")
    source = {"file": str(spec["file"]), **({"size": float(size)} if size is not None else {}),
              **({"dim": int(dim)} if dim is not None else {})}
    return _read_cached(str(path), path.stat().st_mtime_ns, key, None if size is None else float(size),
                        None if dim is None else int(dim), tuple(sorted(source.items())))


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime: int, key: str, size: Optional[float], dim: Optional[int],
                 source: Tuple[Tuple[str, Any], ...]) -> MeshRegion:
    """A mesh file read once per process (a ``.geo`` is meshed by gmsh; problems are built often)."""
    return read_mesh(Path(path), key, size, dict(source), dim)


def _window_of(shape: Shape, sign: float) -> Optional[Callable[[int, torch.Generator, Tensor, Tensor],
                                                                 Tuple[Tensor, Tensor, float]]]:
    """A box's windowed boundary draw, its normals times ``sign`` (−1: a hole's); None for other shapes."""
    if not isinstance(shape, Box):
        return None

    def window(n: int, generator: torch.Generator, lo: Tensor, hi: Tensor) -> Tuple[Tensor, Tensor, float]:
        x, normal, measure = shape.boundary_in(n, generator, lo, hi)
        return x, 0.0 + sign * normal, measure  # (0.0 + keeps zero components +0.0)
    return window


__all__ = ["Domain"]


def closed_contains(domain: Domain, x: Tensor) -> Tensor:
    """Inside the domain or on its boundary (grid points on the box's faces and corners count): a
    point is also tried moved a hair along each axis, and towards the box's centre along every
    axis at once (a corner lies on two faces, so one axis at a time cannot reach inside)."""
    eps = 1e-9 * float((domain.bounds[:, 1] - domain.bounds[:, 0]).max())
    inside = domain.contains(x)
    lo, hi = domain.bounds[:, 0], domain.bounds[:, 1]
    near = domain.contains(x + eps * torch.sign((lo + hi).to(x.dtype) / 2 - x))
    for shift in (eps, -eps):
        for a in range(x.shape[1]):
            y = x.clone()
            y[:, a] = (y[:, a] + shift).clamp(float(lo[a]), float(hi[a]))
            near |= domain.contains(y)
    within = ((x >= lo.to(x.dtype)) & (x <= hi.to(x.dtype))).all(1)  # the clamps above would pull in points outside
    return inside | (near & within)
