"""Conditions on a boundary piece (a face, a hole, a group such as ``box``): ``dirichlet``
``u − g``, ``neumann`` ``u_n − g`` (the outward normal derivative) and ``robin``
``a·u + b·u_n − g``. Their points are drawn on the piece with the domain's outward normals."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinf.equations import Residual
from dinf.errors import ConfigError
from dinf.geometry.domain import Spacing
from dinf.pdes.conditions.base import Condition, Reading, read_targets, value_text


class OnPiece(Condition):
    """A condition on the boundary piece ``piece``; its texts may read ``u_n`` and ``n_x``…"""

    def __init__(self, name: str, piece: str, residuals: List[Residual], targets: Optional[Mapping[str, Any]] = None,
                 **common: Any):
        super().__init__(name, residuals, targets, **common)
        self.piece = piece

    @classmethod
    def read_piece(cls, spec: Mapping[str, Any], reading: Reading, key: str) -> str:
        """The ``piece:`` key, checked against the domain."""
        piece = spec.get("piece")
        if piece is None:
            raise ConfigError(f"{key}.piece", f"a {cls.type} condition needs a boundary piece (piece: box, holes, x_min, …)")
        reading.resolve(str(piece), f"{key}.piece")
        return str(piece)

    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        return domain.sample_boundary(self.piece, m, generator)

    def sample_within(self, domain: Any, m: int, generator: torch.Generator, lo: Tensor, hi: Tensor,
                      spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor], float]:
        """Drawn inside the window where the piece's parts allow (``Domain.sample_boundary_within``)."""
        return domain.sample_boundary_within(self.piece, m, generator, lo, hi)


class _OnPieceValue(OnPiece):
    """An on-piece condition ``text(u) − g`` per unknown, ``g`` from ``value``."""

    @classmethod
    @abstractmethod
    def text(cls, u: str, value: str, spec: Mapping[str, Any]) -> str:
        """The residual's text for unknown ``u`` and value text ``value``."""

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "OnPiece":
        piece = cls.read_piece(spec, reading, key)
        targets = read_targets(spec, reading.unknowns, key, cls.type)
        texts = [cls.text(u, value_text(v), spec) for u, v in targets.items()]
        return cls(name, piece, reading.residuals(texts, f"{key}.value", normals=True), targets)


class Dirichlet(_OnPieceValue):
    """``u = g`` on the piece; on box faces it can be exact (``hard: true``)."""

    type = "dirichlet"

    @classmethod
    def text(cls, u: str, value: str, spec: Mapping[str, Any]) -> str:
        return f"{u} - {value}"

    def exact_faces(self, domain: Any) -> List[Optional[str]]:
        return domain.resolve(self.piece, f"conditions.{self.name}.piece")


class Neumann(_OnPieceValue):
    """``∂u/∂n = g`` on the piece (outward normal)."""

    type = "neumann"

    @classmethod
    def text(cls, u: str, value: str, spec: Mapping[str, Any]) -> str:
        return f"{u}_n - {value}"


class Robin(_OnPieceValue):
    """``a·u + b·∂u/∂n = g`` on the piece (``a``, ``b``: numbers or expressions, 1 by default)."""

    type = "robin"

    @classmethod
    def text(cls, u: str, value: str, spec: Mapping[str, Any]) -> str:
        return f"({spec.get('a', 1.0)})*{u} + ({spec.get('b', 1.0)})*{u}_n - {value}"
