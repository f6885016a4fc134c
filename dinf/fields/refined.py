"""Local refinement of a ∂∞-Grid (``grid.adapt: h``): finer levels over marked cells only.

``RefinedField`` holds a ∂∞-Grid (on [-1, 1]^d, the linear decoder) and, beside its levels,
*finer levels*: finer level p has ``2^(p+1)`` times the grid's finest cells per axis, and only the
nodes its *refined cells* read (each cell's (2ρ)^d neighbours) exist: they are its features, one
per output channel, added to the grid's output. Everything is stored by the sorted flat indices
of those cells and nodes, so memory, unknowns and points grow with the refined cells, never with
the full lattice of a finer level (a level 10 times finer than 32 cells holds 32 768² cells).

The cells form a quadtree (octree, …) over the grid's finest level ("leaf level" 0; finer level
p is leaf level p + 1):

* a **leaf** is a cell of leaf level ℓ (every cell of level 0, the refined ones above) whose
  children at leaf level ℓ + 1 are not refined (``leaves``);
* ``refine`` splits marked leaves: their children become refined cells one level finer (a new
  finer level where none was), with zero features on the nodes that appear.

New nodes start at zero, so the refined field equals the field before, exactly, until a solver
writes them. To the solvers a finer level is one more level of the basis (``basis``, ``levels``,
``level_sizes``): the columns of its active nodes, −1 (weight 0) for the inactive neighbours of a
point near the edge of its cells.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from dinf.fields.base import WrappedField
from dinf.jet import Jet

RIM_SHARE = 4  # the cells around a finer level's own get a quarter of its points a cell (refined_lattices)


class RefinedField(WrappedField):
    """``inner`` (a ∂∞-Grid) plus finer levels over refined cells (module docstring)."""

    def __init__(self, inner: nn.Module):
        super().__init__(inner)
        self.patches = nn.ParameterList()  # per finer level: features [active nodes, out_dim]
        self.cell_ids: List[np.ndarray] = []  # per finer level: its refined cells, sorted flat indices
        self.node_ids: List[np.ndarray] = []  # per finer level: its active nodes, sorted flat indices of the stored layout
        self._reached: Dict[int, Optional[Tensor]] = {}  # per finer level: read_cells, kept until its cells change

    # --- the structure ---------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        """The grid's levels and the finer ones: what the solvers iterate over."""
        return self.inner.levels + len(self.patches)

    @property
    def refined(self) -> int:
        """Finer levels (0: the grid as built)."""
        return len(self.patches)

    def leaf_cells(self, level: int) -> Tuple[int, ...]:
        """Cells per axis of leaf level ``level`` (0: the grid's finest)."""
        return tuple(int(n) << level for n in self.inner.cells_per_axis[0])

    def level_sizes(self) -> List[int]:
        """Unknowns per level of one channel: the grid's stored nodes, then each finer level's active ones."""
        return [int(g.shape[:-1].numel()) for g in self.inner.grids] + [len(ids) for ids in self.node_ids]

    def leaves(self) -> List[np.ndarray]:
        """Per leaf level, the sorted flat indices of its leaves."""
        base = np.arange(int(np.prod(self.leaf_cells(0))))
        refined = [base] + list(self.cell_ids)
        out = []
        for ell, ids in enumerate(refined):
            if ell + 1 < len(refined):
                ids = np.setdiff1d(ids, _parents(refined[ell + 1], self.leaf_cells(ell + 1)), assume_unique=True)
            out.append(ids)
        return out

    def leaf_lattices(self) -> List[Tuple[Tuple[int, ...], np.ndarray]]:
        """Per leaf level, its cells per axis and its leaves: what ``leaf_indicator`` takes."""
        return [(self.leaf_cells(ell), ids) for ell, ids in enumerate(self.leaves())]

    def refine(self, marked: Dict[int, np.ndarray]) -> int:
        """Split the marked leaves (``{leaf level: flat indices}``): their children become refined
        cells one level finer. Returns the cells split; the field is unchanged."""
        split = 0
        for ell in sorted(marked):
            ids = np.unique(np.asarray(marked[ell], dtype=np.int64))
            if not len(ids):
                continue
            split += len(ids)
            children = _children(ids, self.leaf_cells(ell))
            if ell == len(self.patches):
                self._add_level(children)
            else:
                self._set_cells(ell, np.union1d(self.cell_ids[ell], children))
        return split

    def _add_level(self, cells: np.ndarray) -> None:
        ref = self.inner.grids[0]
        self.cell_ids.append(np.zeros(0, dtype=np.int64))
        self.node_ids.append(np.zeros(0, dtype=np.int64))
        self.patches.append(nn.Parameter(ref.new_zeros(0, self.out_dim)))
        self._set_cells(len(self.patches) - 1, cells)

    def _set_cells(self, p: int, cells: np.ndarray) -> None:
        """Finer level ``p``'s refined cells become ``cells``; its features carry over to the
        nodes it had, and start at zero on the new ones."""
        nodes = self._nodes_of(p, cells)
        old, values = self.node_ids[p], self.patches[p].detach()
        new = values.new_zeros(len(nodes), self.out_dim)
        if len(old):
            new[torch.from_numpy(np.searchsorted(nodes, old))] = values
        self.cell_ids[p], self.node_ids[p] = cells, nodes
        self._reached[p] = None
        self.patches[p] = nn.Parameter(new)

    def _nodes_of(self, p: int, cells: np.ndarray) -> np.ndarray:
        """The stored-layout indices of the nodes the cells of finer level ``p`` read: cell i reads
        i − ρ + 1 … i + ρ per axis (stored at + ghost; modulo n on a periodic axis)."""
        grid = self.inner
        shape = self.leaf_cells(p + 1)
        sides = grid.level_sides(shape)
        index = np.stack(np.unravel_index(cells, shape), 1)  # [B, d]
        offsets = np.array(list(itertools.product(range(-grid.rho + 1, grid.rho + 1), repeat=len(shape))))
        nodes = index[:, None, :] + offsets[None]  # [B, K^d, d]
        for a in range(len(shape)):
            nodes[..., a] = nodes[..., a] % shape[a] if a in grid.periodic else nodes[..., a] + grid.ghost
        return np.unique(np.ravel_multi_index(tuple(nodes.reshape(-1, len(shape)).T), sides))

    # --- the basis and the jets ------------------------------------------------------------------
    def basis(self, x: Tensor, level: int, order: int) -> Tuple[Tensor, Tensor]:
        """The grid's levels' basis, then each finer level's over its active nodes (an inactive
        neighbour: column −1, weight 0)."""
        rows, cols, w = self.level_rows(x, level, order)
        if rows is None:
            return cols, w
        full_cols = torch.full((x.shape[0], cols.shape[1]), -1, dtype=cols.dtype, device=cols.device)
        full_w = w.new_zeros(x.shape[0], *w.shape[1:])
        full_cols[rows], full_w[rows] = cols, w
        return full_cols, full_w

    def level_rows(self, x: Tensor, level: int, order: int) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """``basis`` for the points a level reaches only: ``(rows, cols, weights)``, rows None
        for all of them (the grid's own levels). A finer level reaches the points in its
        ``read_cells``: the others would read zero weights only, and skipping them keeps a
        level's cost with its cells, not with every point."""
        base = self.inner.levels
        if level < base:
            return (None, *self.inner.basis(x, level, order))
        p = level - base
        shape = self.leaf_cells(p + 1)
        reach = self._reach(p)
        t = ((x.detach().double() + 1.0) * 0.5 * x.new_tensor(shape, dtype=torch.float64)).floor().long()
        t = torch.minimum(t.clamp_min(0), torch.tensor(shape) - 1)
        flat = torch.zeros(x.shape[0], dtype=torch.long)
        for a, n in enumerate(shape):
            flat = flat * n + t[:, a].cpu()
        slot = torch.searchsorted(reach, flat).clamp_max(max(len(reach) - 1, 0))
        rows = torch.nonzero(reach[slot] == flat).reshape(-1) if len(reach) else torch.zeros(0, dtype=torch.long)
        rows = rows.to(x.device)
        cols, w = self.inner.basis(x[rows], 0, order, cells=shape)
        ids = torch.from_numpy(self.node_ids[p]).to(cols.device)
        at = torch.searchsorted(ids, cols).clamp_max(max(len(ids) - 1, 0))
        found = ids[at] == cols if len(ids) else torch.zeros_like(cols, dtype=torch.bool)
        return rows, torch.where(found, at, torch.full_like(at, -1)), w * found.to(w.dtype)[:, None, :]

    def _reach(self, p: int) -> Tensor:
        if self._reached.get(p) is None:
            self._reached[p] = torch.from_numpy(self.read_cells(p))
        return self._reached[p]

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        j = self.inner.jet(x, order)
        if not len(self.patches):
            return j
        full = j.entries()
        for p, z in enumerate(self.patches):
            rows, cols, w = self.level_rows(x, self.inner.levels + p, order)  # [R], [R, M], [R, A, M]
            values = z[cols.clamp_min(0)]  # [R, M, C] (weight 0 where inactive)
            part = torch.bmm(w.to(z.dtype), values).transpose(1, 2).to(full.dtype)
            full = full.index_add(0, rows, part)
        return Jet.from_entries(full, self.in_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.jet(x, 0).value

    # --- points and checkpoints ------------------------------------------------------------------
    def refined_lattices(self, n: int) -> List[Tuple[Tuple[int, ...], np.ndarray, int, float]]:
        """Where a sample of ``n`` points (spread over the grid's finest cells) needs more, per finer
        level: ``(its cells per axis, the cells whose points read its nodes, points a cell: n per
        finest cell in its refined cells, a ``RIM_SHARE``-th of that around them, 2^(p+1))``, what
        ``EquationProblem.sample(refined=…)`` takes. (The rim at the full 16 a cell took the
        L-shape 54 s to 4.9e-6; at 4, 40 s to 4.1e-6; at 1, 40 s to 4.1e-6.)"""
        per_cell = max(1, round(n / float(np.prod(self.leaf_cells(0)))))
        out = []
        for p in range(len(self.patches)):
            cells = self.read_cells(p)
            own = np.isin(cells, self.cell_ids[p], assume_unique=True)
            counts = np.where(own, per_cell, max(1, per_cell // RIM_SHARE))
            out.append((self.leaf_cells(p + 1), cells, counts, float(2 ** (p + 1))))
        return out

    def read_cells(self, p: int) -> np.ndarray:
        """The cells of finer level ``p`` whose points read one of its active nodes: its refined
        cells and 2ρ − 1 more on every side. A node at the rim of the active set is read by points
        up to that far out, and without points of the level's density there it is barely
        determined (the L-shape, ρ = 5: an L2 error of 1.6e-2 after a split where 3.6e-3 came
        before)."""
        grid, shape = self.inner, self.leaf_cells(p + 1)
        reach = 2 * grid.rho - 1
        index = np.stack(np.unravel_index(self.cell_ids[p], shape), 1)
        offsets = np.array(list(itertools.product(range(-reach, reach + 1), repeat=len(shape))))
        out = []
        for start in range(0, len(index), 4096):  # in blocks: (4ρ − 1)^d offsets a cell
            cells = index[start:start + 4096, None, :] + offsets[None]
            cells = cells.reshape(-1, len(shape))
            keep = np.ones(len(cells), dtype=bool)
            for a, n in enumerate(shape):
                if a in grid.periodic:
                    cells[:, a] %= n
                else:
                    keep &= (cells[:, a] >= 0) & (cells[:, a] < n)
            out.append(np.unique(np.ravel_multi_index(tuple(cells[keep].T), shape)))
        return np.unique(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    def state(self) -> List[List[int]]:
        """The refined cells per finer level as plain lists (a checkpoint loads ``weights_only``)."""
        return [ids.tolist() for ids in self.cell_ids]

    def load(self, cells: Sequence[Sequence[int]]) -> None:
        """Rebuild the finer levels ``state`` gave (zero features: the checkpoint's weights follow)."""
        self.patches = nn.ParameterList()
        self.cell_ids, self.node_ids, self._reached = [], [], {}
        for ids in cells:
            self._add_level(np.asarray(ids, dtype=np.int64))


def refined_field(field: nn.Module) -> Optional[RefinedField]:
    """The ``RefinedField`` inside coordinate wrappers (``MappedField``), or None."""
    while field is not None:
        if isinstance(field, RefinedField):
            return field
        field = field.__dict__.get("_modules", {}).get("inner")
    return None


def _children(ids: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The flat indices, on the lattice twice as fine, of the 2^d children of cells ``ids``."""
    index = np.stack(np.unravel_index(ids, tuple(shape)), 1) * 2
    corners = np.array(list(itertools.product((0, 1), repeat=len(shape))))
    kids = (index[:, None, :] + corners[None]).reshape(-1, len(shape))
    return np.unique(np.ravel_multi_index(tuple(kids.T), tuple(2 * int(n) for n in shape)))


def _parents(ids: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The flat indices, on the lattice twice as coarse, of the parents of cells ``ids`` of ``shape``."""
    index = np.stack(np.unravel_index(ids, tuple(shape)), 1) // 2
    return np.unique(np.ravel_multi_index(tuple(index.T), tuple(int(n) // 2 for n in shape)))


def dorfler(etas: Sequence[Tuple[np.ndarray, np.ndarray]], theta: float, levels: Optional[int] = None
            ) -> Dict[int, np.ndarray]:
    """Dörfler marking: the fewest leaves whose η² sum to at least ``theta`` of the total.
    ``etas``: per leaf level, the leaves' flat indices and η_K; ``levels``: only leaf levels below
    it may be split (their leaves alone are counted). Returns ``{leaf level: marked indices}``."""
    use = [ell for ell in range(len(etas)) if levels is None or ell < levels]
    if not use:
        return {}
    flat = np.concatenate([etas[ell][1] ** 2 for ell in use])
    if not flat.size or flat.sum() <= 0:
        return {}
    order = np.argsort(-flat, kind="stable")
    count = int(np.searchsorted(np.cumsum(flat[order]), theta * flat.sum() * (1 - 1e-12)) + 1)
    chosen = np.zeros(flat.size, dtype=bool)
    chosen[order[:count]] = True
    out, start = {}, 0
    for ell in use:
        ids, eta = etas[ell]
        pick = chosen[start:start + len(ids)] & (eta > 0)
        if pick.any():
            out[ell] = ids[pick]
        start += len(ids)
    return out


def describe(field: Any) -> Dict[str, Any]:
    """Counts for a log line: finer levels, refined cells per level, unknowns of one channel."""
    r = refined_field(field)
    if r is None:
        return {"levels": 0, "cells": [], "unknowns": 0}
    return {"levels": r.refined, "cells": [len(c) for c in r.cell_ids], "unknowns": sum(r.level_sizes())}
