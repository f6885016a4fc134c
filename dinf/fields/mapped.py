"""A field on [-1, 1]^d shown on a box: problems state coordinates in their own units.

``x_unit = 2 (x − lo) / (hi − lo) − 1`` per axis, so the jet's derivatives pick up the factors
``s_a = 2 / (hi_a − lo_a)`` by the chain rule (the map is affine: no other terms). The wrapped
field's basis is scaled the same way, so least squares sees the mapped field as it sees any other.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from dinf.fields.base import Field, WrappedField
from dinf.jet import Jet, higher_axes


class MappedField(WrappedField):
    """``inner`` (a field on [-1, 1]^d) on the box ``bounds`` ``[[lo, hi], …]``; every other
    attribute (grids, levels, decoder, …) is the inner field's."""

    # The pixel-grid least-squares operator reads the inner field's levels on unmapped
    # coordinates; it must not apply to a mapped field (its sparse path does).
    separable = False

    def __init__(self, inner: Field, bounds: Sequence[Sequence[float]]):
        super().__init__(inner)
        b = torch.as_tensor(bounds, dtype=torch.float64)
        if b.shape != (inner.in_dim, 2) or not bool((b[:, 1] > b[:, 0]).all()):
            raise ValueError(f"bounds must be {inner.in_dim} pairs lo < hi, got {bounds}")
        self.register_buffer("lo", b[:, 0].clone(), persistent=False)
        self.register_buffer("scale", 2.0 / (b[:, 1] - b[:, 0]), persistent=False)

    def unit(self, x: Tensor) -> Tensor:
        """Coordinates on [-1, 1]^d."""
        return (x - self.lo.to(x.dtype)) * self.scale.to(x.dtype) - 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(self.unit(x))

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        j = self.inner.jet(self.unit(x), order)
        s = self.scale.to(j.value.dtype)
        grad = j.grad * s if j.grad is not None else None
        hess = j.hess * (s[:, None] * s[None, :]) if j.hess is not None else None
        higher = None
        if j.higher is not None:  # an affine map: each derivative scales by its axes' factors
            higher = j.higher * torch.stack([s[list(axes)].prod() for axes in higher_axes(self.in_dim, j.order)])
        return Jet(j.value, grad, hess, higher)

    def basis(self, x: Tensor, level: int, order: int) -> Tuple[Tensor, Tensor]:
        """The inner field's basis at the mapped points, its weight jets in box units."""
        cols, w = self.inner.basis(self.unit(x), level, order)
        return cols, self._box_units(w, order)

    def level_rows(self, x: Tensor, level: int, order: int) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """The inner field's ``level_rows`` (a refined grid's: the points a level reaches), in box units."""
        rows, cols, w = self.inner.level_rows(self.unit(x), level, order)
        return rows, cols, self._box_units(w, order)

    def _box_units(self, w: Tensor, order: int) -> Tensor:
        """Weight jets ``[N, A, M]`` on [-1, 1]^d turned into the box's units."""
        s = self.scale.to(w.dtype)
        factors = [torch.ones(1, dtype=w.dtype, device=w.device)]
        if order >= 1:
            factors.append(s)
        if order >= 2:
            factors.append((s[:, None] * s[None, :]).reshape(-1))
        if order >= 3:
            factors.append(torch.stack([s[list(axes)].prod() for axes in higher_axes(self.in_dim, order)]))
        return w * torch.cat(factors)[None, :, None]
