"""A classical solver's solution as a field: probed at points, scored by the same ``evaluate``."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from dinf.fields.base import Field


class Interpolant(Field):
    """Values only (no jets): the solver that fills it (``set``) probes its own solution
    (finite elements' basis, a spline through grid values, an integrator's dense output).
    ``unknowns``: the solution's. Zero before the first solve."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim)
        # problem.predict casts points to the first parameter's dtype: float64 for the probes.
        self.register_parameter("_precision", nn.Parameter(torch.zeros(0, dtype=torch.float64), requires_grad=False))
        self._probe: Optional[Callable[[Tensor], Tensor]] = None
        self.unknowns = 0

    def set(self, probe: Callable[[Tensor], Tensor], unknowns: int) -> None:
        """The solution is now ``probe`` (points ``[N, d]`` → values ``[N, C]``), of ``unknowns``."""
        self._probe, self.unknowns = probe, int(unknowns)

    @property
    def filled(self) -> bool:
        """Whether a solve has set the solution (a checkpoint does not hold it)."""
        return self._probe is not None

    def forward(self, x: Tensor) -> Tensor:
        if self._probe is None:
            return torch.zeros(x.shape[0], self.out_dim, dtype=torch.float64)
        return self._probe(x)
