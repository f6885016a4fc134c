"""An independent reference for PINNacle's NS2d-LT (``NS2D_LongTime``), whose reference file
(``ref/ns_long.dat``) is not available: Taylor–Hood P2/P1 in space, BDF2 with extrapolated
(explicit) convection in time.

Problem (PINNacle ``src/pde/ns.py``, ``NS2D_LongTime``; ν = 1/100)
    u_t + u u_x + v u_y + p_x − ν Δu = 0,
    v_t + u v_x + v v_y + p_y − ν Δv = f,   f = −sin πx sin πy sin πt,
    u_x + v_y = 0                            on Ω = [0, 2] × [0, 1], t ∈ [0, 5];
    inlet x = 0: u = a(t) sin πy, v = 0, a(t) = sin πt + sin 3πt + sin 5πt (|a| ≤ 2.2308);
    walls y = 0, y = 1: u = v = 0;  u = v = 0 at t = 0.
    Outlet x = 2: PINNacle writes only p = 0, which does not close the problem for the velocity.
    This reference poses the do-nothing condition of the Laplacian-form weak formulation,
        ν u_x − p = 0   and   ν v_x = 0   at x = 2   (ν ∂u/∂n − p n = 0),
    natural in ν(∇u, ∇w) − (p, ∇·w) + ((u·∇)u, w) = (f, w); p is then ν u_x, |p| < 0.01 there. It
    lets fluid in when the inlet reverses (u down to −1.86 at the outlet), and the stress form
    2νD(u)n − p n = 0 (COMSOL's usual outlet) gives a visibly different flow: 5 % in u, v
    (``--outlet-study``). The pressure has no initial condition (PINNacle's p = 0 at t = 0 is not
    consistent): at t = 0 the file holds p(0+), the harmonic p with ∂p/∂x = −a'(0) sin πy = −9π sin πy
    at the inlet, ∂p/∂y = 0 on the walls, p = 0 at the outlet (``initial_pressure``, a cosine
    series, up to 37.8 at the inlet: the whole channel accelerating from rest).

Method
    Space: Taylor–Hood P2/P1 (scikit-fem) on the structured triangle mesh with n squares per unit
    length (h = 1/n, each square cut into two triangles); every integral by the same degree-5
    rule through sparse matrices from dofs to quadrature values. Time: BDF2 (the first step
    BDF1) with the convection extrapolated, (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2τ) + (u*·∇)u* + ∇pⁿ⁺¹ −
    νΔuⁿ⁺¹ = fⁿ⁺¹, u* = 2uⁿ − uⁿ⁻¹ (SBDF2/EXT2): the matrix is constant, so one LU per (h, τ)
    (PARDISO, real unsymmetric, one MKL thread, no iterative refinement; SuperLU without
    pypardiso) and one back-substitution a step. Implicit convection would need a new
    factorisation every step (seconds at h = 1/64); the explicit term's step limit (it blew up
    in trial runs at |u|τ/(h/2) ≈ 1.4) is far looser than the accuracy wanted (the study's
    steps stay at ≤ 0.71). Dirichlet dofs are eliminated; the outlet needs nothing.

    Values at the evaluation points (the 0.05-spaced grid of [0, 2] × [0, 1], 41 × 21, boundary
    included) through scikit-fem's probe matrices, at t = 0, 0.1, …, 5; differences are
    PINNacle's pooled relative L2 over u, v, p and every value (p is 99.7 % of that norm).

Command (2-core CPU shared with other jobs, 2026-12-06; 15.5 min in all)
    python experiments/references/ns2d_lt.py     # --n 8 16 32 64 --steps 400 800 1600
writes ``data/references/ns2d_lt.npz`` (columns x, y, t, u, v, p; 861 points × 51 times,
node-major; the n = 64, τ = 1/1600 solve, 74 691 dofs, 8000 steps) and
``ns2d_lt_refinement.npz`` beside it (the tables below, per field).

Measured (relative L2 difference to the finest, n = 64 and τ = 1/1600; u, v, p pooled and u, v
pooled; time: setup + all steps, load average about 5 on the 2 cores)::

    space (τ = 1/1600, 8000 steps)
       h     dofs  time (s)  u,v,p vs finest  order   u,v vs finest  order
     1/8     1275       4.2        7.824e-03            3.932e-02
    1/16     4851      12.5        1.337e-03   2.55     1.134e-02   1.79
    1/32    18915      60.2        1.228e-04   3.45     7.215e-04   3.97
    1/64    74691     491.5        0 (reference)        (successive orders 3.36 and 3.91)

    time (h = 1/64)
       τ   steps  time (s)  u,v,p vs finest  order   u,v vs finest  order
   1/400    2000     108.5        3.930e-04            1.946e-04
   1/800    4000     246.1        7.860e-05   2.32     3.877e-05   2.33
  1/1600    8000     491.5        0 (reference)        (successive orders 2.00 and 2.01)

So the reference's own error is about 1.3e-5 (space, order 3.4) + 2.6e-5 (time, τ²): 4e-5
pooled; for u, v pooled about 5e-5 + 1.3e-5 (1e-4 if space were only order 3); v alone, 1/9 of
u's norm, a few 1e-4. The time error follows the inlet's acceleration (largest at t = 0.2, 1,
2, …, tiny at t = 0.5, 1.5, …): it is mostly the pressure's.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from experiments.references.common import convergence, pardiso_call, rel_l2  # noqa: E402

OUT = ROOT / "data" / "references" / "ns2d_lt.npz"

NU = 0.01
LENGTH, HEIGHT = 2.0, 1.0
T_END = 5.0
OUT_DT = 0.1
OUT_TIMES = np.round(np.arange(51) * OUT_DT, 12)
SPACING = 0.05  # evaluation grid: 41 × 21 points, boundary included


# --------------------------------------------------------------------------------------------
# The problem's data


def inlet_amplitude(t):
    """a(t) = sin πt + sin 3πt + sin 5πt: the inlet velocity is u = a(t) sin πy."""
    return np.sin(np.pi * t) + np.sin(3 * np.pi * t) + np.sin(5 * np.pi * t)


def inlet_amplitude_dt(t):
    return np.pi * (np.cos(np.pi * t) + 3 * np.cos(3 * np.pi * t) + 5 * np.cos(5 * np.pi * t))


class Flow:
    """A Navier–Stokes problem on [0, L] × [0, H] for :func:`solve`: Dirichlet velocity on x = 0,
    y = 0 and y = H, the outlet x = L natural, ν ∂u/∂n − p n = ``traction`` (0: do nothing).
    ``dirichlet(x, t)`` → (u, v), ``force(x, t)`` → (f_x, f_y), ``traction(x, t)`` → (h_x, h_y)
    or None, ``initial(x)`` → (u, v); x ``[2, ...]``."""

    nu = NU
    length, height = LENGTH, HEIGHT

    def dirichlet(self, x, t):
        return inlet_amplitude(t) * np.sin(np.pi * x[1]) * (x[0] < 1e-12), np.zeros(x.shape[1:])

    def force(self, x, t):
        if getattr(self, "_at", None) is not x:  # the spatial factor, once per set of points
            self._at, self._shape = x, -np.sin(np.pi * x[0]) * np.sin(np.pi * x[1])
        return None, self._shape * np.sin(np.pi * t)

    traction = None

    def initial(self, x):
        return np.zeros(x.shape[1:]), np.zeros(x.shape[1:])


def initial_pressure(x, y, terms: int = 4000):
    """NS2d-LT's pressure at t = 0+ (the one consistent with u = v = 0 and the inlet's
    acceleration a'(0) sin πy = 9π sin πy): Δp = 0, ∂p/∂x = −9π sin πy at x = 0, ∂p/∂y = 0 on the
    walls, p = 0 at x = 2. With sin πy = 2/π − Σ_{k even} 4/(π(k² − 1)) cos kπy,
    p = 18 (2 − x) − Σ_{k even} 36/(π(k² − 1)) · sinh(kπ(2 − x)) / (kπ cosh 2kπ) · cos kπy."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    a = inlet_amplitude_dt(0.0)  # 9π
    p = a * (2 / np.pi) * (LENGTH - x)
    for k in range(2, terms + 1, 2):
        c = -4 / (np.pi * (k * k - 1))
        # sinh(kπ(L − x)) / cosh(kπL) without overflow
        ratio = (np.exp(-k * np.pi * x) - np.exp(-k * np.pi * (2 * LENGTH - x))) / (1 + np.exp(-2 * k * np.pi * LENGTH))
        p = p + a * c * ratio / (k * np.pi) * np.cos(k * np.pi * y)
    return p


# --------------------------------------------------------------------------------------------
# Discretisation


def quadrature_matrices(basis) -> Tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """For a scalar ``basis``: the sparse matrices that take its dofs to values, x- and
    y-derivatives at the quadrature points (rows: element-major, ``E·Q``)."""
    E, Q = basis.dx.shape
    rows = np.arange(E * Q).reshape(E, Q)
    out = []
    for which in ("value", "dx", "dy"):
        data, cols = [], []
        for i in range(basis.Nbfun):
            f = basis.basis[i][0]
            data.append(f.value if which == "value" else f.grad[0 if which == "dx" else 1])
            cols.append(np.broadcast_to(basis.element_dofs[i][:, None], (E, Q)))
        rr = np.broadcast_to(rows, (basis.Nbfun, E, Q)).ravel()
        out.append(sp.csr_matrix((np.ravel(data), (rr, np.ravel(cols))), shape=(E * Q, basis.N)))
    return tuple(out)


class Discretisation:
    """Taylor–Hood P2/P1 on the structured mesh of [0, L] × [0, H] with ``n`` squares per unit
    length (each cut into two triangles, h = 1/n): the scalar P2 mass ``M`` and stiffness ``K``,
    the divergence blocks ``Bx``, ``By`` (∫ q ∂φ/∂x), the quadrature matrices for the
    convection and the load, the outlet's facet quadrature, the Dirichlet dofs."""

    def __init__(self, flow: Flow, n: int, intorder: int = 5):
        from skfem import Basis, ElementTriP1, ElementTriP2, FacetBasis, MeshTri

        logging.getLogger("skfem").setLevel(logging.ERROR)
        L, H = flow.length, flow.height
        self.n = n
        self.mesh = m = MeshTri.init_tensor(np.linspace(0, L, int(round(n * L)) + 1),
                                            np.linspace(0, H, int(round(n * H)) + 1))
        self.V = V = Basis(m, ElementTriP2(), intorder=intorder)
        self.P = P = Basis(m, ElementTriP1(), intorder=intorder)
        phi, dx, dy = quadrature_matrices(V)
        psi, _, _ = quadrature_matrices(P)
        w = V.dx.ravel()
        W = sp.diags(w)
        self.phi, self.dx, self.dy, self.w = phi, dx, dy, w
        self.stack = sp.vstack([phi, dx, dy]).tocsr()
        self.phiT_w = (W @ phi).T.tocsr()  # values at quadrature points → load vector
        self.xq = V.global_coordinates().value.reshape(2, -1)
        self.M = (phi.T @ W @ phi).tocsr()
        self.K = (dx.T @ W @ dx + dy.T @ W @ dy).tocsr()
        self.Bx = (psi.T @ W @ dx).tocsr()
        self.By = (psi.T @ W @ dy).tocsr()
        self.nv, self.np_ = V.N, P.N
        self.N = 2 * V.N + P.N
        out = m.facets_satisfying(lambda x: np.isclose(x[0], L))
        fb = FacetBasis(m, ElementTriP2(), facets=out, intorder=intorder)
        fphi, _, _ = quadrature_matrices(fb)
        self.fphiT_w = (sp.diags(fb.dx.ravel()) @ fphi).T.tocsr()
        self.xf = fb.global_coordinates().value.reshape(2, -1)
        d = V.get_dofs(lambda x: np.isclose(x[0], 0) | np.isclose(x[1], 0) | np.isclose(x[1], H)).all()
        self.dir_nodes = np.unique(d)
        self.dir = np.concatenate([self.dir_nodes, self.dir_nodes + V.N])  # velocity dofs u then v
        self.free = np.setdiff1d(np.arange(self.N), self.dir)
        self.xd = V.doflocs[:, self.dir_nodes]

    def system(self, a: float, nu: float, stress: bool = False) -> sp.csr_matrix:
        """[[aM + νK, 0, −Bxᵀ], [0, aM + νK, −Byᵀ], [−Bx, −By, 0]] (symmetric): the Laplacian
        form ν(∇u, ∇w) − (p, ∇·w) − (q, ∇·u). ``stress``: ν(2D(u), D(w)) instead (D(u) = (∇u +
        ∇uᵀ)/2), whose natural outlet condition is 2νD(u)n − p n = h (for comparison only)."""
        if not stress:
            A = a * self.M + nu * self.K
            blocks = [[A, None, -self.Bx.T], [None, A, -self.By.T]]
        else:
            W = sp.diags(self.w)
            xx, yy = self.dx.T @ W @ self.dx, self.dy.T @ W @ self.dy
            uu = a * self.M + nu * (2 * xx + yy)
            vv = a * self.M + nu * (xx + 2 * yy)
            uv = nu * (self.dy.T @ W @ self.dx)  # (u_y + v_x) w1_y: the v_x w1_y part
            blocks = [[uu, uv, -self.Bx.T], [uv.T, vv, -self.By.T]]
        return sp.bmat(blocks + [[-self.Bx, -self.By, None]], format="csr")

    def convection(self, u: np.ndarray, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """∫ (u·∇)u · φ for P2 velocity dofs ``u``, ``v``: the two load vectors."""
        q = self.stack @ np.stack([u, v], axis=1)  # values, x- and y-derivatives at the points
        m = q.shape[0] // 3
        val, ddx, ddy = q[:m], q[m:2 * m], q[2 * m:]
        c = val[:, :1] * ddx + val[:, 1:] * ddy  # [(u·∇)u, (u·∇)v]
        out = self.phiT_w @ c
        return out[:, 0], out[:, 1]


# --------------------------------------------------------------------------------------------
# Linear solves


class Factor:
    """A factorised general sparse matrix: ``solve(b)``. PARDISO's LU (pypardiso's MKL, real
    unsymmetric, mtype 11) when available, else SuperLU."""

    _base = None
    threads = 1  # MKL's threads (one ran fastest on the shared 2-core machine)

    def __init__(self, A: sp.spmatrix, backend: str = "auto"):
        self.n = A.shape[0]
        self._pardiso = None
        if backend in ("auto", "pardiso"):
            try:
                import pypardiso
            except ImportError:
                if backend == "pardiso":
                    raise
            else:
                if Factor._base is None:
                    Factor._base = pypardiso.PyPardisoSolver(mtype=11)
                    Factor._base.set_statistical_info_off()
                if Factor.threads:
                    Factor._base.libmkl.MKL_Set_Num_Threads(ctypes.c_int(Factor.threads))
                self._pardiso = copy.copy(Factor._base)
                self._pardiso.pt = np.zeros_like(Factor._base.pt)
                self._pardiso.iparm = Factor._base.iparm.copy()
                if not self._pardiso.iparm[0]:  # MKL's defaults for mtype 11, from a 1 × 1 solve
                    self._data, self._ia, self._ja = np.ones(1), np.array([1, 2], np.int32), np.array([1], np.int32)
                    n, self.n = self.n, 1
                    self._call(12, np.zeros(1))
                    self._call(-1, np.zeros(1))
                    self.n = n
                    self._pardiso.pt[:] = 0
                    self._pardiso.iparm[7] = 0  # no iterative refinement (3× the cost of a solve)
                    Factor._base.iparm = self._pardiso.iparm.copy()
                self._pardiso.perm = np.zeros(self.n, dtype=np.int32)
                A = sp.csr_matrix(A)
                A.sort_indices()
                self._data = np.ascontiguousarray(A.data, dtype=np.float64)
                self._ia = A.indptr.astype(np.int32) + 1
                self._ja = A.indices.astype(np.int32) + 1
                self._call(12, np.zeros(self.n))
                self.solve = lambda b: self._call(33, np.ascontiguousarray(b, dtype=np.float64))
                return
        from scipy.sparse.linalg import splu

        lu = splu(sp.csc_matrix(A))
        self.solve = lu.solve

    def _call(self, phase: int, b: np.ndarray) -> np.ndarray:
        return pardiso_call(self._pardiso, 11, phase, self.n, self._data, self._ia, self._ja, b)

    def free(self) -> None:
        if self._pardiso is not None:
            self._call(-1, np.zeros(self.n))
            self._pardiso = None


# --------------------------------------------------------------------------------------------
# Time stepping


def solve(flow: Flow, n: int, tau: float, out_times: Sequence[float], points: np.ndarray,
          backend: str = "auto", intorder: int = 5, p0: Optional[Callable] = None,
          stress: bool = False) -> Dict:
    """``flow`` on the mesh with ``n`` squares per unit length, steps of ``tau`` (BDF1, then BDF2;
    convection extrapolated, 2uⁿ − uⁿ⁻¹), values of u, v, p ``[T, P]`` at ``points`` ``[2, P]``
    and ``out_times`` (each a multiple of ``tau``; at t = 0 the initial velocity and ``p0(x, y)``,
    NaN without it), dofs, steps, seconds, and the last state (``final``: u, v, p dofs)."""
    t0 = time.perf_counter()
    d = Discretisation(flow, n, intorder)
    nv = d.nv
    steps = int(round(max(out_times) / tau))
    want: Dict[int, List[int]] = {}
    for j, t in enumerate(out_times):
        k = int(round(t / tau))
        if abs(k * tau - t) > 1e-9 * max(1.0, t):
            raise ValueError(f"output time {t} is not a multiple of the step {tau}")
        want.setdefault(k, []).append(j)
    S1, S2 = d.system(1.0 / tau, flow.nu, stress), d.system(1.5 / tau, flow.nu, stress)  # BDF1, BDF2
    fac = {1: Factor(S1[d.free][:, d.free], backend), 2: Factor(S2[d.free][:, d.free], backend)}
    coupling = {1: S1[d.free][:, d.dir].tocsr(), 2: S2[d.free][:, d.dir].tocsr()}
    Pv, Pp = d.V.probes(points), d.P.probes(points)
    t1 = time.perf_counter()

    u0, v0 = flow.initial(d.V.doflocs)
    U = np.concatenate([u0, v0])  # velocity dofs at tⁿ (u then v)
    U_old = U
    out = {k: np.full((len(out_times), points.shape[1]), np.nan) for k in ("u", "v", "p")}
    for j in want.get(0, []):
        out["u"][j], out["v"][j] = Pv @ U[:nv], Pv @ U[nv:]
        if p0 is not None:
            out["p"][j] = p0(*points)
    x = np.zeros(d.N)
    b = np.zeros(d.N)
    speed = float(np.abs(U).max())  # the largest |u| or |v| at any velocity node and step
    try:
        for k in range(steps):
            t_new = (k + 1) * tau
            if k == 0:  # BDF1: (u¹ − u⁰)/τ + (u⁰·∇)u⁰ + …
                order, hist, star = 1, U / tau, U
            else:  # BDF2: (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2τ) + (u*·∇)u*, u* = 2uⁿ − uⁿ⁻¹
                order, hist, star = 2, (2.0 * U - 0.5 * U_old) / tau, 2.0 * U - U_old
            cx, cy = d.convection(star[:nv], star[nv:])
            b[:nv] = d.M @ hist[:nv] - cx
            b[nv:2 * nv] = d.M @ hist[nv:] - cy
            b[2 * nv:] = 0.0
            fx, fy = flow.force(d.xq, t_new)
            if fx is not None:
                b[:nv] += d.phiT_w @ np.broadcast_to(fx, d.w.shape)
            if fy is not None:
                b[nv:2 * nv] += d.phiT_w @ np.broadcast_to(fy, d.w.shape)
            if flow.traction is not None:
                hx, hy = flow.traction(d.xf, t_new)
                b[:nv] += d.fphiT_w @ np.broadcast_to(hx, d.xf.shape[1:])
                b[nv:2 * nv] += d.fphiT_w @ np.broadcast_to(hy, d.xf.shape[1:])
            g = np.concatenate(flow.dirichlet(d.xd, t_new))
            x[d.dir] = g
            x[d.free] = fac[order].solve(b[d.free] - coupling[order] @ g)
            U_old, U = U, x[:2 * nv].copy()
            speed = max(speed, float(np.abs(U).max()))
            for j in want.get(k + 1, []):
                out["u"][j], out["v"][j], out["p"][j] = Pv @ U[:nv], Pv @ U[nv:], Pp @ x[2 * nv:]
                if not np.isfinite(x).all():
                    raise FloatingPointError(f"the solution blew up by t = {t_new:g}")
    finally:
        fac[1].free()
        fac[2].free()
    t2 = time.perf_counter()
    return dict(out, dofs=int(d.N), steps=steps, time_s=t2 - t0, setup_s=t1 - t0, step_s=t2 - t1,
                n=n, tau=tau, final=x.copy(), disc=d, speed=speed)


# --------------------------------------------------------------------------------------------
# NS2d-LT


def eval_points(spacing: float = SPACING) -> np.ndarray:
    """The grid of [0, 2] × [0, 1] with ``spacing`` (boundary included), ``[2, P]``; y runs
    fastest (point i·21 + j is (x_i, y_j) for the default 41 × 21)."""
    nx, ny = round(LENGTH / spacing) + 1, round(HEIGHT / spacing) + 1
    X, Y = np.meshgrid(np.linspace(0, LENGTH, nx), np.linspace(0, HEIGHT, ny), indexing="ij")
    return np.stack([X.ravel(), Y.ravel()])


def warm_up(backend: str = "auto") -> None:
    """Load scikit-fem and the sparse backend on a tiny problem, so timings hold only work."""
    solve(Flow(), 2, 0.05, [0.0, 0.1], eval_points(0.5), backend)


def fields(run: Dict, names: Sequence[str] = ("u", "v", "p")) -> np.ndarray:
    """The run's values of ``names`` side by side, ``[T, len(names)·P]``: PINNacle's pooled L2RE
    is ``rel_l2`` of these."""
    return np.concatenate([run[k] for k in names], axis=1)


def snapshots(label: str, sizes: Sequence[float], runs: Sequence[Dict], cols: Sequence[int]) -> str:
    """Each run's difference to the last at single output times (u, v, p together, relative to
    the pooled norm), to show where in time the differences sit."""
    fine = fields(runs[-1])
    lines = [f"{label:>8} " + " ".join(f"t={OUT_TIMES[j]:<6.1f}" for j in cols)]
    for s, r in zip(sizes[:-1], runs[:-1]):
        e = np.linalg.norm(fields(r) - fine, axis=1) / np.linalg.norm(fine)
        lines.append(f"{s:>8.4g} " + " ".join(f"{e[j]:<8.1e}" for j in cols))
    return "\n".join(lines)


def study(label: str, sizes: Sequence[float], runs: Sequence[Dict], dofs: Sequence[int], prefix: str) -> Dict:
    """``common.convergence`` tables for u, v, p pooled, then u, v (pooled), u, v and p alone;
    their arrays renamed ``<prefix>_<field>_…`` for the refinement file."""
    out: Dict[str, np.ndarray] = {}
    times = [r["time_s"] for r in runs]
    for name, keys in (("uvp", ("u", "v", "p")), ("uv", ("u", "v")), ("u", ("u",)), ("v", ("v",)), ("p", ("p",))):
        print(f"\n{prefix} study, {'pooled ' if len(keys) > 1 else ''}{', '.join(keys)}:")
        res = convergence(sizes, [fields(r, keys) for r in runs], times, dofs, label)
        for k, v in res.items():
            k = k.replace("refine_", "")
            out[f"{prefix}_{name}_{label if k == 'h' else k}"] = v  # space_…_h, time_…_tau
    return out


def outlet_study(n: int, steps: int, backend: str = "auto") -> None:
    """The same flow with the stress-form outlet, 2νD(u)n − p n = 0, against the Laplacian-form
    one, ν∂u/∂n − p n = 0 (the reference's): how much the outlet condition matters."""
    pts = eval_points()
    runs = []
    for stress in (False, True):
        r = solve(Flow(), n, 1.0 / steps, OUT_TIMES, pts, backend, p0=initial_pressure, stress=stress)
        print(f"  {'stress' if stress else 'Laplacian'} form, n={n}, {steps} steps per unit time: "
              f"{r['time_s']:.1f} s", flush=True)
        runs.append(r)
    for keys in (("u", "v", "p"), ("u", "v"), ("u",), ("v",), ("p",)):
        d = rel_l2(fields(runs[1], keys)[1:], fields(runs[0], keys)[1:])
        print(f"  stress vs Laplacian outlet, {', '.join(keys)}: rel L2 {d:.3e} (t = 0.1 … 5)")
    x = pts[0]
    for name in ("u", "v", "p"):
        diff = np.abs(runs[1][name] - runs[0][name])[1:]
        print(f"  max |Δ{name}| {diff.max():.3e}; at x ≤ 1: {diff[:, x <= 1].max():.3e}; "
              f"at x ≤ 1.5: {diff[:, x <= 1.5].max():.3e}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64],
                    help="squares per unit length (h = 1/n) of the space study (the finest also runs the "
                         "time study)")
    ap.add_argument("--steps", type=int, nargs="+", default=[400, 800, 1600],
                    help="steps per unit time (τ = 1/steps) of the time study (the finest also runs the "
                         "space study)")
    ap.add_argument("--backend", default="auto", choices=["auto", "pardiso", "superlu"])
    ap.add_argument("--outlet-study", action="store_true",
                    help="only compare the stress-form outlet with the Laplacian one at the coarsest "
                         "--n and --steps given (writes nothing)")
    ap.add_argument("--out", default=str(OUT), help="the reference file (.npz; '' writes nothing); the "
                    "convergence numbers go beside it, <stem>_refinement.npz")
    args = ap.parse_args(argv)
    ns, ss = sorted(args.n), sorted(args.steps)

    warm_up(args.backend)
    if args.outlet_study:
        outlet_study(ns[0], ss[0], args.backend)
        return
    pts = eval_points()
    print(f"{pts.shape[1]} evaluation points × {OUT_TIMES.size} times")

    def run(n: int, steps: int) -> Dict:
        out = solve(Flow(), n, 1.0 / steps, OUT_TIMES, pts, args.backend, p0=initial_pressure)
        cfl = out["speed"] * out["tau"] * 2 * n
        print(f"  n={n} τ=1/{steps}: {out['dofs']} dofs, {out['steps']} steps, {out['time_s']:.1f} s (setup "
              f"{out['setup_s']:.1f}, {1e3 * out['step_s'] / out['steps']:.1f} ms a step); max |u|, |v| at the "
              f"nodes {out['speed']:.3f}, CFL |u|τ/(h/2) ≤ {cfl:.2f}", flush=True)
        return out

    t_all = time.perf_counter()
    space = [run(n, ss[-1]) for n in ns[:-1]]
    time_runs = [run(ns[-1], s) for s in ss]
    space.append(time_runs[-1])  # the finest of both
    meta = study("h", [1.0 / n for n in ns], space, [r["dofs"] for r in space], "space")
    meta.update(study("tau", [1.0 / s for s in ss], time_runs, [r["dofs"] for r in time_runs], "time"))
    cols = [1, 2, 3, 5, 10, 15, 20, 30, 40, 50]
    print(f"\nspace (τ = 1/{ss[-1]}), each output time:\n{snapshots('h', [1.0 / n for n in ns], space, cols)}")
    print(f"\ntime (h = 1/{ns[-1]}), each output time:\n"
          f"{snapshots('tau', [1.0 / s for s in ss], time_runs, cols)}")
    ref = time_runs[-1]
    print(f"\nreference (n = {ns[-1]}, τ = 1/{ss[-1]}): |u| ≤ {np.abs(ref['u']).max():.4f}, "
          f"v in [{ref['v'].min():.4f}, {ref['v'].max():.4f}], p in [{ref['p'].min():.3f}, {ref['p'].max():.3f}] "
          f"(t ≥ 0.1: [{ref['p'][1:].min():.3f}, {ref['p'][1:].max():.3f}]); all solves "
          f"{time.perf_counter() - t_all:.0f} s")
    if args.out:
        out = Path(args.out)
        P, T = pts.shape[1], OUT_TIMES.size
        out.parent.mkdir(parents=True, exist_ok=True)
        cols_ = dict(x=np.repeat(pts[0], T), y=np.repeat(pts[1], T), t=np.tile(OUT_TIMES, P))
        for k in ("u", "v", "p"):
            cols_[k] = np.ascontiguousarray(ref[k].T).ravel()  # node-major: row m·T + k is point m at t_k
        np.savez_compressed(out, **cols_)
        meta.update(space_n=np.asarray(ns), space_steps_per_unit=ss[-1], time_steps_per_unit=np.asarray(ss),
                    time_n=ns[-1], time_steps=np.asarray([r["steps"] for r in time_runs]),
                    max_speed=np.asarray([r["speed"] for r in space[:-1] + time_runs]))
        side = out.with_name(out.stem + "_refinement.npz")
        np.savez(side, **{k: np.asarray(v) for k, v in meta.items()})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {side}")


if __name__ == "__main__":
    main()
