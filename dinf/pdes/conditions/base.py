"""What every condition answers: its residuals, weight, points per batch, where its points lie,
and its loss term and least-squares rows given the jet at those points.

A condition is a residual on its own points (``u − g`` on a boundary piece, ``u_t − g`` on the
initial slice, …), soft by default: the loss adds ``weight · mean over its points of r²``. The
types are the modules beside this one; ``dinf.pdes.conditions.build`` reads them from config.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import sympy
import torch
from torch import Tensor

from dinf.equations import Residual, Unknowns, Vocabulary
from dinf.errors import ConfigError
from dinf.geometry.domain import Spacing
from dinf.jet import Jet

MAX_DRAW = 1 << 21  # sample_within's draws at most (by rejection)

# rows(residual, jet at the points or None, point data) -> (coef [N, P, C, A], rhs [N, P])
RowsOf = Callable[[Residual, Optional[Jet], Mapping[str, Tensor]], Tuple[Tensor, Tensor]]


@dataclass
class Reading:
    """What reading a condition from config needs from its problem."""

    unknowns: Unknowns
    coords: List[str]
    time: Optional[str]
    params: Mapping[str, float]
    functions: Mapping[str, str]
    domain: Any  # the problem's Domain: its pieces, bounds and inside test
    # What residuals read: the unknowns and the unknown parameters (dinf.pdes.inferred), as
    # channels after them; None: the unknowns alone. Targets (value: {u: …}) name unknowns only.
    symbols: Optional[Unknowns] = None

    def resolve(self, piece: str, key: str) -> Any:
        """The domain's boundary piece ``piece``; a ``ConfigError`` at ``key`` if it has none."""
        return self.domain.resolve(piece, key)

    def residuals(self, texts: Sequence[str], key: str, normals: bool = False) -> List[Residual]:
        """The texts parsed over the unknowns and coordinates (``normals``: ``u_n``, ``n_x``…)."""
        symbols = self.symbols or self.unknowns
        vocab = Vocabulary(symbols.names, self.coords, self.params, self.functions, normals=normals,
                           time=self.time)
        return [Residual(t, vocab, symbols, key, self.params) for t in texts]


class Condition(ABC):
    """One condition: its residuals on its points, weight and points per batch; ``hard``: imposed
    exactly through the ansatz ``u = g + B·N`` (``dinf.pdes.hard``) instead of as a loss term."""

    type: ClassVar[str] = ""  # the config's ``type:``
    default_points: ClassVar[int] = 1024
    fixed_points: ClassVar[bool] = False  # its points are its own: the batch does not shrink them

    def __init__(self, name: str, residuals: List[Residual], targets: Optional[Mapping[str, Any]] = None,
                 weight: float = 1.0, points: Optional[int] = None, hard: bool = False):
        self.name = name
        self.residuals = residuals
        self.targets: Dict[str, Any] = dict(targets or {})  # unknown -> prescribed value (text)
        self.unknowns: List[str] = list(self.targets)
        self.weight = weight
        self.points = self.default_points if points is None else points
        self.hard = hard

    @classmethod
    @abstractmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "Condition":
        """The condition from its config mapping (``key``: where it sits, for errors); weight,
        points and ``hard`` are read by ``build_conditions`` afterwards."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, weight={self.weight}, points={self.points})"

    @property
    def order(self) -> int:
        """The highest derivative its residuals read."""
        return max(r.order for r in self.residuals)

    # --- points -------------------------------------------------------------------------------
    @abstractmethod
    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        """``m`` points ``[m', dim]`` of the condition and their outward normals (None: none)."""

    def sample_within(self, domain: Any, m: int, generator: torch.Generator, lo: Tensor, hi: Tensor,
                      spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor], float]:
        """The points of an ``m``-point draw (``sample``) inside the window ``[lo, hi]``, their
        normals, and the share of that density they have: here by rejection from at most
        ``MAX_DRAW`` points (a share below 1 beyond); a condition on box faces draws inside the
        window itself (``OnPiece``)."""
        drawn = min(int(m), MAX_DRAW)
        x, normal = self.sample(domain, drawn, generator, spacing)
        keep = ((x >= lo.to(x.dtype)) & (x <= hi.to(x.dtype))).all(1)
        return x[keep], None if normal is None else normal[keep], drawn / max(int(m), 1)

    def terms(self, m: int) -> int:
        """How many squared residuals the loss averages over ``m`` sampled points."""
        return m

    def pairs(self, start: int, m: int) -> List[Tuple[int, int]]:
        """``(first point, count)`` of point pairs whose rows are differenced (periodic ones)."""
        return []

    # --- loss and rows --------------------------------------------------------------------------
    def values(self, jet: Jet, data: Mapping[str, Tensor]) -> Tensor:
        """``[terms, P]``: its residuals on the jet at its points (``data``: coordinates, normals)."""
        return torch.cat([r.evaluate(jet, data) for r in self.residuals], 1)

    def loss(self, jet: Jet, data: Mapping[str, Tensor]) -> Tensor:
        """``weight · mean r²``: its term of the problem's loss."""
        return self.weight * self.values(jet, data).pow(2).sum(1).mean()

    def rows(self, rows_of: RowsOf, jet: Optional[Jet], data: Mapping[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """Its residuals' rows at its points, weighted so their squares sum to ``loss`` (before any
        pairing: ``pairs`` says which rows become differences)."""
        parts = [rows_of(r, jet, data) for r in self.residuals]
        coef, rhs = torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)
        w = math.sqrt(self.weight / max(self.terms(coef.shape[0]), 1))
        return coef * w, rhs * w

    # --- what other methods read ----------------------------------------------------------------
    def exact_faces(self, domain: Any) -> List[Optional[str]]:
        """The box faces (None: the initial slice) where ``u = g + B·N`` can impose it exactly."""
        raise ConfigError(f"conditions.{self.name}.hard",
                          f"exact conditions are Dirichlet on box faces or initial values, not {self.type}")

    def prescribed(self) -> sympy.Expr:
        """The prescribed value ``g`` of a condition ``a·q − g`` on one quantity ``q`` (``u``, ``u_t``,
        ``u_n``): ``−r₀/a`` of its one residual, parameters substituted."""
        (res,) = self.residuals
        part = res.parts[0]
        (coef,) = part.coefficients.values()
        return -part.constant / coef


def value_text(value: Any) -> str:
    """A config value inside a residual's text: a number as itself, an expression in brackets."""
    return f"({value})" if not isinstance(value, (int, float)) else repr(float(value))


def read_targets(spec: Mapping[str, Any], unknowns: Unknowns, key: str, type_name: str,
                 default: Any = None, every: bool = False) -> Dict[str, Any]:
    """Unknown -> value: ``value: {u: 0, v: 0}``, or one ``value`` for ``unknown`` (without it: the
    only unknown, or, ``every``, all of them at ``default``)."""
    value = spec.get("value", default)
    if isinstance(value, Mapping):
        for u in value:
            if u not in unknowns.names:
                raise ConfigError(f"{key}.value.{u}", f"{u!r} is not an unknown ({', '.join(unknowns.names)})")
        return dict(value)
    if value is None:
        raise ConfigError(f"{key}.value", f"a {type_name} condition needs a value (an expression, or {{u: …, v: …}})")
    names = spec.get("unknown")
    if names is None:
        if every:
            return {u: default for u in unknowns.names}
        if len(unknowns.names) > 1:
            raise ConfigError(f"{key}.unknown", f"say which unknown ({', '.join(unknowns.names)}), or give value as {{u: …}}")
        names = unknowns.names[0]
    names = [names] if isinstance(names, str) else list(names)
    for u in names:
        if u not in unknowns.names:
            raise ConfigError(f"{key}.unknown", f"{u!r} is not an unknown ({', '.join(unknowns.names)})")
    return {u: value for u in names}
