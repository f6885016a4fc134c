"""Factored ∂∞-Grid: a sum of R products of 1D multi-resolution RBF grids (CP rank R).

    u_c(x) = Σ_{r=1..R} Π_{i=1..d} g_{c,r,i}(x_i),   g_{c,r,i}(t) = Σ_levels Σ_k w_k(t) · F_i[k, c, r]

Each factor ``g`` is a 1D ∂∞-Grid without decoder: nodes with ρ ghost nodes beyond [-1, 1] on
each side, normalised RBF weights over the 2ρ nearest nodes (``dinf.fields.kernels``). Every rank
and channel of one axis reads the same 1D basis, so a point costs d·L·2ρ weights and
``d·L·2ρ·C·R`` multiply-adds instead of the full grid's ``L·(2ρ)^d`` nodes: at d = 5, ρ = 6, R = 8
that is 480 products against 7 776 neighbours (ρ = 3) of the tensor-product grid.

Jets come in closed form from the factors' 1D jets (value, t-derivative, second t-derivative):

    ∂_j u = Σ_r g'_j Π_{i≠j} g_i,   ∂_jj u = Σ_r g''_j Π_{i≠j} g_i,   ∂_jk u = Σ_r g'_j g'_k Π_{i≠j,k} g_i,

with the leave-one-out and leave-two-out products from prefix and suffix products (no division,
exact when a factor vanishes). The field is multilinear in its factors, not linear in its
parameters: ``dinf.solvers.cp_lm`` solves it by Levenberg–Marquardt on all factors jointly.

Because 1D neighbourhoods are cheap, the default kernel is wider and less truncated than the full
grid's: ε = 0.7, ρ = 6 (the weight of a node at the neighbourhood's edge is e^{-(0.7·6)²} ≈ 2e-8 of
the centre's). A throw-away check, −u'' = f in 1D with u = sin(π(x + 1)/4), 8 cells, least squares:
ρ = 3, ε = 1 stops at 8e-2 relative L2 (the truncation jump), ρ = 6, ε = 0.7 reaches 3.5e-7.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from dinf.errors import ConfigError, check, check_choice
from dinf.fields.base import Field
from dinf.fields.grid_checks import Resolution, check_grid, is_int, level_cells
from dinf.fields.kernels import KERNELS, SEPARABLE, gaussian_weights_1d, radial_weights
from dinf.jet import Jet

INITS = ("product", "ones")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_AXES = 16  # the leave-two-out products hold d² terms per point and rank


class DInfCP(Field):
    """Factored ∂∞-Grid of CP rank ``rank`` (see the module docstring).

    ``resolution``: cells of the finest level of every 1D factor, an int or one per axis; level s
    has ``r_a / 2^s`` cells. ``kernel``, ``eps``, ``rho``, ``window``: the 1D weights', as
    ``DInfGrid``'s. ``init``: ``ones`` starts with every factor 1 + noise (u ≈ R; every rank
    sees every axis from the first step), ``product`` near u = 0 (the first axis' factors
    ``init_scale``·noise, the others 1 + noise); a zero start would be a saddle of the
    multilinear field. On PNd (rank 8, 8 192 points, 40 LM steps; ``python train.py pde=pnd
    model=dinf_cp solver.cp_lm.points=8192 trainer.max_steps=40``): ``ones`` 1.8e-6,
    ``model.init=product`` 2.2e-4. ``dtype``: the factors' precision
    (float64 by default: the solver is second order, and products of d factors cancel).

    Attributes solvers read: ``factors`` (one ``[nodes_a, C, R]`` parameter per axis, the
    levels' nodes concatenated), ``nodes_per_axis``, ``rank``, ``factored = True``.
    """

    factored = True  # u is a sum of products of 1D grids: dinf.solvers.cp_lm applies
    max_order = 2  # its closed-form jet stops at the Hessian

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 1,
        rank: int = 8,
        resolution: Resolution = 8,
        levels: int = 1,
        kernel: str = "gaussian",
        eps: float = 0.7,
        rho: int = 6,
        window: float = 0.0,
        init: str = "ones",
        init_scale: float = 0.1,
        dtype: str = "float64",
        seed: Optional[int] = None,
    ):
        super().__init__(in_dim, out_dim)
        check(1 <= in_dim <= MAX_AXES, "in_dim", f"the factored grid takes 1 to {MAX_AXES} axes, got {in_dim}")
        check(int(rank) >= 1, "rank", f"must be >= 1, got {rank!r}")
        check_choice("kernel", kernel, KERNELS)
        check_choice("init", init, INITS)
        check_choice("dtype", dtype, DTYPES)
        check(int(rho) >= 1, "rho", f"must be >= 1, got {rho}")
        check(eps > 0, "eps", f"must be > 0, got {eps}")
        check(window >= 0, "window", f"must be >= 0 (0: no window), got {window}")
        check(window == 0 or kernel in SEPARABLE, "window",
              f"the bump window is built for the Gaussian; kernel {kernel} takes window=0")
        check(init_scale > 0, "init_scale", f"must be > 0, got {init_scale}")
        axes = check_grid(in_dim, resolution, levels, 1)
        self.rank, self.levels = int(rank), int(levels)
        self.resolution: Resolution = int(resolution) if is_int(resolution) else list(axes)
        self.resolution_per_axis: Tuple[int, ...] = axes
        self.cells_per_axis: List[Tuple[int, ...]] = level_cells(axes, levels)
        self.kernel, self.eps, self.rho, self.window = kernel, float(eps), int(rho), float(window)
        self.init, self.init_scale = init, float(init_scale)
        # Per axis: the first node of each level in the concatenated factor, and the node count.
        self.level_offsets: List[List[int]] = []
        self.nodes_per_axis: List[int] = []
        for a in range(in_dim):
            sizes = [cells[a] + 1 + 2 * self.rho for cells in self.cells_per_axis]
            self.level_offsets.append([sum(sizes[:s]) for s in range(levels)])
            self.nodes_per_axis.append(sum(sizes))
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        dt = DTYPES[dtype]
        self.factors = nn.ParameterList(
            nn.Parameter(self._initial(a, n, gen).to(dt)) for a, n in enumerate(self.nodes_per_axis))
        self.register_buffer("offsets", torch.arange(-self.rho + 1, self.rho + 1), persistent=False)

    def _initial(self, axis: int, nodes: int, gen: Optional[torch.Generator]) -> Tensor:
        noise = torch.randn(nodes, self.out_dim, self.rank, generator=gen, dtype=torch.float64) * self.init_scale
        if self.init == "product" and axis == 0:
            return noise
        # 1 + noise on the finest level; the coarser levels start at their share of nothing.
        base = torch.zeros(nodes, self.out_dim, self.rank, dtype=torch.float64)
        first = self.level_offsets[axis][1] if self.levels > 1 else nodes
        base[:first] = 1.0
        return base + noise

    @property
    def dtype(self) -> torch.dtype:
        return self.factors[0].dtype

    # --- the 1D bases -------------------------------------------------------------------
    def axis_basis(self, t: Tensor, axis: int, order: int) -> Tuple[Tensor, Tensor]:
        """One axis' basis at coordinates ``t`` ``[N]`` on [-1, 1]: ``cols`` ``[N, L·K]`` (rows
        of ``factors[axis]``) and ``weights`` ``[N, order + 1, L·K]``, the weights and their
        t-derivatives up to ``order`` (K = 2ρ neighbours per level)."""
        if order > 2:
            raise NotImplementedError("closed-form jets are implemented up to order 2")
        cols, weights = [], []
        for s, cells in enumerate(self.cells_per_axis):
            n = cells[axis]
            idx = (t + 1.0) * (0.5 * n)  # index space of the level
            base = idx.detach().floor().clamp(0, n).long()
            nodes = base.unsqueeze(-1) + self.offsets  # [N, K]
            r = idx.unsqueeze(-1) - nodes.to(idx.dtype)
            if self.kernel in SEPARABLE:
                w = gaussian_weights_1d(r, self.eps, order, self.window, self.rho)  # [N, m, K]
            else:
                w = radial_weights(r.unsqueeze(-1), KERNELS[self.kernel], self.eps, order)  # [N, m, K] for d = 1
            scale = w.new_tensor([(0.5 * n) ** m for m in range(order + 1)])
            weights.append(w * scale[:, None])
            cols.append(nodes + self.rho + self.level_offsets[axis][s])
        return torch.cat(cols, -1), torch.cat(weights, -1)

    def factor_jets(self, x: Tensor, order: int = 2) -> Tensor:
        """``[N, d, order + 1, C, R]``: every factor's value and t-derivatives at ``x`` ``[N, d]``."""
        x = x.to(self.dtype)
        out = []
        for a in range(self.in_dim):
            cols, w = self.axis_basis(x[:, a], a, order)
            vals = self.factors[a][cols]  # [N, L·K, C, R]
            out.append(torch.einsum("nmk,nkcr->nmcr", w, vals))
        return torch.stack(out, 1)

    # --- the field ----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return cp_jet(self.factor_jets(x, 0), 0).value

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        if order < 0:
            raise ValueError(f"jet order must be >= 0, got {order}")
        return cp_jet(self.factor_jets(x, order), order)


def exclusive_products(v: Tensor, dim: int) -> Tensor:
    """``out_i = Π_{j≠i} v_j`` along ``dim`` by prefix and suffix products (no division)."""
    ones = torch.ones_like(v.narrow(dim, 0, 1))
    n = v.shape[dim]
    prefix = torch.cumprod(torch.cat([ones, v.narrow(dim, 0, n - 1)], dim), dim)
    suffix = torch.cumprod(torch.cat([ones, v.narrow(dim, 1, n - 1).flip(dim)], dim), dim).flip(dim)
    return prefix * suffix


def cp_jet(a: Tensor, order: int) -> Jet:
    """The jet of ``u_c = Σ_r Π_i a[:, i, 0, c, r]`` from the factors' 1D jets ``a``
    ``[N, d, m, C, R]`` (m ≥ order + 1: value, first, second derivative): value ``[N, C]``,
    gradient ``[N, C, d]``, Hessian ``[N, C, d, d]`` up to ``order``."""
    n, d = a.shape[:2]
    v = a[:, :, 0]  # [N, d, C, R]
    if d == 1:
        value = v[:, 0].sum(-1)
        if order == 0:
            return Jet(value)
        grad = a[:, :, 1].sum(-1).permute(0, 2, 1)
        hess = a[:, :, 2].sum(-1).permute(0, 2, 1).unsqueeze(-1) if order >= 2 else None
        return Jet(value, grad, hess)
    loo = exclusive_products(v, 1)  # [N, d, C, R]: Π over the other axes
    value = (v[:, 0] * loo[:, 0]).sum(-1)
    if order == 0:
        return Jet(value)
    grad = (a[:, :, 1] * loo).sum(-1).permute(0, 2, 1)  # [N, C, d]
    if order == 1:
        return Jet(value, grad)
    # Leave-two-out: for each j, the exclusive products of v with v_j replaced by 1.
    eye = torch.eye(d, dtype=torch.bool, device=a.device)[None, :, :, None, None]
    m = torch.where(eye, torch.ones_like(v).unsqueeze(1), v.unsqueeze(1))  # [N, d(j), d(i), C, R]
    l2 = exclusive_products(m, 2)  # [N, j, k, C, R]: Π_{i≠j,k} v_i (for k = j: Π_{i≠j} v_i)
    d1 = a[:, :, 1]
    mixed = d1.unsqueeze(2) * d1.unsqueeze(1) * l2  # [N, j, k, C, R]
    hess = torch.where(eye, _on_diagonal(a[:, :, 2] * loo, d), mixed).sum(-1)  # pure second derivatives on j = k
    return Jet(value, grad, hess.permute(0, 3, 1, 2))


def _on_diagonal(t: Tensor, d: int) -> Tensor:
    """``[N, d, C, R]`` → ``[N, d, d, C, R]`` with ``t[:, j]`` at ``[:, j, j]`` (zeros elsewhere)."""
    out = t.new_zeros(t.shape[0], d, d, *t.shape[2:])
    idx = torch.arange(d, device=t.device)
    out[:, idx, idx] = t
    return out


def factored_parts(field: torch.nn.Module) -> Tuple["DInfCP", Tensor, Tensor]:
    """The factored grid inside ``field`` and the per-axis affine map from the problem's
    coordinates onto its [-1, 1]^d (``x_unit = (x − lo)·scale − 1``): ``(grid, lo, scale)``.
    Raises ``ConfigError`` for a wrapper that is not a per-axis affine map (a graded grid)."""
    from dinf.fields.base import WrappedField
    from dinf.fields.mapped import MappedField

    lo, scale = None, None
    inner = field
    while isinstance(inner, WrappedField):
        if not isinstance(inner, MappedField):
            raise ConfigError("model.focus", f"the factored grid takes no {type(inner).__name__} (model.focus=null)")
        l, s = inner.lo.double(), inner.scale.double()
        # Compose: outer map then inner map (one MappedField in practice).
        lo, scale = (l, s) if lo is None else (lo + (l + 1.0) / scale, scale * s)
        inner = inner.inner
    if not getattr(inner, "factored", False):
        raise ConfigError("model", f"needs the factored grid (model=dinf_cp), not {type(inner).__name__}")
    d = inner.in_dim
    if lo is None:
        lo, scale = -torch.ones(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    return inner, lo, scale
