"""``AᵀA`` for the grid's least-squares matrices, from the rows that share their columns.

Every row of a collocation point reads the same columns: the (2ρ)^d neighbours of the point's
cell on each level. All points of one cell, and all the equations at them, therefore share one
column set. ``AᵀA`` is the sum over these groups of one dense Gram block ``A_gᵀA_g`` each (one
BLAS product of a ``[rows, K]`` block), scattered into the pattern of the groups' column sets.
A row-by-row sparse product instead scatters ``K²`` products per row: on Heat2d-MS (48 × 3 × 4
cells, ρ = 5, K = 1 000 columns a row, 9 216 rows) scipy's product took 28–39 s, this 6–8 s; see
``experiments/bench_sparse.py`` for the measured ratio.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
import scipy.sparse as sp

from dinf.solvers.linalg.sparse_solve import from_upper

try:
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency
    AVAILABLE = False

# Below this many rows per group on average, scipy's threaded product is as fast: Burgers1d-C's
# Gauss–Newton rows (4 per cell, 36 columns) took 0.61 s grouped against 0.33 s threaded.
MIN_ROWS_PER_GROUP = 8.0


def groups(A: sp.csr_matrix):
    """Rows of ``A`` (sorted indices) ordered so that rows with the same column set are adjacent:
    ``(order, bounds)``; group ``g`` is ``order[bounds[g]:bounds[g + 1]]``. Empty rows are left out.
    Rows are matched by two random 64-bit sums of their columns and then checked entry by entry
    (``None`` if a check fails, which two colliding sums would need)."""
    lengths = np.diff(A.indptr)
    rows = np.flatnonzero(lengths)
    if rows.size == 0:
        return None
    keys = np.random.default_rng(12345).integers(1, 2**62, size=(2, A.shape[1]), dtype=np.int64)
    starts = A.indptr[rows]
    signature = [lengths[rows]] + [np.add.reduceat(k[A.indices], starts) for k in keys]  # sums wrap
    perm = np.lexsort(signature[::-1])
    same = np.ones(rows.size - 1, bool)
    for part in signature:
        same &= part[perm][1:] == part[perm][:-1]
    order = rows[perm].astype(np.int64)
    bounds = np.concatenate([[0], np.flatnonzero(~same) + 1, [order.size]]).astype(np.int64)
    if not _same_columns(A.indptr, A.indices, order, bounds):
        return None
    return order, bounds


def normal_matrix_grouped(A: sp.csr_matrix) -> Optional[sp.csr_matrix]:
    """``AᵀA`` by dense Gram blocks of the row groups; ``None`` when the groups are too small to
    pay (fewer than ``MIN_ROWS_PER_GROUP`` rows each on average) or numba is missing."""
    if not AVAILABLE or A.nnz == 0:
        return None
    A = A.tocsr()
    if not A.has_sorted_indices:
        A = A.sorted_indices()
    found = groups(A)
    if found is None:
        return None
    order, bounds = found
    if order.size < MIN_ROWS_PER_GROUP * (bounds.size - 1):
        return None
    # The upper triangle's pattern: row r holds the columns ≥ r of the groups that read column r.
    lead = A[order[bounds[:-1]]]
    by_column = lead.T.tocsr()  # column r → the groups that read it
    indptr, indices = _pattern(by_column.indptr, by_column.indices, lead.indptr, lead.indices, A.shape[1])
    pattern = sp.csr_matrix((np.zeros(indices.size), indices, indptr), shape=(A.shape[1], A.shape[1]))
    data = np.zeros(pattern.nnz)
    _scatter_grams(A.indptr, A.indices, A.data.astype(np.float64), order, bounds, pattern.indptr,
                   pattern.indices, data)
    return from_upper(sp.csr_matrix((data, pattern.indices, pattern.indptr), shape=pattern.shape))


def warm_up() -> None:
    """Compile the kernels (about 9 s on a fresh machine, then cached on disk) on a tiny matrix,
    so that a solve's timing does not include it."""
    if AVAILABLE:
        rows = MIN_ROWS_PER_GROUP * 2
        normal_matrix_grouped(sp.csr_matrix(np.ones((int(rows), 3))))


if AVAILABLE:

    @njit(cache=True)
    def _same_columns(indptr, indices, order, bounds):  # pragma: no cover - compiled
        for g in range(bounds.size - 1):
            lead = order[bounds[g]]
            a0 = indptr[lead]
            k = indptr[lead + 1] - a0
            for i in range(bounds[g] + 1, bounds[g + 1]):
                r = indptr[order[i]]
                for j in range(k):
                    if indices[r + j] != indices[a0 + j]:
                        return False
        return True

    @njit(cache=True)
    def _row_union(r, g_indptr, g_indices, l_indptr, l_indices, mark, out, start):  # pragma: no cover
        """The columns ``≥ r`` of the groups that read column ``r`` (row ``r`` of the upper
        triangle), each once; written to ``out[start:]`` when ``out`` has room (the counting pass
        gives an empty one). Returns their count."""
        k = 0
        for q in range(g_indptr[r], g_indptr[r + 1]):
            g = g_indices[q]
            for p in range(l_indptr[g], l_indptr[g + 1]):
                col = l_indices[p]
                if col >= r and mark[col] != r:
                    mark[col] = r
                    if out.size:
                        out[start + k] = col
                    k += 1
        return k

    @njit(cache=True, parallel=True)
    def _pattern(g_indptr, g_indices, l_indptr, l_indices, n):  # pragma: no cover - compiled
        """CSR pattern (sorted) of the upper triangle of Σ_g 1_gᵀ 1_g, from each column's groups
        and each group's columns."""
        chunks = 64
        counts = np.zeros(n + 1, np.int64)
        none = np.empty(0, np.int32)
        for c in prange(chunks):
            mark = np.full(n, -1, np.int64)
            for r in range(c * n // chunks, (c + 1) * n // chunks):
                counts[r + 1] = _row_union(r, g_indptr, g_indices, l_indptr, l_indices, mark, none, 0)
        indptr = np.cumsum(counts)
        indices = np.empty(indptr[n], np.int32)
        for c in prange(chunks):
            mark = np.full(n, -1, np.int64)
            for r in range(c * n // chunks, (c + 1) * n // chunks):
                _row_union(r, g_indptr, g_indices, l_indptr, l_indices, mark, indices, indptr[r])
                indices[indptr[r]:indptr[r + 1]].sort()
        return indptr, indices

    @njit(cache=True)
    def _scatter_grams(indptr, indices, data, order, bounds, p_indptr, p_indices, p_data):  # pragma: no cover
        for g in range(bounds.size - 1):
            lead = order[bounds[g]]
            a0 = indptr[lead]
            k = indptr[lead + 1] - a0
            n = bounds[g + 1] - bounds[g]
            block = np.empty((k, n))
            for i in range(n):
                r = indptr[order[bounds[g] + i]]
                for j in range(k):
                    block[j, i] = data[r + j]
            gram = block @ block.T.copy()  # BLAS on contiguous operands
            cols = indices[a0:a0 + k]
            for a in range(k):
                ptr = p_indptr[cols[a]]
                for b in range(a, k):  # the upper triangle; the lower is its transpose
                    s = gram[a, b]
                    c = cols[b]
                    while p_indices[ptr] != c:
                        ptr += 1
                    p_data[ptr] += s


def normal_matrix(A: sp.csr_matrix, threads: int = 0, grouped: bool = True) -> sp.csr_matrix:
    """``AᵀA``: from dense Gram blocks of the rows that share their columns (``normal_matrix_grouped``) when
    ``grouped`` and the rows form such groups, else summed over row blocks in threads (scipy's
    product releases the GIL): 6.6 s against 10.3 s on 2 cores for a 197 k × 20 k ``A`` with 28 M
    nonzeros (NS2d-C, 64², 2 levels)."""
    if grouped:
        M = normal_matrix_grouped(A)
        if M is not None:
            return M
    threads = threads or min(os.cpu_count() or 1, 4)
    n = A.shape[0]
    if threads <= 1 or n < 10_000:
        return (A.T @ A).tocsr()
    bounds = np.linspace(0, n, threads + 1).astype(int)

    def block(k: int) -> sp.csr_matrix:
        part = A[bounds[k]:bounds[k + 1]]
        return (part.T.tocsr() @ part).tocsr()

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(block, range(threads)))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total.tocsr()
