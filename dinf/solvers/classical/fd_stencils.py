"""Finite-difference stencils on uniform grids (Fornberg's weights) and the sparse derivative
matrices of a tensor grid that ``dinf.solvers.classical.mol`` builds its spatial operator from.

On an axis of ``n`` cells (nodes ``0…n``), the row of node ``i`` uses the centred stencil of
order ``p`` (``p + 1`` nodes) where it fits, and otherwise the nearest window of ``m + p`` nodes
inside the axis (``m`` the derivative's order), which keeps order ``p`` at the nodes next to the
boundary (fourth order: a 6-node one-sided second derivative at node 1).
"""
from __future__ import annotations

from functools import reduce
from typing import List, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

ORDERS = (2, 4)


def weights(z: float, x: Sequence[float], m: int) -> np.ndarray:
    """``c`` with ``f⁽ᵐ⁾(z) ≈ Σ_k c_k f(x_k)``, exact for polynomials of degree ``< len(x)``
    (Fornberg, Math. Comp. 51, 1988)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    c = np.zeros((n, m + 1))
    c[0, 0] = 1.0
    c1, c4 = 1.0, x[0] - z
    for i in range(1, n):
        mn = min(i, m)
        c2, c5, c4 = 1.0, c4, x[i] - z
        for j in range(i):
            c3 = x[i] - x[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i, k] = c1 * (k * c[i - 1, k - 1] - c5 * c[i - 1, k]) / c2
                c[i, 0] = -c1 * c5 * c[i - 1, 0] / c2
            for k in range(mn, 0, -1):
                c[j, k] = (c4 * c[j, k] - k * c[j, k - 1]) / c3
            c[j, 0] = c4 * c[j, 0] / c3
        c1 = c2
    return c[:, m]


def min_cells(order: int) -> int:
    """The fewest cells an axis needs for the one-sided second-derivative window."""
    return order + 1


def axis_matrix(n: int, h: float, m: int, order: int) -> sp.csr_matrix:
    """``[n + 1, n + 1]``: the ``m``-th derivative (0, 1 or 2) at every node of an axis of ``n``
    cells of width ``h``, to ``order`` (2 or 4); the boundary nodes' rows are one-sided too."""
    if m == 0:
        return sp.identity(n + 1, format="csr")
    half = order // 2
    width = m + order  # a one-sided window's node count
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    vals: List[np.ndarray] = []
    centred = np.arange(half, n - half + 1)  # every centred row shares one stencil
    if centred.size:
        offsets = np.arange(-half, half + 1)
        rows.append(np.repeat(centred, offsets.size))
        cols.append((centred[:, None] + offsets).ravel())
        vals.append(np.tile(weights(0.0, offsets, m), centred.size))
    for i in [i for i in range(n + 1) if not half <= i <= n - half]:
        start = min(max(i - half, 0), n + 1 - width)
        nodes = np.arange(start, start + width)
        rows.append(np.full(width, i))
        cols.append(nodes)
        vals.append(weights(0.0, nodes - i, m))
    values = np.concatenate(vals) / h**m
    return sp.csr_matrix((values, (np.concatenate(rows), np.concatenate(cols))), shape=(n + 1, n + 1))


def grid_matrix(cells: Sequence[int], steps: Sequence[float], axes: Tuple[int, ...], order: int) -> sp.csr_matrix:
    """The derivative along ``axes`` (``()`` the value, ``(a,)``, ``(a, a)`` or ``(a, b)``) on the
    tensor grid of ``cells`` per axis, nodes in C order (the last axis fastest)."""
    counts = [axes.count(a) for a in range(len(cells))]
    factors = [axis_matrix(n, h, k, order) for n, h, k in zip(cells, steps, counts)]
    return reduce(lambda a, b: sp.kron(a, b, format="csr"), factors).tocsr()
