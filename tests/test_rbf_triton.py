"""The Triton kernel against the PyTorch path and the numba kernel.

No GPU here: the kernel runs under Triton's interpreter, on CPU tensors. The interpreter is
chosen when triton is first imported (TRITON_INTERPRET=1 then), so this module sets the
variable before it imports triton. Should triton have been imported earlier in the session
without it, the comparisons run in a subprocess instead (``test_in_subprocess``). The
interpreter is slow: small grids, few points.
"""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from dinf.fields import DInfGrid, rbf_cpu

# Left set: triton reads it again when it imports some of its modules lazily, on first launch.
os.environ["TRITON_INTERPRET"] = "1"
try:
    from dinf.fields import rbf_triton

    AVAILABLE = rbf_triton.AVAILABLE
except ImportError:  # pragma: no cover
    AVAILABLE = False

ROOT = Path(__file__).resolve().parents[1]
INTERPRETING = AVAILABLE and rbf_triton.interpreting()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="triton not installed")
in_process = pytest.mark.skipif(not INTERPRETING, reason="triton was imported without its interpreter: "
                                "test_in_subprocess runs these")


# 58 s in a fresh CI (21 s warm): with -m slow, which .ci/run runs after the default tests.
@pytest.mark.slow
@pytest.mark.skipif(INTERPRETING, reason="the interpreter is on: the tests run in this process")
def test_in_subprocess():
    env = dict(os.environ, TRITON_INTERPRET="1")
    run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def _grid(edge: str, rho: int, features: int, resolution=8, levels: int = 2, eps: float = 1.3, in_dim: int = 2,
          window: float = 0.0):
    torch.manual_seed(0)
    g = DInfGrid(in_dim, 1, resolution=resolution, levels=levels, features=features, rho=rho, edge=edge,
                 eps=eps, window=window).double()
    for p in g.grids:
        p.data.normal_()
    return g


def _points(n: int = 24, dtype=torch.float64) -> torch.Tensor:
    """Random points, the corners, cell borders of every level, and points outside."""
    torch.manual_seed(1)
    x = torch.rand(n, 2, dtype=dtype) * 2 - 1
    corners = torch.tensor([[-1, -1], [1, 1], [1, -1], [-1, 1]], dtype=dtype)
    # Cell borders of every level (multiples of 1/8, 1/4, 1/2), just off one, and outside.
    borders = torch.tensor([[0, 0], [0.25, -0.5], [-0.75, 0.125], [-1 + 1e-9, 1 - 1e-9], [1.05, 0.2],
                            [-1.1, -1.02]], dtype=dtype)
    return torch.cat([corners, borders, x])


def _parts(jet, order):
    return [jet.value, jet.grad, jet.hess][: order + 1]


def _jet_and_grads(g: DInfGrid, backend: str, x: torch.Tensor, order: int):
    g.backend = backend
    parts = _parts(g.features_jet(x, order), order)
    torch.manual_seed(2)  # the same random linear functional for every backend
    loss = sum((p * torch.randn_like(p)).sum() for p in parts)
    return parts, torch.autograd.grad(loss, list(g.grids))


def _close(a, b, tol):
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=tol, atol=tol * b.abs().max().item()), (a - b).abs().max()


@in_process
@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("rho", [2, 3])
@pytest.mark.parametrize("features", [1, 3])
def test_triton_matches_torch(edge, order, rho, features):
    g = _grid(edge, rho, features, resolution=16, levels=3)
    x = _points(40)  # 50 points: 7 programs of 8 at ρ = 3, 2 of 32 at ρ = 2 (the last one masked)
    assert g._fused(x) == "numba"
    g.backend = "triton"
    assert g._fused(x) == "triton"  # forced on CPU tensors: the interpreter
    tri, tri_grads = _jet_and_grads(g, "triton", x, order)
    ref, ref_grads = _jet_and_grads(g, "torch", x, order)
    for a, b in zip(tri, ref):
        _close(a, b, 1e-10)
    for a, b in zip(tri_grads, ref_grads):  # backward: the atomic scatter-add into the table
        _close(a, b, 1e-10)


def _points_3d(n: int = 16, dtype=torch.float64) -> torch.Tensor:
    torch.manual_seed(3)
    x = torch.rand(n, 3, dtype=dtype) * 2 - 1
    special = torch.tensor([[-1, -1, -1], [1, 1, 1], [1, -1, 0.25], [0, 0, 0], [-0.75, 0.125, 1 - 1e-9],
                            [1.05, 0.2, -1.1]], dtype=dtype)
    return torch.cat([special, x])


@in_process
@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("order,rho,features,resolution", [
    (0, 2, 1, 8), (1, 3, 2, [8, 4, 16]), (2, 2, 3, 8), (2, 3, 1, [4, 8, 8]), (2, 1, 2, [8, 16, 4]),
])
def test_triton_3d_matches_torch(edge, order, rho, features, resolution):
    """The 3D kernel (with per-axis cells) against the PyTorch path, forward and backward."""
    g = _grid(edge, rho, features, resolution=resolution, in_dim=3)
    x = _points_3d()  # 22 points: one or two programs, the last one masked
    g.backend = "triton"
    assert g._fused(x) == "triton"
    tri, tri_grads = _jet_and_grads(g, "triton", x, order)
    ref, ref_grads = _jet_and_grads(g, "torch", x, order)
    assert tri[-1].shape[2:] == (3,) * order
    for a, b in zip(tri, ref):
        _close(a, b, 1e-10)
    for a, b in zip(tri_grads, ref_grads):
        _close(a, b, 1e-10)


@in_process
@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("in_dim,rho", [(2, 3), (3, 2)])
def test_triton_window_matches_torch(edge, in_dim, rho):
    """The bump window (``kernel.window``) in the 2D and 3D kernels, forward and backward."""
    g = _grid(edge, rho, 2, resolution=8, in_dim=in_dim, eps=0.8, window=1.0)
    x = _points(20) if in_dim == 2 else _points_3d()
    tri, tri_grads = _jet_and_grads(g, "triton", x, 2)
    ref, ref_grads = _jet_and_grads(g, "torch", x, 2)
    for a, b in zip(tri + list(tri_grads), ref + list(ref_grads)):
        _close(a, b, 1e-10)


@in_process
@pytest.mark.parametrize("edge", ["pad", "clamp"])
def test_triton_per_axis_2d_matches_torch(edge):
    g = _grid(edge, 2, 2, resolution=[16, 4], levels=3)
    x = _points(20)
    tri, tri_grads = _jet_and_grads(g, "triton", x, 2)
    ref, ref_grads = _jet_and_grads(g, "torch", x, 2)
    for a, b in zip(tri + list(tri_grads), ref + list(ref_grads)):
        _close(a, b, 1e-10)


@in_process
def test_function_matches_numba_3d():
    """``grid_jet_triton`` and ``rbf_cpu.grid_jet``: same signature, same numbers in 3D."""
    g = _grid("clamp", 2, 2, resolution=[8, 4, 4], levels=2, in_dim=3)
    table = torch.cat([p.detach().reshape(-1, 2) for p in g.grids]).requires_grad_(True)
    sizes = [tuple(p.shape[:-1]) for p in g.grids]
    x = _points_3d(6)
    args = (g.cells_per_axis, sizes, g.ghost, True, 2, g.eps, 2)
    out_t = rbf_triton.grid_jet_triton(x, table, *args)
    out_n = rbf_cpu.grid_jet(x, table, *args)
    assert out_t.shape == (12, 2, 2, 13)
    _close(out_t, out_n, 1e-10)
    w = torch.randn_like(out_n)
    (gt,) = torch.autograd.grad((out_t * w).sum(), table)
    (gn,) = torch.autograd.grad((out_n * w).sum(), table)
    _close(gt, gn, 1e-10)


@in_process
@pytest.mark.parametrize("edge,rho,features", [("clamp", 4, 2), ("pad", 1, 2)])
def test_function_matches_numba(edge, rho, features):
    """Same signature and numbers as rbf_cpu.grid_jet_2d: ρ = 4 (K = 8, no padding of the
    arange) and ρ = 1, three levels (the coarsest has 2 cells: clamping everywhere)."""
    g = _grid(edge, rho, features, resolution=8, levels=3, eps=0.9)
    table = torch.cat([p.detach().reshape(-1, features) for p in g.grids]).requires_grad_(True)
    sizes = [p.shape[0] for p in g.grids]
    x = _points(12)
    args = (g.cells, sizes, g.ghost, edge == "clamp", rho, g.eps, 2)
    out_t = rbf_triton.grid_jet_2d_triton(x, table, *args)
    out_n = rbf_cpu.grid_jet_2d(x, table, *args)
    _close(out_t, out_n, 1e-10)
    w = torch.randn_like(out_n)
    (gt,) = torch.autograd.grad((out_t * w).sum(), table)
    (gn,) = torch.autograd.grad((out_n * w).sum(), table)
    _close(gt, gn, 1e-10)


@in_process
def test_float32_table_close_to_float64():
    g = _grid("pad", 3, 2)
    x = _points()[10:]  # away from cell borders
    g.backend = "torch"
    ref = g.features_jet(x, 2)
    g32 = _grid("pad", 3, 2).float()
    g32.backend = "triton"
    jet = g32.features_jet(x.float(), 2)
    for a, b in zip(_parts(jet, 2), _parts(ref, 2)):
        assert a.dtype == torch.float32
        assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()


@in_process
def test_no_points():
    g = _grid("pad", 2, 3)
    g.backend = "triton"
    x = torch.zeros(0, 2, dtype=torch.float64)
    jet = g.features_jet(x, 2)
    assert jet.hess.shape == (0, 2 * 3, 2, 2)
    loss = jet.value.sum() + jet.hess.sum()
    assert all((gr == 0).all() for gr in torch.autograd.grad(loss, list(g.grids)))


def test_dispatch():
    """auto: Triton on CUDA where it applies, numba on the CPU; triton refuses what it cannot do."""
    g = _grid("pad", 2, 1)
    cuda_x = types.SimpleNamespace(device=torch.device("cuda"), requires_grad=False)
    assert g._fused(cuda_x) == "triton"
    assert g._fused(types.SimpleNamespace(device=torch.device("cuda"), requires_grad=True)) == ""
    assert g._fused(_points()) == "numba"
    radial = DInfGrid(2, 1, resolution=8, levels=2, kernel="inverse_quadratic")
    assert radial._fused(cuda_x) == ""
    g.backend = "torch"
    assert g._fused(cuda_x) == ""
    g.backend = "numba"
    with pytest.raises(ValueError, match="numba"):
        g._fused(cuda_x)
    g3 = DInfGrid(3, 1, resolution=8, levels=2, rho=2)
    assert g3._fused(cuda_x) == "triton"  # three axes: the 3D kernel
    g1 = DInfGrid(1, 1, resolution=8, levels=2, rho=2, backend="triton")
    with pytest.raises(ValueError, match="2D or 3D Gaussian"):
        g1.jet(torch.zeros(4, 1), 1)
    g.backend = "triton"
    with pytest.raises(ValueError, match="without grad"):
        g._fused(torch.zeros(4, 2, requires_grad=True))


_COMPILE = """
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction
from dinf.fields import rbf_triton

assert not rbf_triton.interpreting()
for dims, dt, rho, clamp, backward, f, window in [(2, "fp64", 3, True, False, 2, False),
                                                  (2, "fp64", 3, False, True, 2, True),
                                                  (2, "fp32", 4, True, True, 8, False),
                                                  (3, "fp64", 3, True, False, 2, True),
                                                  (3, "fp32", 3, False, True, 2, False)]:
    names = list(JITFunction(rbf_triton._jet_kernel if dims == 2 else rbf_triton._jet_kernel_3d).arg_names)
    kp = triton.next_power_of_2(2 * rho)
    sig = {n: "*" + dt for n in names[:4]}
    sig.update({n: "*i64" for n in names[4:7]}, N="i32", S="i32", ghost="i32")
    const = dict(RHO=rho, KP=kp, F=f, ORDER=2, A=1 + dims + dims * dims, CLAMP=clamp, WINDOW=window,
                 BACKWARD=backward,
                 BLOCK=rbf_triton._block(kp, 8 if dt == "fp64" else 4))
    sig.update({n: "constexpr" for n in const})
    src = ASTSource(rbf_triton._kernel(dims), sig, {(names.index(n),): v for n, v in const.items()})
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": rbf_triton.num_warps(dims)})
    assert kernel.asm["cubin"] and ("red.global" in kernel.asm["ptx"]) == backward
"""


def test_compiles_for_a_gpu():
    """What the interpreter does not check: the kernels (2D and 3D) go through Triton's compiler
    down to a cubin for sm_90 (triton ships ptxas; no GPU needed), forward and backward, both
    dtypes."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    run = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    if run.returncode and "ptxas" in run.stderr and "not found" in run.stderr.lower():
        pytest.skip("no ptxas for the CUDA backend")
    assert run.returncode == 0, run.stderr[-3000:]
