"""What the classical solvers share: they stand where a field stands (``model=...``), solve the
problem themselves and are then probed like a field."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

from dinf.errors import check


class ClassicalSolver(nn.Module):
    """A model that is its own solver. ``solve(field, problem, generator)`` is what a least-squares
    run calls (train.py runs ``refinements`` of them, each timed alone); ``forward`` probes the
    solution; ``num_params`` counts its unknowns."""

    classical = True  # dinf.run: no box map, no optimizer; the field is its own solver
    independent_solves = True  # dinf.solver: a solve's time is its own, not the run's running total
    in_dim = 2
    out_dim = 1

    def __init__(self, in_dim: int, out_dim: int, what: str, in_dims: Sequence[int] = (2,),
                 out_dims: Sequence[int] = (1,)) -> None:
        """``in_dims``, ``out_dims``: the coordinate and channel counts this solver takes (a plane
        and one real unknown unless a subclass says more)."""
        super().__init__()
        check(int(in_dim) in in_dims and int(out_dim) in out_dims, "in_dim",
              f"{what} here solve {_counts(out_dims)} real unknown(s) in {_counts(in_dims)} coordinates, "
              f"got {in_dim}, {out_dim}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        # problem.predict casts points to the first parameter's dtype: float64 for the probes.
        self.register_parameter("_precision", nn.Parameter(torch.zeros(0, dtype=torch.float64), requires_grad=False))
        self._u: Optional[np.ndarray] = None
        self.info: Dict[str, Any] = {}

    @property
    def num_params(self) -> int:
        return 0 if self._u is None else int(self._u.size)

    @property
    def refinements(self) -> int:
        """How many solves a run makes."""
        return 1

    def warm_up(self) -> None:
        """One-time work (imports, library handles) before the clock starts."""

    def check(self, field: Any, problem: Any) -> None:
        """Raise a one-line ``ConfigError`` for a problem this solver cannot take."""
        raise NotImplementedError


def _counts(values: Sequence[int]) -> str:
    return " or ".join(str(v) for v in values)
