"""Fused GPU kernels (Triton) for the separable Gaussian ∂∞-Grid on two or three axes.

The GPU counterpart of ``rbf_cpu.py``, with the same function signature, output layout and
numbers: one program per block of points loops over the levels; per level it computes both
axes' normalised 1D Gaussian weights and their t-derivatives in registers (``[BLOCK, 2, KP]``,
KP = 2ρ rounded up to a power of two, lanes k >= 2ρ masked to weight 0), gathers the (2ρ)²
neighbour features of each point from the concatenated table with pointer arithmetic
(``[BLOCK, KP, KP]`` per feature) and contracts them, axis 1 first, into value, gradient and
Hessian. The backward pass recomputes the weights and scatters ``Σ_c w0[a0(c)] ⊗ w1[a1(c)] g_c``
into the table's gradient with ``tl.atomic_add``. Forward and backward are one kernel source
specialised on the ``BACKWARD`` constexpr (two compiled kernels, one shared weight block).

The 3D kernel (``_jet_kernel_3d``) works the same way on ``[BLOCK, KP, KP]`` tiles over axes 1
and 2, looping over axis 0's 2ρ nodes (unrolled): per node it gathers one tile and contracts
it with the axis-2 weights, then axis 1, then axis 0 (forward), or scatters the upstream
gradient folded with the weights of axes 2, 0 and 1 (backward).

Every axis has its own number of cells per level (``cells`` ``[S, d]``), so the derivatives
scale by n_a / 2 per axis.

Output layout ``[N, S, F, A]``, already in x units: in 2D A = 1 (value), 3 (+ d/dx0, d/dx1)
or 7 (+ Hessian row-major); in 3D A = 1, 4 (+ gradient) or 13 (+ Hessian 3×3 row-major).
x gets no gradient.

CUDA tensors run the compiled kernel. With ``TRITON_INTERPRET=1`` set before triton is first
imported, the same kernel runs under Triton's interpreter, on CPU tensors too: that is how
``tests/test_rbf_triton.py`` checks it without a GPU. The kernel is wrapped lazily after the
mode of the imported triton (``interpreting()``), so the order in which this module and
triton are imported does not matter.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from dinf.fields.kernels import WINDOW_FLOOR
from dinf.fields.rbf_cpu import PerAxis, level_arrays, num_components

try:
    import triton
    import triton.language as tl

    AVAILABLE = True
except ImportError:  # triton is optional: the PyTorch path serves GPUs without it
    AVAILABLE = False

NUM_COMPONENTS = {0: 1, 1: 3, 2: 7}  # 2D; num_components(d, order) for any d


if AVAILABLE:
    _FLOOR = tl.constexpr(WINDOW_FLOOR)  # kernels read globals only as constexpr

    @triton.jit
    def _windowed(r, logit, g, kvalid, win, RHO: tl.constexpr):
        """The bump window exp(-c s⁴ / (1 - s²)), s = r / ρ (kernels.window_log), on a Gaussian's
        logits and their derivative g = (log φ)': the windowed logits and g, and the window's
        part of g' (0 outside the support, where the weight is 0)."""
        sr = r / RHO
        uu = 1.0 - sr * sr
        inside = kvalid[None, None, :] & (uu > _FLOOR * win)
        inv = 1.0 / tl.where(inside, uu, 1.0)
        s2 = sr * sr
        logit = tl.where(inside, logit - win * s2 * s2 * inv, float("-inf"))
        g = tl.where(inside, g - 2.0 * win * sr * s2 * (2.0 - s2) * inv * inv / RHO, 0.0)
        gp = tl.where(inside, -2.0 * win * s2 * (6.0 - 3.0 * s2 + s2 * s2) * inv * inv * inv / (RHO * RHO), 0.0)
        return logit, g, gp

    def _jet_kernel(
        x_ptr,  # [N, 2], the table's dtype
        src_ptr,  # forward: table [R, F]; backward: upstream gradient [N, S, F, A]
        dst_ptr,  # forward: out [N, S, F, A]; backward: table gradient [R, F] (zeroed)
        eps2_ptr,  # [2] ε² and the window's c, the table's dtype (a float argument would be passed as fp32)
        offsets_ptr,  # [S] int64: first table row of each level
        cells_ptr,  # [S, 2] int64: cells per axis
        sizes_ptr,  # [S, 2] int64: nodes per axis (cells + 1 + 2·ghost)
        N,
        S,
        ghost,
        RHO: tl.constexpr,
        KP: tl.constexpr,
        F: tl.constexpr,
        ORDER: tl.constexpr,
        A: tl.constexpr,
        CLAMP: tl.constexpr,
        WINDOW: tl.constexpr,
        BACKWARD: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        p = pid * BLOCK + tl.arange(0, BLOCK)  # [B] points
        pmask = p < N
        p64 = p.to(tl.int64)
        ax = tl.arange(0, 2)
        xs = tl.load(x_ptr + p64[:, None] * 2 + ax[None, :], mask=pmask[:, None], other=0.0)  # [B, 2]
        first = (ax == 0)[None, :, None]  # [1, 2, 1]: axis 0
        k = tl.arange(0, KP)
        kvalid = k < 2 * RHO  # lanes beyond 2ρ: weight 0, no load, no store
        m = pmask[:, None, None] & kvalid[None, :, None] & kvalid[None, None, :]  # [B, KP, KP]
        e2 = tl.load(eps2_ptr)
        win = tl.load(eps2_ptr + 1)
        for s in range(S):
            c0 = tl.load(cells_ptr + 2 * s)
            c1 = tl.load(cells_ptr + 2 * s + 1)
            size = tl.load(sizes_ptr + 2 * s + 1)  # nodes along axis 1: the row stride of axis 0
            off = tl.load(offsets_ptr + s)
            n = tl.where(ax == 0, c0, c1)  # [2] cells per axis
            nf = n.to(xs.dtype)
            hx = 0.5 * c0.to(xs.dtype)  # dt/dx per axis
            hy = 0.5 * c1.to(xs.dtype)
            t = (xs + 1.0) * (0.5 * nf)[None, :]  # [B, 2] index space of this level
            base = tl.minimum(tl.maximum(tl.floor(t), 0.0), nf[None, :]).to(tl.int32)
            node = base[:, :, None] + (k[None, None, :] - (RHO - 1))  # [B, 2, KP]
            if CLAMP:
                node = tl.minimum(tl.maximum(node, 0), n.to(tl.int32)[None, :, None])
            r = t[:, :, None] - node.to(xs.dtype)
            # Normalised Gaussian weights (kernels.gaussian_weights_1d), max-shifted like it.
            logit = tl.where(kvalid[None, None, :], -e2 * r * r, float("-inf"))
            g = -2.0 * e2 * r  # (log φ)'
            gp = tl.zeros_like(r)  # the window's part of g'
            if WINDOW:  # the bump exp(-c s⁴ / (1 - s²)), s = r / ρ (kernels.window_log)
                logit, g, gp = _windowed(r, logit, g, kvalid, win, RHO)
            phi = tl.exp(logit - tl.max(logit, 2)[:, :, None])
            w = phi / tl.sum(phi, 2)[:, :, None]
            u0 = tl.sum(tl.where(first, w, 0.0), 1)  # [B, KP] axis 0
            v0 = tl.sum(tl.where(first, 0.0, w), 1)  # [B, KP] axis 1
            u1 = u0
            v1 = v0
            u2 = u0
            v2 = v0
            if ORDER >= 1:
                dg = g - tl.sum(w * g, 2)[:, :, None]  # g - ḡ
                w1 = w * dg
                u1 = tl.sum(tl.where(first, w1, 0.0), 1)
                v1 = tl.sum(tl.where(first, 0.0, w1), 1)
                if ORDER >= 2:
                    var = tl.sum(w * dg * dg, 2)
                    curv = dg * dg - var[:, :, None]
                    if WINDOW:
                        curv = curv + gp - tl.sum(w * gp, 2)[:, :, None]
                    w2 = w * curv
                    u2 = tl.sum(tl.where(first, w2, 0.0), 1)
                    v2 = tl.sum(tl.where(first, 0.0, w2), 1)
            n0 = tl.sum(tl.where(first, node, 0), 1)  # [B, KP] node indices, axis 0
            n1 = tl.sum(tl.where(first, 0, node), 1)
            row = off + (n0 + ghost).to(tl.int64) * size + ghost
            idx = (row[:, :, None] + n1[:, None, :]) * F  # [B, KP, KP] first element of the row
            obase = ((p64 * S + s) * F) * A  # [B] out / upstream-grad element of (p, s, 0, 0)
            for f in tl.static_range(F):
                o = obase + f * A
                if BACKWARD:
                    # q_a0[j] = Σ_{c: a0(c) = a0} w1[a1(c), j] g_c (g in index units).
                    g0 = tl.load(src_ptr + o, mask=pmask, other=0.0)
                    q0 = g0[:, None] * v0
                    contrib = u0[:, :, None] * q0[:, None, :]
                    if ORDER >= 1:
                        gx = tl.load(src_ptr + o + 1, mask=pmask, other=0.0) * hx
                        gy = tl.load(src_ptr + o + 2, mask=pmask, other=0.0) * hy
                        q0 = q0 + gy[:, None] * v1
                        q1 = gx[:, None] * v0
                        if ORDER >= 2:
                            hxx = tl.load(src_ptr + o + 3, mask=pmask, other=0.0) * (hx * hx)
                            hxy = tl.load(src_ptr + o + 4, mask=pmask, other=0.0) * (hx * hy)
                            hyx = tl.load(src_ptr + o + 5, mask=pmask, other=0.0) * (hx * hy)
                            hyy = tl.load(src_ptr + o + 6, mask=pmask, other=0.0) * (hy * hy)
                            q0 = q0 + hyy[:, None] * v2
                            q1 = q1 + (hxy + hyx)[:, None] * v1
                            q2 = hxx[:, None] * v0
                        contrib = u0[:, :, None] * q0[:, None, :] + u1[:, :, None] * q1[:, None, :]
                        if ORDER >= 2:
                            contrib = contrib + u2[:, :, None] * q2[:, None, :]
                    tl.atomic_add(dst_ptr + idx + f, contrib, mask=m, sem="relaxed")
                else:
                    val = tl.load(src_ptr + idx + f, mask=m, other=0.0)  # [B, KP, KP]
                    r0 = tl.sum(val * v0[:, None, :], 2)  # contract axis 1: [B, KP]
                    tl.store(dst_ptr + o, tl.sum(u0 * r0, 1), mask=pmask)
                    if ORDER >= 1:
                        r1 = tl.sum(val * v1[:, None, :], 2)
                        tl.store(dst_ptr + o + 1, tl.sum(u1 * r0, 1) * hx, mask=pmask)
                        tl.store(dst_ptr + o + 2, tl.sum(u0 * r1, 1) * hy, mask=pmask)
                        if ORDER >= 2:
                            r2 = tl.sum(val * v2[:, None, :], 2)
                            hxy = tl.sum(u1 * r1, 1) * (hx * hy)
                            tl.store(dst_ptr + o + 3, tl.sum(u2 * r0, 1) * (hx * hx), mask=pmask)
                            tl.store(dst_ptr + o + 4, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 5, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 6, tl.sum(u0 * r2, 1) * (hy * hy), mask=pmask)

    def _jet_kernel_3d(
        x_ptr,  # [N, 3], the table's dtype
        src_ptr,  # forward: table [R, F]; backward: upstream gradient [N, S, F, A]
        dst_ptr,  # forward: out [N, S, F, A]; backward: table gradient [R, F] (zeroed)
        eps2_ptr,  # [2] ε² and the window's c, the table's dtype
        offsets_ptr,  # [S] int64: first table row of each level
        cells_ptr,  # [S, 3] int64: cells per axis
        sizes_ptr,  # [S, 3] int64: nodes per axis (cells + 1 + 2·ghost)
        N,
        S,
        ghost,
        RHO: tl.constexpr,
        KP: tl.constexpr,
        F: tl.constexpr,
        ORDER: tl.constexpr,
        A: tl.constexpr,
        CLAMP: tl.constexpr,
        WINDOW: tl.constexpr,
        BACKWARD: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        p = pid * BLOCK + tl.arange(0, BLOCK)  # [B] points
        pmask = p < N
        p64 = p.to(tl.int64)
        ax = tl.arange(0, 4)  # axes 0-2; lane 3 pads to a power of two (x = 0 there, unused)
        xs = tl.load(x_ptr + p64[:, None] * 3 + ax[None, :], mask=pmask[:, None] & (ax < 3)[None, :], other=0.0)
        k = tl.arange(0, KP)
        kvalid = k < 2 * RHO  # lanes beyond 2ρ: weight 0, no load, no store
        m = pmask[:, None, None] & kvalid[None, :, None] & kvalid[None, None, :]  # [B, KP(j), KP(k)]
        e2 = tl.load(eps2_ptr)
        win = tl.load(eps2_ptr + 1)
        sel0 = (ax == 0)[None, :, None]  # [1, 4, 1] picks one axis out of [B, 4, KP]
        sel1 = (ax == 1)[None, :, None]
        sel2 = (ax == 2)[None, :, None]
        for s in range(S):
            c0 = tl.load(cells_ptr + 3 * s)
            c1 = tl.load(cells_ptr + 3 * s + 1)
            c2 = tl.load(cells_ptr + 3 * s + 2)
            size1 = tl.load(sizes_ptr + 3 * s + 1)
            size2 = tl.load(sizes_ptr + 3 * s + 2)
            off = tl.load(offsets_ptr + s)
            n = tl.where(ax == 0, c0, tl.where(ax == 1, c1, c2))  # [4] cells per axis
            nf = n.to(xs.dtype)
            h0 = 0.5 * c0.to(xs.dtype)  # dt/dx per axis
            h1 = 0.5 * c1.to(xs.dtype)
            h2 = 0.5 * c2.to(xs.dtype)
            t = (xs + 1.0) * (0.5 * nf)[None, :]  # [B, 4] index space of this level
            base = tl.minimum(tl.maximum(tl.floor(t), 0.0), nf[None, :]).to(tl.int32)
            node = base[:, :, None] + (k[None, None, :] - (RHO - 1))  # [B, 4, KP]
            if CLAMP:
                node = tl.minimum(tl.maximum(node, 0), n.to(tl.int32)[None, :, None])
            r = t[:, :, None] - node.to(xs.dtype)
            logit = tl.where(kvalid[None, None, :], -e2 * r * r, float("-inf"))
            g = -2.0 * e2 * r  # (log φ)'
            gp = tl.zeros_like(r)  # the window's part of g'
            if WINDOW:
                logit, g, gp = _windowed(r, logit, g, kvalid, win, RHO)
            phi = tl.exp(logit - tl.max(logit, 2)[:, :, None])
            w = phi / tl.sum(phi, 2)[:, :, None]
            zero = tl.zeros_like(w)
            w1 = zero
            w2 = zero
            if ORDER >= 1:
                dg = g - tl.sum(w * g, 2)[:, :, None]  # g - ḡ
                w1 = w * dg
                if ORDER >= 2:
                    var = tl.sum(w * dg * dg, 2)
                    curv = dg * dg - var[:, :, None]
                    if WINDOW:
                        curv = curv + gp - tl.sum(w * gp, 2)[:, :, None]
                    w2 = w * curv
            # [B, KP] weights per axis (u: axis 0, v: axis 1, z: axis 2) and derivative order
            u0 = tl.sum(tl.where(sel0, w, 0.0), 1)
            u1 = tl.sum(tl.where(sel0, w1, 0.0), 1)
            u2 = tl.sum(tl.where(sel0, w2, 0.0), 1)
            v0 = tl.sum(tl.where(sel1, w, 0.0), 1)
            v1 = tl.sum(tl.where(sel1, w1, 0.0), 1)
            v2 = tl.sum(tl.where(sel1, w2, 0.0), 1)
            z0 = tl.sum(tl.where(sel2, w, 0.0), 1)
            z1 = tl.sum(tl.where(sel2, w1, 0.0), 1)
            z2 = tl.sum(tl.where(sel2, w2, 0.0), 1)
            n0 = tl.sum(tl.where(sel0, node, 0), 1)  # [B, KP] node indices per axis
            n1 = tl.sum(tl.where(sel1, node, 0), 1)
            n2 = tl.sum(tl.where(sel2, node, 0), 1)
            # Table row of node (i, j, k) = off + ((n0_i + ghost) size1 + n1_j + ghost) size2 + n2_k + ghost
            jk = ((n1 + ghost).to(tl.int64) * size2)[:, :, None] + (n2 + ghost).to(tl.int64)[:, None, :]
            obase = ((p64 * S + s) * F) * A  # [B] out / upstream-grad element of (p, s, 0, 0)
            for f in tl.static_range(F):
                o = obase + f * A
                if BACKWARD:
                    # Upstream gradient per axis derivative orders (g_abc), in index units.
                    g000 = tl.load(src_ptr + o, mask=pmask, other=0.0)
                    q00 = g000[:, None] * z0  # q_ab[k] = Σ_c z_c[k] g_abc
                    q10 = tl.zeros_like(q00)
                    q01 = q10
                    q20 = q10
                    q11 = q10
                    q02 = q10
                    if ORDER >= 1:
                        g100 = tl.load(src_ptr + o + 1, mask=pmask, other=0.0) * h0
                        g010 = tl.load(src_ptr + o + 2, mask=pmask, other=0.0) * h1
                        g001 = tl.load(src_ptr + o + 3, mask=pmask, other=0.0) * h2
                        q00 = q00 + g001[:, None] * z1
                        q10 = g100[:, None] * z0
                        q01 = g010[:, None] * z0
                        if ORDER >= 2:
                            g200 = tl.load(src_ptr + o + 4, mask=pmask, other=0.0) * (h0 * h0)
                            g110 = (tl.load(src_ptr + o + 5, mask=pmask, other=0.0)
                                    + tl.load(src_ptr + o + 7, mask=pmask, other=0.0)) * (h0 * h1)
                            g101 = (tl.load(src_ptr + o + 6, mask=pmask, other=0.0)
                                    + tl.load(src_ptr + o + 10, mask=pmask, other=0.0)) * (h0 * h2)
                            g020 = tl.load(src_ptr + o + 8, mask=pmask, other=0.0) * (h1 * h1)
                            g011 = (tl.load(src_ptr + o + 9, mask=pmask, other=0.0)
                                    + tl.load(src_ptr + o + 11, mask=pmask, other=0.0)) * (h1 * h2)
                            g002 = tl.load(src_ptr + o + 12, mask=pmask, other=0.0) * (h2 * h2)
                            q00 = q00 + g002[:, None] * z2
                            q10 = q10 + g101[:, None] * z1
                            q01 = q01 + g011[:, None] * z1
                            q20 = g200[:, None] * z0
                            q11 = g110[:, None] * z0
                            q02 = g020[:, None] * z0
                    for i in range(2 * RHO):
                        lane = (k == i)[None, :]
                        e0 = tl.sum(tl.where(lane, u0, 0.0), 1)[:, None]  # [B, 1] axis-0 weights of node i
                        e1 = tl.sum(tl.where(lane, u1, 0.0), 1)[:, None]
                        e2i = tl.sum(tl.where(lane, u2, 0.0), 1)[:, None]
                        ni = tl.sum(tl.where(lane, n0, 0), 1)
                        r0 = e0 * q00 + e1 * q10 + e2i * q20  # [B, KP(k)] per axis-1 order
                        r1 = e0 * q01 + e1 * q11
                        r2 = e0 * q02
                        contrib = v0[:, :, None] * r0[:, None, :] + v1[:, :, None] * r1[:, None, :]
                        contrib = contrib + v2[:, :, None] * r2[:, None, :]
                        row_i = off + ((ni + ghost).to(tl.int64) * size1) * size2  # [B]
                        idx = (row_i[:, None, None] + jk) * F
                        tl.atomic_add(dst_ptr + idx + f, contrib, mask=m, sem="relaxed")
                else:
                    a000 = tl.zeros([BLOCK], dtype=x_ptr.dtype.element_ty)
                    a100 = a000
                    a010 = a000
                    a001 = a000
                    a200 = a000
                    a110 = a000
                    a101 = a000
                    a020 = a000
                    a011 = a000
                    a002 = a000
                    for i in range(2 * RHO):
                        lane = (k == i)[None, :]
                        e0 = tl.sum(tl.where(lane, u0, 0.0), 1)  # [B] axis-0 weights of node i
                        ni = tl.sum(tl.where(lane, n0, 0), 1)
                        row_i = off + ((ni + ghost).to(tl.int64) * size1) * size2
                        val = tl.load(src_ptr + (row_i[:, None, None] + jk) * F + f, mask=m, other=0.0)
                        r0 = tl.sum(val * z0[:, None, :], 2)  # contract axis 2: [B, KP(j)]
                        b00 = tl.sum(v0 * r0, 1)  # then axis 1: [B]
                        a000 = a000 + e0 * b00
                        if ORDER >= 1:
                            e1 = tl.sum(tl.where(lane, u1, 0.0), 1)
                            r1 = tl.sum(val * z1[:, None, :], 2)
                            b10 = tl.sum(v1 * r0, 1)
                            b01 = tl.sum(v0 * r1, 1)
                            a100 = a100 + e1 * b00
                            a010 = a010 + e0 * b10
                            a001 = a001 + e0 * b01
                            if ORDER >= 2:
                                e2i = tl.sum(tl.where(lane, u2, 0.0), 1)
                                r2 = tl.sum(val * z2[:, None, :], 2)
                                a200 = a200 + e2i * b00
                                a110 = a110 + e1 * b10
                                a101 = a101 + e1 * b01
                                a020 = a020 + e0 * tl.sum(v2 * r0, 1)
                                a011 = a011 + e0 * tl.sum(v1 * r1, 1)
                                a002 = a002 + e0 * tl.sum(v0 * r2, 1)
                    tl.store(dst_ptr + o, a000, mask=pmask)
                    if ORDER >= 1:
                        tl.store(dst_ptr + o + 1, a100 * h0, mask=pmask)
                        tl.store(dst_ptr + o + 2, a010 * h1, mask=pmask)
                        tl.store(dst_ptr + o + 3, a001 * h2, mask=pmask)
                        if ORDER >= 2:
                            hxy = a110 * (h0 * h1)
                            hxz = a101 * (h0 * h2)
                            hyz = a011 * (h1 * h2)
                            tl.store(dst_ptr + o + 4, a200 * (h0 * h0), mask=pmask)
                            tl.store(dst_ptr + o + 5, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 6, hxz, mask=pmask)
                            tl.store(dst_ptr + o + 7, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 8, a020 * (h1 * h1), mask=pmask)
                            tl.store(dst_ptr + o + 9, hyz, mask=pmask)
                            tl.store(dst_ptr + o + 10, hxz, mask=pmask)
                            tl.store(dst_ptr + o + 11, hyz, mask=pmask)
                            tl.store(dst_ptr + o + 12, a002 * (h2 * h2), mask=pmask)


_WRAPPED: dict = {}
_CONSTS: dict = {}


def interpreting() -> bool:
    """Whether Triton runs its interpreter in this process.

    The mode is fixed when ``triton`` is first imported: with ``TRITON_INTERPRET=1`` in the
    environment then, its library functions (``tl.sum``, ``tl.max``, ...) are wrapped for the
    interpreter, and a kernel has to be wrapped the same way. So this module wraps its kernel
    lazily, after the mode of the imported triton, not with ``@triton.jit`` at its own import.
    """
    from triton.runtime.jit import JITFunction

    return not isinstance(tl.standard.sum, JITFunction)


def _kernel(dims: int = 2):
    """The ``dims``-axis kernel wrapped for the compiler or the interpreter, after triton's mode
    (cached)."""
    interpret = interpreting()
    key = (interpret, dims)
    if key not in _WRAPPED:
        fn = _jet_kernel if dims == 2 else _jet_kernel_3d
        if interpret:
            from triton.runtime.interpreter import InterpretedFunction

            _WRAPPED[key] = InterpretedFunction(fn)
        else:
            from triton.runtime.jit import JITFunction

            _WRAPPED[key] = JITFunction(fn, do_not_specialize=["N"])  # batch sizes vary
    return _WRAPPED[key]


def _consts(cells, sizes, eps2: float, window: float, dtype: torch.dtype, device: torch.device):
    """Level tables (``cells``, ``sizes``: per level a tuple per axis), ε² and the window's c as
    device tensors, cached (no host-to-device copy per call)."""
    key = (cells, sizes, eps2, window, dtype, str(device))
    if key not in _CONSTS:
        offsets, cells_a, sizes_a = level_arrays(cells, sizes, len(cells[0]))
        _CONSTS[key] = (
            torch.from_numpy(offsets).to(device),
            torch.from_numpy(cells_a).to(device),
            torch.from_numpy(sizes_a).to(device),
            torch.tensor([eps2, window], dtype=dtype, device=device),
        )
    return _CONSTS[key]


def _block(kp: int, itemsize: int) -> int:
    """Points per program: [BLOCK, KP, KP] gather tiles of 1024 float32 or 512 float64 elements.

    Compiled ahead of time for sm_90 (num_warps=4), the 2D variants tried (ρ 1-4, F up to 8,
    orders 0-2, both dtypes) use 56-167 registers per thread and spill nothing; twice these
    tiles hit 255 registers and spilled in float64. The 3D kernel uses the same tiles with 8
    warps (``num_warps``). Not timed on a GPU: tune there.
    """
    return max(8, min(128, (4096 // itemsize) // (kp * kp)))


def num_warps(dims: int) -> int:
    """Warps per program. The 3D kernel keeps three axes' weights and ten accumulators live
    besides its tiles: with 4 warps it used 255 registers and spilled (up to 1.7 KB of stack
    per thread in float64, ρ = 3); with 8 it uses 75-178 and spills nothing (sm_90, ρ 1-4,
    F up to 8, order 2, both dtypes, ``cuobjdump -res-usage``)."""
    return 8 if dims == 3 else 4


def _launch(x: Tensor, src: Tensor, dst: Tensor, meta: tuple, n_features: int, backward: bool) -> None:
    cells, sizes, ghost, clamp, rho, eps2, window, order = meta
    n = x.shape[0]
    if n == 0:
        return
    offsets, cells_t, sizes_t, eps2_t = _consts(cells, sizes, eps2, window, dst.dtype, x.device)
    dims = x.shape[1]
    kp = triton.next_power_of_2(2 * rho)
    block = _block(kp, dst.element_size())
    args = (x, src, dst, eps2_t, offsets, cells_t, sizes_t, n, len(cells), ghost)
    kwargs = dict(RHO=rho, KP=kp, F=n_features, ORDER=order, A=num_components(dims, order), CLAMP=clamp,
                  WINDOW=window > 0, BACKWARD=backward, BLOCK=block, num_warps=num_warps(dims))
    grid = (triton.cdiv(n, block),)
    if x.device.type == "cuda" and not interpreting():
        with torch.cuda.device(x.device):
            _kernel(dims)[grid](*args, **kwargs)
    else:
        _kernel(dims)[grid](*args, **kwargs)  # the interpreter: tensors on any device


class _GridJetTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, meta: tuple) -> Tensor:  # type: ignore[override]
        order = meta[-1]
        xc = x.detach().to(table.dtype).contiguous()
        tc = table.detach().contiguous()
        out = torch.empty(x.shape[0], len(meta[0]), table.shape[1], num_components(x.shape[1], order),
                          dtype=table.dtype, device=table.device)
        _launch(xc, tc, out, meta, table.shape[1], backward=False)
        ctx.save_for_backward(xc)
        ctx.meta = meta
        ctx.table_shape = table.shape
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (xc,) = ctx.saved_tensors
        tgrad = torch.zeros(ctx.table_shape, dtype=xc.dtype, device=xc.device)
        _launch(xc, grad.to(xc.dtype).contiguous(), tgrad, ctx.meta, ctx.table_shape[1], backward=True)
        return None, tgrad, None


def grid_jet_triton(x: Tensor, table: Tensor, cells: Sequence[PerAxis], sizes: Sequence[PerAxis], ghost: int,
                    clamp: bool, rho: int, eps: float, order: int, window: float = 0.0) -> Tensor:
    """Jets of all levels' features at ``x`` ``[N, d]``, d = 2 or 3: ``[N, S, F, A]`` (module doc).

    Same signature and numbers as ``rbf_cpu.grid_jet``. ``table`` ``[Σ_s Π_a sizes[s][a], F]``:
    every level's grid flattened row-major and concatenated; ``cells``, ``sizes``: cells and
    nodes (``cells + 1 + 2·ghost``) per axis of each level, a d-tuple or an int for all axes.
    Differentiable with respect to ``table`` only.
    """
    if not AVAILABLE:
        raise RuntimeError("triton is not installed")
    if order > 2:
        raise NotImplementedError("closed-form jets are implemented up to order 2")
    if x.device != table.device:
        raise ValueError(f"x is on {x.device} but the table on {table.device}")
    if table.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the Triton kernel takes float32 or float64 tables, got {table.dtype}")
    if x.device.type != "cuda" and not interpreting():
        raise RuntimeError(
            f"the Triton kernel needs CUDA tensors, got {x.device}; tensors elsewhere run under Triton's "
            "interpreter, which must be switched on (TRITON_INTERPRET=1) before triton is first imported"
        )
    dims = x.shape[1]
    if dims not in (2, 3):
        raise ValueError(f"the Triton kernel handles 2 or 3 axes, got x of shape {tuple(x.shape)}")
    meta = (_per_axis(cells, dims), _per_axis(sizes, dims), int(ghost), bool(clamp), int(rho), float(eps) ** 2,
            float(window), int(order))
    return _GridJetTriton.apply(x, table, meta)


def grid_jet_2d_triton(x: Tensor, table: Tensor, cells: Sequence[PerAxis], sizes: Sequence[PerAxis], ghost: int,
                       clamp: bool, rho: int, eps: float, order: int, window: float = 0.0) -> Tensor:
    """``grid_jet_triton`` for ``x`` ``[N, 2]`` (the original 2D entry point)."""
    if x.shape[1] != 2:
        raise ValueError(f"grid_jet_2d_triton takes x of shape [N, 2], got {tuple(x.shape)}")
    return grid_jet_triton(x, table, cells, sizes, ghost, clamp, rho, eps, order, window)


def _per_axis(counts: Sequence[PerAxis], dims: int) -> tuple:
    """Per level a ``dims``-tuple of ints (an int stands for every axis): hashable, for the cache."""
    return tuple((int(c),) * dims if isinstance(c, int) or not hasattr(c, "__len__") else tuple(int(v) for v in c)
                 for c in counts)
