"""What the classical solvers share: each solves the problem itself (meshes, grids, integrators)
and its result is a field (``dinf.fields.Interpolant``) that ``evaluate`` scores as any other."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from dinf.errors import check
from dinf.fields.interpolant import Interpolant
from dinf.solvers.base import SolveSolver


class ClassicalSolver(SolveSolver):
    """A solver whose result is a field of its own (``result_field``). A run makes ``refinements``
    solves, each afresh and timed alone (an error-against-time curve); ``probe`` gives the last
    solution at points; ``num_params`` counts its unknowns."""

    independent_solves = True  # a solve's time is its own, not the run's running total

    def __init__(self, in_dim: int, out_dim: int, what: str, in_dims: Sequence[int] = (2,),
                 out_dims: Sequence[int] = (1,)) -> None:
        """``in_dims``, ``out_dims``: the coordinate and channel counts this solver takes (a plane
        and one real unknown unless a subclass says more)."""
        super().__init__()
        check(int(in_dim) in in_dims and int(out_dim) in out_dims, "in_dim",
              f"{what} here solve {_counts(out_dims)} real unknown(s) in {_counts(in_dims)} coordinates, "
              f"got {in_dim}, {out_dim}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self._u: Optional[np.ndarray] = None

    @property
    def num_params(self) -> int:
        return 0 if self._u is None else int(self._u.size)

    @property
    def refinements(self) -> int:
        """How many solves a run makes."""
        return 1

    def result_field(self) -> Interpolant:
        """The field this solver's solutions are written into."""
        return Interpolant(self.in_dim, self.out_dim)

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        return {"max_steps": self.refinements, "val_check_interval": 1}

    def solve(self, field: Interpolant, problem: Any, generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
        """The next refinement's solve (``_solve``), then ``field`` probes it."""
        info = self._solve(problem)
        field.set(self.probe, self.num_params)
        return info

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Solve ``problem`` at the next refinement; return timings, sizes and ``time_s``."""
        raise NotImplementedError

    def probe(self, x: Tensor) -> Tensor:
        """The last solution at ``x`` ``[N, d]`` as float64 ``[N, C]``."""
        raise NotImplementedError


def _counts(values: Sequence[int]) -> str:
    return " or ".join(str(v) for v in values)
