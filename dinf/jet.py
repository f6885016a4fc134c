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

    def __mul__(self, other: "Jet") -> "Jet":
        """The jet of the product, up to the lower order of the two (a one-channel factor
        broadcasts over channels)."""
        a, b = self, other
        order = min(a.order, b.order)
        value = a.value * b.value
        if order == 0:
            return Jet(value)
        grad = a.grad * b.value.unsqueeze(-1) + a.value.unsqueeze(-1) * b.grad
        if order == 1:
            return Jet(value, grad)
        outer = a.grad.unsqueeze(-1) * b.grad.unsqueeze(-2)
        hess = a.hess * b.value[..., None, None] + a.value[..., None, None] * b.hess + outer + outer.transpose(-1, -2)
        return Jet(value, grad, hess)

    def __add__(self, other: "Jet") -> "Jet":
        """The jet of the sum, up to the lower order of the two."""
        order = min(self.order, other.order)
        grad = self.grad + other.grad if order >= 1 else None
        hess = self.hess + other.hess if order >= 2 else None
        return Jet(self.value + other.value, grad, hess)

    def __rsub__(self, one: float) -> "Jet":
        """``c - jet`` for a constant ``c``."""
        return Jet(one - self.value, -self.grad, -self.hess)
