"""A grid's jets at fixed points as a sparse matrix over its node values: ``J = E z``.

With the linear decoder a grid field is ``u_c(x) = Σ_nodes w_node(x) z_c,node``, so every jet entry
at every point is a row of the basis. ``E`` holds, for each point, the rows of the entries a
problem reads (channel, entry): value, gradient, Hessian in ``jet_entries`` order. Gauss–Newton
and Newton build it once for their points and move ``z``; the field sees ``z`` through
``dinf.lsq.write_back``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dinf.equations.residual import jet_width
from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.linear import LinearSystem
from dinf.lsq import assemble, layout


class NodeJets:
    """``E`` for ``field`` at points ``x`` ``[N, d]`` (float64), over the entries ``used``
    (a ``[C, A]`` mask, ``A`` the jet width of ``order``)."""

    def __init__(self, field: torch.nn.Module, x: Tensor, order: int, used: Tensor):
        self.layout = layout(field)
        self.x, self.out_dim, self.dim = x, field.out_dim, field.in_dim
        self.width = jet_width(order, self.dim)
        self.used: List[Tuple[int, int]] = [tuple(ca) for ca in torch.nonzero(used).tolist()]
        if not self.used:
            raise ConfigError("pde", "the loss reads no entry of the field's jet")
        n, u = x.shape[0], len(self.used)
        one_hot = torch.zeros(n, u, self.out_dim, self.width, dtype=torch.float64)
        for k, (c, a) in enumerate(self.used):
            one_hot[:, k, c, a] = 1.0
        rows = LinearSystem(x, one_hot, torch.zeros(n, u, dtype=torch.float64))
        with torch.no_grad():
            self.entries = assemble(field, rows).matrix  # [N·U, columns]: J = E z

    def combine(self, weights: Tensor) -> sp.csr_matrix:
        """``blockdiag(weights) · E`` ``[N·R, columns]``: ``R`` rows per point, each a combination
        of that point's read entries (``weights`` ``[N, R, U]``, float64)."""
        n, r, u = weights.shape
        cols = (torch.arange(n)[:, None, None] * u + torch.arange(u)[None, None, :]).expand(n, r, u)
        indptr = np.arange(0, n * r * u + 1, u, dtype=np.int64)
        block = sp.csr_matrix((weights.reshape(-1).numpy(), cols.reshape(-1).numpy(), indptr), shape=(n * r, n * u))
        return (block @ self.entries).tocsr()

    def jet_at(self, z: np.ndarray, bias: Optional[np.ndarray] = None) -> Jet:
        """The field's jet at the points for node values ``z`` (float64; unread entries zero)."""
        return self.jet_of(torch.as_tensor(self.entries @ z).reshape(self.x.shape[0], len(self.used)), bias)

    def jet_of(self, values: Tensor, bias: Optional[np.ndarray] = None) -> Jet:
        """A jet from the read entries' values ``[N, U]`` (differentiable in them)."""
        n, c, d = values.shape[0], self.out_dim, self.dim
        columns = [torch.zeros(n, dtype=values.dtype)] * (c * self.width)
        for k, (ch, a) in enumerate(self.used):
            columns[ch * self.width + a] = values[:, k]
        full = torch.stack(columns, 1).reshape(n, c, self.width)
        if bias is not None:
            full = full + torch.nn.functional.pad(torch.as_tensor(bias, dtype=values.dtype)[None, :, None],
                                                  (0, self.width - 1))
        grad = full[:, :, 1:1 + d] if self.width > 1 else None
        hess = None
        if self.width > 1 + d:
            hess = full[:, :, 1 + d:].reshape(n, c, d, d)
            # An unread mixed entry takes its read twin's value (the Hessian is symmetric).
            twin = hess.transpose(-1, -2)
            hess = torch.where(hess != 0, hess, twin)
        return Jet(full[:, :, 0], grad, hess)


def random_jet(n: int, c: int, d: int, width: int, seed: int = 12345) -> Jet:
    """A jet of standard normal entries (a symmetric Hessian): where a problem's pattern is read."""
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(n, c, generator=g, dtype=torch.float64)
    grad = torch.randn(n, c, d, generator=g, dtype=torch.float64) if width > 1 else None
    hess = None
    if width > 1 + d:
        h = torch.randn(n, c, d, d, generator=g, dtype=torch.float64)
        hess = h + h.transpose(-1, -2)
    return Jet(value, grad, hess)
