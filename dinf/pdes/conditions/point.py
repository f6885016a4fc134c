"""``point``: ``u = g`` at given points (``at: {x: 0, y: 0}`` or a list of them); every batch
holds all of them."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinf.equations import Residual
from dinf.errors import ConfigError
from dinf.geometry.domain import Spacing
from dinf.pdes.conditions.base import Condition, Reading, read_targets, value_text


class Point(Condition):
    """``u − g`` at the points ``at`` ``[P, dim]`` (float64)."""

    type = "point"
    fixed_points = True

    def __init__(self, name: str, at: Tensor, residuals: List[Residual], targets: Optional[Mapping[str, Any]] = None,
                 **common: Any):
        common.setdefault("points", len(at))  # one batch row per given point
        super().__init__(name, residuals, targets, **common)
        self.at = at

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "Point":
        targets = read_targets(spec, reading.unknowns, key, cls.type)
        at = read_points(spec.get("at"), reading.coords, f"{key}.at")
        texts = [f"{u} - {value_text(v)}" for u, v in targets.items()]
        return cls(name, at, reading.residuals(texts, f"{key}.value"), targets)

    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        return self.at, None


def read_points(at: Any, coords: List[str], key: str) -> Tensor:
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
