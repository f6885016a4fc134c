"""``residual``: any expression that vanishes on a boundary piece (``expr: u_n + u*n_x``)."""
from __future__ import annotations

from typing import Any, Mapping

from dinf.errors import ConfigError
from dinf.pdes.conditions.base import Reading
from dinf.pdes.conditions.on_piece import OnPiece


class ResidualCondition(OnPiece):
    """``expr = 0`` on the piece; it may read ``u_n``, ``n_x``… and every unknown."""

    type = "residual"

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "ResidualCondition":
        piece = cls.read_piece(spec, reading, key)
        if "expr" not in spec:
            raise ConfigError(f"{key}.expr", "a residual condition needs expr: the expression that vanishes on the piece")
        return cls(name, piece, reading.residuals([spec["expr"]], f"{key}.expr", normals=True))
