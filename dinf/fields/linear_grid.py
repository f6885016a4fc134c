"""Multi-resolution grids with d-linear interpolation (Instant-NGP / K-Planes style baseline).

Same co-located grid layout as ``DInfGrid`` but each query reads only the 2^d corners of its
cell. The field is piecewise multilinear per level, so its pure second derivatives vanish
inside every cell: the failure mode ∂∞-Grid exists to fix. Jets come from autograd.
"""
from __future__ import annotations

import itertools
from typing import List

import torch
from torch import Tensor, nn

from dinf.errors import check_choice
from dinf.fields.base import Field
from dinf.fields.decoders import DECODERS
from dinf.fields.gather import gather_rows
from dinf.fields.grid_checks import check_grid


class LinearGrid(Field):
    """Multi-resolution feature grid, d-linear interpolation, linear or MLP decoder.

    Level s has ``resolution / 2^s`` cells per axis on [-1, 1]^d and ``(n + 1)^d`` nodes.
    """

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 1,
        resolution: int = 256,
        levels: int = 6,
        features: int = 2,
        decoder: str = "linear",
        decoder_hidden: int = 64,
        init_scale: float = 1e-4,
    ):
        super().__init__(in_dim, out_dim)
        check_grid(in_dim, resolution, levels, features)
        check_choice("decoder", decoder, DECODERS)
        self.resolution, self.levels, self.features = resolution, levels, features
        self.cells: List[int] = [resolution // 2**s for s in range(levels)]
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(*([n + 1] * in_dim), features).uniform_(-init_scale, init_scale))
            for n in self.cells
        )
        kwargs = {"hidden": decoder_hidden} if decoder == "mlp" else {}
        self.decoder = DECODERS[decoder](levels * features, out_dim, **kwargs)
        # Corner c of a cell sits at offset corners[c] (0/1 per axis) from its lowest node.
        corners = list(itertools.product((0, 1), repeat=in_dim))
        self.register_buffer("corners", torch.tensor(corners, dtype=torch.long), persistent=False)

    def _level(self, x: Tensor, level: int) -> Tensor:
        n, d = self.cells[level], self.in_dim
        t = (x + 1.0) * (0.5 * n)  # index space of this level
        # Detached floor: the cell choice is piecewise constant, only t - i0 carries gradient.
        # Clamping to n - 1 puts x = 1 in the last cell (with frac = 1) instead of off the grid.
        i0 = t.detach().floor().clamp(0, n - 1)
        frac = t - i0  # [N, d]
        nodes = i0.long().unsqueeze(1) + self.corners  # [N, 2^d, d]
        strides = torch.tensor([(n + 1) ** (d - 1 - a) for a in range(d)], device=x.device)
        rows = (nodes * strides).sum(-1)  # [N, 2^d]
        table = self.grids[level].reshape(-1, self.features)
        feats = gather_rows(table, rows.reshape(-1)).view(x.shape[0], -1, self.features)
        # Corner weight: product over axes of frac (corner bit 1) or 1 - frac (bit 0). A running
        # product rather than ``prod``: its backward (prod / x_a) would leave round-off in the
        # pure second derivatives, which are exactly zero for a d-linear cell.
        c = self.corners.to(x.dtype)  # [2^d, d]
        w = torch.ones_like(rows, dtype=x.dtype)  # [N, 2^d]
        for a in range(d):
            fa = frac[:, a : a + 1]
            w = w * (c[:, a] * fa + (1.0 - c[:, a]) * (1.0 - fa))
        return (w.unsqueeze(-1) * feats).sum(1)  # [N, F]

    def forward(self, x: Tensor) -> Tensor:
        z = torch.cat([self._level(x, s) for s in range(self.levels)], 1)
        return self.decoder(z)
