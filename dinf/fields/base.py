"""The field abstraction: coordinates in, values and derivatives out."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from dinf.jet import Jet, higher_axes


class Field(nn.Module):
    """A neural field ``u: R^d -> R^C``.

    Subclasses implement ``forward``; ``jet`` defaults to autograd (with ``create_graph`` so
    losses on derivatives can be trained), and fields with closed-form derivatives override it.
    ``smooth_order``: the highest derivative order that is not zero almost everywhere by
    construction (None: every order; d-linear interpolation's pure second derivatives vanish
    inside its cells). ``has_basis``: the field exposes ``basis(x, level, order)``, the jets of
    its interpolation weights, so the solvers that work in node values apply (∂∞-Grid).
    ``max_order``: the highest order ``jet`` gives (None: any; autograd gives any).
    """

    smooth_order: Optional[int] = None
    max_order: Optional[int] = None
    has_basis = False

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)

    def forward(self, x: Tensor) -> Tensor:  # [N, d] -> [N, C]
        raise NotImplementedError

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        return autograd_jet(self, x, order)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class WrappedField(Field):
    """A field that changes the coordinates of ``inner``; every other attribute (grids, levels,
    decoder, …) is the inner field's, so solvers that read them see through the wrapper."""

    def __init__(self, inner: Field):
        super().__init__(inner.in_dim, inner.out_dim)
        self.inner = inner

    @property
    def smooth_order(self) -> Optional[int]:  # a class attribute would hide the inner field's
        return self.inner.smooth_order

    @property
    def has_basis(self) -> bool:
        return self.inner.has_basis

    @property
    def max_order(self) -> Optional[int]:
        return self.inner.max_order

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__["_modules"].get("inner")
            if inner is None:
                raise
            return getattr(inner, name)


def least_order(fields: Any, attr: str) -> Optional[int]:
    """The least ``attr`` (``smooth_order``, ``max_order``) of ``fields`` that state one (None:
    none does): what a field made of them can promise."""
    orders = [getattr(f, attr) for f in fields if getattr(f, attr) is not None]
    return min(orders) if orders else None


def innermost(field: nn.Module) -> nn.Module:
    """The field inside any coordinate wrappers (``MappedField``, ``WarpedField``)."""
    while isinstance(field, WrappedField):
        field = field.inner
    return field


def autograd_jet(field: nn.Module, x: Tensor, order: int) -> Jet:
    """Jet by reverse-mode autograd of ``field(x)`` (double backward for the Hessian, one more
    backward per order above)."""
    if order < 0:
        raise ValueError(f"jet order must be >= 0, got {order}")
    if order == 0:
        return Jet(field(x))
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        u = field(x)
        n, c = u.shape
        d = x.shape[1]
        grads = []
        for ch in range(c):
            (g,) = torch.autograd.grad(u[:, ch].sum(), x, create_graph=True)
            grads.append(g)
        grad = torch.stack(grads, 1)  # [N, C, d]
        hess = higher = None
        if order >= 2:
            rows = []
            for ch in range(c):
                cols = []
                for i in range(d):
                    (h,) = torch.autograd.grad(
                        grad[:, ch, i].sum(), x, create_graph=True, allow_unused=True
                    )
                    cols.append(torch.zeros_like(x) if h is None else h)
                rows.append(torch.stack(cols, 1))  # [N, d, d]
            hess = torch.stack(rows, 1)
        if order >= 3:  # each derivative of order k from one of order k − 1 (sorted axes: one per entry)
            known = {(i, j): hess[:, :, i, j] for i in range(d) for j in range(i, d)}
            for axes in higher_axes(d, order):
                below = known[axes[:-1]]
                cols = []
                for ch in range(c):
                    h = None
                    if below.requires_grad:  # (constant below: a d-linear field's Hessian)
                        (h,) = torch.autograd.grad(below[:, ch].sum(), x, create_graph=True, allow_unused=True)
                    cols.append(torch.zeros_like(below[:, ch]) if h is None else h[:, axes[-1]])
                known[axes] = torch.stack(cols, 1)
            higher = torch.stack([known[axes] for axes in higher_axes(d, order)], -1)
    return Jet(u, grad, hess, higher)
