"""Unknowns on their own axes: a coefficient ``a(x, y)`` beside ``u(x, y, t)``.

An inverse problem may seek a coefficient that does not depend on every coordinate (PINNacle's
HeatInv: the conductivity ``a(x, y)`` of a heat equation over x, y, t). ``SplitField`` answers a
problem's unknowns from several fields: part k gives the output channels ``channels[k]`` from the
coordinates ``axes[k]``, and its derivatives along the other coordinates are zero, exactly. A
coefficient then has the unknowns its own axes need (a 2D grid, not a 3D one held steady in t).

The solvers that work in node values (Gauss–Newton) see the parts' node values side by side
(``dinf.solvers.linalg.split_jets``); Adam trains the parts' parameters together.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from dinf.fields.base import Field, least_order
from dinf.jet import Jet, entry_axes, entry_position


class SplitField(Field):
    """``parts[k]`` (a field over ``len(axes[k])`` coordinates) gives channels ``channels[k]``
    from the coordinates ``axes[k]`` of the ``in_dim`` the problem has."""

    has_basis = False  # no single basis: the node-value solvers read the parts (split_jets)

    def __init__(self, parts: Sequence[Field], axes: Sequence[Sequence[int]], channels: Sequence[Sequence[int]],
                 in_dim: int, offset: Optional[Sequence[float]] = None):
        out_dim = sum(len(c) for c in channels)
        super().__init__(in_dim, out_dim)
        if not (len(parts) == len(axes) == len(channels)):
            raise ValueError(f"{len(parts)} parts need as many axes and channel lists, got {len(axes)}, {len(channels)}")
        flat = sorted(c for ch in channels for c in ch)
        if flat != list(range(out_dim)):
            raise ValueError(f"the parts' channels {list(channels)} must cover 0 … {out_dim - 1} once each")
        for part, ax, ch in zip(parts, axes, channels):
            if part.in_dim != len(ax) or part.out_dim != len(ch):
                raise ValueError(f"a part over axes {list(ax)} giving channels {list(ch)} must be a field "
                                 f"{len(ax)} → {len(ch)}, got {part.in_dim} → {part.out_dim}")
            if not ax or len(set(ax)) != len(ax) or not all(0 <= a < in_dim for a in ax):
                raise ValueError(f"a part's axes must be distinct coordinates 0 … {in_dim - 1}, got {list(ax)}")
        self.parts = nn.ModuleList(parts)
        self.axes: List[List[int]] = [list(map(int, a)) for a in axes]
        self.channels: List[List[int]] = [list(map(int, c)) for c in channels]
        order = [c for ch in self.channels for c in ch]
        self.register_buffer("_back", torch.argsort(torch.tensor(order)), persistent=False)
        # A constant added to each channel: where a coefficient starts (its init), the parts
        # giving the deviation from it (so a cold start from zero node values starts there).
        offset = [0.0] * out_dim if offset is None else [float(v) for v in offset]
        if len(offset) != out_dim:
            raise ValueError(f"offset needs {out_dim} values, got {len(offset)}")
        self.register_buffer("offset", torch.tensor(offset, dtype=torch.float64), persistent=False)

    @property
    def smooth_order(self) -> Optional[int]:
        return least_order(self.parts, "smooth_order")

    @property
    def max_order(self) -> Optional[int]:
        return least_order(self.parts, "max_order")

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat([p(x[:, ax]) for p, ax in zip(self.parts, self.axes)], 1)
        return out[:, self._back.to(out.device)] + self.offset.to(out)

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        d = self.in_dim
        blocks = []
        for part, ax in zip(self.parts, self.axes):
            local = part.jet(x[:, ax], order).entries()  # [N, C_k, W(d_k)]
            index = embedding(ax, d, order).to(local.device)
            padded = torch.cat([local, local.new_zeros(*local.shape[:2], 1)], -1)  # index -1: zero
            blocks.append(padded[..., index])
        full = torch.cat(blocks, 1)[:, self._back.to(x.device)]
        shift = torch.zeros(full.shape[1:], dtype=full.dtype, device=full.device)
        shift[:, 0] = self.offset.to(full)
        return Jet.from_entries(full + shift, d)


def embedding(axes: Sequence[int], d: int, order: int) -> Tensor:
    """For each entry of a ``d``-coordinate jet of ``order``, the position of the same derivative
    in the jet of a field over the coordinates ``axes`` (in that order), or -1 where the entry
    differentiates along a coordinate the field does not have (a zero)."""
    return torch.tensor(_embedding(tuple(axes), d, order), dtype=torch.long)


@lru_cache(maxsize=None)
def _embedding(axes: Tuple[int, ...], d: int, order: int) -> Tuple[int, ...]:
    # Cached: every jet of a SplitField (each training step, each evaluation chunk) reads it.
    local = {a: i for i, a in enumerate(axes)}
    return tuple(entry_position(tuple(local[a] for a in ax), len(axes)) if all(a in local for a in ax) else -1
                 for ax in entry_axes(order, d))
