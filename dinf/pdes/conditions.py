"""Boundary, initial and point conditions of a config-defined problem.

Every condition is a residual on its own points, written as text like the equations:
``dirichlet`` is ``u − value`` on a boundary piece, ``neumann`` ``u_n − value`` (the outward
normal derivative), ``robin`` ``a·u + b·u_n − value``, ``initial`` ``u − value`` and
``initial_rate`` ``u_t − value`` on the initial slice, ``point`` ``u − value`` at given points,
``residual`` any expression on a piece. ``periodic`` pairs the two faces of an axis and asks
the values and first derivatives to agree. Each has a weight (soft by default) and a number of
points per batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch
from torch import Tensor

from dinf.equations import Residual, Unknowns, Vocabulary
from dinf.errors import ConfigError

KINDS = ("dirichlet", "neumann", "robin", "initial", "initial_rate", "point", "periodic", "residual")
ON_PIECE = ("dirichlet", "neumann", "robin", "residual")
DEFAULT_POINTS = {"initial": 1024, "initial_rate": 1024, "periodic": 512}
_KEYS = {"type", "piece", "value", "unknown", "a", "b", "weight", "points", "at", "axis", "expr", "hard"}


@dataclass
class Condition:
    """One condition: its residuals on its points, weight and points per batch."""

    name: str
    kind: str
    residuals: List[Residual]
    weight: float
    points: int
    piece: Optional[str] = None  # boundary piece (dirichlet, neumann, robin, residual)
    at: Optional[Tensor] = None  # [P, dim]: point constraints' points
    axis: Optional[int] = None  # periodic: the coordinate whose two faces are paired
    unknowns: List[str] = field(default_factory=list)
    targets: Dict[str, Any] = field(default_factory=dict)  # unknown -> prescribed value (text)
    hard: bool = False  # exact, through the ansatz u = g + B·N (dinf.pdes.hard), not a loss term

    @property
    def order(self) -> int:
        order = max(r.order for r in self.residuals)
        return max(order, 1) if self.kind == "periodic" else order


def build_conditions(spec: Mapping[str, Any], unknowns: Unknowns, coords: List[str], time: Optional[str],
                     params: Mapping[str, float], functions: Mapping[str, str], resolve: Callable[[str, str], Any],
                     weight_of: Callable[[Any, str], float], key: str = "pde.conditions") -> List[Condition]:
    """``resolve(piece, key)`` raises a ``ConfigError`` for a boundary piece the domain lacks;
    ``weight_of(value, key)`` reads a weight (a number or an expression of the parameters)."""
    """Conditions from the config mapping ``name -> {type, on, value, …}``."""
    out = []
    for name, c in (spec or {}).items():
        k = f"{key}.{name}"
        if c is None:  # removed from the command line (~pde.conditions.name)
            continue
        if not isinstance(c, Mapping):
            raise ConfigError(k, f"expected a mapping with a type ({', '.join(KINDS)}), got {c!r}")
        unknown_keys = set(c) - _KEYS
        if unknown_keys:
            raise ConfigError(f"{k}.{sorted(unknown_keys)[0]}", f"not an option of a condition ({', '.join(sorted(_KEYS))})")
        kind = c.get("type")
        if kind not in KINDS:
            raise ConfigError(f"{k}.type", f"{kind!r} is not one of {', '.join(KINDS)}")
        out.append(_condition(name, kind, c, unknowns, coords, time, params, functions, resolve, weight_of, k))
    return out


def _condition(name: str, kind: str, c: Mapping[str, Any], unknowns: Unknowns, coords: List[str],
               time: Optional[str], params: Mapping[str, float], functions: Mapping[str, str],
               resolve: Callable[[str, str], Any], weight_of: Callable[[Any, str], float], k: str) -> Condition:
    on_boundary = kind in ON_PIECE
    vocab = Vocabulary(unknowns.names, coords, params, functions, normals=on_boundary, time=time)
    piece = None
    if on_boundary:
        piece = c.get("piece")
        if piece is None:
            raise ConfigError(f"{k}.piece", f"a {kind} condition needs a boundary piece (piece: box, holes, x_min, …)")
        resolve(str(piece), f"{k}.piece")
    if kind in ("initial", "initial_rate") and time is None:
        raise ConfigError(f"{k}.type", f"{kind} needs a time axis (pde.domain.time)")
    targets = _targets(c, unknowns, k, kind)
    texts: List[str] = []
    for u, value in targets.items():
        v = f"({value})" if not isinstance(value, (int, float)) else repr(float(value))
        if kind in ("dirichlet", "initial", "point"):
            texts.append(f"{u} - {v}")
        elif kind == "neumann":
            texts.append(f"{u}_n - {v}")
        elif kind == "robin":
            a, b = c.get("a", 1.0), c.get("b", 1.0)
            texts.append(f"({a})*{u} + ({b})*{u}_n - {v}")
        elif kind == "initial_rate":
            texts.append(f"{u}_{time} - {v}")
    if kind == "residual":
        if "expr" not in c:
            raise ConfigError(f"{k}.expr", "a residual condition needs expr: the expression that vanishes on the piece")
        texts = [c["expr"]]
    at, axis = None, None
    if kind == "periodic":
        axis_name = c.get("axis")
        space = [x for x in coords if x != time]
        if axis_name not in space:
            raise ConfigError(f"{k}.axis", f"{axis_name!r} is not a space coordinate ({', '.join(space)})")
        axis = coords.index(axis_name)
        texts = [u for u in targets] + [f"{u}_{axis_name}" for u in targets]
    if kind == "point":
        at = _points(c.get("at"), coords, f"{k}.at")
    residuals = [Residual(t, vocab, unknowns, f"{k}.value" if kind not in ("residual", "periodic") else f"{k}.expr",
                          params) for t in texts]
    points = c.get("points", len(at) if at is not None else DEFAULT_POINTS.get(kind, 1024))
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise ConfigError(f"{k}.points", f"must be a positive integer, got {points!r}")
    weight = weight_of(c.get("weight", 1.0), f"{k}.weight")
    hard = c.get("hard", False)
    if not isinstance(hard, bool):
        raise ConfigError(f"{k}.hard", f"must be true or false, got {hard!r}")
    return Condition(name, kind, residuals, weight, points, piece=str(piece) if piece else None, at=at, axis=axis,
                     unknowns=list(targets), targets=dict(targets), hard=hard)


def _targets(c: Mapping[str, Any], unknowns: Unknowns, k: str, kind: str) -> Dict[str, Any]:
    """Unknown -> value: ``value: {u: 0, v: 0}``, or one ``value`` for ``unknown`` (default: the
    only unknown, or all of them for periodic)."""
    if kind == "residual":
        return {}
    value = c.get("value", 0 if kind == "periodic" else None)
    if isinstance(value, Mapping):
        for u in value:
            if u not in unknowns.names:
                raise ConfigError(f"{k}.value.{u}", f"{u!r} is not an unknown ({', '.join(unknowns.names)})")
        return dict(value)
    if value is None:
        raise ConfigError(f"{k}.value", f"a {kind} condition needs a value (an expression, or {{u: …, v: …}})")
    names = c.get("unknown")
    if names is None:
        if kind == "periodic":
            return {u: 0 for u in unknowns.names}
        if len(unknowns.names) > 1:
            raise ConfigError(f"{k}.unknown", f"say which unknown ({', '.join(unknowns.names)}), or give value as {{u: …}}")
        names = unknowns.names[0]
    names = [names] if isinstance(names, str) else list(names)
    for u in names:
        if u not in unknowns.names:
            raise ConfigError(f"{k}.unknown", f"{u!r} is not an unknown ({', '.join(unknowns.names)})")
    return {u: value for u in names}


def _points(at: Any, coords: List[str], key: str) -> Tensor:
    """``at: {x: 0, y: 0}`` or a list of such mappings or of coordinate lists -> ``[P, dim]``."""
    if at is None:
        raise ConfigError(key, "a point condition needs at: {x: …, y: …}")
    items = at if isinstance(at, list) and at and not isinstance(at[0], (int, float)) else [at]
    rows = []
    for item in items:
        if isinstance(item, Mapping):
            missing = [c for c in coords if c not in item]
            if missing or set(item) - set(coords):
                raise ConfigError(key, f"give every coordinate ({', '.join(coords)}), got {dict(item)}")
            rows.append([float(item[c]) for c in coords])
        else:
            if len(item) != len(coords):
                raise ConfigError(key, f"a point has {len(coords)} coordinates ({', '.join(coords)}), got {item}")
            rows.append([float(v) for v in item])
    return torch.tensor(rows, dtype=torch.float64)
