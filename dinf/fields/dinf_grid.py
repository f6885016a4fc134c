"""∂∞-Grid: multi-resolution co-located feature grids with RBF interpolation.

Derivatives come in closed form from the kernel weights: no autograd with respect to x, no
double backward. Each level's features are stored so that every query's (2ρ)^d neighbours are
one contiguous row of a "patch table" (an unfolded view of the grid); the gather is then one
row per point and level, and its backward one dense ``index_add_``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinf.errors import check, check_choice
from dinf.fields.base import Field, autograd_jet
from dinf.fields.decoders import DECODERS
from dinf.fields import rbf_cpu
from dinf.fields.gates import LevelGates
from dinf.fields.gather import gather_rows
from dinf.fields.grid_checks import check_grid
from dinf.fields.kernels import KERNELS, SEPARABLE, gaussian_weights_1d, radial_weights
from dinf.jet import Jet

EDGES = ("pad", "clamp")
# auto: a fused kernel where one applies (numba on the CPU, Triton on CUDA), else PyTorch;
# reference: the paper code's way, neighbours gathered by indexing and jets by autograd (double
# backward), for comparisons. triton forced on CPU tensors runs under Triton's interpreter (slow).
BACKENDS = ("auto", "torch", "numba", "triton", "reference")


@dataclass
class LevelBasis:
    """What one level contributes at N points, before its features are read.

    ``rows`` ``[N]``: row of the level's patch table holding the point's neighbourhood.
    ``weights``: per-axis ``[N, d, order+1, K]`` (separable kernels) or ``[N, A, K^d]``
    (value, gradient, Hessian rows; radial kernels), derivatives in index units.
    ``scale``: dt/dx of the level, to turn index-unit derivatives into x-derivatives.
    """

    rows: Tensor
    weights: Tensor
    scale: float
    separable: bool


class DInfGrid(Field):
    """Multi-resolution co-located RBF feature grid with a linear or MLP decoder (SPEC §1).

    Level s has ``resolution / 2^s`` cells per axis on [-1, 1]^d. ``edge="pad"`` stores ρ ghost
    nodes beyond the domain on every side; ``edge="clamp"`` clamps neighbour indices to the
    grid as the reference code does.
    """

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 1,
        resolution: int = 256,
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
    ):
        super().__init__(in_dim, out_dim)
        check_choice("kernel", kernel, KERNELS)
        check_choice("decoder", decoder, DECODERS)
        check_choice("edge", edge, EDGES)
        check_choice("backend", backend, BACKENDS)
        check(backend != "numba" or rbf_cpu.AVAILABLE, "backend", "numba is not installed")
        check(backend != "triton" or _rbf_triton() is not None, "backend", "triton is not installed")
        check_grid(in_dim, resolution, levels, features)
        check(rho >= 1, "rho", f"must be >= 1, got {rho}")
        check(eps > 0, "eps", f"must be > 0, got {eps}")
        self.resolution, self.levels, self.features = resolution, levels, features
        self.kernel, self.eps, self.rho, self.edge = kernel, float(eps), rho, edge
        self.backend = backend
        self.separable = kernel in SEPARABLE
        self.cells: List[int] = [resolution // 2**s for s in range(levels)]
        self.ghost = rho if edge == "pad" else 0  # ghost nodes beyond [-1, 1] on each side
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(*([n + 1 + 2 * self.ghost] * in_dim), features).uniform_(-init_scale, init_scale))
            for n in self.cells
        )
        kwargs = {"hidden": decoder_hidden} if decoder == "mlp" else {}
        self.decoder = DECODERS[decoder](levels * features, out_dim, **kwargs)
        self.register_buffer("offsets", torch.arange(-rho + 1, rho + 1), persistent=False)
        self.gates = LevelGates(gates, levels, features, in_dim, gate_resolution, kernel, eps, rho, edge)

    # --- the basis: neighbour rows and weight jets, independent of the features ---------
    def level_basis(self, x: Tensor, level: int, order: int) -> LevelBasis:
        n, d = self.cells[level], self.in_dim
        t = (x + 1.0) * (0.5 * n)  # index space of this level
        base = t.detach().floor().clamp(0, n).long()  # [N, d]
        nodes = base.unsqueeze(-1) + self.offsets  # [N, d, K]
        if self.edge == "clamp":
            nodes = nodes.clamp(0, n)
        r = t.unsqueeze(-1) - nodes.to(t.dtype)  # [N, d, K]
        # Patch tables have n + 2 rows per axis; a neighbourhood starts at padded index base + 1.
        rows = torch.zeros_like(base[:, 0])
        for a in range(d):
            rows = rows * (n + 2) + base[:, a] + 1
        if self.separable:
            weights = gaussian_weights_1d(r, self.eps, order)
        else:
            delta = _tensor_offsets(r)
            weights = radial_weights(delta, KERNELS[self.kernel], self.eps, order)
        return LevelBasis(rows, weights, 0.5 * n, self.separable)

    def basis(self, x: Tensor, level: int, order: int) -> Tuple[Tensor, Tensor]:
        """One level's sparse basis at N points: ``cols`` ``[N, K^d]`` (rows of
        ``grids[level].reshape(-1, F)``) and ``wjet`` ``[N, A, K^d]``, the weights' jets in x
        units (A = 1, then d gradient rows, then d·d Hessian rows, row-major, up to ``order``).

        The level's features at x are ``Σ_k wjet[:, :, k] · grid[cols[:, k]]``: the field is
        linear in its features, which is what least-squares solvers use.
        """
        b = self.level_basis(x, level, order)
        n, d, k = self.cells[level], self.in_dim, 2 * self.rho
        base = (x.detach() + 1.0).mul(0.5 * n).floor().clamp(0, n).long()
        nodes = base.unsqueeze(-1) + self.offsets  # [N, d, K]
        if self.edge == "clamp":
            nodes = nodes.clamp(0, n)
        side = self.grids[level].shape[0]
        cols = torch.zeros(x.shape[0], *([1] * d), dtype=torch.long, device=x.device)
        for a in range(d):
            shape = [x.shape[0]] + [1] * d
            shape[1 + a] = k
            cols = cols * side + (nodes[:, a] + self.ghost).reshape(shape)
        cols = cols.reshape(x.shape[0], k**d)
        if not b.separable:
            rows = [b.weights[:, :1]]
            if order >= 1:
                rows.append(b.weights[:, 1 : 1 + d] * b.scale)
            if order >= 2:
                rows.append(b.weights[:, 1 + d :] * b.scale**2)
            return cols, torch.cat(rows, 1)
        rows = []
        for combo in _component_combos(d, order):
            w = None
            for a, m in enumerate(combo):
                shape = [x.shape[0]] + [1] * d
                shape[1 + a] = k
                wa = b.weights[:, a, m].reshape(shape)
                w = wa if w is None else w * wa
            rows.append(w.reshape(x.shape[0], k**d) * b.scale ** sum(combo))
        return cols, torch.stack(rows, 1)

    def patch_table(self, level: int) -> Tensor:
        """``[(n + 2)^d, K^d · F]``: row i holds the features of one (2ρ)^d neighbourhood."""
        g = self.grids[level]
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

    # --- jets ---------------------------------------------------------------------------
    def features_jet(self, x: Tensor, order: int = 2) -> Jet:
        """Concatenated level features ``[N, levels·F]`` with their x-derivatives."""
        if order > 2:
            raise NotImplementedError("closed-form jets are implemented up to order 2")
        kernel = self._fused(x)
        if kernel:
            return self._fused_jet(x, order, kernel)
        parts = [self._level_jet(x, s, order) for s in range(self.levels)]
        value = torch.cat([p[0] for p in parts], 1)
        grad = torch.cat([p[1] for p in parts], 1) if order >= 1 else None
        hess = torch.cat([p[2] for p in parts], 1) if order >= 2 else None
        return Jet(value, grad, hess)

    def _fused(self, x: Tensor) -> str:
        """Which fused kernel serves this call: "numba", "triton" or "" (the PyTorch path);
        all give the same numbers."""
        if self.backend in ("torch", "reference"):
            return ""
        # The kernels give no derivative with respect to x: autograd through it needs PyTorch.
        ok = self.in_dim == 2 and self.separable and not x.requires_grad
        if self.backend == "triton":
            if not ok:
                raise ValueError("backend='triton' needs a 2D Gaussian grid and x without grad")
            return "triton"
        if x.device.type == "cuda" and self.backend == "auto":
            return "triton" if ok and _rbf_triton() is not None else ""
        ok = ok and x.device.type == "cpu" and rbf_cpu.AVAILABLE
        if self.backend == "numba" and not ok:
            raise ValueError("backend='numba' needs a 2D Gaussian grid on the CPU and x without grad")
        return "numba" if ok else ""

    def _fused_jet(self, x: Tensor, order: int, kernel: str = "numba") -> Jet:
        f = self.features
        table = torch.cat([g.reshape(-1, f) for g in self.grids])
        sizes = [g.shape[0] for g in self.grids]
        jet_fn = rbf_cpu.grid_jet_2d if kernel == "numba" else _rbf_triton().grid_jet_2d_triton
        out = jet_fn(
            x.to(table.dtype), table, self.cells, sizes, self.ghost, self.edge == "clamp", self.rho, self.eps, order
        )  # [N, S, F, A]
        n, c = x.shape[0], out.shape[1] * out.shape[2]  # c, not -1: n may be 0
        value = out[..., 0].reshape(n, c)
        grad = out[..., 1:3].reshape(n, c, 2) if order >= 1 else None
        hess = out[..., 3:7].reshape(n, c, 2, 2) if order >= 2 else None
        return Jet(value, grad, hess)

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
        grad = out[:, :, 1 : 1 + d] * b.scale
        if order == 1:
            return value, grad
        hess = out[:, :, 1 + d :].reshape(n, f, d, d) * (b.scale * b.scale)
        return value, grad, hess

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
        n, d, f = self.cells[level], self.in_dim, self.features
        t = (x + 1.0) * (0.5 * n)
        base = t.detach().floor().clamp(0, n).long()
        combos = torch.cartesian_prod(*([self.offsets] * d)).reshape(-1, d)  # [K^d, d]
        nodes = base.unsqueeze(1) + combos  # [N, K^d, d]
        if self.edge == "clamp":
            nodes = nodes.clamp(0, n)
        delta = t.unsqueeze(1) - nodes.to(t.dtype)
        phi = KERNELS[self.kernel]((delta * delta).sum(-1), self.eps)[0]
        w = phi / phi.sum(-1, keepdim=True)
        grid = self.grids[level]
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
    """Per-axis derivative orders of the jet entries: value, grad (d), Hessian (d·d, row-major)."""
    combos = [tuple([0] * d)]
    if order >= 1:
        combos += [tuple(int(a == i) for a in range(d)) for i in range(d)]
    if order >= 2:
        combos += [tuple(int(a == i) + int(a == j) for a in range(d)) for i, j in itertools.product(range(d), range(d))]
    return combos
