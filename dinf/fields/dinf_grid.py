"""∂∞-Grid: multi-resolution co-located feature grids with RBF interpolation.

Derivatives come in closed form from the kernel weights: no autograd with respect to x, no
double backward. Each level's features are stored so that every query's (2ρ)^d neighbours are
one contiguous row of a "patch table" (an unfolded view of the grid); the gather is then one
row per point and level, and its backward one dense ``index_add_``.

Each axis may have its own number of cells (``resolution=[256, 64]`` for 1D + t); the grid still
covers [-1, 1]^d, so a cell is 2 / n_a wide along axis a and derivatives scale per axis.

Fused kernels read the grids themselves (2 or 3 axes, the Gaussian, x without grad): numba on
the CPU for jets up to order 4 (``rbf_cpu``), Triton on CUDA up to order 2 (``rbf_triton``).
Everything else, higher orders included, takes the PyTorch path (``_level_jet``, the reference).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinf.errors import check, check_choice
from dinf.fields.base import Field, autograd_jet
from dinf.fields.decoders import DECODERS
from dinf.fields import rbf_cpu
from dinf.fields.gates import LevelGates
from dinf.fields.gather import gather_rows
from dinf.fields.grid_checks import Resolution, check_grid, is_int, level_cells
from dinf.fields.kernels import KERNELS, SEPARABLE, gaussian_weights_1d, radial_weights, window_log
from dinf.jet import Jet, higher_axes

EDGES = ("pad", "clamp")
# auto: a fused kernel where one applies (numba on the CPU, Triton on CUDA), else PyTorch;
# reference: the paper code's way, neighbours gathered by indexing and jets by autograd (double
# backward), for comparisons. triton forced on CPU tensors runs under Triton's interpreter (slow).
BACKENDS = ("auto", "torch", "numba", "triton", "reference")
FUSED_DIMS = (2, 3)  # axes the fused kernels handle (both numba and Triton)
# Neighbours a point reads per level, (2ρ)^d, beyond which the grid is refused: 5 axes at ρ = 3
# read 7 776 (experiments/dimension_table.py: past 8 GB at 8 cells, 2 levels, 16 384 points);
# the factored grid (model=dinf_cp) reads d·2ρ per rank instead.
MAX_NEIGHBOURS = 4096


@dataclass
class LevelBasis:
    """What one level contributes at N points, before its features are read.

    ``rows`` ``[N]``: row of the level's patch table holding the point's neighbourhood.
    ``weights``: per-axis ``[N, d, order+1, K]`` (separable kernels) or ``[N, A, K^d]``
    (value, gradient, Hessian rows; radial kernels), derivatives in index units.
    ``scales``: dt_a/dx_a per axis (n_a / 2), to turn index-unit derivatives into x-derivatives.
    ``nodes`` ``[N, d, K]``: the neighbours' node indices per axis (clamped for
    ``edge="clamp"``, before the ghost offset).
    """

    rows: Tensor
    weights: Tensor
    scales: Tuple[float, ...]
    separable: bool
    nodes: Optional[Tensor] = None

    @property
    def scale(self) -> float:
        """dt/dx shared by all axes; only defined when every axis has the same cells."""
        if any(s != self.scales[0] for s in self.scales):
            raise ValueError(f"the axes have different scales {self.scales}: read LevelBasis.scales")
        return self.scales[0]


class DInfGrid(Field):
    """Multi-resolution co-located RBF feature grid with a linear or MLP decoder (the ∂∞-Grid paper, ICLR 2026).

    ``resolution``: cells of the finest level, an int (every axis) or one int per axis. Level s
    has ``r_a / 2^s`` cells along axis a on [-1, 1]^d. ``edge="pad"`` stores ρ ghost nodes
    beyond the domain on every side; ``edge="clamp"`` clamps neighbour indices to the grid as
    the reference code does.

    Attributes other code reads: ``resolution`` (as given: an int or a list),
    ``resolution_per_axis`` (a tuple), ``cells_per_axis`` (per level, a tuple per axis),
    ``cells`` (per level an int when all axes agree, as for an int resolution, else the tuple)
    and ``cells_total`` (the finest level's cell count, ``resolution ** in_dim`` for an int).

    ``periodic``: axes (indices) on which the grid wraps: node ``n_a`` is node 0, so the field
    and all its derivatives agree exactly on the two faces, x = -1 and x = 1. Such an axis stores
    its ``n_a`` distinct nodes only (no ghosts); the jets read a wrapped copy (``full_grid``), and
    ``basis`` gives columns modulo ``n_a``.
    """

    has_basis = True  # basis(x, level, order): the jets of the interpolation weights

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 1,
        resolution: Resolution = 256,
        levels: int = 6,
        features: int = 2,
        kernel: str = "gaussian",
        eps: float = 1.0,
        rho: int = 3,
        decoder: str = "linear",
        decoder_hidden: int = 64,
        edge: str = "pad",
        init_scale: float = 1e-4,
        backend: str = "auto",
        gates: str = "none",
        gate_resolution: int = 8,
        window: float = 0.0,
        periodic: Sequence[int] = (),
    ):
        super().__init__(in_dim, out_dim)
        check_choice("kernel", kernel, KERNELS)
        check_choice("decoder", decoder, DECODERS)
        check_choice("edge", edge, EDGES)
        check_choice("backend", backend, BACKENDS)
        check(backend != "numba" or rbf_cpu.AVAILABLE, "backend", "numba is not installed")
        check(backend != "triton" or _rbf_triton() is not None, "backend", "triton is not installed")
        check((2 * rho) ** in_dim <= MAX_NEIGHBOURS, "rho",
              f"∂∞-Grid reads (2ρ)^d = {(2 * rho) ** in_dim:,} neighbours a point in {in_dim} axes (at most "
              f"{MAX_NEIGHBOURS:,}): use model=dinf_cp, the factored grid, for {in_dim} axes (or a smaller kernel.rho)")
        axes = check_grid(in_dim, resolution, levels, features)
        check(rho >= 1, "rho", f"must be >= 1, got {rho}")
        check(eps > 0, "eps", f"must be > 0, got {eps}")
        check(window >= 0, "window", f"must be >= 0 (0: no window), got {window}")
        check(window == 0 or kernel in SEPARABLE, "window",
              f"the bump window is built for the separable Gaussian; kernel {kernel} takes window=0")
        periodic = tuple(sorted(int(a) for a in (periodic or ())))
        check(all(0 <= a < in_dim for a in periodic) and len(set(periodic)) == len(periodic), "periodic",
              f"axes must be distinct indices in 0..{in_dim - 1}, got {list(periodic)}")
        check(not periodic or edge == "pad", "periodic", "a periodic axis wraps its nodes; it takes edge=pad")
        self.periodic: Tuple[int, ...] = periodic
        self.resolution: Resolution = int(resolution) if is_int(resolution) else list(axes)
        self.levels, self.features = levels, features
        self.kernel, self.eps, self.rho, self.edge = kernel, float(eps), rho, edge
        self.window = float(window)  # bump strength c (kernels.window_log); 0: the plain, truncated Gaussian
        self.backend = backend
        self.separable = kernel in SEPARABLE
        self.resolution_per_axis: Tuple[int, ...] = axes
        self.cells_per_axis: List[Tuple[int, ...]] = level_cells(axes, levels)
        self.isotropic = len(set(axes)) == 1  # the same cells on every axis
        # One int per level when the axes agree: code written for square grids reads it so.
        self.cells: List[Union[int, Tuple[int, ...]]] = (
            [c[0] for c in self.cells_per_axis] if self.isotropic else list(self.cells_per_axis))
        self.ghost = rho if edge == "pad" else 0  # ghost nodes beyond [-1, 1] on each side
        # A periodic axis keeps its n distinct nodes; the others n + 1 and the ghosts.
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(*self.level_sides(cells),
                                     features).uniform_(-init_scale, init_scale))
            for cells in self.cells_per_axis
        )
        kwargs = {"hidden": decoder_hidden} if decoder == "mlp" else {}
        self.decoder = DECODERS[decoder](levels * features, out_dim, **kwargs)
        self.register_buffer("offsets", torch.arange(-rho + 1, rho + 1), persistent=False)
        self.gates = LevelGates(gates, levels, features, in_dim, gate_resolution, kernel, eps, rho, edge, window,
                                grid_class=DInfGrid)

    @property
    def max_order(self) -> Optional[int]:
        """Any order for the Gaussian (closed-form weight jets to every order), 2 for the radial
        kernels and the tanh decoder."""
        if not self.separable or getattr(self.decoder, "max_order", None) is not None:
            return 2
        return None

    @property
    def cells_total(self) -> int:
        """Cells of the finest level over all axes (``resolution ** in_dim`` for an int)."""
        return math.prod(self.resolution_per_axis)

    # --- index space of a level ---------------------------------------------------------
    def _to_index(self, x: Tensor, level: int, cells: Optional[Tuple[int, ...]] = None) -> Tensor:
        """t = (x + 1) n_a / 2: node units of the level (or of ``cells`` per axis), per axis."""
        cells = cells or self.cells_per_axis[level]
        if self.isotropic:  # a Python float, as before per-axis cells: same ops, same numbers
            return (x + 1.0) * (0.5 * cells[0])
        return (x + 1.0) * x.new_tensor([0.5 * n for n in cells])

    def _clamp_nodes(self, v: Tensor, level: int, axis_dim: int, cells: Optional[Tuple[int, ...]] = None) -> Tensor:
        """``v`` clamped into [0, n_a], the axis index a running along dimension ``axis_dim``."""
        cells = cells or self.cells_per_axis[level]
        if self.isotropic:
            return v.clamp(0, cells[0])
        shape = [1] * v.dim()
        shape[axis_dim] = len(cells)
        return torch.minimum(v.clamp_min(0), torch.tensor(cells, dtype=v.dtype, device=v.device).reshape(shape))

    def _scaled(self, t: Tensor, level: int, power: int, cells: Optional[Tuple[int, ...]] = None) -> Tensor:
        """Index-unit derivatives ``t`` ``[..., d]`` (power 1) or ``[..., d, d]`` (power 2) in x units."""
        scales = [0.5 * n for n in (cells or self.cells_per_axis[level])]
        if self.isotropic:
            return t * scales[0] ** power
        s = t.new_tensor(scales)
        return t * (s if power == 1 else s[:, None] * s[None, :])

    # --- the basis: neighbour rows and weight jets, independent of the features ---------
    def level_basis(self, x: Tensor, level: int, order: int, cells: Optional[Tuple[int, ...]] = None) -> LevelBasis:
        """``cells``: a level of these cells per axis in place of level ``level``'s (a finer level
        a refined grid adds, ``dinf.fields.refined``)."""
        cells, d = tuple(cells or self.cells_per_axis[level]), self.in_dim
        t = self._to_index(x, level, cells)  # index space of this level
        base = self._clamp_nodes(t.detach().floor(), level, 1, cells).long()  # [N, d]
        nodes = base.unsqueeze(-1) + self.offsets  # [N, d, K]
        if self.edge == "clamp":
            nodes = self._clamp_nodes(nodes, level, 1, cells)
        r = t.unsqueeze(-1) - nodes.to(t.dtype)  # [N, d, K]
        # Patch tables have n_a + 2 rows along axis a; a neighbourhood starts at padded index base + 1.
        rows = torch.zeros_like(base[:, 0])
        for a in range(d):
            rows = rows * (cells[a] + 2) + base[:, a] + 1
        if self.separable:
            weights = gaussian_weights_1d(r, self.eps, order, self.window, self.rho)
        else:
            delta = _tensor_offsets(r)
            weights = radial_weights(delta, KERNELS[self.kernel], self.eps, order)
        return LevelBasis(rows, weights, tuple(0.5 * n for n in cells), self.separable, nodes)

    def basis(self, x: Tensor, level: int, order: int, cells: Optional[Tuple[int, ...]] = None) -> Tuple[Tensor, Tensor]:
        """One level's sparse basis at N points: ``cols`` ``[N, K^d]`` (rows of
        ``grids[level].reshape(-1, F)``) and ``wjet`` ``[N, A, K^d]``, the weights' jets in x
        units (A = 1, then d gradient rows, then d·d Hessian rows, row-major, up to ``order``).

        The level's features at x are ``Σ_k wjet[:, :, k] · grid[cols[:, k]]``: the field is
        linear in its features, which is what least-squares solvers use. ``cells``: the basis of a
        level of these cells per axis (columns over its nodes as it would store them), in place of
        level ``level``'s.
        """
        b = self.level_basis(x, level, order, cells)
        d, k = self.in_dim, 2 * self.rho
        sides = self.level_sides(cells) if cells else self.grids[level].shape[:-1]  # nodes per axis, ghosts included
        cols = torch.zeros(x.shape[0], *([1] * d), dtype=torch.long, device=x.device)
        for a in range(d):
            shape = [x.shape[0]] + [1] * d
            shape[1 + a] = k
            index = b.nodes[:, a] % sides[a] if a in self.periodic else b.nodes[:, a] + self.ghost
            cols = cols * sides[a] + index.reshape(shape)
        cols = cols.reshape(x.shape[0], k**d)
        if not b.separable:
            if order > 2:
                raise NotImplementedError(f"kernel={self.kernel} gives derivatives up to order 2; kernel=gaussian gives any order")
            rows = [b.weights[:, :1]]
            if order >= 1:
                rows.append(self._scaled(b.weights[:, 1 : 1 + d].transpose(1, 2), level, 1, cells).transpose(1, 2))
            if order >= 2:
                hess = b.weights[:, 1 + d :].transpose(1, 2).reshape(x.shape[0], k**d, d, d)
                rows.append(self._scaled(hess, level, 2, cells).reshape(x.shape[0], k**d, d * d).transpose(1, 2))
            return cols, torch.cat(rows, 1)
        rows = []
        for combo in _component_combos(d, order):
            w = None
            for a, m in enumerate(combo):
                shape = [x.shape[0]] + [1] * d
                shape[1 + a] = k
                wa = b.weights[:, a, m].reshape(shape)
                w = wa if w is None else w * wa
            scale = math.prod(sc**m for sc, m in zip(b.scales, combo))  # d^|m| / dx^m = Π (n_a/2)^m_a
            rows.append(w.reshape(x.shape[0], k**d) * scale)
        return cols, torch.stack(rows, 1)

    def level_sides(self, cells: Sequence[int]) -> Tuple[int, ...]:
        """Stored nodes per axis of a level of ``cells`` per axis: ``n_a`` on a periodic axis,
        ``n_a + 1 + 2·ghost`` on the others."""
        return tuple(int(n) if a in self.periodic else int(n) + 1 + 2 * self.ghost for a, n in enumerate(cells))

    def patch_table(self, level: int) -> Tensor:
        """``[Π_a (n_a + 2), K^d · F]``: row i holds the features of one (2ρ)^d neighbourhood.

        K^d times the level's memory: the fused kernels read the grid itself instead."""
        g = self.full_grid(level)
        d, k = self.in_dim, 2 * self.rho
        if self.edge == "clamp":
            # Replicating the border ρ times is exactly index clamping.
            chw = g.movedim(-1, 0).unsqueeze(0)
            pad = [self.rho] * (2 * d)
            g = F.pad(chw, pad, mode="replicate")[0].movedim(0, -1)
        for a in range(d):
            g = g.unfold(a, k, 1)  # [..., F, K, ...]: unfold appends the window axis
        perm = list(range(d)) + list(range(d + 1, 2 * d + 1)) + [d]
        g = g.permute(*perm)
        return g.reshape(-1, (k**d) * self.features)

    def full_grid(self, level: int) -> Tensor:
        """``grids[level]`` with every axis laid out as ``n_a + 1 + 2·ghost`` nodes: a periodic
        axis' stored nodes repeated around (node j is stored node (j − ghost) mod n_a);
        differentiable, so gradients of the copies add up on the stored nodes."""
        g = self.grids[level]
        for a in self.periodic:
            n = g.shape[a]
            g = g.index_select(a, torch.arange(-self.ghost, n + 1 + self.ghost, device=g.device) % n)
        return g

    # --- jets ---------------------------------------------------------------------------
    def features_jet(self, x: Tensor, order: int = 2) -> Jet:
        """Concatenated level features ``[N, levels·F]`` with their x-derivatives (``max_order``).
        The numba kernel serves orders up to ``rbf_cpu.MAX_ORDER`` (4), Triton up to 2; higher
        orders take the PyTorch path."""
        if order > 2 and not self.separable:
            raise NotImplementedError(f"kernel={self.kernel} gives derivatives up to order 2; kernel=gaussian gives any order")
        kernel = self._fused(x) if order <= rbf_cpu.MAX_ORDER else ""
        if kernel == "triton" and order > 2:  # the Triton kernel's weights stop at the Hessian
            kernel = ""
        if kernel:
            return self._fused_jet(x, order, kernel)
        parts = [self._level_jet(x, s, order) for s in range(self.levels)]
        return Jet(*(torch.cat([p[i] for p in parts], 1) if len(parts[0]) > i else None for i in range(4)))

    def _fused(self, x: Tensor) -> str:
        """Which fused kernel serves this call: "numba", "triton" or "" (the PyTorch path);
        all give the same numbers."""
        if self.backend in ("torch", "reference"):
            return ""
        # The kernels give no derivative with respect to x: autograd through it needs PyTorch.
        ok = self.in_dim in FUSED_DIMS and self.separable and not x.requires_grad
        if self.backend == "triton":
            if not ok:
                raise ValueError("backend='triton' needs a 2D or 3D Gaussian grid and x without grad")
            return "triton"
        if x.device.type == "cuda" and self.backend == "auto":
            return "triton" if ok and _rbf_triton() is not None else ""
        ok = ok and x.device.type == "cpu" and rbf_cpu.AVAILABLE
        if self.backend == "numba" and not ok:
            raise ValueError("backend='numba' needs a 2D or 3D Gaussian grid on the CPU and x without grad")
        return "numba" if ok else ""

    def _fused_jet(self, x: Tensor, order: int, kernel: str = "numba") -> Jet:
        f, d = self.features, self.in_dim
        grids = [self.full_grid(s) for s in range(self.levels)]
        table = torch.cat([g.reshape(-1, f) for g in grids])
        sizes = [tuple(g.shape[:-1]) for g in grids]
        jet_fn = rbf_cpu.grid_jet if kernel == "numba" else _rbf_triton().grid_jet_triton
        out = jet_fn(
            x.to(table.dtype), table, self.cells_per_axis, sizes, self.ghost, self.edge == "clamp", self.rho,
            self.eps, order, self.window,
        )  # [N, S, F, A]
        n, c = x.shape[0], out.shape[1] * out.shape[2]  # c, not -1: n may be 0
        value = out[..., 0].reshape(n, c)
        grad = out[..., 1 : 1 + d].reshape(n, c, d) if order >= 1 else None
        hess = out[..., 1 + d : 1 + d + d * d].reshape(n, c, d, d) if order >= 2 else None
        higher = out[..., 1 + d + d * d :].reshape(n, c, len(higher_axes(d, order))) if order >= 3 else None
        return Jet(value, grad, hess, higher)

    def _level_jet(self, x: Tensor, level: int, order: int) -> Tuple[Tensor, ...]:
        b = self.level_basis(x, level, order)
        n, d, k, f = x.shape[0], self.in_dim, 2 * self.rho, self.features
        patch = gather_rows(self.patch_table(level), b.rows)  # [N, K^d F]
        if b.separable:
            out = _contract_separable(b.weights, patch.view(n, k, -1))  # [N, F, m^d]
            comps = _component_index(d, order, x.device)
            out = out[:, :, comps]  # [N, F, A]
        else:
            out = torch.bmm(b.weights, patch.view(n, k**d, f)).transpose(1, 2)  # [N, F, A]
        value = out[:, :, 0]
        if order == 0:
            return (value,)
        grad = self._scaled(out[:, :, 1 : 1 + d], level, 1)
        if order == 1:
            return value, grad
        hess = self._scaled(out[:, :, 1 + d : 1 + d + d * d].reshape(n, f, d, d), level, 2)
        if order == 2:
            return value, grad, hess
        scales = [0.5 * c for c in self.cells_per_axis[level]]
        factor = out.new_tensor([math.prod(scales[a] for a in axes) for axes in higher_axes(d, order)])
        return value, grad, hess, out[:, :, 1 + d + d * d :] * factor

    def forward(self, x: Tensor) -> Tensor:
        if self.backend == "reference":
            feats = torch.cat([self._reference_level(x, s) for s in range(self.levels)], 1)
            return self.decoder(self.gates(Jet(feats), x).value)
        return self.decoder(self.gates(self.features_jet(x, 0), x).value)

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        if self.backend == "reference":
            return autograd_jet(self, x, order)
        return self.decoder.jet(self.gates(self.features_jet(x, order), x))

    def _reference_level(self, x: Tensor, level: int) -> Tensor:
        """One level's features the way the reference code computes them: all (2ρ)^d
        neighbours gathered by advanced indexing, weights from differentiable PyTorch ops."""
        d, f = self.in_dim, self.features
        t = self._to_index(x, level)
        base = self._clamp_nodes(t.detach().floor(), level, 1).long()
        combos = torch.cartesian_prod(*([self.offsets] * d)).reshape(-1, d)  # [K^d, d]
        nodes = base.unsqueeze(1) + combos  # [N, K^d, d]
        if self.edge == "clamp":
            nodes = self._clamp_nodes(nodes, level, 2)
        delta = t.unsqueeze(1) - nodes.to(t.dtype)
        phi = KERNELS[self.kernel]((delta * delta).sum(-1), self.eps)[0]
        if self.window > 0:  # the per-axis bump, from its own formula (kernels.window_log)
            inside, ell, _, _ = window_log(delta / self.rho, self.window)
            phi = phi * torch.where(inside, torch.exp(ell), torch.zeros_like(ell)).prod(-1)
        w = phi / phi.sum(-1, keepdim=True)
        grid = self.full_grid(level)
        flat = torch.zeros_like(base[:, :1])
        for a in range(d):
            flat = flat * grid.shape[a] + nodes[..., a] + self.ghost
        feats = grid.reshape(-1, f)[flat]  # [N, K^d, F]
        return (w.unsqueeze(-1) * feats).sum(1)


def _rbf_triton():
    """The Triton kernels' module, or None without triton (imported on first use: importing
    triton is slow, and CPU runs never need it)."""
    from dinf.fields import rbf_triton

    return rbf_triton if rbf_triton.AVAILABLE else None


def _tensor_offsets(r: Tensor) -> Tensor:
    """Per-axis offsets ``[N, d, K]`` -> offsets to all K^d tensor-product nodes ``[N, K^d, d]``."""
    n, d, k = r.shape
    axes = []
    for a in range(d):
        shape = [n] + [1] * d
        shape[1 + a] = k
        axes.append(r[:, a].reshape(shape).expand(n, *([k] * d)))
    return torch.stack(axes, -1).reshape(n, k**d, d)


def _contract_separable(w: Tensor, patch: Tensor) -> Tensor:
    """Contract ``patch`` ``[N, K, (K...) F]`` with per-axis weights ``w`` ``[N, d, m, K]``.

    One batched matmul per axis; returns ``[N, F, m^d]`` (axis-0 derivative order slowest).
    """
    n, d, m, k = w.shape
    t = patch
    for a in range(d):
        t = torch.bmm(w[:, a], t.reshape(n, k, -1))  # [N, m, rest]
        t = t.transpose(1, 2)  # move this axis' derivative order behind the rest
    return t.reshape(n, -1, m**d)


_COMPONENTS: dict = {}


def _component_index(d: int, order: int, device: torch.device) -> Tensor:
    """Flat indices into m^d derivative combos for: value, grad (d), Hessian (d·d, row-major)."""
    key = (d, order, str(device))
    if key not in _COMPONENTS:
        m = order + 1
        flat = [sum(c[a] * m ** (d - 1 - a) for a in range(d)) for c in _component_combos(d, order)]
        _COMPONENTS[key] = torch.tensor(flat, device=device)
    return _COMPONENTS[key]


def _component_combos(d: int, order: int) -> List[Tuple[int, ...]]:
    """Per-axis derivative orders of the jet entries: value, grad (d), Hessian (d·d, row-major),
    then the higher derivatives (``dinf.jet.higher_axes``)."""
    combos = [tuple([0] * d)]
    if order >= 1:
        combos += [tuple(int(a == i) for a in range(d)) for i in range(d)]
    if order >= 2:
        combos += [tuple(int(a == i) + int(a == j) for a in range(d)) for i, j in itertools.product(range(d), range(d))]
    combos += [tuple(axes.count(a) for a in range(d)) for axes in higher_axes(d, order)]
    return combos
