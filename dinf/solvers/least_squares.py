"""Least-squares solves for problems that are linear in a field that is linear in its parameters.

With a linear decoder, ∂∞-Grid is ``u_c(x) = Σ_levels Σ_nodes w_node(x) · z_c,node`` (the
decoder folded into the node values), and the jets of ``w`` are the grid's basis. A problem's
``linear_system`` gives rows over jet entries, so the loss is ``‖A z - b‖²`` with a sparse ``A``
whose pattern is fixed by the grid: each row touches the (2ρ)^d neighbours of its point on each
level. It is assembled from the basis directly (coordinates → CSR, no intermediate format) and
solved through the normal equations.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from omegaconf import DictConfig

from dinf.solvers import separable as lsq_separable, tensor_operator as lsq_tensor
from dinf.errors import ConfigError, check, check_choice
from dinf.fields.base import innermost
from dinf.fields.decoders import LinearDecoder
from dinf.fields.split import SplitField
from dinf.fields.warped import sample_for
from dinf.pdes.capabilities import LinearProblem
from dinf.solvers.base import SolveSolver
from dinf.solvers.linalg import gram, sparse_solve
from dinf.jet import order_of_width
from dinf.linear_system import LinearSystem, mix_matrix
from dinf.solvers.linalg.gram import normal_matrix
from dinf.solvers.linalg.sparse_solve import check_backend, solve_spd

METHODS = ("auto", "direct", "cg", "lsqr")
DIRECT_LIMIT = 30_000  # unknowns up to which "auto" factorises (11 k: 31 s on 2 cores)


@dataclass
class Assembly:
    """The sparse system of one solve and where each level's columns start."""

    matrix: sp.csr_matrix
    rhs: np.ndarray
    offsets: List[int]  # first column of each level, per channel block
    nodes: int  # columns per channel


class LeastSquares(SolveSolver):
    """Minimise a linear problem's loss over a linear-decoder grid in one solve.

    ``points``: collocation points drawn by the problem (default: 16 per finest-level cell).
    Oversampling matters: with 4 per cell the solve fits the points rather than the integral
    (manufactured Helmholtz, 64 cells: 7.3e-2 relative error vs 1.7e-2 with 16).
    ``damping``: Tikhonov weight on the node values, relative to the mean diagonal of AᵀA; the
    levels overlap, so the system is singular without it. ``method``: ``direct`` (sparse LU of
    the normal equations), ``cg`` (Jacobi-preconditioned conjugate gradients on them),
    ``lsqr`` (matrix-free LSQR on the column-scaled A, never forming AᵀA) or ``auto`` (direct
    up to ``DIRECT_LIMIT`` unknowns, else LSQR); ``tol`` and ``maxiter`` apply to the iterative
    ones; ``backend``: the direct solve's (``dinf.solvers.linalg.sparse_solve``: auto, pardiso, superlu).
    ``separable``: for a problem with per-axis coefficients (Helmholtz with a PML) on a one-level
    2D Gaussian grid, ``auto`` and ``direct`` build the normal equations from 1D factors at
    Gauss points and solve them as complex (``dinf.solvers.separable``; ``points`` then sets the
    Gauss points per cell, q² ≈ points / cells); false keeps the sampled, assembled path.
    ``windows``, ``overlap``: marching in time windows, which the run sets up around this solver
    (``dinf.solvers.marching``); the solver itself solves whatever field and problem it is given.
    LSQR's iterate count also regularises: Poisson-gradient 256² peaks near 50 (33.17 dB) and
    drifts down as the loss keeps falling (200: 33.18, tol 1e-6: 32.84 dB).
    """

    name = "least squares"

    def __init__(self, points: Optional[int] = None, damping: float = 1e-10, method: str = "auto",
                 tol: float = 1e-10, maxiter: int = 2000, backend: str = "auto", separable: bool = True,
                 windows: Optional[Union[int, list]] = None, overlap: float = 0.0):
        super().__init__()
        check_choice("method", method, METHODS)
        check_backend(backend)
        check(damping >= 0, "damping", f"must be >= 0, got {damping!r}")
        check(points is None or int(points) > 0, "points", f"must be > 0, got {points!r}")
        self.points, self.damping, self.method = points, float(damping), method
        self.tol, self.maxiter, self.backend = float(tol), int(maxiter), backend
        self.separable = bool(separable)
        self.windows, self.overlap = windows, overlap
        self.per_level = False  # the damping relative to each level's mean diagonal (a refined grid's solves)

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        check_linear(field, problem)

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        return {"max_steps": 1, "val_check_interval": 1}  # one solve, validated after it

    def warm_up(self) -> None:
        warm_up_solves(self.backend)

    # --- the solve -----------------------------------------------------------------------
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """Set ``field``'s parameters to the least-squares solution. Returns timings, sizes, the
        loss at the solution and ``loss_zero``, the loss of the zero field."""
        check_linear(field, problem)
        self.info = {}
        t0 = time.perf_counter()
        n = self.points or 16 * cells_total(field)
        if self.separable and self.method in ("auto", "direct") and lsq_separable.applies(field, problem):
            # Per-axis coefficients: the normal equations from 1D factors at q² Gauss points a cell.
            q = max(1, round(math.sqrt(n / cells_total(field))))
            z, self.info = lsq_separable.solve(field, problem, q, self.damping, self.backend)
            self.info["method"] = "direct"
            write_back(field, z, layout(field))
            return self.info
        batch = sample_for(field, problem, n, generator)
        with torch.no_grad():
            system = problem.linear_system(batch)
        method = self.method
        if method == "auto":
            unknowns = field.out_dim * layout(field).nodes
            method = "direct" if unknowns <= DIRECT_LIMIT else "lsqr"
        if method == "lsqr" and system.linear is not None:
            method = "cg"  # an energy with a linear term: LSQR solves ‖Az − b‖² only
        self.info["method"] = method
        grid = lsq_tensor.applies(field, batch.x) if method == "lsqr" else None
        with torch.no_grad():
            if grid is not None:  # pixel centres: A applied from its 1D factors, never formed
                op = lsq_tensor.TensorSystem(field, system, grid)
                matvec, rmatvec, norms, rhs = op.matvec, op.rmatvec, op.column_norms(), op.rhs
                columns, shape, nnz = op, op.shape, op.nnz
            else:
                check_memory(field, system, normal=method in ("direct", "cg"))
                asm = assemble(field, system)
                A = asm.matrix
                matvec, rmatvec, rhs = (lambda v: A @ v), (lambda r: A.T @ r), asm.rhs
                columns, shape, nnz = asm, A.shape, A.nnz
            g = linear_vector(field, system)
        t1 = time.perf_counter()
        if method == "lsqr":
            if grid is None:
                norms = np.sqrt(np.asarray(A.multiply(A).sum(0))).ravel()
            z = self._lsqr(matvec, rmatvec, shape, rhs, norms)
        else:
            self.per_level = bool(getattr(field, "refined", 0))
            z = self._normal_equations(asm, method, g)
        t2 = time.perf_counter()
        write_back(field, z, columns)
        loss = float(np.sum((matvec(z) - rhs) ** 2) - 2.0 * g @ z)
        self.info.update({"assemble_s": t1 - t0, "solve_s": t2 - t1, "rows": shape[0], "unknowns": shape[1],
                          "nnz": nnz, "loss": loss, "loss_zero": float(np.sum(rhs**2)),
                          "operator": "tensor" if grid is not None else "sparse"})
        return self.info

    def _lsqr(self, matvec, rmatvec, shape, rhs: np.ndarray, norms: np.ndarray) -> np.ndarray:
        """LSQR on the column-scaled system (unit column norms: diag(AᵀA) = 1)."""
        scale = 1.0 / np.where(norms > 0, norms, 1.0)
        op = spla.LinearOperator(shape, matvec=lambda y: matvec(scale * y), rmatvec=lambda r: scale * rmatvec(r),
                                 dtype=np.float64)
        y = spla.lsqr(op, rhs, damp=float(np.sqrt(self.damping)), atol=self.tol, btol=self.tol,
                      iter_lim=self.maxiter)[0]
        return scale * y

    def _normal_equations(self, asm: Assembly, method: str, linear: np.ndarray) -> np.ndarray:
        """``(AᵀA + λI) z = Aᵀb + g``: the stationary point of ‖Az − b‖² − 2 gᵀz."""
        A, b = asm.matrix, asm.rhs
        AtA = normal_matrix(A)
        Atb = A.T @ b + linear
        diag = AtA.diagonal()
        lam = self.damping * float(diag.mean())
        if self.per_level:
            lam = level_damping(diag, asm, self.damping)
        AtA = AtA + sp.diags(lam * np.ones(AtA.shape[0]), format="csr")
        if method == "direct":
            return solve_spd(AtA, Atb, self.backend)
        inv = 1.0 / (diag + lam)
        M = spla.LinearOperator(AtA.shape, matvec=lambda v: inv * v)
        z, _ = spla.cg(AtA, Atb, rtol=self.tol, maxiter=self.maxiter, M=M)
        return z


def level_damping(diag: np.ndarray, asm: Assembly, damping: float) -> np.ndarray:
    """The Tikhonov weight of each column: ``damping`` times the mean diagonal of its level's
    columns. A refined grid's finer levels weigh second derivatives 4× more each, so a weight
    relative to the mean of all would over-damp the coarse levels (the L-shape after 6 finer
    levels: an L2 error of 8.4e-4 where 1.4e-4 came one level before); one relative to each
    column's own diagonal frees the columns the points barely see (7e-1)."""
    lam = np.empty_like(diag)
    bounds = list(asm.offsets) + [asm.nodes]
    for c in range(len(diag) // asm.nodes):
        for a, b in zip(bounds[:-1], bounds[1:]):
            block = slice(c * asm.nodes + a, c * asm.nodes + b)
            lam[block] = damping * float(diag[block].mean()) if b > a else 0.0
    return lam


def warm_up_solves(backend: str) -> None:
    """What the solves in node values compile or load once: the Gram-block kernels of the normal
    matrix and the sparse backend (PARDISO's handle, MKL)."""
    gram.warm_up()
    sparse_solve.warm_up(backend)


def cells_total(field: torch.nn.Module) -> int:
    """Cells of the field's finest level over all axes: the product of its per-axis cells
    (``resolution ** in_dim`` for a field that only knows an int resolution; a split field's
    parts' cells added)."""
    if isinstance(field, SplitField):
        return sum(cells_total(p) for p in field.parts)
    total = getattr(field, "cells_total", None)
    return int(total) if total is not None else int(field.resolution) ** field.in_dim


def check_linear(field: torch.nn.Module, problem: torch.nn.Module) -> None:
    """Raise ``ConfigError`` unless ``field`` and ``problem`` make a linear least-squares problem."""
    if not isinstance(problem, LinearProblem):
        raise ConfigError("solver", f"{type(problem).__name__} is not linear in the field: use solver=gauss_newton, "
                          "newton or adam")
    problem.check_linear()
    check_basis(field, "least squares")


def check_basis(field: torch.nn.Module, solver: str, split: bool = False) -> None:
    """Raise ``ConfigError`` unless ``field`` is linear in its parameters through a basis: a grid
    with the linear decoder and ungated levels (what ``solver`` needs). ``split``: the solver
    reads a ``SplitField``'s parts too (each must be such a grid)."""
    if isinstance(field, SplitField):
        if not split:
            raise ConfigError("solver", f"{solver} solves one grid; pde.coefficients puts an unknown on its own "
                              "axes: use solver=gauss_newton (or adam)")
        for part in field.parts:
            check_basis(part, solver)
        return
    if not field.has_basis:
        raise ConfigError("solver", f"{solver} needs a grid field with a basis (model=dinf), not {_name(field)}")
    if not isinstance(field.decoder, LinearDecoder):
        raise ConfigError("model.decoder", f"{solver} needs the linear decoder (model.decoder=linear)")
    if field.gates.mode != "none":
        raise ConfigError("model.gates", f"{solver} needs ungated levels (model.gates=none)")
    if field.features < field.out_dim:
        raise ConfigError("grid.features", f"{solver} needs features >= out_dim ({field.out_dim})")


def check_memory(field: torch.nn.Module, system: LinearSystem, normal: bool) -> None:
    """Refuse, in one line with the sizes and the keys that shrink them, an assembly (and with
    ``normal``, the normal matrix of a direct or CG solve) that would not fit in the memory
    available now. The estimate is a lower bound: one level's basis weights at once, A's values
    and columns, and AᵀA at the finest stencil's overlap ((4ρ − 1)^d nodes a column), twice for
    its factorisation."""
    n_pts, n_eq, n_ch, n_ent = system.coef.shape
    d, nodes = field.in_dim, (2 * field.rho) ** field.in_dim
    unknowns = n_ch * layout(field).nodes
    assembly = n_pts * n_ent * nodes * 8 + n_pts * n_eq * n_ch * field.levels * nodes * 12
    need = assembly + (2 * unknowns * (4 * field.rho - 1) ** d * 12 if normal else 0)
    free = sparse_solve.available_bytes()
    if need > free:
        iterative = " or an iterative solve (solver.method=lsqr)" if normal and assembly < free else ""
        raise ConfigError("solver.method", f"least squares on {n_pts:,} points and {unknowns:,} unknowns needs about "
                          f"{need / 1e9:.1f} GB, {free / 1e9:.1f} GB are available: use fewer unknowns or points "
                          f"(grid.resolution, grid.levels, solver.points, a narrower kernel: kernel.rho){iterative}")


def _name(field: torch.nn.Module) -> str:
    return type(innermost(field)).__name__


def assemble(field: torch.nn.Module, system: LinearSystem) -> Assembly:
    """The CSR matrix of ``system`` over the field's node values, one block of columns per channel."""
    x = system.x.to(torch.float64)
    n_pts, n_eq, n_ch, n_ent = system.coef.shape
    order = order_of_width(n_ent, field.in_dim)
    own = layout(field)
    offsets, nodes = own.offsets, own.nodes
    coef = system.coef.to(torch.float64)
    if getattr(field, "refined", 0):  # a RefinedField (behind MappedField): its levels reach some points only
        return _assemble_rows(field, system, x, order, own)
    vals, cols = [], []
    for s in range(field.levels):
        c, w = field.basis(x, s, order)  # [N, M], [N, A, M]
        v = torch.einsum("neca,nam->necm", coef, w.to(torch.float64))  # [N, E, C, M]
        col = c[:, None, None, :] + offsets[s] + nodes * torch.arange(n_ch)[None, None, :, None]
        vals.append(v)
        cols.append(col.expand_as(v))
    # Row n·E + e holds, level by level, the C·M entries of its point: a fixed count per row,
    # so the CSR arrays come straight from the dense blocks.
    vals_t = torch.cat([v.reshape(n_pts, n_eq, -1) for v in vals], -1)
    cols_t = torch.cat([c.reshape(n_pts, n_eq, -1) for c in cols], -1)
    per_row = vals_t.shape[-1]
    indptr = np.arange(0, n_pts * n_eq * per_row + 1, per_row, dtype=np.int64)
    A = sp.csr_matrix((vals_t.reshape(-1).cpu().numpy(), cols_t.reshape(-1).cpu().numpy(), indptr),
                      shape=(n_pts * n_eq, nodes * n_ch))
    A.sum_duplicates()  # clamped edges repeat a node within a row
    mix = mix_matrix(system)
    if mix is not None:
        A = (mix @ A).tocsr()
    A.eliminate_zeros()
    return Assembly(A, system.rhs.to(torch.float64).reshape(-1).cpu().numpy(), offsets, nodes)


def _assemble_rows(field: torch.nn.Module, system: LinearSystem, x: torch.Tensor, order: int,
                   own: Assembly) -> Assembly:
    """``assemble`` for a refined grid: each level's entries for the points it reaches only
    (``RefinedField.level_rows``), gathered as coordinates."""
    n_pts, n_eq, n_ch, n_ent = system.coef.shape
    coef = system.coef.to(torch.float64)
    data, rows, cols = [], [], []
    for s in range(field.levels):
        r, c, w = field.level_rows(x, s, order)  # [R] (None: all), [R, M], [R, A, M]
        r = torch.arange(n_pts) if r is None else r.cpu()
        v = torch.einsum("neca,nam->necm", coef[r], w.to(torch.float64).cpu())  # [R, E, C, M]
        # An inactive node (column −1) has weight 0: any column does, and the zeros are dropped below.
        col = c.cpu().clamp_min(0)[:, None, None, :] + own.offsets[s] + own.nodes * torch.arange(n_ch)[None, None, :, None]
        row = (r[:, None] * n_eq + torch.arange(n_eq)[None, :])[:, :, None, None]
        data.append(v.reshape(-1))
        rows.append(row.expand_as(v).reshape(-1))
        cols.append(col.expand_as(v).reshape(-1))
    A = sp.csr_matrix((torch.cat(data).numpy(), (torch.cat(rows).numpy(), torch.cat(cols).numpy())),
                      shape=(n_pts * n_eq, own.nodes * n_ch))
    mix = mix_matrix(system)
    if mix is not None:
        A = (mix @ A).tocsr()
    A.eliminate_zeros()
    return Assembly(A, system.rhs.to(torch.float64).reshape(-1).cpu().numpy(), own.offsets, own.nodes)


def linear_vector(field: torch.nn.Module, system: LinearSystem) -> np.ndarray:
    """``g`` with ``ℓ(u) = gᵀz`` for the system's linear term (zeros without one)."""
    cols = field.out_dim * layout(field).nodes
    if system.linear is None:
        return np.zeros(cols)
    n = system.x.shape[0]
    zeros = torch.zeros(n, 1, dtype=system.linear.dtype, device=system.linear.device)
    rows = LinearSystem(system.x, system.linear[:, None], zeros)
    return assemble(field, rows).matrix.T @ np.ones(n)


def layout(field: torch.nn.Module) -> Assembly:
    """Where each level's columns start (``matrix`` and ``rhs`` left empty): for ``read_back``
    and ``write_back`` without an assembly."""
    sizes = field.level_sizes() if callable(getattr(field, "level_sizes", None)) else \
        [g.shape[:-1].numel() for g in field.grids]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    return Assembly(sp.csr_matrix((0, 0)), np.zeros(0), offsets, int(sum(sizes)))


def read_back(field: torch.nn.Module) -> tuple:
    """The field as node values ``z`` (float64, the columns' order) and a per-channel constant
    ``bias``: the linear decoder folded into the levels, ``z_c = Σ_f W[c, (s, f)] · grid_s[:, f]``.
    A split field's parts side by side (``dinf.solvers.linalg.split_jets``)."""
    if isinstance(field, SplitField):
        parts = [read_back(p) for p in field.parts]
        bias = initial_bias(field)
        for (_, b), channels in zip(parts, field.channels):
            bias[channels] += b
        return np.concatenate([z for z, _ in parts]), bias
    asm = layout(field)
    f, n_ch = field.features, field.out_dim
    W = field.decoder.layer.weight.detach().double()
    z = np.zeros((n_ch, asm.nodes))
    for s, grid in enumerate(field.grids):
        values = grid.detach().double().reshape(-1, f)  # [nodes of level s, F]
        block = values @ W[:, s * f:(s + 1) * f].t()  # [nodes, C]
        z[:, asm.offsets[s]:asm.offsets[s] + values.shape[0]] = block.t().numpy()
    for p, patch in enumerate(getattr(field, "patches", ())):  # a refined grid's finer levels: one feature a channel
        start = asm.offsets[field.levels - len(field.patches) + p]
        z[:, start:start + patch.shape[0]] = patch.detach().double().t().numpy()
    return z.reshape(-1), field.decoder.layer.bias.detach().double().numpy().copy()


def initial_bias(field: torch.nn.Module) -> np.ndarray:
    """The per-channel constant of the zero node values: zeros, a split field's ``offset``
    (where its coefficients start)."""
    if isinstance(field, SplitField):
        return field.offset.detach().double().cpu().numpy().copy()
    return np.zeros(field.out_dim)


def write_back(field: torch.nn.Module, z: np.ndarray, asm: Assembly, bias: Optional[np.ndarray] = None) -> None:
    """Store node values ``z`` in the field: feature c of each level holds channel c, and the
    linear decoder sums the levels (weight 1 on those features, 0 elsewhere; ``bias`` or none).
    A split field's parts take their slices of ``z`` (``asm`` is not read)."""
    if isinstance(field, SplitField):
        start = 0
        for part, channels in zip(field.parts, field.channels):
            own = layout(part)
            count = own.nodes * part.out_dim
            own_bias = None if bias is None else (np.asarray(bias) - initial_bias(field))[channels]
            write_back(part, z[start:start + count], own, own_bias)
            start += count
        return
    f, n_ch = field.features, field.out_dim
    zt = torch.as_tensor(z).reshape(n_ch, asm.nodes)
    layer = field.decoder.layer
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
        for s, grid in enumerate(field.grids):
            count = grid.shape[:-1].numel()
            block = zt[:, asm.offsets[s] : asm.offsets[s] + count]  # [C, nodes of level s]
            grid.zero_()
            grid[..., :n_ch].copy_(block.t().reshape(*grid.shape[:-1], n_ch).to(grid.dtype))
            for c in range(n_ch):
                layer.weight[c, s * f + c] = 1.0
        for p, patch in enumerate(getattr(field, "patches", ())):
            start = asm.offsets[field.levels - len(field.patches) + p]
            patch.copy_(zt[:, start:start + patch.shape[0]].t().to(patch.dtype))
