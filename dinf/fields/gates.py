"""Learnable level gates: how much each resolution level contributes, globally or per region.

The gate multiplies a level's features before the decoder, ``f_s(x) · g_s(x)``, so the jet of
the gated features follows from the product rule. ``scalar``: one learned factor per level.
``spatial``: a one-level RBF grid with one channel per level, interpolated like the features,
so a level can be switched on where the solution needs its detail and off elsewhere. Both
start at exactly 1 (normalised weights reproduce a constant), i.e. as the ungated field.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from dinf.errors import check, check_choice
from dinf.jet import Jet

GATES = ("none", "scalar", "spatial")


class LevelGates(nn.Module):
    """Gates for ``levels`` levels of ``features`` features each (see the module docstring)."""

    def __init__(self, mode: str, levels: int, features: int, in_dim: int, resolution: int,
                 kernel: str, eps: float, rho: int, edge: str, window: float = 0.0,
                 grid_class: Optional[Callable[..., nn.Module]] = None):
        """``grid_class``: the grid that holds spatial gates (``DInfGrid``; passed in, so this
        module need not import the grid that imports it)."""
        super().__init__()
        check_choice("gates", mode, GATES)
        check(isinstance(resolution, int) and resolution >= 1, "gate_resolution",
              f"must be an integer >= 1, got {resolution!r}")
        self.mode, self.levels, self.features = mode, levels, features
        if mode == "scalar":
            self.weight = nn.Parameter(torch.ones(levels))
        elif mode == "spatial":
            check(grid_class is not None, "gates", "spatial gates need the grid class that holds them")
            self.field = grid_class(in_dim, levels, resolution=resolution, levels=1, features=levels,
                                  kernel=kernel, eps=eps, rho=rho, edge=edge, backend="torch",
                                  window=window)
            self.field.decoder = None  # only its features are read: no parameters without a use
            with torch.no_grad():
                self.field.grids[0].fill_(1.0)

    def forward(self, features: Jet, x: Tensor) -> Jet:
        """The gated feature jet ``[N, levels·F]`` (same order as ``features``)."""
        if self.mode == "none":
            return features
        if self.mode == "scalar":
            w = self.weight.repeat_interleave(self.features).to(features.value.dtype)
            return Jet(features.value * w,
                       None if features.grad is None else features.grad * w[:, None],
                       None if features.hess is None else features.hess * w[:, None, None],
                       None if features.higher is None else features.higher * w[:, None])
        gate = self.field.features_jet(x, features.order)
        return features * _per_feature(gate, self.features)


def _per_feature(jet: Jet, features: int) -> Jet:
    """Each level's gate repeated for the level's features: ``[N, L] → [N, L·F]``."""
    def rep(t):
        return None if t is None else t.repeat_interleave(features, dim=1)

    return Jet(rep(jet.value), rep(jet.grad), rep(jet.hess), rep(jet.higher))
