"""The jet: a field's value and derivatives at a set of points."""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Tuple

import torch
from torch import Tensor

Axes = Tuple[int, ...]


@lru_cache(maxsize=None)
def higher_axes(d: int, order: int) -> Tuple[Axes, ...]:
    """The derivatives of orders 3 … ``order`` a jet holds in ``higher``, in order: by order, then
    the sorted axes lexicographically (``(0, 0, 0)``, ``(0, 0, 1)``, … for ∂³/∂x³, ∂³/∂x²∂y, …).
    Each mixed derivative appears once: derivatives of a smooth field commute."""
    return tuple(c for k in range(3, order + 1) for c in itertools.combinations_with_replacement(range(d), k))


def higher_index(axes: Axes, d: int) -> int:
    """Position of the derivative along ``axes`` (any order ≥ 3, any axis order) in ``higher``."""
    key = tuple(sorted(axes))
    return higher_axes(d, len(key)).index(key)


def entry_count(order: int, d: int) -> int:
    """Entries of a jet of ``order`` per channel: value, d gradient, d·d Hessian (row-major), then
    ``higher_axes``."""
    return 1 + (d if order >= 1 else 0) + (d * d if order >= 2 else 0) + len(higher_axes(d, order))


def order_of_width(width: int, d: int) -> int:
    """The jet order with ``width`` entries per channel in ``d`` coordinates."""
    order = 0
    while entry_count(order, d) < width:
        order += 1
    return order


def entry_axes(order: int, d: int) -> List[Axes]:
    """The axes of each entry of a jet of ``order`` in ``d`` coordinates, in ``entry_count`` order
    (``()`` the value; the Hessian's ``(i, j)`` row-major, both of a mixed pair)."""
    out: List[Axes] = [()]
    if order >= 1:
        out += [(i,) for i in range(d)]
    if order >= 2:
        out += [(i, j) for i in range(d) for j in range(d)]
    return out + list(higher_axes(d, order))


def entry_position(axes: Axes, d: int) -> int:
    """Position of the derivative along ``axes`` among a jet's entries (``entry_count``'s order)."""
    if not axes:
        return 0
    if len(axes) == 1:
        return 1 + axes[0]
    if len(axes) == 2:
        return 1 + d + axes[0] * d + axes[1]
    return 1 + d + d * d + higher_index(axes, d)


@dataclass
class Jet:
    """Value and derivatives of a field at N points.

    value ``[N, C]``, grad ``[N, C, d]``, hess ``[N, C, d, d]`` (None above the order asked);
    higher ``[N, C, H]``: the derivatives of orders 3 and up, along ``higher_axes(d, order)``
    (None for a jet of order ≤ 2).
    """

    value: Tensor
    grad: Optional[Tensor] = None
    hess: Optional[Tensor] = None
    higher: Optional[Tensor] = None

    @property
    def order(self) -> int:
        if self.grad is None:
            return 0
        if self.hess is None:
            return 1
        if self.higher is None:
            return 2
        d, h = self.grad.shape[-1], self.higher.shape[-1]
        order = 2
        while len(higher_axes(d, order)) < h:
            order += 1
        return order

    def entry(self, axes: Axes) -> Tensor:
        """``[N, C]``: the derivative along ``axes`` (``()`` the value; any axis order)."""
        if not axes:
            return self.value
        if len(axes) == 1:
            return self.grad[..., axes[0]]
        if len(axes) == 2:
            return self.hess[..., axes[0], axes[1]]
        return self.higher[..., higher_index(axes, self.grad.shape[-1])]

    def entries(self) -> Tensor:
        """``[N, C, A]``: every entry in ``entry_count`` order."""
        n, c = self.value.shape
        parts = [self.value.unsqueeze(-1)]
        if self.grad is not None:
            parts.append(self.grad)
            if self.hess is not None:
                parts.append(self.hess.reshape(n, c, -1))
                if self.higher is not None:
                    parts.append(self.higher)
        return torch.cat(parts, -1)

    @staticmethod
    def from_entries(full: Tensor, d: int) -> "Jet":
        """The jet whose entries (``entries()``'s layout) are ``full`` ``[N, C, A]``."""
        n, c, width = full.shape
        grad = full[:, :, 1:1 + d] if width > 1 else None
        hess = full[:, :, 1 + d:1 + d + d * d].reshape(n, c, d, d) if width > 1 + d else None
        higher = full[:, :, 1 + d + d * d:] if width > 1 + d + d * d else None
        return Jet(full[:, :, 0], grad, hess, higher)

    def truncated(self, order: int) -> "Jet":
        """The same jet up to ``order``."""
        if order >= self.order:
            return self
        grad = self.grad if order >= 1 else None
        hess = self.hess if order >= 2 else None
        higher = self.higher[..., :len(higher_axes(self.grad.shape[-1], order))] if order >= 3 else None
        return Jet(self.value, grad, hess, higher)

    def select(self, index) -> "Jet":
        """The jet at a subset of its points (``index``: a slice, mask or index tensor)."""
        return Jet(*(None if t is None else t[index] for t in (self.value, self.grad, self.hess, self.higher)))

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
        higher = None
        if order >= 3:  # Leibniz: ∂^α(ab) = Σ over sub-multisets β of α of C(α, β) ∂^β a ∂^(α−β) b
            higher = torch.stack([leibniz(a, b, axes) for axes in higher_axes(a.grad.shape[-1], order)], -1)
        return Jet(value, grad, hess, higher)

    def __add__(self, other: "Jet") -> "Jet":
        """The jet of the sum, up to the lower order of the two."""
        order = min(self.order, other.order)
        a, b = self.truncated(order), other.truncated(order)
        return Jet(*(None if x is None else x + y for x, y in
                     zip((a.value, a.grad, a.hess, a.higher), (b.value, b.grad, b.hess, b.higher))))

    def __rsub__(self, one: float) -> "Jet":
        """``c - jet`` for a constant ``c``."""
        return Jet(one - self.value, *(None if t is None else -t for t in (self.grad, self.hess, self.higher)))


def leibniz(a: Jet, b: Jet, axes: Axes) -> Tensor:
    """``∂^axes (a·b)`` ``[N, C]`` from the entries of both jets."""
    total = 0.0
    for sub, count in splits(axes):
        rest = list(axes)
        for s in sub:
            rest.remove(s)
        total = total + count * a.entry(sub) * b.entry(tuple(rest))
    return total


@lru_cache(maxsize=None)
def splits(axes: Axes) -> List[Tuple[Axes, int]]:
    """The distinct sub-multisets β of ``axes`` with their multinomial weights Π C(α_i, β_i)."""
    have = Counter(axes)
    keys = sorted(have)
    out = []
    for counts in itertools.product(*(range(have[k] + 1) for k in keys)):
        sub = tuple(k for k, n in zip(keys, counts) for _ in range(n))
        out.append((sub, math.prod(math.comb(have[k], n) for k, n in zip(keys, counts))))
    return out
