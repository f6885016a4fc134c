"""A grid's jets at fixed points as a sparse matrix over its node values: ``J = E z``.

With the linear decoder a grid field is ``u_c(x) = Σ_nodes w_node(x) z_c,node``, so every jet entry
at every point is a row of the basis. ``E`` holds, for each point, the rows of the entries a
problem reads (channel, entry): value, gradient, Hessian, higher derivatives in ``Jet.entries`` order. Gauss–Newton
and Newton build it once for their points and move ``z``; the field sees ``z`` through
``dinf.solvers.least_squares.write_back``.
"""
from __future__ import annotations

from functools import cached_property
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dinf.equations.residual import jet_width
from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.solvers.least_squares import layout


class NodeJets:
    """``E`` for ``field`` at points ``x`` ``[N, d]`` (float64), over the entries ``used``
    (a ``[C, A]`` mask, ``A`` the jet width of ``order``). ``merge_twins``: read a mixed
    second derivative once (``u_xy``, not also ``u_yx``: the same row of ``E``); its twin takes
    its value, so derivatives in the merged entry are the sums over the two.

    Besides ``E`` it keeps the basis itself: ``cols`` ``[N, M]`` (the point's nodes, levels
    concatenated, the same for every channel) and ``weights`` ``[N, A, M]`` (each jet entry's
    weights on them): the row of entry ``(c, a)`` is ``weights[:, a]`` on columns
    ``cols + c · nodes``."""

    def __init__(self, field: torch.nn.Module, x: Tensor, order: int, used: Tensor, merge_twins: bool = False):
        self.layout = layout(field)
        self._read(field, x, order, used, merge_twins)
        self.cols, self.weights = basis_columns(field, x, order)

    def _read(self, field: torch.nn.Module, x: Tensor, order: int, used: Tensor, merge_twins: bool) -> None:
        """The read entries ``used`` (list) and where each jet entry takes its value (``source``)."""
        self.x, self.out_dim, self.dim = x, field.out_dim, field.in_dim
        self.width = jet_width(order, self.dim)
        used = used.clone()
        if merge_twins:
            for a, b in _mixed_pairs(self.dim, self.width):
                both = used[:, a] & used[:, b]
                used[:, b] &= ~both
        self.used: List[Tuple[int, int]] = [tuple(ca) for ca in torch.nonzero(used).tolist()]
        if not self.used:
            raise ConfigError("pde", "the loss reads no entry of the field's jet")
        # Where each of the C·A jet entries takes its value: a read entry (its index in used),
        # else its read twin, else none (-1, zero).
        where = {ca: k for k, ca in enumerate(self.used)}
        for a, b in _mixed_pairs(self.dim, self.width):
            for c in range(self.out_dim):
                if (c, a) in where and (c, b) not in where:
                    where[(c, b)] = where[(c, a)]
                elif (c, b) in where and (c, a) not in where:
                    where[(c, a)] = where[(c, b)]
        self.source = torch.tensor([where.get((c, a), -1) for c in range(self.out_dim) for a in range(self.width)])

    @cached_property
    def entries(self) -> sp.csr_matrix:
        """``E`` ``[N·U, columns]``: ``J = E z`` (built when first asked for)."""
        n, u, m = self.x.shape[0], len(self.used), self.cols.shape[1]
        ch = torch.tensor([c for c, _ in self.used])
        ent = torch.tensor([a for _, a in self.used])
        vals = self.weights[:, ent, :]  # [N, U, M]
        cols = self.cols[:, None, :] + self.layout.nodes * ch[None, :, None]
        indptr = np.arange(0, n * u * m + 1, m, dtype=np.int64)
        E = sp.csr_matrix((vals.reshape(-1).numpy(), cols.reshape(-1).numpy(), indptr),
                          shape=(n * u, self.layout.nodes * self.out_dim))
        ordered = np.sort(self.cols.numpy(), axis=1)
        if (ordered[:, 1:] == ordered[:, :-1]).any():  # clamped edges repeat a node within a row
            E.sum_duplicates()
        return E

    def values(self, z: np.ndarray) -> Tensor:
        """The read entries' values ``[N, U]`` at node values ``z``: ``E z`` from the basis itself."""
        zc = z.reshape(self.out_dim, -1)[:, self.cols.numpy()].transpose(1, 2, 0)  # [N, M, C]
        full = np.matmul(self.weights.numpy(), zc)  # [N, A, C]
        return torch.from_numpy(full[:, self._entry, self._channel])

    def transpose(self, g: np.ndarray) -> np.ndarray:
        """``Eᵀ g`` for ``g`` ``[N, U]`` (or ``[N·U]``), from the basis itself."""
        n = self.cols.shape[0]
        full = np.zeros((n, self.width, self.out_dim))
        full[:, self._entry, self._channel] = np.asarray(g).reshape(n, -1)
        per_node = np.matmul(self.weights.numpy().transpose(0, 2, 1), full)  # [N, M, C]
        nn = self.layout.nodes
        index = (self.cols.numpy()[:, :, None] + nn * np.arange(self.out_dim)).reshape(-1)
        return np.bincount(index, per_node.reshape(-1), minlength=nn * self.out_dim)

    @cached_property
    def _channel(self) -> np.ndarray:
        return np.array([c for c, _ in self.used])

    @cached_property
    def _entry(self) -> np.ndarray:
        return np.array([a for _, a in self.used])

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
        padded = torch.cat([values, torch.zeros(n, 1, dtype=values.dtype)], 1)  # index -1: zero
        full = padded[:, self.source].reshape(n, c, self.width)
        if bias is not None:
            full = full + torch.nn.functional.pad(torch.as_tensor(bias, dtype=values.dtype)[None, :, None],
                                                  (0, self.width - 1))
        return Jet.from_entries(full, d)


def basis_columns(field: torch.nn.Module, x: Tensor, order: int) -> Tuple[Tensor, Tensor]:
    """The field's basis at ``x``, levels concatenated: ``cols`` ``[N, M]`` (node columns of one
    channel) and ``weights`` ``[N, A, M]`` (float64), as ``dinf.solvers.least_squares.assemble`` lays them out."""
    offsets = layout(field).offsets
    cols, weights = [], []
    with torch.no_grad():
        for s in range(field.levels):
            c, w = field.basis(x, s, order)  # a refined level: column −1, weight 0 where inactive
            cols.append(torch.where(c >= 0, c + offsets[s], c).cpu())
            weights.append(w.to(torch.float64).cpu())
    cols = torch.cat(cols, 1)
    # An inactive node of a refined level (weight 0) takes a column its row reads anyway, so
    # that E's pattern, and AᵀA's, holds no pair of nodes that no point couples.
    cols = torch.where(cols >= 0, cols, cols.amax(1, keepdim=True))
    return cols, torch.cat(weights, 2)


def _mixed_pairs(d: int, width: int) -> List[Tuple[int, int]]:
    """The jet-entry indices ``(∂_a∂_b, ∂_b∂_a)``, ``a < b``, of a jet this wide."""
    if width <= 1 + d:
        return []
    return [(1 + d + a * d + b, 1 + d + b * d + a) for a in range(d) for b in range(a + 1, d)]


def random_jet(n: int, c: int, d: int, width: int, seed: int = 12345) -> Jet:
    """A jet of standard normal entries (a symmetric Hessian): where a problem's pattern is read."""
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(n, c, generator=g, dtype=torch.float64)
    grad = torch.randn(n, c, d, generator=g, dtype=torch.float64) if width > 1 else None
    hess = higher = None
    if width > 1 + d:
        h = torch.randn(n, c, d, d, generator=g, dtype=torch.float64)
        hess = h + h.transpose(-1, -2)
    if width > 1 + d + d * d:
        higher = torch.randn(n, c, width - 1 - d - d * d, generator=g, dtype=torch.float64)
    return Jet(value, grad, hess, higher)


class GroupedHessian:
    """``Eᵀ blockdiag(H_n) E`` for per-point Hessians ``H_n`` ``[U, U]`` in the read entries, from
    dense blocks of the points that share their nodes: its upper triangle as CSR.

    All points of one cell read the same nodes (``cols``), and every channel reads them alike,
    so a cell adds ``Σ_n W_nᵀ H_n^{cc'} W_n`` to channel pair ``(c, c')``, ``W_n`` ``[U_c, M]``
    the basis rows of the point's entries of channel ``c``: batched dense products over the
    cells, summed into a pattern built once. Forming ``A = blockdiag(L_n) E`` and ``AᵀA`` instead
    (``H_n = L_nᵀ L_n``) takes ``2C²/(C + 1)`` times the products (4.5 for three channels), and a
    sparse product besides."""

    CHUNK = 16  # cells per batched product: their blocks stay in cache (80 ms against 105 ms for all)

    def __init__(self, nodes: NodeJets):
        n_pts, m = nodes.cols.shape
        c_count, nn = nodes.out_dim, nodes.layout.nodes
        # Points grouped by their node set; a group larger than the typical one is cut into
        # chunks of that size (refined cells), and the last chunk of each padded (weight 0).
        group, lead = _same_rows(nodes.cols.numpy())
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group)
        self.p = int(np.median(counts))
        chunks = -(-counts // self.p)
        first = np.concatenate([[0], np.cumsum(chunks)[:-1]])  # each group's first chunk
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(n_pts) - starts[group[order]]  # place within its group
        chunk = first[group[order]] + rank // self.p
        self.g = int(chunks.sum())
        self.index = np.full((self.g, self.p), n_pts, dtype=np.int64)  # n_pts: a zero row
        self.index[chunk, rank % self.p] = order
        cols = np.repeat(nodes.cols.numpy()[lead], chunks, axis=0)  # each chunk's nodes [G, M]
        # Each channel's read entries are consecutive (``used`` is channel-major); channels that
        # read the same entries share their rows.
        entries = [[a for c, a in nodes.used if c == ch] for ch in range(c_count)]
        bounds = np.cumsum([0] + [len(e) for e in entries])
        self.spans = [slice(bounds[ch], bounds[ch + 1]) for ch in range(c_count)]
        self.pairs = [(c1, c2) for c2 in range(c_count) for c1 in range(c2 + 1) if entries[c1] and entries[c2]]
        w = np.concatenate([nodes.weights.numpy(), np.zeros((1,) + tuple(nodes.weights.shape[1:]))])
        self.rows, self.rows_t, made = [], [], {}
        for e in entries:
            if tuple(e) not in made:
                r = w[self.index[:, :, None], np.array(e, dtype=np.int64)[None, None, :]]  # [G, P, U_c, M]
                made[tuple(e)] = (r, np.ascontiguousarray(r.reshape(self.g, -1, m).transpose(0, 2, 1)))
            self.rows.append(made[tuple(e)][0])
            self.rows_t.append(made[tuple(e)][1])
        # The nodes' pattern: the pairs of nodes some cell couples (and every diagonal: the
        # damping reaches nodes no point reads), as sorted keys i·nn + j; pos maps each block
        # entry [G, M, M] to its pattern entry.
        incidence = sp.csr_matrix((np.ones(cols.size), cols.reshape(-1), np.arange(0, cols.size + 1, m)),
                                  shape=(self.g, nn))
        pattern = (incidence.T @ incidence + sp.identity(nn, format="csr")).tocsr()
        pattern.sort_indices()
        ptr, pj = pattern.indptr, pattern.indices.astype(np.int64)
        pi = np.repeat(np.arange(nn), np.diff(ptr))
        self.pos = np.searchsorted(pi * nn + pj, (cols[:, :, None] * nn + cols[:, None, :]).reshape(-1))
        self.npat = pj.size
        # The upper triangle over all channels (unknowns c·nn + i): row (c1, i) holds (c1, j) for
        # j ≥ i, then (c2, j) for each c2 > c1 and all j of pattern row i.
        length = np.diff(ptr)
        diag = np.searchsorted(pi * nn + pj, np.arange(nn) * (nn + 1))
        upper_len = ptr[1:] - diag  # entries j ≥ i
        row_len = np.zeros((c_count, nn), dtype=np.int64)
        for c1, c2 in self.pairs:
            row_len[c1] += upper_len if c1 == c2 else length
        self.indptr = np.concatenate([[0], np.cumsum(row_len.reshape(-1))]).astype(np.int64)
        self.gather = np.empty(self.indptr[-1], dtype=np.int64)
        self.indices = np.empty(self.indptr[-1], dtype=np.int32)
        offset = np.zeros((c_count, nn), dtype=np.int64)  # filled so far in each row
        p = np.arange(self.npat)
        for c1, c2 in sorted(self.pairs):  # each row: its own channel first, then the later ones
            keep = pj >= pi if c1 == c2 else np.ones(self.npat, bool)
            first_p = diag if c1 == c2 else ptr[:-1]
            rows_i = pi[keep]
            dest = self.indptr[c1 * nn + rows_i] + offset[c1, rows_i] + (p[keep] - first_p[rows_i])
            self.gather[dest] = self.pairs.index((c1, c2)) * self.npat + p[keep]
            self.indices[dest] = c2 * nn + pj[keep]
            offset[c1] += upper_len if c1 == c2 else length
        self.diagonal = self.indptr[:-1]  # each row's first entry is its diagonal (c2 = c1, j = i)
        self.shape = (c_count * nn, c_count * nn)

    def upper(self, H: Tensor) -> sp.csr_matrix:
        """The upper triangle (diagonal included) of ``Σ_n E_nᵀ H_n E_n`` for symmetric ``H``
        ``[N, U, U]`` (float64)."""
        u, m = H.shape[1], self.rows[0].shape[-1]
        Hn = np.concatenate([H.numpy(), np.zeros((1, u, u))])[self.index]  # [G, P, U, U]
        sums = np.empty((len(self.pairs), self.npat))
        blocks = np.empty((self.g, m, m))
        for k, (c1, c2) in enumerate(self.pairs):
            s1, s2 = self.spans[c1], self.spans[c2]
            for a in range(0, self.g, self.CHUNK):
                b = min(a + self.CHUNK, self.g)
                hw = np.matmul(Hn[a:b, :, s1, s2], self.rows[c2][a:b])  # [g, P, U_c1, M]: H_n^{c1 c2} W_n
                blocks[a:b] = np.matmul(self.rows_t[c1][a:b], hw.reshape(b - a, -1, m))
            sums[k] = np.bincount(self.pos, blocks.reshape(-1), minlength=self.npat)
        return sp.csr_matrix((sums.reshape(-1)[self.gather], self.indices, self.indptr), shape=self.shape)


def symmetric_entries(order: int, d: int) -> List[int]:
    """The places in a jet's layout of its distinct entries: the value, the gradient, the
    Hessian's upper triangle row by row (a mixed entry stands for its twin too)."""
    places = list(range(1 + (d if order >= 1 else 0)))
    if order >= 2:
        places += [1 + d + a * d + b for a in range(d) for b in range(a, d)]
    return places


def _same_rows(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Rows of ``a`` ``[N, M]`` (integers) grouped by equality: each row's group ``[N]`` and each
    group's first row. Rows are matched by two random 64-bit sums of their entries (cheaper than
    sorting rows of ``M`` columns), then checked entry by entry."""
    keys = np.random.default_rng(12345).integers(1, 2**62, size=(2, a.shape[1]), dtype=np.int64)
    sums = [(a * k).sum(1) for k in keys]  # wrapping sums
    _, lead, group = np.unique(np.stack(sums, 1), axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    if not np.array_equal(a, a[lead][group]):  # two different rows with equal sums: sort them all
        _, lead, group = np.unique(a, axis=0, return_index=True, return_inverse=True)
        group = group.reshape(-1)
    return group, lead
