"""``J = E z`` for a ``SplitField``: each part's node values, side by side.

A part over the coordinates ``axes`` (a coefficient ``a(x, y)`` in a problem over x, y, t) reads
its own basis at the points' coordinates on those axes; an entry that differentiates along
another coordinate (``a_t``) is a zero row. The columns are the parts' columns in order, each as
``dinf.solvers.least_squares.layout`` lays out a single grid (a block per channel).
"""
from __future__ import annotations

from typing import List

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dinf.errors import ConfigError
from dinf.fields.split import SplitField, embedding
from dinf.jet import entry_count
from dinf.solvers.least_squares import layout
from dinf.solvers.linalg.node_jets import NodeJets


def node_jets(field: torch.nn.Module, x: Tensor, order: int, used: Tensor, merge_twins: bool = False) -> NodeJets:
    """``NodeJets`` for a grid, ``SplitNodeJets`` for a field split into parts."""
    cls = SplitNodeJets if isinstance(field, SplitField) else NodeJets
    return cls(field, x, order, used, merge_twins)


class SplitNodeJets(NodeJets):
    """``E`` over the parts' node values (``entries``, ``jet_at``, ``combine`` as ``NodeJets``;
    the per-point basis that Newton's grouped products read is not kept: one part's nodes are
    not another's)."""

    def __init__(self, field: SplitField, x: Tensor, order: int, used: Tensor, merge_twins: bool = False):
        if merge_twins:
            raise ConfigError("solver", "a coefficient on its own axes (pde.coefficients) is solved by "
                              "solver=gauss_newton or adam, not Newton")
        self.layout = None
        self._read(field, x, order, used, merge_twins)
        self.cols = self.weights = None
        n, u = x.shape[0], len(self.used)
        blocks: List[sp.csr_matrix] = []
        for part, axes, channels in zip(field.parts, field.axes, field.channels):
            index = embedding(axes, self.dim, order).tolist()
            local_width = entry_count(order, len(axes))
            # The global read entries this part answers, and their local (channel, entry).
            mine = [(k, channels.index(c), index[a]) for k, (c, a) in enumerate(self.used)
                    if c in channels and index[a] >= 0]
            columns = _columns(part)
            if not mine:
                blocks.append(sp.csr_matrix((n * u, columns)))
                continue
            mask = torch.zeros(len(channels), local_width, dtype=torch.bool)
            for _, c, a in mine:
                mask[c, a] = True
            local = NodeJets(part, x[:, axes], order, mask)
            position = {ca: j for j, ca in enumerate(local.used)}
            E = local.entries.tocoo()
            # Local row n·U_k + j is global row n·U + k.
            target = np.full(len(local.used), -1, dtype=np.int64)
            for k, c, a in mine:
                target[position[(c, a)]] = k
            point, j = np.divmod(E.row, len(local.used))
            rows = point * u + target[j]
            blocks.append(sp.csr_matrix((E.data, (rows, E.col)), shape=(n * u, columns)))
        self.entries = sp.hstack(blocks, format="csr")

    def values(self, z: np.ndarray) -> Tensor:
        return torch.from_numpy(np.asarray(self.entries @ z)).reshape(self.x.shape[0], len(self.used))

    def transpose(self, g: np.ndarray) -> np.ndarray:
        return np.asarray(self.entries.T @ np.asarray(g).reshape(-1))


def _columns(part: torch.nn.Module) -> int:
    return layout(part).nodes * part.out_dim
