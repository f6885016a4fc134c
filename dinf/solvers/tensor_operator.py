"""Matrix-free least squares when the points form a tensor grid (pixel centres) in 2D.

With the Gaussian kernel a level's weights factor per axis, w(x) = w₀(x₀)·w₁(x₁). On a tensor grid
of points the jet entry with per-axis derivative orders (k₀, k₁) of the level's node values Z is
then ``B₀⁽ᵏ⁰⁾ Z B₁⁽ᵏ¹⁾ᵀ``, with sparse 1D matrices B (points × nodes, 2ρ entries a row). ``A z`` and
``Aᵀ r`` cost a few sparse-dense products per level instead of a pass over a matrix with
(2ρ)²·levels entries per row: at 512² that matrix would hold 10⁸ entries, these hold 10⁴.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from dinf.fields.dinf_grid import _component_combos
from dinf.jet import order_of_width
from dinf.linear_system import LinearSystem, mix_matrix


@dataclass
class TensorGrid:
    """Points that are exactly the tensor product of per-axis coordinates, in any order."""

    axes: List[np.ndarray]  # sorted coordinates per axis
    index: np.ndarray  # [N]: flat position i₀·P₁ + i₁ of each point


def tensor_grid(x: torch.Tensor) -> Optional[TensorGrid]:
    """The tensor grid that ``x`` ``[N, 2]`` enumerates, or None if it is not one."""
    if x.ndim != 2 or x.shape[1] != 2:
        return None
    pts = x.detach().cpu().double().numpy()
    axes = [np.unique(pts[:, a]) for a in range(2)]
    if axes[0].size * axes[1].size != pts.shape[0]:
        return None
    idx = [np.searchsorted(axes[a], pts[:, a]) for a in range(2)]
    flat = idx[0] * axes[1].size + idx[1]
    if np.unique(flat).size != pts.shape[0]:
        return None
    return TensorGrid(axes, flat)


def applies(field: torch.nn.Module, x: torch.Tensor) -> Optional[TensorGrid]:
    """The tensor grid of ``x`` when the operator applies: a separable 2D grid field with the
    same cells on both axes (``axis_matrices`` builds either axis' factors with axis 0's
    cells), at points that form a tensor grid. Otherwise None: the sparse path serves."""
    if getattr(field, "in_dim", 0) != 2 or not getattr(field, "separable", False) or getattr(field, "periodic", ()):
        return None  # a periodic grid's columns wrap: the sparse path serves
    if getattr(field, "refined", 0):
        return None  # a refined grid's finer levels: the sparse path serves
    cells = getattr(field, "cells_per_axis", None)
    if cells is not None and any(c[0] != c[1] for c in cells):
        return None
    return tensor_grid(x)


def axis_matrices(field: torch.nn.Module, coords: np.ndarray, level: int, order: int) -> List[sp.csr_matrix]:
    """``[B⁽⁰⁾, …, B⁽ᵒʳᵈᵉʳ⁾]``: the level's 1D weights and their x-derivatives at ``coords``,
    each ``[P, side]`` over the level's nodes along one axis (ghost nodes included)."""
    device = field.offsets.device  # the field's: level_basis adds its offsets
    x = torch.as_tensor(coords, dtype=torch.float64, device=device)[:, None].expand(-1, field.in_dim).contiguous()
    b = field.level_basis(x, level, order)  # weights [P, d, order+1, K], index units
    n = field.cells[level]
    base = (x[:, 0] + 1.0).mul(0.5 * n).floor().clamp(0, n).long().cpu()
    nodes = base[:, None] + field.offsets.cpu()
    if field.edge == "clamp":
        nodes = nodes.clamp(0, n)
    cols = (nodes + field.ghost).numpy()
    p, k = cols.shape
    side = field.grids[level].shape[0]
    indptr = np.arange(0, p * k + 1, k)
    mats = []
    for m in range(order + 1):
        vals = (b.weights[:, 0, m] * b.scale**m).detach().cpu().numpy()
        mat = sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(p, side))
        mat.sum_duplicates()  # clamped edges repeat a node
        mats.append(mat)
    return mats


class TensorSystem:
    """``A`` of a linear system over a grid's node values, applied without forming it.

    Columns are laid out as in ``dinf.solvers.least_squares.assemble``: one block per channel, levels in order,
    each level's nodes row-major. ``matvec``/``rmatvec`` are ``A z`` and ``Aᵀ r``.
    """

    def __init__(self, field: torch.nn.Module, system: LinearSystem, grid: TensorGrid):
        coef = system.coef.detach().cpu().double().numpy()  # [N, E, C, A]
        self.rhs = system.rhs.detach().cpu().double().numpy().reshape(-1)
        n_pts, self.n_eq, self.n_ch, n_ent = coef.shape
        order = order_of_width(n_ent, 2)
        # Only the jet entries some row uses (gradient rows never read the value): a third less work.
        used = [a for a in range(n_ent) if np.any(coef[..., a])]
        self.coef = np.ascontiguousarray(coef[..., used])
        self.combos: List[Tuple[int, ...]] = [_component_combos(2, order)[a] for a in used]
        self.grid = grid
        self.shape_2d = (grid.axes[0].size, grid.axes[1].size)
        p0, p1 = self.shape_2d
        # Point positions in the transposed [P₁, P₀] grid: B₁ applies to its rows without a copy.
        self.index_t = (grid.index % p1) * p0 + grid.index // p1
        self.mats = [[axis_matrices(field, grid.axes[a], s, order) for a in range(2)] for s in range(field.levels)]
        self.sides = [field.grids[s].shape[0] for s in range(field.levels)]
        sizes = [side * side for side in self.sides]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        self.nodes = int(sum(sizes))
        self.mix = mix_matrix(system)
        rows = n_pts * self.n_eq if self.mix is None else self.mix.shape[0]
        self.shape = (rows, self.n_ch * self.nodes)
        self.nnz = sum(m.nnz for level in self.mats for axis in level for m in axis)

    def _level(self, z: np.ndarray, c: int, s: int) -> np.ndarray:
        start = c * self.nodes + self.offsets[s]
        return z[start : start + self.sides[s] ** 2].reshape(self.sides[s], self.sides[s])

    def entries(self, z: np.ndarray) -> np.ndarray:
        """``[C, A, N]``: every jet entry of every channel at the points."""
        out = np.zeros((self.n_ch, len(self.combos), self.grid.index.size))
        p0, p1 = self.shape_2d
        for c in range(self.n_ch):
            grids_t = np.zeros((len(self.combos), p1, p0))  # levels summed (transposed), then read once
            for s, (b0, b1) in enumerate(self.mats):
                left = {k0: b0[k0] @ self._level(z, c, s) for k0 in {k[0] for k in self.combos}}  # [P₀, side]
                for a, (k0, k1) in enumerate(self.combos):
                    grids_t[a] += b1[k1] @ left[k0].T  # [P₁, P₀]
            out[c] = grids_t.reshape(len(self.combos), -1)[:, self.index_t]
        return out

    def matvec(self, z: np.ndarray) -> np.ndarray:
        rows = np.einsum("neca,can->ne", self.coef, self.entries(z)).reshape(-1)
        return rows if self.mix is None else self.mix @ rows

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        if self.mix is not None:
            r = self.mix.T @ r
        g = np.einsum("neca,ne->can", self.coef, r.reshape(-1, self.n_eq))
        z = np.zeros(self.shape[1])
        for c in range(self.n_ch):
            grids_t = [self._on_grid_t(g[c, a]) for a in range(len(self.combos))]
            for s, (b0, b1) in enumerate(self.mats):
                level = np.zeros((self.sides[s], self.sides[s]))
                for a, (k0, k1) in enumerate(self.combos):
                    level += b0[k0].T @ (b1[k1].T @ grids_t[a]).T
                self._level(z, c, s)[...] = level
        return z

    def column_norms(self) -> np.ndarray:
        """‖A e_j‖ for every column, from the 1D factors: Σ_ab (B₀ᵃ∘B₀ᵇ)ᵀ C_ab (B₁ᵃ∘B₁ᵇ).
        With ``mix`` these are the pointwise rows' norms: LSQR's column scaling only needs
        their magnitude (a smoothing mix lowers them by less than 2×)."""
        sq = np.zeros(self.shape[1])
        n_ent = len(self.combos)
        for c in range(self.n_ch):
            cross = np.einsum("nea,neb->abn", self.coef[:, :, c, :], self.coef[:, :, c, :])
            for s, (b0, b1) in enumerate(self.mats):
                level = np.zeros((self.sides[s], self.sides[s]))
                for a in range(n_ent):
                    for b in range(n_ent):
                        if not np.any(cross[a, b]):
                            continue
                        (ka0, ka1), (kb0, kb1) = self.combos[a], self.combos[b]
                        left = b0[ka0].multiply(b0[kb0]).tocsr()
                        right = b1[ka1].multiply(b1[kb1]).tocsr()
                        level += left.T @ (right.T @ self._on_grid_t(cross[a, b])).T
                self._level(sq, c, s)[...] = level
        return np.sqrt(np.maximum(sq, 0.0))

    def _on_grid_t(self, values: np.ndarray) -> np.ndarray:
        """Per-point ``values`` on the transposed grid ``[P₁, P₀]``."""
        out = np.zeros(self.shape_2d[0] * self.shape_2d[1])
        out[self.index_t] = values
        return out.reshape(self.shape_2d[1], self.shape_2d[0])
