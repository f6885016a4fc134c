"""The jet: a field's value and derivatives at a set of points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor


@dataclass
class Jet:
    """Value and derivatives of a field at N points.

    value ``[N, C]``, grad ``[N, C, d]``, hess ``[N, C, d, d]`` (None above the order asked).
    """

    value: Tensor
    grad: Optional[Tensor] = None
    hess: Optional[Tensor] = None

    @property
    def order(self) -> int:
        return 0 if self.grad is None else (1 if self.hess is None else 2)

    def laplacian(self) -> Tensor:
        """``[N, C]``: trace of the Hessian."""
        if self.hess is None:
            raise ValueError("laplacian needs a jet of order 2")
        return self.hess.diagonal(dim1=-2, dim2=-1).sum(-1)
