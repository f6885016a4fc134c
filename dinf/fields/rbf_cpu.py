"""Fused CPU kernels (numba) for the separable Gaussian ∂∞-Grid in 2D.

One pass per point computes, for every level, the 1D Gaussian weights and their derivatives,
reads the (2ρ)² neighbour features and contracts them into value, gradient and Hessian. The
backward pass recomputes the weights and scatter-adds into per-thread buffers (no atomics,
no races). This replaces dozens of small PyTorch ops and tiny batched matmuls per level; the
PyTorch path in ``dinf_grid.py`` remains the reference and the fallback (GPU, 3D, radial
kernels, or x that requires grad). ``tests/test_rbf_cpu.py`` checks one against the other.

Output layout ``[N, S, F, A]``: A = 1 (value), 3 (+ d/dx0, d/dx1) or 7 (+ Hessian row-major),
already in x units.
"""
from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

try:
    import numba
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency, but keep the library importable
    AVAILABLE = False

NUM_COMPONENTS = {0: 1, 1: 3, 2: 7}
log = logging.getLogger(__name__)
_CALLED: set = set()  # kernels called at least once in this process (compiled or loaded)
ANNOUNCE_AFTER_S = 1.0  # a first call this slow is compiling; one loaded from the cache is faster


@contextmanager
def _announce_compile(kind: str, order: int, rho: int, features: int) -> Iterator[None]:
    """Say so when a kernel's first call takes long: numba is compiling it (once per machine,
    ~15 s for all; cached on disk after). A call loaded from the cache returns before the timer."""
    key = (kind, order, rho, features)
    if key in _CALLED:
        yield
        return
    timer = threading.Timer(ANNOUNCE_AFTER_S, log.info, args=(
        "compiling the fused CPU kernel (%s, order %d, ρ = %d, %d features): one-time, about 15 s "
        "in all; numba caches it on disk", kind, order, rho, features))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        _CALLED.add(key)


if AVAILABLE:

    @njit(inline="always", fastmath=True, error_model="numpy")
    def _weights_1d(t, n, rho, eps2, clamp, order, ck, w, nodes):
        """Normalised 1D Gaussian weights ``w[a, k]`` (a-th t-derivative, a <= order) and nodes.

        Row 3 of ``w`` is scratch: the distance, then g - ḡ (see kernels.gaussian_weights_1d).
        ``ck[k] = exp(-ε² j²)`` with j = k - ρ + 1: for unclamped nodes at unit spacing,
        exp(-ε² (r - j)²) ∝ exp(2ε² r j) · ck[k], so one exp per axis replaces 2ρ of them.
        """
        K = 2 * rho
        base = min(max(math.floor(t), 0), n)
        rc = t - base
        unclamped = not clamp or (base - rho + 1 >= 0 and base + rho <= n)
        if unclamped:
            a = math.exp(2.0 * eps2 * rc)
            p = 1.0
            for k in range(rho - 1, K):
                w[0, k] = p * ck[k]
                p *= a
            inv_a = 1.0 / a  # one division: a loop of them costs more than all the rest
            p = inv_a
            for k in range(rho - 2, -1, -1):
                w[0, k] = p * ck[k]
                p *= inv_a
            for k in range(K):
                node = base + k - rho + 1
                nodes[k] = node
                w[3, k] = t - node
        else:
            for k in range(K):
                node = min(max(base + k - rho + 1, 0), n)
                nodes[k] = node
                r = t - node
                w[3, k] = r
                w[0, k] = math.exp(-eps2 * r * r)
        s = 0.0
        for k in range(K):
            s += w[0, k]
        gbar = 0.0
        inv = 1.0 / s
        for k in range(K):
            w[0, k] *= inv
            gbar += w[0, k] * (-2.0 * eps2 * w[3, k])
        if order >= 1:
            var = 0.0
            for k in range(K):
                dg = -2.0 * eps2 * w[3, k] - gbar
                w[3, k] = dg
                w[1, k] = w[0, k] * dg
                var += w[0, k] * dg * dg
            if order >= 2:
                for k in range(K):
                    w[2, k] = w[0, k] * (w[3, k] * w[3, k] - var)

    @njit(inline="always")
    def _ck(rho, eps2):
        ck = np.empty(2 * rho)
        for k in range(2 * rho):
            j = k - rho + 1
            ck[k] = math.exp(-eps2 * j * j)
        return ck

    @njit(inline="always")
    def _point_weights(x, p, n, rho, eps2, clamp, order, ck, w0, n0, w1, n1):
        """Both axes' weights of point p on a level of n cells; returns dt/dx = n / 2."""
        half = 0.5 * n
        _weights_1d((x[p, 0] + 1.0) * half, n, rho, eps2, clamp, order, ck, w0, n0)
        _weights_1d((x[p, 1] + 1.0) * half, n, rho, eps2, clamp, order, ck, w1, n1)
        return half

    @njit(inline="always")
    def _scratch(rho, eps2):
        K = 2 * rho
        z = np.zeros(K, dtype=np.int64)
        return np.zeros((4, K)), z, np.zeros((4, K)), z.copy(), _ck(rho, eps2)

    def _make_kernels(order: int, rho: int, F: int):
        """Forward and backward kernels for one (order, ρ, features): constant loop bounds and
        scalar accumulators, so the compiler unrolls the small loops and keeps the partial sums
        in registers (accumulating into scratch arrays was 1.8× slower). numba caches each
        specialisation on disk."""
        K = 2 * rho

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def forward(x, table, offsets, cells, sizes, ghost, clamp, eps2, nthreads, out):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        half = _point_weights(x, p, cells[s], rho, eps2, clamp, order, ck, w0, n0, w1, n1)
                        base = offsets[s] + ghost * sizes[s] + ghost
                        for f in range(F):
                            # value, d/dx0, d/dx1, d²/dx0², d²/dx0dx1, d²/dx1²
                            av = 0.0
                            ax = 0.0
                            ay = 0.0
                            axx = 0.0
                            axy = 0.0
                            ayy = 0.0
                            for i in range(K):
                                row = base + n0[i] * sizes[s]
                                r0 = 0.0
                                r1 = 0.0
                                r2 = 0.0
                                for j in range(K):
                                    v = table[row + n1[j], f]
                                    r0 += w1[0, j] * v
                                    if order >= 1:
                                        r1 += w1[1, j] * v
                                    if order >= 2:
                                        r2 += w1[2, j] * v
                                av += w0[0, i] * r0
                                if order >= 1:
                                    ax += w0[1, i] * r0
                                    ay += w0[0, i] * r1
                                if order >= 2:
                                    axx += w0[2, i] * r0
                                    axy += w0[1, i] * r1
                                    ayy += w0[0, i] * r2
                            out[p, s, f, 0] = av
                            if order >= 1:
                                out[p, s, f, 1] = ax * half
                                out[p, s, f, 2] = ay * half
                            if order >= 2:
                                h2 = half * half
                                out[p, s, f, 3] = axx * h2
                                out[p, s, f, 4] = axy * h2
                                out[p, s, f, 5] = axy * h2
                                out[p, s, f, 6] = ayy * h2

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def backward(x, grad, offsets, cells, sizes, ghost, clamp, eps2, nthreads, buf):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                # q[a, j]: the output gradients folded with the x1-weights, per x0-derivative order a
                q = np.zeros((3, K))
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        half = _point_weights(x, p, cells[s], rho, eps2, clamp, order, ck, w0, n0, w1, n1)
                        base = offsets[s] + ghost * sizes[s] + ghost
                        for f in range(F):
                            gv = grad[p, s, f, 0]
                            gx = 0.0
                            gy = 0.0
                            gxx = 0.0
                            gxy = 0.0
                            gyy = 0.0
                            if order >= 1:
                                gx = grad[p, s, f, 1] * half
                                gy = grad[p, s, f, 2] * half
                            if order >= 2:
                                h2 = half * half
                                gxx = grad[p, s, f, 3] * h2
                                gxy = (grad[p, s, f, 4] + grad[p, s, f, 5]) * h2
                                gyy = grad[p, s, f, 6] * h2
                            for j in range(K):
                                q0 = w1[0, j] * gv
                                if order >= 1:
                                    q0 += w1[1, j] * gy
                                    q[1, j] = w1[0, j] * gx
                                if order >= 2:
                                    q0 += w1[2, j] * gyy
                                    q[1, j] += w1[1, j] * gxy
                                    q[2, j] = w1[0, j] * gxx
                                q[0, j] = q0
                            for i in range(K):
                                row = base + n0[i] * sizes[s]
                                b0 = w0[0, i]
                                b1 = w0[1, i] if order >= 1 else 0.0
                                b2 = w0[2, i] if order >= 2 else 0.0
                                for j in range(K):
                                    val = b0 * q[0, j]
                                    if order >= 1:
                                        val += b1 * q[1, j]
                                    if order >= 2:
                                        val += b2 * q[2, j]
                                    buf[th, row + n1[j], f] += val

        return forward, backward


_KERNELS: dict = {}


def _kernels(order: int, rho: int, features: int):
    key = (order, rho, features)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernels(*key)
    return _KERNELS[key]


class _GridJet2D(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, meta: tuple) -> Tensor:  # type: ignore[override]
        offsets, cells, sizes, ghost, clamp, rho, eps2, order = meta
        xn = x.detach().contiguous().numpy()
        tn = table.detach().contiguous().numpy()
        out = np.empty((x.shape[0], len(cells), table.shape[1], NUM_COMPONENTS[order]), dtype=tn.dtype)
        forward = _kernels(order, rho, table.shape[1])[0]
        with _announce_compile("forward", order, rho, table.shape[1]):
            forward(xn, tn, offsets, cells, sizes, ghost, clamp, eps2, numba.get_num_threads(), out)
        ctx.save_for_backward(x)
        ctx.meta = meta
        ctx.table_shape = table.shape
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        offsets, cells, sizes, ghost, clamp, rho, eps2, order = ctx.meta
        threads = numba.get_num_threads()
        gn = grad.detach().contiguous().numpy()
        buf = np.zeros((threads,) + tuple(ctx.table_shape), dtype=gn.dtype)
        backward = _kernels(order, rho, ctx.table_shape[1])[1]
        with _announce_compile("backward", order, rho, ctx.table_shape[1]):
            backward(x.numpy(), gn, offsets, cells, sizes, ghost, clamp, eps2, threads, buf)
        return None, torch.from_numpy(buf.sum(0)), None


def grid_jet_2d(x: Tensor, table: Tensor, cells: list, sizes: list, ghost: int, clamp: bool,
                rho: int, eps: float, order: int) -> Tensor:
    """Jets of all levels' features at ``x`` ``[N, 2]``: ``[N, S, F, A]`` (see module doc).

    ``table`` ``[Σ sizes², F]``: every level's grid flattened row-major and concatenated;
    ``sizes``: nodes per axis of each level (``cells + 1 + 2·ghost``).
    """
    if order > 2:
        raise NotImplementedError("closed-form jets are implemented up to order 2")
    sizes_a = np.asarray(sizes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes_a * sizes_a)[:-1]]).astype(np.int64)
    meta = (offsets, np.asarray(cells, dtype=np.int64), sizes_a, int(ghost), bool(clamp), int(rho),
            float(eps) ** 2, int(order))
    return _GridJet2D.apply(x, table, meta)
