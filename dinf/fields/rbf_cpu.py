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

Orders 0–2 run kernels unrolled per (order, ρ, features) with scalar accumulators (the hot
path). Orders 3 and 4 run looped kernels (``_forward_any_2d`` …) that take order and ρ at run
time, one compilation per axis count and dtype: their 1D weights follow kernels.py's Bell
polynomials (``_weights_1d_any``). The Triton kernel (rbf_triton.py) stops at order 2.

Output layout ``[N, S, F, A]``, already in x units: in 2D A = 1 (value), 3 (+ d/dx0, d/dx1) or
7 (+ Hessian row-major); in 3D A = 1, 4 (+ gradient) or 13 (+ Hessian 3×3 row-major); orders 3
and 4 append their entries along ``dinf.jet.higher_axes`` (A = ``dinf.jet.entry_count``).
"""
from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from dinf.fields.kernels import WINDOW_FLOOR
from dinf.jet import entry_count, higher_axes

try:
    import numba
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency, but keep the library importable
    AVAILABLE = False

NUM_COMPONENTS = {0: 1, 1: 3, 2: 7}  # 2D; num_components(d, order) for any d
# The highest order the numba kernels serve: the looped kernels write the weights' Bell
# polynomials out to order 4 (what the fourth-order problems need); above it, the PyTorch path.
MAX_ORDER = 4
_M = MAX_ORDER + 1  # per-axis derivative orders the looped kernels contract (a compile-time constant)
log = logging.getLogger(__name__)
_CALLED: set = set()  # kernels called at least once in this process (compiled or loaded)
ANNOUNCE_AFTER_S = 1.0  # a first call this slow is compiling; one loaded from the cache is faster


def num_components(d: int, order: int) -> int:
    """A: the value, then d gradient and d·d Hessian entries, then the orders 3 … ``order``
    along ``dinf.jet.higher_axes``, as far as ``order`` asks (``dinf.jet.entry_count``)."""
    return entry_count(order, d)


def entry_orders(d: int, order: int) -> np.ndarray:
    """``[A, d]`` int64: the per-axis derivative orders of each output entry (the layout above)."""
    rows = [[0] * d]
    if order >= 1:
        rows += [[int(a == i) for a in range(d)] for i in range(d)]
    if order >= 2:
        rows += [[int(a == i) + int(a == j) for a in range(d)] for i in range(d) for j in range(d)]
    rows += [[axes.count(a) for a in range(d)] for axes in higher_axes(d, order)]
    return np.array(rows, dtype=np.int64)


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

    # Not inlined (unlike _weights_1d): each kernel calls it two or three times, and inlined
    # copies made the looped kernels' compilation several times slower.
    @njit(fastmath=True, cache=True, error_model="numpy")
    def _weights_1d_any(t, n, rho, eps2, win, clamp, order, ck, w, a, bell, nodes):
        """Normalised 1D Gaussian weights ``w[m, k]``, m-th t-derivative for m <= order (3 or 4;
        rows above stay 0), and nodes, as kernels.gaussian_weights_1d computes them (its
        docstring): the log-kernel's derivatives a[j] (j = 1 … 4) centred on their w-means,
        their complete Bell polynomials ``bell[m]`` and the quotient rule
        w⁽ᵐ⁾ = w Bₘ − Σⱼ C(m, j) mean_w(Bⱼ) w⁽ᵐ⁻ʲ⁾, written out to order 4 (as loops over j,
        with the binomials as divisions, the weights cost more than the contraction).

        ``a[0, k]`` flags the nodes inside the bump (1) or outside it (0: exactly no weight); with
        fastmath, no -inf logits. Unclamped nodes without the window take ``_weights_1d``'s one
        exp per axis (``ck``); the others one exp per node, shifted by the largest logit.
        """
        K = 2 * rho
        base = min(max(math.floor(t), 0), n)
        if win == 0.0 and (not clamp or (base - rho + 1 >= 0 and base + rho <= n)):
            e = math.exp(2.0 * eps2 * (t - base))
            p = 1.0
            for k in range(rho - 1, K):
                w[0, k] = p * ck[k]
                p *= e
            inv_e = 1.0 / e
            p = inv_e
            for k in range(rho - 2, -1, -1):
                w[0, k] = p * ck[k]
                p *= inv_e
            for k in range(K):
                node = base + k - rho + 1
                nodes[k] = node
                a[1, k] = -2.0 * eps2 * (t - node)
            # a[2:] stay 0: without the window (for the whole call) _logits_any writes them 0 too
        else:
            _logits_any(t, n, base, rho, eps2, win, clamp, w, a, nodes)
        _normalised_jets(K, order, w, a, bell)

    @njit(fastmath=True, cache=True, error_model="numpy")
    def _logits_any(t, n, base, rho, eps2, win, clamp, w, a, nodes):
        """``_weights_1d_any`` for clamped nodes or the window: per node the logit, its exp
        (shifted by the largest logit) into w[0] and the log-derivatives into a[1:]."""
        K = 2 * rho
        floor = WINDOW_FLOOR * win
        inv_rho = 1.0 / rho
        top = -1e300
        for k in range(K):
            node = base + k - rho + 1
            if clamp:
                node = min(max(node, 0), n)
            nodes[k] = node
            r = t - node
            logit = -eps2 * r * r
            g = -2.0 * eps2 * r
            inside = 1.0
            # The Gaussian's own log-derivatives end at g' = -2ε², which the centring removes.
            d2 = 0.0
            d3 = 0.0
            d4 = 0.0
            if win > 0.0:
                sr = r * inv_rho
                s2 = sr * sr
                u = 1.0 - s2
                if u > floor:
                    inv = 1.0 / u
                    logit -= win * s2 * s2 * inv
                    g -= 2.0 * win * sr * s2 * (2.0 - s2) * inv * inv * inv_rho
                    d2 = -2.0 * win * s2 * (6.0 - 3.0 * s2 + s2 * s2) * inv * inv * inv * inv_rho * inv_rho
                    # kernels.window_log_higher: -c m!/2 ((1 - s)^-(m+1) + (-1)^m (1 + s)^-(m+1)) / ρ^m
                    im = 1.0 / (1.0 - sr)
                    ip = 1.0 / (1.0 + sr)
                    im4 = im * im * im * im
                    ip4 = ip * ip * ip * ip
                    r3 = inv_rho * inv_rho * inv_rho
                    d3 = -3.0 * win * (im4 - ip4) * r3
                    d4 = -12.0 * win * (im4 * im + ip4 * ip) * r3 * inv_rho
                else:
                    inside = 0.0
                    g = 0.0
            a[0, k] = inside
            w[0, k] = logit
            a[1, k] = g
            a[2, k] = d2
            a[3, k] = d3
            a[4, k] = d4
            if inside > 0.0 and logit > top:
                top = logit
        for k in range(K):  # shifted by the largest logit: the normalisation cancels it
            w[0, k] = math.exp(w[0, k] - top) if a[0, k] > 0.0 else 0.0

    @njit(inline="always", fastmath=True, error_model="numpy")
    def _normalised_jets(K, order, w, a, bell):
        """From the unnormalised weights w[0] and log-derivatives a[1:], the normalised weights
        and their t-derivatives w[1 … order] (``_weights_1d_any``)."""
        s = 0.0
        for k in range(K):
            s += w[0, k]
        inv_s = 1.0 / s
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        for k in range(K):
            wk = w[0, k] * inv_s
            w[0, k] = wk
            m1 += wk * a[1, k]
            m2 += wk * a[2, k]
            m3 += wk * a[3, k]
            m4 += wk * a[4, k]
        s1 = 0.0  # σⱼ = mean_w Bⱼ
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        for k in range(K):
            a1 = a[1, k] - m1
            a2 = a[2, k] - m2
            a3 = a[3, k] - m3
            a4 = a[4, k] - m4
            a11 = a1 * a1
            bell[1, k] = a1
            bell[2, k] = a2 + a11
            bell[3, k] = a3 + 3.0 * a1 * a2 + a11 * a1
            bell[4, k] = a4 + 4.0 * a1 * a3 + 3.0 * a2 * a2 + 6.0 * a11 * a2 + a11 * a11
            wk = w[0, k]
            s1 += wk * bell[1, k]
            s2 += wk * bell[2, k]
            s3 += wk * bell[3, k]
            s4 += wk * bell[4, k]
        for k in range(K):
            wk = w[0, k]
            w1 = wk * bell[1, k] - s1 * wk
            w2 = wk * bell[2, k] - 2.0 * s1 * w1 - s2 * wk
            w3 = wk * bell[3, k] - 3.0 * s1 * w2 - 3.0 * s2 * w1 - s3 * wk
            w[1, k] = w1
            w[2, k] = w2
            w[3, k] = w3
            if order >= 4:
                w[4, k] = wk * bell[4, k] - 4.0 * s1 * w3 - 6.0 * s2 * w2 - 4.0 * s3 * w1 - s4 * wk

    @njit(inline="always")
    def _scratch_any(rho):
        """Per-axis weights, centred log-derivatives, Bell polynomials (rows 0 … MAX_ORDER, the
        rows above the order asked stay 0) and nodes."""
        K = 2 * rho
        return np.zeros((_M, K)), np.zeros((_M, K)), np.zeros((_M, K)), np.zeros(K, dtype=np.int64)

    @njit(inline="always")
    def _entry_scale(combos, c, h0, h1, h2):
        """dᵐ/dxᵐ = Π_a (n_a / 2)^(m_a) dᵐ/dtᵐ for jet entry c (h2 unused in 2D)."""
        sc = h0 ** combos[c, 0] * h1 ** combos[c, 1]
        if combos.shape[1] == 3:
            sc *= h2 ** combos[c, 2]
        return sc

    # The looped kernels below contract every per-axis derivative order up to MAX_ORDER (rows of
    # the weights above the order asked are 0): a fixed count lets the innermost loop keep its
    # five partial sums in registers, as the unrolled kernels do; a run-time count kept them in
    # memory and was 10x slower. Order and ρ stay run-time arguments: one compilation per axis
    # count and dtype.
    @njit(fastmath=True, cache=True, error_model="numpy")
    def _forward_any_2d(x, table, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo, hi, out):
        """2D jets of orders up to MAX_ORDER for the points lo … hi: acc[m0, m1] = Σ w0⁽ᵐ⁰⁾ w1⁽ᵐ¹⁾ v,
        then gathered into the entries ``combos`` ``[A, 2]`` (per-axis orders) in x units."""
        S = cells.shape[0]
        F = table.shape[1]
        K = 2 * rho
        w0, a0, b0, n0 = _scratch_any(rho)
        ck = _ck(rho, eps2)
        w1, a1, b1, n1 = _scratch_any(rho)
        acc = np.zeros((_M, _M))
        for p in range(lo, hi):
            for s in range(S):
                c0 = cells[s, 0]
                c1 = cells[s, 1]
                _weights_1d_any((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, a0, b0, n0)
                _weights_1d_any((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, a1, b1, n1)
                stride = sizes[s, 1]
                base = offsets[s] + ghost * stride + ghost
                h0 = 0.5 * c0
                h1 = 0.5 * c1
                for f in range(F):
                    acc[:] = 0.0
                    for i in range(K):
                        row = base + n0[i] * stride
                        r0 = 0.0
                        r1 = 0.0
                        r2 = 0.0
                        r3 = 0.0
                        r4 = 0.0
                        for j in range(K):
                            v = table[row + n1[j], f]
                            r0 += w1[0, j] * v
                            r1 += w1[1, j] * v
                            r2 += w1[2, j] * v
                            r3 += w1[3, j] * v
                            r4 += w1[4, j] * v
                        for m0 in range(_M):
                            e = w0[m0, i]
                            acc[m0, 0] += e * r0
                            acc[m0, 1] += e * r1
                            acc[m0, 2] += e * r2
                            acc[m0, 3] += e * r3
                            acc[m0, 4] += e * r4
                    for c in range(combos.shape[0]):
                        out[p, s, f, c] = acc[combos[c, 0], combos[c, 1]] * _entry_scale(combos, c, h0, h1, 1.0)

    @njit(fastmath=True, cache=True, error_model="numpy")
    def _backward_any_2d(x, grad, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo, hi, buf):
        """The scatter-add of ``_forward_any_2d`` into one thread's buffer ``buf`` ``[rows, F]``:
        the upstream gradients folded per per-axis orders, G[m0, m1] (the Hessian's two mixed
        entries add up), then with the axis-1 weights, q[m0, j], then with the axis-0 weights."""
        S = cells.shape[0]
        F = buf.shape[1]
        K = 2 * rho
        w0, a0, b0, n0 = _scratch_any(rho)
        ck = _ck(rho, eps2)
        w1, a1, b1, n1 = _scratch_any(rho)
        G = np.zeros((_M, _M))
        q = np.zeros((_M, K))
        for p in range(lo, hi):
            for s in range(S):
                c0 = cells[s, 0]
                c1 = cells[s, 1]
                _weights_1d_any((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, a0, b0, n0)
                _weights_1d_any((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, a1, b1, n1)
                stride = sizes[s, 1]
                base = offsets[s] + ghost * stride + ghost
                h0 = 0.5 * c0
                h1 = 0.5 * c1
                for f in range(F):
                    G[:] = 0.0
                    for c in range(combos.shape[0]):
                        G[combos[c, 0], combos[c, 1]] += grad[p, s, f, c] * _entry_scale(combos, c, h0, h1, 1.0)
                    for m0 in range(_M):
                        g0 = G[m0, 0]
                        g1 = G[m0, 1]
                        g2 = G[m0, 2]
                        g3 = G[m0, 3]
                        g4 = G[m0, 4]
                        for j in range(K):
                            q[m0, j] = w1[0, j] * g0 + w1[1, j] * g1 + w1[2, j] * g2 + w1[3, j] * g3 + w1[4, j] * g4
                    for i in range(K):
                        row = base + n0[i] * stride
                        e0 = w0[0, i]
                        e1 = w0[1, i]
                        e2 = w0[2, i]
                        e3 = w0[3, i]
                        e4 = w0[4, i]
                        for j in range(K):
                            buf[row + n1[j], f] += (e0 * q[0, j] + e1 * q[1, j] + e2 * q[2, j] + e3 * q[3, j]
                                                    + e4 * q[4, j])

    @njit(fastmath=True, cache=True, error_model="numpy")
    def _forward_any_3d(x, table, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo, hi, out):
        """3D jets as ``_forward_any_2d``: axis 2 contracted into r0 … r4, axis 1 into b[m1, m2],
        axis 0 into acc[m0, m1, m2]."""
        S = cells.shape[0]
        F = table.shape[1]
        K = 2 * rho
        w0, a0, b0, n0 = _scratch_any(rho)
        ck = _ck(rho, eps2)
        w1, a1, b1, n1 = _scratch_any(rho)
        w2, a2, b2, n2 = _scratch_any(rho)
        b = np.zeros((_M, _M))
        acc = np.zeros((_M, _M, _M))
        for p in range(lo, hi):
            for s in range(S):
                c0 = cells[s, 0]
                c1 = cells[s, 1]
                c2 = cells[s, 2]
                _weights_1d_any((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, a0, b0, n0)
                _weights_1d_any((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, a1, b1, n1)
                _weights_1d_any((x[p, 2] + 1.0) * (0.5 * c2), c2, rho, eps2, win, clamp, order, ck, w2, a2, b2, n2)
                stride1 = sizes[s, 2]
                stride0 = sizes[s, 1] * stride1
                base = offsets[s] + ghost * (stride0 + stride1 + 1)
                h0 = 0.5 * c0
                h1 = 0.5 * c1
                h2 = 0.5 * c2
                for f in range(F):
                    acc[:] = 0.0
                    for i in range(K):
                        row0 = base + n0[i] * stride0
                        b[:] = 0.0
                        for j in range(K):
                            row = row0 + n1[j] * stride1
                            r0 = 0.0
                            r1 = 0.0
                            r2 = 0.0
                            r3 = 0.0
                            r4 = 0.0
                            for k in range(K):
                                v = table[row + n2[k], f]
                                r0 += w2[0, k] * v
                                r1 += w2[1, k] * v
                                r2 += w2[2, k] * v
                                r3 += w2[3, k] * v
                                r4 += w2[4, k] * v
                            for m1 in range(_M):
                                e = w1[m1, j]
                                b[m1, 0] += e * r0
                                b[m1, 1] += e * r1
                                b[m1, 2] += e * r2
                                b[m1, 3] += e * r3
                                b[m1, 4] += e * r4
                        for m0 in range(_M):
                            e = w0[m0, i]
                            for m1 in range(_M - m0):  # m0 + m1 + m2 <= MAX_ORDER: the rest is never read
                                for m2 in range(_M - m0 - m1):
                                    acc[m0, m1, m2] += e * b[m1, m2]
                    for c in range(combos.shape[0]):
                        out[p, s, f, c] = acc[combos[c, 0], combos[c, 1], combos[c, 2]] * _entry_scale(combos, c, h0,
                                                                                                        h1, h2)

    @njit(fastmath=True, cache=True, error_model="numpy")
    def _backward_any_3d(x, grad, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo, hi, buf):
        """The scatter-add of ``_forward_any_3d``: G[m0, m1, m2], folded with the axis-2 weights
        into q[m0, m1, k], with the axis-0 weights of one i into t[m1, k], with the axis-1 weights
        into the thread's buffer."""
        S = cells.shape[0]
        F = buf.shape[1]
        K = 2 * rho
        w0, a0, b0, n0 = _scratch_any(rho)
        ck = _ck(rho, eps2)
        w1, a1, b1, n1 = _scratch_any(rho)
        w2, a2, b2, n2 = _scratch_any(rho)
        G = np.zeros((_M, _M, _M))
        q = np.zeros((_M, _M, K))
        t = np.zeros((_M, K))
        for p in range(lo, hi):
            for s in range(S):
                c0 = cells[s, 0]
                c1 = cells[s, 1]
                c2 = cells[s, 2]
                _weights_1d_any((x[p, 0] + 1.0) * (0.5 * c0), c0, rho, eps2, win, clamp, order, ck, w0, a0, b0, n0)
                _weights_1d_any((x[p, 1] + 1.0) * (0.5 * c1), c1, rho, eps2, win, clamp, order, ck, w1, a1, b1, n1)
                _weights_1d_any((x[p, 2] + 1.0) * (0.5 * c2), c2, rho, eps2, win, clamp, order, ck, w2, a2, b2, n2)
                stride1 = sizes[s, 2]
                stride0 = sizes[s, 1] * stride1
                base = offsets[s] + ghost * (stride0 + stride1 + 1)
                h0 = 0.5 * c0
                h1 = 0.5 * c1
                h2 = 0.5 * c2
                for f in range(F):
                    G[:] = 0.0
                    for c in range(combos.shape[0]):
                        G[combos[c, 0], combos[c, 1], combos[c, 2]] += grad[p, s, f, c] * _entry_scale(combos, c, h0,
                                                                                                        h1, h2)
                    for m0 in range(_M):
                        for m1 in range(_M):
                            g0 = G[m0, m1, 0]
                            g1 = G[m0, m1, 1]
                            g2 = G[m0, m1, 2]
                            g3 = G[m0, m1, 3]
                            g4 = G[m0, m1, 4]
                            for k in range(K):
                                q[m0, m1, k] = (w2[0, k] * g0 + w2[1, k] * g1 + w2[2, k] * g2 + w2[3, k] * g3
                                                + w2[4, k] * g4)
                    for i in range(K):
                        row0 = base + n0[i] * stride0
                        e0 = w0[0, i]
                        e1 = w0[1, i]
                        e2 = w0[2, i]
                        e3 = w0[3, i]
                        e4 = w0[4, i]
                        for m1 in range(_M):
                            for k in range(K):
                                t[m1, k] = (e0 * q[0, m1, k] + e1 * q[1, m1, k] + e2 * q[2, m1, k] + e3 * q[3, m1, k]
                                            + e4 * q[4, m1, k])
                        for j in range(K):
                            row = row0 + n1[j] * stride1
                            d0 = w1[0, j]
                            d1 = w1[1, j]
                            d2 = w1[2, j]
                            d3 = w1[3, j]
                            d4 = w1[4, j]
                            for k in range(K):
                                buf[row + n2[k], f] += (d0 * t[0, k] + d1 * t[1, k] + d2 * t[2, k] + d3 * t[3, k]
                                                        + d4 * t[4, k])

    # The looped kernels run the points lo … hi of one thread; these drivers split the points
    # over threads (backward: each into its own buffer res[th]). A thin prange around a plain
    # function: with the loops inside prange, numba's parfor passes made the compilation four
    # times slower, and each compilation costs the test suite.
    @njit(parallel=True, cache=True)
    def _run_forward_2d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, res):
        N = x.shape[0]
        chunk = (N + nthreads - 1) // nthreads
        for th in prange(nthreads):
            lo = th * chunk
            _forward_any_2d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo,
                            min(N, lo + chunk), res)

    @njit(parallel=True, cache=True)
    def _run_backward_2d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, res):
        N = x.shape[0]
        chunk = (N + nthreads - 1) // nthreads
        for th in prange(nthreads):
            lo = th * chunk
            _backward_any_2d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo,
                             min(N, lo + chunk), res[th])

    @njit(parallel=True, cache=True)
    def _run_forward_3d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, res):
        N = x.shape[0]
        chunk = (N + nthreads - 1) // nthreads
        for th in prange(nthreads):
            lo = th * chunk
            _forward_any_3d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo,
                            min(N, lo + chunk), res)

    @njit(parallel=True, cache=True)
    def _run_backward_3d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, res):
        N = x.shape[0]
        chunk = (N + nthreads - 1) // nthreads
        for th in prange(nthreads):
            lo = th * chunk
            _backward_any_3d(x, arr, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, lo,
                             min(N, lo + chunk), res[th])

    def _make_kernels_any(order: int, rho: int, dims: int) -> Tuple[Callable[..., None], Callable[..., None]]:
        """Forward and backward for order >= 3 with the specialised kernels' call signature:
        the looped kernels take order and ρ at run time, so one compilation per dtype and axis
        count serves them all (each specialisation costs the test suite compile time)."""
        fwd, bwd = _DRIVERS[dims]
        combos = entry_orders(dims, order)

        def forward(x, table, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, out) -> None:
            fwd(x, table, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, out)

        def backward(x, grad, offsets, cells, sizes, ghost, clamp, eps2, win, nthreads, buf) -> None:
            bwd(x, grad, offsets, cells, sizes, ghost, clamp, rho, eps2, win, order, combos, nthreads, buf)

        return forward, backward

    _DRIVERS = {2: (_run_forward_2d, _run_backward_2d), 3: (_run_forward_3d, _run_backward_3d)}


_KERNELS: dict = {}


def _kernels(order: int, rho: int, features: int, dims: int = 2):
    """The (forward, backward) pair for one call: unrolled per (order, ρ, F) up to order 2 (the
    hot path, benchmarked), the looped kernels above it."""
    key = (order, rho, features, dims)
    if key not in _KERNELS:
        if order > 2:
            _KERNELS[key] = _make_kernels_any(order, rho, dims)
        else:
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
    """Jets of all levels' features at ``x`` ``[N, d]``, d = 2 or 3, up to ``order`` <= ``MAX_ORDER``:
    ``[N, S, F, A]`` (module doc).

    ``table`` ``[Σ_s Π_a sizes[s][a], F]``: every level's grid flattened row-major and
    concatenated; ``cells``: cells per axis of each level (a d-tuple, or an int for all axes);
    ``sizes``: nodes per axis of each level (``cells + 1 + 2·ghost``), likewise.
    ``window``: the bump's strength c (``kernels.window_log``; 0: none).
    Differentiable with respect to ``table`` only.
    """
    if order > MAX_ORDER:
        raise NotImplementedError(f"the fused CPU kernel gives jets up to order {MAX_ORDER}")
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
