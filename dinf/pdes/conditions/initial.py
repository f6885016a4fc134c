"""Conditions on the initial slice ``t = t0``: ``initial`` ``u − g`` and ``initial_rate``
``u_t − g``. Their points spread over the spatial region (evenly per cell of a graded field)."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinf.errors import ConfigError
from dinf.geometry.domain import Spacing
from dinf.pdes.conditions.base import Condition, Reading, read_targets, value_text


class OnInitialSlice(Condition):
    """A condition ``text(u) − g`` per unknown at ``t = t0``."""

    @classmethod
    @abstractmethod
    def text(cls, u: str, value: str, time: str) -> str:
        """The residual's text for unknown ``u`` and value text ``value``."""

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "OnInitialSlice":
        if reading.time is None:
            raise ConfigError(f"{key}.type", f"{cls.type} needs a time axis (pde.domain.time)")
        targets = read_targets(spec, reading.unknowns, key, cls.type)
        texts = [cls.text(u, value_text(v), reading.time) for u, v in targets.items()]
        return cls(name, reading.residuals(texts, f"{key}.value"), targets)

    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        return domain.sample_initial(m, generator, spacing), None


class Initial(OnInitialSlice):
    """``u(x, t0) = g(x)``; it can be exact (``hard: true``)."""

    type = "initial"

    @classmethod
    def text(cls, u: str, value: str, time: str) -> str:
        return f"{u} - {value}"

    def exact_faces(self, domain: Any) -> List[Optional[str]]:
        return [None]


class InitialRate(OnInitialSlice):
    """``∂u/∂t(x, t0) = g(x)`` (an equation second order in time needs it)."""

    type = "initial_rate"

    @classmethod
    def text(cls, u: str, value: str, time: str) -> str:
        return f"{u}_{time} - {value}"
