"""Fused GPU kernels (Triton) for the separable Gaussian ∂∞-Grid in 2D.

The GPU counterpart of ``rbf_cpu.py``, with the same function signature, output layout and
numbers: one program per block of points loops over the levels; per level it computes both
axes' normalised 1D Gaussian weights and their t-derivatives in registers (``[BLOCK, 2, KP]``,
KP = 2ρ rounded up to a power of two, lanes k >= 2ρ masked to weight 0), gathers the (2ρ)²
neighbour features of each point from the concatenated table with pointer arithmetic
(``[BLOCK, KP, KP]`` per feature) and contracts them, axis 1 first, into value, gradient and
Hessian. The backward pass recomputes the weights and scatters ``Σ_c w0[a0(c)] ⊗ w1[a1(c)] g_c``
into the table's gradient with ``tl.atomic_add``. Forward and backward are one kernel source
specialised on the ``BACKWARD`` constexpr (two compiled kernels, one shared weight block).

Output layout ``[N, S, F, A]``: A = 1 (value), 3 (+ d/dx0, d/dx1) or 7 (+ Hessian row-major),
already in x units. x gets no gradient.

CUDA tensors run the compiled kernel. With ``TRITON_INTERPRET=1`` set before triton is first
imported, the same kernel runs under Triton's interpreter, on CPU tensors too: that is how
``tests/test_rbf_triton.py`` checks it without a GPU. The kernel is wrapped lazily after the
mode of the imported triton (``interpreting()``), so the order in which this module and
triton are imported does not matter.
"""
from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl

    AVAILABLE = True
except ImportError:  # triton is optional: the PyTorch path serves GPUs without it
    AVAILABLE = False

NUM_COMPONENTS = {0: 1, 1: 3, 2: 7}


if AVAILABLE:

    def _jet_kernel(
        x_ptr,  # [N, 2], the table's dtype
        src_ptr,  # forward: table [R, F]; backward: upstream gradient [N, S, F, A]
        dst_ptr,  # forward: out [N, S, F, A]; backward: table gradient [R, F] (zeroed)
        eps2_ptr,  # [1] ε², the table's dtype (a float argument would be passed as fp32)
        offsets_ptr,  # [S] int64: first table row of each level
        cells_ptr,  # [S] int64: cells per axis
        sizes_ptr,  # [S] int64: nodes per axis (cells + 1 + 2·ghost)
        N,
        S,
        ghost,
        RHO: tl.constexpr,
        KP: tl.constexpr,
        F: tl.constexpr,
        ORDER: tl.constexpr,
        A: tl.constexpr,
        CLAMP: tl.constexpr,
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
        for s in range(S):
            n = tl.load(cells_ptr + s)
            size = tl.load(sizes_ptr + s)
            off = tl.load(offsets_ptr + s)
            nf = n.to(xs.dtype)
            half = 0.5 * nf  # dt/dx
            t = (xs + 1.0) * half  # [B, 2] index space of this level
            base = tl.minimum(tl.maximum(tl.floor(t), 0.0), nf).to(tl.int32)
            node = base[:, :, None] + (k[None, None, :] - (RHO - 1))  # [B, 2, KP]
            if CLAMP:
                node = tl.minimum(tl.maximum(node, 0), n.to(tl.int32))
            r = t[:, :, None] - node.to(xs.dtype)
            # Normalised Gaussian weights (kernels.gaussian_weights_1d), max-shifted like it.
            logit = tl.where(kvalid[None, None, :], -e2 * r * r, float("-inf"))
            phi = tl.exp(logit - tl.max(logit, 2)[:, :, None])
            w = phi / tl.sum(phi, 2)[:, :, None]
            u0 = tl.sum(tl.where(first, w, 0.0), 1)  # [B, KP] axis 0
            v0 = tl.sum(tl.where(first, 0.0, w), 1)  # [B, KP] axis 1
            u1 = u0
            v1 = v0
            u2 = u0
            v2 = v0
            if ORDER >= 1:
                g = -2.0 * e2 * r
                dg = g - tl.sum(w * g, 2)[:, :, None]  # g - ḡ
                w1 = w * dg
                u1 = tl.sum(tl.where(first, w1, 0.0), 1)
                v1 = tl.sum(tl.where(first, 0.0, w1), 1)
                if ORDER >= 2:
                    var = tl.sum(w * dg * dg, 2)
                    w2 = w * (dg * dg - var[:, :, None])
                    u2 = tl.sum(tl.where(first, w2, 0.0), 1)
                    v2 = tl.sum(tl.where(first, 0.0, w2), 1)
            n0 = tl.sum(tl.where(first, node, 0), 1)  # [B, KP] node indices, axis 0
            n1 = tl.sum(tl.where(first, 0, node), 1)
            row = off + (n0 + ghost).to(tl.int64) * size + ghost
            idx = (row[:, :, None] + n1[:, None, :]) * F  # [B, KP, KP] first element of the row
            obase = ((p64 * S + s) * F) * A  # [B] out / upstream-grad element of (p, s, 0, 0)
            h2 = half * half
            for f in tl.static_range(F):
                o = obase + f * A
                if BACKWARD:
                    # q_a0[j] = Σ_{c: a0(c) = a0} w1[a1(c), j] g_c (g in index units).
                    g0 = tl.load(src_ptr + o, mask=pmask, other=0.0)
                    q0 = g0[:, None] * v0
                    contrib = u0[:, :, None] * q0[:, None, :]
                    if ORDER >= 1:
                        gx = tl.load(src_ptr + o + 1, mask=pmask, other=0.0) * half
                        gy = tl.load(src_ptr + o + 2, mask=pmask, other=0.0) * half
                        q0 = q0 + gy[:, None] * v1
                        q1 = gx[:, None] * v0
                        if ORDER >= 2:
                            hxx = tl.load(src_ptr + o + 3, mask=pmask, other=0.0) * h2
                            hxy = tl.load(src_ptr + o + 4, mask=pmask, other=0.0) * h2
                            hyx = tl.load(src_ptr + o + 5, mask=pmask, other=0.0) * h2
                            hyy = tl.load(src_ptr + o + 6, mask=pmask, other=0.0) * h2
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
                        tl.store(dst_ptr + o + 1, tl.sum(u1 * r0, 1) * half, mask=pmask)
                        tl.store(dst_ptr + o + 2, tl.sum(u0 * r1, 1) * half, mask=pmask)
                        if ORDER >= 2:
                            r2 = tl.sum(val * v2[:, None, :], 2)
                            hxy = tl.sum(u1 * r1, 1) * h2
                            tl.store(dst_ptr + o + 3, tl.sum(u2 * r0, 1) * h2, mask=pmask)
                            tl.store(dst_ptr + o + 4, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 5, hxy, mask=pmask)
                            tl.store(dst_ptr + o + 6, tl.sum(u0 * r2, 1) * h2, mask=pmask)


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


def _kernel():
    """The kernel wrapped for the compiler or the interpreter, after triton's mode (cached)."""
    interpret = interpreting()
    if interpret not in _WRAPPED:
        if interpret:
            from triton.runtime.interpreter import InterpretedFunction

            _WRAPPED[interpret] = InterpretedFunction(_jet_kernel)
        else:
            from triton.runtime.jit import JITFunction

            _WRAPPED[interpret] = JITFunction(_jet_kernel, do_not_specialize=["N"])  # batch sizes vary
    return _WRAPPED[interpret]


def _consts(cells, sizes, eps2: float, dtype: torch.dtype, device: torch.device):
    """Level tables and ε² as device tensors, cached (no host-to-device copy per call)."""
    key = (tuple(cells), tuple(sizes), eps2, dtype, str(device))
    if key not in _CONSTS:
        sz = torch.tensor(list(sizes), dtype=torch.int64)
        offsets = torch.cat([sz.new_zeros(1), torch.cumsum(sz * sz, 0)[:-1]])
        _CONSTS[key] = (
            offsets.to(device),
            torch.tensor(list(cells), dtype=torch.int64, device=device),
            sz.to(device),
            torch.tensor([eps2], dtype=dtype, device=device),
        )
    return _CONSTS[key]


def _block(kp: int, itemsize: int) -> int:
    """Points per program: [BLOCK, KP, KP] gather tiles of 1024 float32 or 512 float64 elements.

    Compiled ahead of time for sm_90 (num_warps=4), the variants tried (ρ 1-4, F up to 8,
    orders 0-2, both dtypes) use 56-167 registers per thread and spill nothing; twice these
    tiles hit 255 registers and spilled in float64. Not timed on a GPU: tune there.
    """
    return max(8, min(128, (4096 // itemsize) // (kp * kp)))


def _launch(x: Tensor, src: Tensor, dst: Tensor, meta: tuple, n_features: int, backward: bool) -> None:
    cells, sizes, ghost, clamp, rho, eps2, order = meta
    n = x.shape[0]
    if n == 0:
        return
    offsets, cells_t, sizes_t, eps2_t = _consts(cells, sizes, eps2, dst.dtype, x.device)
    kp = triton.next_power_of_2(2 * rho)
    block = _block(kp, dst.element_size())
    args = (x, src, dst, eps2_t, offsets, cells_t, sizes_t, n, len(cells), ghost)
    kwargs = dict(RHO=rho, KP=kp, F=n_features, ORDER=order, A=NUM_COMPONENTS[order], CLAMP=clamp,
                  BACKWARD=backward, BLOCK=block)
    grid = (triton.cdiv(n, block),)
    if x.device.type == "cuda" and not interpreting():
        with torch.cuda.device(x.device):
            _kernel()[grid](*args, **kwargs)
    else:
        _kernel()[grid](*args, **kwargs)  # the interpreter: tensors on any device


class _GridJet2DTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, meta: tuple) -> Tensor:  # type: ignore[override]
        order = meta[-1]
        xc = x.detach().to(table.dtype).contiguous()
        tc = table.detach().contiguous()
        out = torch.empty(x.shape[0], len(meta[0]), table.shape[1], NUM_COMPONENTS[order],
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


def grid_jet_2d_triton(x: Tensor, table: Tensor, cells: list, sizes: list, ghost: int, clamp: bool,
                       rho: int, eps: float, order: int) -> Tensor:
    """Jets of all levels' features at ``x`` ``[N, 2]``: ``[N, S, F, A]`` (see module doc).

    Same signature and numbers as ``rbf_cpu.grid_jet_2d``. ``table`` ``[Σ sizes², F]``: every
    level's grid flattened row-major and concatenated; ``sizes``: nodes per axis of each level
    (``cells + 1 + 2·ghost``). Differentiable with respect to ``table`` only.
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
    meta = (tuple(int(c) for c in cells), tuple(int(s) for s in sizes), int(ghost), bool(clamp), int(rho),
            float(eps) ** 2, int(order))
    return _GridJet2DTriton.apply(x, table, meta)
