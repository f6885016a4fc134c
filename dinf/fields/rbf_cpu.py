"""Fused CPU kernels (numba) for the separable Gaussian ∂∞-Grid on two or three axes.

One pass per point computes, for every level, the 1D Gaussian weights and their derivatives
along each axis, reads the (2ρ)^d neighbour features and contracts them one axis at a time
(the last axis innermost) into value, gradient and Hessian. The backward pass recomputes the
weights and scatter-adds into per-thread buffers (no atomics, no races). This replaces dozens
of small PyTorch ops and tiny batched matmuls per level, and in 3D the PyTorch path's patch
table, which holds K³ = 216 copies of each level at ρ = 3. The PyTorch path in ``dinf_grid.py``
remains the reference and the fallback (1D or over three axes, radial kernels, or x that
requires grad). ``tests/test_rbf_cpu.py`` and ``tests/test_fields_nd.py`` check one against
the other.

Every axis has its own number of cells per level (``cells`` ``[S, d]``): t_a = (x_a + 1) n_a / 2
and the derivatives scale by n_a / 2 per axis.

Output layout ``[N, S, F, A]``, already in x units: in 2D A = 1 (value), 3 (+ d/dx0, d/dx1) or
7 (+ Hessian row-major); in 3D A = 1, 4 (+ gradient) or 13 (+ Hessian 3×3 row-major).
"""
from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from typing import Iterator, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from dinf.fields.kernels import WINDOW_FLOOR

try:
    import numba
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency, but keep the library importable
    AVAILABLE = False

NUM_COMPONENTS = {0: 1, 1: 3, 2: 7}  # 2D; num_components(d, order) for any d
log = logging.getLogger(__name__)
_CALLED: set = set()  # kernels called at least once in this process (compiled or loaded)
ANNOUNCE_AFTER_S = 1.0  # a first call this slow is compiling; one loaded from the cache is faster


def num_components(d: int, order: int) -> int:
    """A: the value, then d gradient and d·d Hessian entries, as far as ``order`` asks."""
    return 1 + (d if order >= 1 else 0) + (d * d if order >= 2 else 0)


@contextmanager
def _announce_compile(kind: str, order: int, rho: int, features: int, dims: int = 2) -> Iterator[None]:
    """Say so when a kernel's first call takes long: numba is compiling it (once per machine,
    ~15 s for all; cached on disk after). A call loaded from the cache returns before the timer."""
    key = (kind, order, rho, features, dims)
    if key in _CALLED:
        yield
        return
    timer = threading.Timer(ANNOUNCE_AFTER_S, log.info, args=(
        "compiling the fused CPU kernel (%s, order %d, ρ = %d, %d features, %d axes): one-time, about "
        "15 s in all; numba caches it on disk", kind, order, rho, features, dims))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        _CALLED.add(key)


if AVAILABLE:

    @njit(inline="always", fastmath=True, error_model="numpy")
    def _weights_1d(t, n, rho, eps2, win, clamp, order, ck, w, nodes):
        """Normalised 1D Gaussian weights ``w[a, k]`` (a-th t-derivative, a <= order) and nodes.

        Rows 3 and 4 of ``w`` are scratch: g = (log φ)', then g - ḡ, and the window's part of g'
        (see kernels.gaussian_weights_1d). ``win`` c > 0 multiplies φ by the bump
        exp(-c s⁴ / (1 - s²)), s = r / ρ (kernels.window_log): one exp per node. Without it,
        ``ck[k] = exp(-ε² j²)`` with j = k - ρ + 1: for unclamped nodes at unit spacing,
        exp(-ε² (r - j)²) ∝ exp(2ε² r j) · ck[k], so one exp per axis replaces 2ρ of them.
        """
        K = 2 * rho
        base = min(max(math.floor(t), 0), n)
        rc = t - base
        unclamped = not clamp or (base - rho + 1 >= 0 and base + rho <= n)
        if win > 0.0:
            floor = WINDOW_FLOOR * win
            for k in range(K):
                node = base + k - rho + 1
                if not unclamped:
                    node = min(max(node, 0), n)
                nodes[k] = node
                r = t - node
                sr = r / rho
                u = 1.0 - sr * sr
                if u > floor:
                    inv = 1.0 / u
                    s2 = sr * sr
                    w[0, k] = math.exp(-eps2 * r * r - win * s2 * s2 * inv)
                    w[3, k] = -2.0 * eps2 * r - 2.0 * win * sr * s2 * (2.0 - s2) * inv * inv / rho
                    w[4, k] = -2.0 * win * s2 * (6.0 - 3.0 * s2 + s2 * s2) * inv * inv * inv / (rho * rho)
                else:  # outside the bump (or underflowed): exactly no weight
                    w[0, k] = 0.0
                    w[3, k] = 0.0
                    w[4, k] = 0.0
        elif unclamped:
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
                w[3, k] = -2.0 * eps2 * (t - node)
        else:
            for k in range(K):
                node = min(max(base + k - rho + 1, 0), n)
                nodes[k] = node
                r = t - node
                w[3, k] = -2.0 * eps2 * r
                w[0, k] = math.exp(-eps2 * r * r)
        s = 0.0
        for k in range(K):
            s += w[0, k]
        gbar = 0.0
        inv = 1.0 / s
        for k in range(K):
            w[0, k] *= inv
            gbar += w[0, k] * w[3, k]
        if order >= 1:
            var = 0.0
            for k in range(K):
                dg = w[3, k] - gbar
                w[3, k] = dg
                w[1, k] = w[0, k] * dg
                var += w[0, k] * dg * dg
            if order >= 2:
                if win > 0.0:
                    mean4 = 0.0
                    for k in range(K):
                        mean4 += w[0, k] * w[4, k]
                    var += mean4  # w'' = w((g - ḡ)² - Var g + g' - mean g'); the -2ε² cancels
                    for k in range(K):
                        w[2, k] = w[0, k] * (w[3, k] * w[3, k] + w[4, k] - var)
                else:
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
    def _point_weights(x, p, c0, c1, rho, eps2, win, clamp, order, ck, w0, n0, w1, n1):
        """Both axes' weights of point p on a level of c0 × c1 cells."""
        _weights_1d((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, n0)
        _weights_1d((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, n1)

    @njit(inline="always")
    def _scratch(rho, eps2):
        K = 2 * rho
        z = np.zeros(K, dtype=np.int64)
        return np.zeros((5, K)), z, np.zeros((5, K)), z.copy(), _ck(rho, eps2)

    def _make_kernels(order: int, rho: int, F: int):
        """Forward and backward 2D kernels for one (order, ρ, features): constant loop bounds and
        scalar accumulators, so the compiler unrolls the small loops and keeps the partial sums
        in registers (accumulating into scratch arrays was 1.8× slower). numba caches each
        specialisation on disk."""
        K = 2 * rho

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def forward(x, table, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, out):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        _point_weights(x, p, cells[s, 0], cells[s, 1], rho, eps2, win, clamp, order, ck, w0, n0, w1, n1)
                        hx = 0.5 * cells[s, 0]  # dt/dx per axis
                        hy = 0.5 * cells[s, 1]
                        stride = sizes[s, 1]  # nodes along axis 1: the row stride of axis 0
                        base = offsets[s] + ghost * stride + ghost
                        for f in range(F):
                            # value, d/dx0, d/dx1, d²/dx0², d²/dx0dx1, d²/dx1²
                            av = 0.0
                            ax = 0.0
                            ay = 0.0
                            axx = 0.0
                            axy = 0.0
                            ayy = 0.0
                            for i in range(K):
                                row = base + n0[i] * stride
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
                                out[p, s, f, 1] = ax * hx
                                out[p, s, f, 2] = ay * hy
                            if order >= 2:
                                hxy = axy * (hx * hy)
                                out[p, s, f, 3] = axx * (hx * hx)
                                out[p, s, f, 4] = hxy
                                out[p, s, f, 5] = hxy
                                out[p, s, f, 6] = ayy * (hy * hy)

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def backward(x, grad, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, buf):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                # q[a, j]: the output gradients folded with the x1-weights, per x0-derivative order a
                q = np.zeros((3, K))
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        _point_weights(x, p, cells[s, 0], cells[s, 1], rho, eps2, win, clamp, order, ck, w0, n0, w1, n1)
                        hx = 0.5 * cells[s, 0]
                        hy = 0.5 * cells[s, 1]
                        stride = sizes[s, 1]
                        base = offsets[s] + ghost * stride + ghost
                        for f in range(F):
                            gv = grad[p, s, f, 0]
                            gx = 0.0
                            gy = 0.0
                            gxx = 0.0
                            gxy = 0.0
                            gyy = 0.0
                            if order >= 1:
                                gx = grad[p, s, f, 1] * hx
                                gy = grad[p, s, f, 2] * hy
                            if order >= 2:
                                gxx = grad[p, s, f, 3] * (hx * hx)
                                gxy = (grad[p, s, f, 4] + grad[p, s, f, 5]) * (hx * hy)
                                gyy = grad[p, s, f, 6] * (hy * hy)
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
                                row = base + n0[i] * stride
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

    @njit(inline="always")
    def _point_weights_3d(x, p, c0, c1, c2, rho, eps2, win, clamp, order, ck, w0, n0, w1, n1, w2, n2):
        """The three axes' weights of point p on a level of c0 × c1 × c2 cells."""
        _weights_1d((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, n0)
        _weights_1d((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, n1)
        _weights_1d((x[p, 2] + 1.0) * (0.5 * c2), c2, rho, eps2, win, clamp, order, ck, w2, n2)

    def _make_kernels_3d(order: int, rho: int, F: int):
        """Forward and backward 3D kernels, designed as the 2D ones (scalar accumulators, loops
        unrolled per (order, ρ, F), per-thread buffers). Axis 2 is innermost: its K nodes are
        consecutive rows of the table. The contraction goes one axis at a time, so a point's
        level costs 3K³ + 6K² + 10K multiply-adds per feature at order 2, not 10K³."""
        K = 2 * rho

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def forward(x, table, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, out):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                w2 = np.zeros((5, K))
                n2 = np.zeros(K, dtype=np.int64)
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        _point_weights_3d(x, p, cells[s, 0], cells[s, 1], cells[s, 2], rho, eps2, win, clamp, order, ck,
                                          w0, n0, w1, n1, w2, n2)
                        h0 = 0.5 * cells[s, 0]  # dt/dx per axis
                        h1 = 0.5 * cells[s, 1]
                        h2 = 0.5 * cells[s, 2]
                        stride1 = sizes[s, 2]  # row stride of axis 1
                        stride0 = sizes[s, 1] * stride1  # row stride of axis 0
                        base = offsets[s] + ghost * (stride0 + stride1 + 1)
                        for f in range(F):
                            # a_ijk: Σ w0^(i) w1^(j) w2^(k) v, the derivative orders per axis
                            a000 = 0.0
                            a100 = 0.0
                            a010 = 0.0
                            a001 = 0.0
                            a200 = 0.0
                            a110 = 0.0
                            a101 = 0.0
                            a020 = 0.0
                            a011 = 0.0
                            a002 = 0.0
                            for i in range(K):
                                row0 = base + n0[i] * stride0
                                # b_jk: axes 1 and 2 contracted, for this i
                                b00 = 0.0
                                b10 = 0.0
                                b01 = 0.0
                                b20 = 0.0
                                b11 = 0.0
                                b02 = 0.0
                                for j in range(K):
                                    row = row0 + n1[j] * stride1
                                    r0 = 0.0
                                    r1 = 0.0
                                    r2 = 0.0
                                    for k in range(K):
                                        v = table[row + n2[k], f]
                                        r0 += w2[0, k] * v
                                        if order >= 1:
                                            r1 += w2[1, k] * v
                                        if order >= 2:
                                            r2 += w2[2, k] * v
                                    b00 += w1[0, j] * r0
                                    if order >= 1:
                                        b10 += w1[1, j] * r0
                                        b01 += w1[0, j] * r1
                                    if order >= 2:
                                        b20 += w1[2, j] * r0
                                        b11 += w1[1, j] * r1
                                        b02 += w1[0, j] * r2
                                a000 += w0[0, i] * b00
                                if order >= 1:
                                    a100 += w0[1, i] * b00
                                    a010 += w0[0, i] * b10
                                    a001 += w0[0, i] * b01
                                if order >= 2:
                                    a200 += w0[2, i] * b00
                                    a110 += w0[1, i] * b10
                                    a101 += w0[1, i] * b01
                                    a020 += w0[0, i] * b20
                                    a011 += w0[0, i] * b11
                                    a002 += w0[0, i] * b02
                            out[p, s, f, 0] = a000
                            if order >= 1:
                                out[p, s, f, 1] = a100 * h0
                                out[p, s, f, 2] = a010 * h1
                                out[p, s, f, 3] = a001 * h2
                            if order >= 2:
                                # Hessian row-major from entry 4: xx xy xz / yx yy yz / zx zy zz
                                hxy = a110 * (h0 * h1)
                                hxz = a101 * (h0 * h2)
                                hyz = a011 * (h1 * h2)
                                out[p, s, f, 4] = a200 * (h0 * h0)
                                out[p, s, f, 5] = hxy
                                out[p, s, f, 6] = hxz
                                out[p, s, f, 7] = hxy
                                out[p, s, f, 8] = a020 * (h1 * h1)
                                out[p, s, f, 9] = hyz
                                out[p, s, f, 10] = hxz
                                out[p, s, f, 11] = hyz
                                out[p, s, f, 12] = a002 * (h2 * h2)

        @njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
        def backward(x, grad, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, buf):
            N = x.shape[0]
            S = cells.shape[0]
            chunk = (N + nthreads - 1) // nthreads
            for th in prange(nthreads):
                w0, n0, w1, n1, ck = _scratch(rho, eps2)
                w2 = np.zeros((5, K))
                n2 = np.zeros(K, dtype=np.int64)
                # q[c, k]: the output gradients folded with the axis-2 weights, per orders (a0, a1)
                # c = 00, 10, 01, 20, 11, 02; r[a1, k]: those folded with the axis-0 weights of one i.
                q = np.zeros((6, K))
                r = np.zeros((3, K))
                for p in range(th * chunk, min(N, (th + 1) * chunk)):
                    for s in range(S):
                        _point_weights_3d(x, p, cells[s, 0], cells[s, 1], cells[s, 2], rho, eps2, win, clamp, order, ck,
                                          w0, n0, w1, n1, w2, n2)
                        h0 = 0.5 * cells[s, 0]
                        h1 = 0.5 * cells[s, 1]
                        h2 = 0.5 * cells[s, 2]
                        stride1 = sizes[s, 2]
                        stride0 = sizes[s, 1] * stride1
                        base = offsets[s] + ghost * (stride0 + stride1 + 1)
                        for f in range(F):
                            # g_ijk: upstream gradient per derivative orders, in index units
                            g000 = grad[p, s, f, 0]
                            g100 = 0.0
                            g010 = 0.0
                            g001 = 0.0
                            g200 = 0.0
                            g110 = 0.0
                            g101 = 0.0
                            g020 = 0.0
                            g011 = 0.0
                            g002 = 0.0
                            if order >= 1:
                                g100 = grad[p, s, f, 1] * h0
                                g010 = grad[p, s, f, 2] * h1
                                g001 = grad[p, s, f, 3] * h2
                            if order >= 2:
                                g200 = grad[p, s, f, 4] * (h0 * h0)
                                g110 = (grad[p, s, f, 5] + grad[p, s, f, 7]) * (h0 * h1)
                                g101 = (grad[p, s, f, 6] + grad[p, s, f, 10]) * (h0 * h2)
                                g020 = grad[p, s, f, 8] * (h1 * h1)
                                g011 = (grad[p, s, f, 9] + grad[p, s, f, 11]) * (h1 * h2)
                                g002 = grad[p, s, f, 12] * (h2 * h2)
                            for k in range(K):
                                c0 = w2[0, k]
                                q00 = c0 * g000
                                if order >= 1:
                                    c1 = w2[1, k]
                                    q00 += c1 * g001
                                    q[1, k] = c0 * g100 + (c1 * g101 if order >= 2 else 0.0)
                                    q[2, k] = c0 * g010 + (c1 * g011 if order >= 2 else 0.0)
                                if order >= 2:
                                    q00 += w2[2, k] * g002
                                    q[3, k] = c0 * g200
                                    q[4, k] = c0 * g110
                                    q[5, k] = c0 * g020
                                q[0, k] = q00
                            for i in range(K):
                                row0 = base + n0[i] * stride0
                                e0 = w0[0, i]
                                e1 = w0[1, i] if order >= 1 else 0.0
                                e2 = w0[2, i] if order >= 2 else 0.0
                                for k in range(K):
                                    r0 = e0 * q[0, k]
                                    if order >= 1:
                                        r0 += e1 * q[1, k]
                                        r[1, k] = e0 * q[2, k]
                                    if order >= 2:
                                        r0 += e2 * q[3, k]
                                        r[1, k] += e1 * q[4, k]
                                        r[2, k] = e0 * q[5, k]
                                    r[0, k] = r0
                                for j in range(K):
                                    row = row0 + n1[j] * stride1
                                    b0 = w1[0, j]
                                    b1 = w1[1, j] if order >= 1 else 0.0
                                    b2 = w1[2, j] if order >= 2 else 0.0
                                    for k in range(K):
                                        val = b0 * r[0, k]
                                        if order >= 1:
                                            val += b1 * r[1, k]
                                        if order >= 2:
                                            val += b2 * r[2, k]
                                        buf[th, row + n2[k], f] += val

        return forward, backward


_KERNELS: dict = {}


def _kernels(order: int, rho: int, features: int, dims: int = 2):
    key = (order, rho, features, dims)
    if key not in _KERNELS:
        make = _make_kernels if dims == 2 else _make_kernels_3d
        _KERNELS[key] = make(order, rho, features)
    return _KERNELS[key]


class _GridJet(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, meta: tuple) -> Tensor:  # type: ignore[override]
        offsets, cells, sizes, ghost, clamp, rho, eps2, win, order = meta
        dims, features = cells.shape[1], table.shape[1]
        xn = x.detach().contiguous().numpy()
        tn = table.detach().contiguous().numpy()
        out = np.empty((x.shape[0], len(cells), features, num_components(dims, order)), dtype=tn.dtype)
        forward = _kernels(order, rho, features, dims)[0]
        with _announce_compile("forward", order, rho, features, dims):
            forward(xn, tn, offsets, cells, sizes, ghost, clamp, eps2, win, numba.get_num_threads(), out)
        ctx.save_for_backward(x)
        ctx.meta = meta
        ctx.table_shape = table.shape
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        offsets, cells, sizes, ghost, clamp, rho, eps2, win, order = ctx.meta
        dims, features = cells.shape[1], ctx.table_shape[1]
        threads = numba.get_num_threads()
        gn = grad.detach().contiguous().numpy()
        buf = np.zeros((threads,) + tuple(ctx.table_shape), dtype=gn.dtype)
        backward = _kernels(order, rho, features, dims)[1]
        with _announce_compile("backward", order, rho, features, dims):
            backward(x.detach().contiguous().numpy(), gn, offsets, cells, sizes, ghost, clamp, eps2, win, threads, buf)
        # The threads' buffers summed into the first, in place: buf.sum(0) wrote a fresh array,
        # 4× slower for a 2D+t grid's 25 MB table (page faults), and copied even for one thread.
        total = buf[0]
        for t in range(1, threads):
            total += buf[t]
        return None, torch.from_numpy(total), None


PerAxis = Union[int, Sequence[int]]  # one count for every axis, or one per axis


def level_arrays(cells: Sequence[PerAxis], sizes: Sequence[PerAxis], dims: int) -> Tuple[np.ndarray, ...]:
    """``cells``, ``sizes`` as ``[S, d]`` int64 arrays (an int per level means every axis) and
    each level's first row in the concatenated table ``[S]``. Shared with the Triton kernel."""
    cells_a = np.asarray(cells, dtype=np.int64).reshape(len(cells), -1)
    sizes_a = np.asarray(sizes, dtype=np.int64).reshape(len(sizes), -1)
    cells_a = np.broadcast_to(cells_a, (len(cells), dims)).copy()  # writable: one numba signature
    sizes_a = np.broadcast_to(sizes_a, (len(sizes), dims)).copy()
    offsets = np.concatenate([[0], np.cumsum(sizes_a.prod(1))[:-1]]).astype(np.int64)
    return offsets, cells_a, sizes_a


def grid_jet(x: Tensor, table: Tensor, cells: Sequence[PerAxis], sizes: Sequence[PerAxis], ghost: int,
             clamp: bool, rho: int, eps: float, order: int, window: float = 0.0) -> Tensor:
    """Jets of all levels' features at ``x`` ``[N, d]``, d = 2 or 3: ``[N, S, F, A]`` (module doc).

    ``table`` ``[Σ_s Π_a sizes[s][a], F]``: every level's grid flattened row-major and
    concatenated; ``cells``: cells per axis of each level (a d-tuple, or an int for all axes);
    ``sizes``: nodes per axis of each level (``cells + 1 + 2·ghost``), likewise.
    ``window``: the bump's strength c (``kernels.window_log``; 0: none).
    Differentiable with respect to ``table`` only.
    """
    if order > 2:
        raise NotImplementedError("closed-form jets are implemented up to order 2")
    dims = x.shape[1]
    if dims not in (2, 3):
        raise ValueError(f"the fused CPU kernel handles 2 or 3 axes, got x of shape {tuple(x.shape)}")
    offsets, cells_a, sizes_a = level_arrays(cells, sizes, dims)
    meta = (offsets, cells_a, sizes_a, int(ghost), bool(clamp), int(rho), float(eps) ** 2, float(window), int(order))
    return _GridJet.apply(x, table, meta)


def grid_jet_2d(x: Tensor, table: Tensor, cells: Sequence[PerAxis], sizes: Sequence[PerAxis], ghost: int,
                clamp: bool, rho: int, eps: float, order: int, window: float = 0.0) -> Tensor:
    """``grid_jet`` for ``x`` ``[N, 2]`` (the original 2D entry point)."""
    if x.shape[1] != 2:
        raise ValueError(f"grid_jet_2d takes x of shape [N, 2], got {tuple(x.shape)}")
    return grid_jet(x, table, cells, sizes, ghost, clamp, rho, eps, order, window)
