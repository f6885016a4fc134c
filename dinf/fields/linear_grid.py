"""Multi-resolution grids with d-linear interpolation (Instant-NGP / K-Planes style baseline).

Same co-located grid layout as ``DInfGrid`` but each query reads only the 2^d corners of its
cell. The field is piecewise multilinear per level, so its pure second derivatives vanish
inside every cell: the failure mode ∂∞-Grid exists to fix. Jets come from autograd.
"""
from __future__ import annotations

import itertools
import math
from typing import List, Tuple, Union

import torch
from torch import Tensor, nn

from dinf.errors import check_choice
from dinf.fields.base import Field
from dinf.fields.decoders import DECODERS
from dinf.fields.gather import gather_rows
from dinf.fields.grid_checks import Resolution, check_grid, is_int, level_cells


class LinearGrid(Field):
    """Multi-resolution feature grid, d-linear interpolation, linear or MLP decoder.

    ``resolution``: an int (every axis) or one int per axis. Level s has ``r_a / 2^s`` cells
    along axis a on [-1, 1]^d and ``Π_a (n_a + 1)`` nodes. ``cells`` holds one int per level
    when all axes agree, else a tuple per axis, as ``DInfGrid.cells`` does.
    """

    smooth_order = 1  # d-linear: the pure second derivatives vanish inside each cell

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 1,
        resolution: Resolution = 256,
        levels: int = 6,
        features: int = 2,
        decoder: str = "linear",
        decoder_hidden: int = 64,
        init_scale: float = 1e-4,
    ):
        super().__init__(in_dim, out_dim)
        axes = check_grid(in_dim, resolution, levels, features)
        check_choice("decoder", decoder, DECODERS)
        self.resolution: Resolution = int(resolution) if is_int(resolution) else list(axes)
        self.levels, self.features = levels, features
        self.resolution_per_axis: Tuple[int, ...] = axes
        self.cells_per_axis: List[Tuple[int, ...]] = level_cells(axes, levels)
        self.isotropic = len(set(axes)) == 1
        self.cells: List[Union[int, Tuple[int, ...]]] = (
            [c[0] for c in self.cells_per_axis] if self.isotropic else list(self.cells_per_axis))
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(*[n + 1 for n in cells], features).uniform_(-init_scale, init_scale))
            for cells in self.cells_per_axis
        )
        kwargs = {"hidden": decoder_hidden} if decoder == "mlp" else {}
        self.decoder = DECODERS[decoder](levels * features, out_dim, **kwargs)
        # Corner c of a cell sits at offset corners[c] (0/1 per axis) from its lowest node.
        corners = list(itertools.product((0, 1), repeat=in_dim))
        self.register_buffer("corners", torch.tensor(corners, dtype=torch.long), persistent=False)

    @property
    def cells_total(self) -> int:
        """Cells of the finest level over all axes (``resolution ** in_dim`` for an int)."""
        return math.prod(self.resolution_per_axis)

    def _level(self, x: Tensor, level: int) -> Tensor:
        cells, d = self.cells_per_axis[level], self.in_dim
        if self.isotropic:  # Python numbers, as before per-axis cells
            n = cells[0]
            t = (x + 1.0) * (0.5 * n)  # index space of this level
            # Detached floor: the cell choice is piecewise constant, only t - i0 carries gradient.
            # Clamping to n - 1 puts x = 1 in the last cell (with frac = 1) instead of off the grid.
            i0 = t.detach().floor().clamp(0, n - 1)
        else:
            t = (x + 1.0) * x.new_tensor([0.5 * n for n in cells])
            i0 = torch.minimum(t.detach().floor().clamp_min(0), x.new_tensor([n - 1 for n in cells]))
        frac = t - i0  # [N, d]
        nodes = i0.long().unsqueeze(1) + self.corners  # [N, 2^d, d]
        strides = torch.tensor([math.prod(n + 1 for n in cells[a + 1 :]) for a in range(d)], device=x.device)
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
