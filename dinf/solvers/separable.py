"""Least squares for residuals with per-axis coefficients, normal equations from 1D factors.

A problem that states its complex residual as ``Σ_t f_t(x₀) g_t(x₁) ∂^t u + s(x)``
(``dinf.linear_system.SeparableSystem``: Helmholtz with a PML, whose stretch is one function per axis)
on a one-level 2D grid with the Gaussian kernel has, at a tensor grid of Gauss–Legendre points
(``q`` per cell and axis, weights ``w``), the matrix

    A = Σ_t X_t ⊗ Y_t,   X_t = diag(√w₀ f_t) B₀⁽ᵐ⁾,   Y_t = diag(√w₁ g_t) B₁⁽ⁿ⁾,

with ``B`` the grid's 1D weight matrices (points × nodes, 2ρ entries a row). Hence

    AᴴA = Σ_{t,t'} (X_tᴴ X_t') ⊗ (Y_tᴴ Y_t'),

a sum of Kronecker products of banded 1D matrices (4ρ − 1 diagonals). Each node's row of AᴴA
is one product of a term-pair-by-band matrix per axis: all of AᴴA is one dense matrix product
of ``[side₀·(4ρ−1), T²]`` by ``[T², side₁·(4ρ−1)]``, never a pass over A (which at k = 100 would
hold 10⁶ points × 100 entries). ``Aᴴs = Σ_t vec(X_tᴴ S Ȳ_t)``. The Hermitian system is solved
as complex (``dinf.solvers.linalg.sparse_solve.solve_hpd``: PARDISO's complex Cholesky); the real and imaginary
parts of its solution are the field's two channels.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from dinf.linear_system import SeparableSystem
from dinf.pdes.capabilities import SeparableProblem


def gauss_points(cells: int, q: int) -> Tuple[np.ndarray, np.ndarray]:
    """``q`` Gauss–Legendre points per cell of ``cells`` equal cells on [-1, 1] and their weights,
    normalised to sum to 1 (a mean over the axis)."""
    t, w = np.polynomial.legendre.leggauss(q)
    h = 2.0 / cells
    left = -1.0 + h * np.arange(cells)
    x = (left[:, None] + 0.5 * h * (t[None, :] + 1.0)).ravel()
    return x, np.tile(0.25 * h * w, cells)


def axis_factors(field: torch.nn.Module, coords: np.ndarray, axis: int, order: int) -> List[sp.csr_matrix]:
    """``[B⁽⁰⁾, …, B⁽ᵒʳᵈᵉʳ⁾]`` of a one-level grid along ``axis`` at 1D ``coords`` ``[P]``: the
    weights and their x-derivatives over the axis' nodes (ghosts included)."""
    x = torch.as_tensor(coords, dtype=torch.float64)[:, None].expand(-1, field.in_dim).contiguous()
    with torch.no_grad():
        b = field.level_basis(x, 0, order)  # weights [P, d, order + 1, K] in index units
    cols = (b.nodes[:, axis] + field.ghost).cpu().numpy()
    p, k = cols.shape
    side = field.grids[0].shape[axis]
    indptr = np.arange(0, p * k + 1, k)
    out = []
    for m in range(order + 1):
        vals = (b.weights[:, axis, m] * b.scales[axis] ** m).cpu().numpy()
        mat = sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(p, side))
        mat.sum_duplicates()  # clamped edges repeat a node
        out.append(mat)
    return out


def applies(field: torch.nn.Module, problem: torch.nn.Module) -> bool:
    """Whether this path serves: a separable residual and a one-level 2D Gaussian grid on [-1, 1]²
    (not wrapped: its factors index the stored nodes with ghosts)."""
    return (not getattr(field, "periodic", ()) and isinstance(problem, SeparableProblem)
            and getattr(field, "in_dim", 0) == 2
            and getattr(field, "separable", False) and getattr(field, "levels", 0) == 1
            and getattr(field, "out_dim", 0) == 2 and hasattr(field, "level_basis"))


def _banded(M: sp.spmatrix, half: int) -> np.ndarray:
    """``[n, 2·half + 1]``: ``M[p, p + a − half]`` (zero outside), for a matrix of that bandwidth."""
    coo = M.tocoo()
    band = np.zeros((M.shape[0], 2 * half + 1), dtype=M.dtype)
    offset = coo.col - coo.row
    if np.abs(offset).max(initial=0) > half:
        raise ValueError("a 1D factor is wider than the neighbourhood")
    np.add.at(band, (coo.row, offset + half), coo.data)
    return band


class SeparableNormal:
    """``AᴴA`` (the upper triangle of its real form) and ``Aᴴs`` for ``system`` on ``field``'s
    one-level grid, with ``q`` Gauss points per cell and axis."""

    def __init__(self, field: torch.nn.Module, system: SeparableSystem, q: int):
        self.sides = tuple(int(s) for s in field.grids[0].shape[:2])
        cells = field.cells_per_axis[0]
        order = max(max(t.orders) for t in system.terms)
        self.half = 2 * field.rho - 1  # rows of AᴴA reach this many nodes either side, per axis
        xs, ws = zip(*(gauss_points(cells[a], q) for a in range(2)))
        bases = [axis_factors(field, xs[a], a, order) for a in range(2)]
        factors = []  # per axis, per term: diag(√w f) B⁽ᵐ⁾
        for a in range(2):
            root = np.sqrt(ws[a])
            factors.append([sp.diags(root * t.factors[a](xs[a])) @ bases[a][t.orders[a]] for t in system.terms])
        self.points = (xs[0].size, xs[1].size)
        X, Y = factors
        T = len(system.terms)
        # Per axis, every term pair's X_tᴴ X_t' as bands: [T², side, 2·half + 1].
        bands = [np.stack([_banded((F[i].conj().T @ F[j]).tocsr(), self.half) for i in range(T) for j in range(T)])
                 for F in (X, Y)]
        self.matrix = self._kron_sum(*bands)
        # Aᴴs: Σ_t X_tᴴ S Ȳ_t with S the weighted source on the point grid.
        grid = torch.as_tensor(np.stack(np.meshgrid(xs[0], xs[1], indexing="ij"), -1).reshape(-1, 2))
        S = system.source(grid).cpu().numpy().reshape(self.points) * np.sqrt(np.outer(ws[0], ws[1]))
        self.source_norm2 = float(np.sum(np.abs(S) ** 2))
        self.rhs = sum((X[t].conj().T @ (Y[t].conj().T @ S.T).T).ravel() for t in range(T))

    def _kron_sum(self, P: np.ndarray, Q: np.ndarray) -> sp.csr_matrix:
        """``Σ_T P_T ⊗ Q_T`` from bands ``[T, n, B]``: one matrix product, then the CSR pattern."""
        (n0, n1), h = self.sides, self.half
        B = 2 * h + 1
        T = P.shape[0]
        vals = (P.reshape(T, n0 * B).T @ Q.reshape(T, n1 * B)).reshape(n0, B, n1, B).transpose(0, 2, 1, 3)
        p, q, a, b = np.meshgrid(np.arange(n0), np.arange(n1), np.arange(B), np.arange(B), indexing="ij")
        col0, col1 = p + a - h, q + b - h
        keep = (col0 >= 0) & (col0 < n0) & (col1 >= 0) & (col1 < n1)
        rows = (p * n1 + q)[keep]
        M = sp.csr_matrix((vals[keep], ((col0 * n1 + col1)[keep]).ravel(), np.concatenate(
            [[0], np.cumsum(np.bincount(rows, minlength=n0 * n1))])), shape=(n0 * n1, n0 * n1))
        return M

    def upper(self, damping: float) -> Tuple[sp.csr_matrix, float]:
        """The upper triangle of ``AᴴA + λI`` (complex Hermitian), and λ (relative to the mean diagonal)."""
        H = self.matrix
        lam = damping * float(H.diagonal().real.mean())
        return sp.triu(H, format="csr") + lam * sp.identity(H.shape[0], format="csr"), lam


def solve(field: torch.nn.Module, problem: torch.nn.Module, q: int, damping: float, backend: str
          ) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Node values ``z`` (the two channels' blocks, as ``dinf.solvers.least_squares.write_back`` takes them) of the
    least-squares solution, and timings, sizes and the loss."""
    from dinf.solvers.linalg.sparse_solve import solve_hpd

    t0 = time.perf_counter()
    normal = SeparableNormal(field, problem.separable_system(), q)
    upper, lam = normal.upper(damping)
    t1 = time.perf_counter()
    z = solve_hpd(upper, -normal.rhs, backend)
    t2 = time.perf_counter()
    # ‖A z + s‖² = zᴴ AᴴA z + 2 Re(zᴴ Aᴴ s) + ‖s‖²: the mean of |residual|² over the square.
    loss = float((z.conj() @ (normal.matrix @ z)).real + 2.0 * (z.conj() @ normal.rhs).real + normal.source_norm2)
    info = {"assemble_s": t1 - t0, "solve_s": t2 - t1, "rows": 2 * normal.points[0] * normal.points[1],
            "unknowns": 2 * z.size, "nnz": int(upper.nnz), "loss": loss, "loss_zero": normal.source_norm2,
            "operator": "separable", "damping": lam}
    return np.concatenate([z.real, z.imag]), info
