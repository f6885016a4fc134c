"""One field over a time interval made of one field per time window.

Marching in time (``solver.windows``) fits a separate field on each window ``[t_k, t_{k+1}]``;
``WindowedField`` shows them as one field: a point is answered by the field of the window that
holds its time (a point on an inner edge by the later window, whose initial value was handed
over there), so evaluation, pictures and checkpoints see one solution over the whole interval.

A window whose problem imposes conditions exactly (``u = g + B·N`` of the field's output ``N``,
``dinf.pdes.hard``) trains its field as ``N`` on its own interval; ``exact[k]`` (its ``values``
and ``jet`` maps) turns that window's output into the solution here, so the caller sees ``u``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from dinf.fields.base import Field, least_order
from dinf.jet import Jet


class WindowedField(Field):
    """``fields[k]`` on ``edges[k] <= x[:, axis] < edges[k + 1]`` (the last window closed)."""

    def __init__(self, fields: Sequence[Field], edges: Sequence[float], axis: int,
                 exact: Optional[Sequence[Any]] = None):
        first = fields[0]
        super().__init__(first.in_dim, first.out_dim)
        if len(edges) != len(fields) + 1:
            raise ValueError(f"{len(fields)} windows need {len(fields) + 1} edges, got {len(edges)}")
        self.windows = nn.ModuleList(fields)
        self.axis = int(axis)
        self.exact = list(exact) if exact is not None else [None] * len(fields)
        self.register_buffer("edges", torch.as_tensor(list(edges), dtype=torch.float64), persistent=False)

    @property
    def smooth_order(self) -> Optional[int]:
        return least_order(self.windows, "smooth_order")

    @property
    def max_order(self) -> Optional[int]:
        return least_order(self.windows, "max_order")

    def window_of(self, x: Tensor) -> Tensor:
        """Each point's window index ``[N]`` (times outside the interval: the nearest window)."""
        inner = self.edges[1:-1].to(device=x.device)
        return torch.bucketize(x[:, self.axis].detach().double().contiguous(), inner, right=True)

    def forward(self, x: Tensor) -> Tensor:
        which = self.window_of(x)
        out = None
        for k, field in enumerate(self.windows):
            idx = (which == k).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            part = field(x[idx])
            if self.exact[k] is not None:
                part = self.exact[k].values(part, x[idx].double())
            if out is None:
                out = part.new_zeros(x.shape[0], part.shape[1])
            out = out.index_copy(0, idx, part)
        return out if out is not None else x.new_zeros(0, self.out_dim)

    def window_jet(self, k: int, x: Tensor, order: int = 2) -> Jet:
        """Window ``k``'s solution at ``x``, wherever ``x`` lies (the next window's initial value
        reads it at the shared edge)."""
        jet = self.windows[k].jet(x, order)
        return jet if self.exact[k] is None else self.exact[k].jet(jet, x.to(jet.value.dtype))

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        if x.shape[0] == 0:
            return self.window_jet(0, x, order)
        which = self.window_of(x)
        parts = []
        for k in range(len(self.windows)):
            idx = (which == k).nonzero().squeeze(1)
            if idx.numel():
                parts.append((idx, self.window_jet(k, x[idx], order)))
        idx = torch.cat([i for i, _ in parts])
        back = torch.empty_like(idx)
        back[idx] = torch.arange(idx.numel(), device=idx.device)  # the points' original order

        def gather(entry: str) -> Optional[Tensor]:
            values = [getattr(j, entry) for _, j in parts]
            return None if values[0] is None else torch.cat(values)[back]

        return Jet(gather("value"), gather("grad"), gather("hess"), gather("higher"))
