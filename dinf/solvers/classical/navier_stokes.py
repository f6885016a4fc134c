"""Unsteady incompressible Navier–Stokes on a rectangle: Taylor–Hood P2/P1 in space (scikit-fem),
BDF2 with extrapolated convection in time (SBDF2), one LU per step size. The numerical core of
``solver=taylor_hood`` (``taylor_hood.py``) and of the reference script
``experiments/references/ns2d_lt.py``; numpy, scipy and scikit-fem only (pypardiso when
installed), it imports nothing else from ``dinf``.

Problem (a ``Flow``): u_t + (u·∇)u + ∇p − νΔu = f, ∇·u = 0 on [x0, x0 + L] × [y0, y0 + H]; the
velocity given on the faces ``Flow.walls`` (``dirichlet(x, t)``), the others natural:
ν ∂u/∂n − p n = ``traction`` (None: 0, the do-nothing outlet of the Laplacian form
ν(∇u, ∇w) − (p, ∇·w) + ((u·∇)u, w) = (f, w)); the initial velocity ``initial(x)``.

Space: Taylor–Hood P2/P1 on the structured triangle mesh with n squares per unit length (h = 1/n,
each square cut into two triangles); every integral by the same degree-5 rule through sparse
matrices from dofs to quadrature values. Time: BDF2 (the first step BDF1) with the convection
extrapolated, (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2τ) + (u*·∇)u* + ∇pⁿ⁺¹ − νΔuⁿ⁺¹ = fⁿ⁺¹, u* = 2uⁿ − uⁿ⁻¹:
the matrix is constant, so one LU per (h, τ) (PARDISO, real unsymmetric, one MKL thread, no
iterative refinement; SuperLU without pypardiso) and one back-substitution a step. Dirichlet
dofs are eliminated; a natural face needs nothing (or its traction's load).
"""
from __future__ import annotations

import copy
import ctypes
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

FACES = ("x_min", "x_max", "y_min", "y_max")


class Flow:
    """A Navier–Stokes problem on [x0, x0 + L] × [y0, y0 + H] (``origin``, ``length``,
    ``height``) for :func:`solve` and :class:`Stepper`: the velocity given on the faces
    ``walls`` (``dirichlet(x, t)`` → (u, v)), the other faces natural, ν ∂u/∂n − p n =
    ``traction(x, t)`` → (h_x, h_y) (None: 0, do nothing); ``force(x, t)`` → (f_x, f_y), either
    None for 0; ``initial(x)`` → (u, v); x ``[2, ...]``. This base class is at rest: no force, no
    flow, walls at x = x0, y = y0 and y = y0 + H, the outlet x = x0 + L natural."""

    nu = 0.01
    origin: Tuple[float, float] = (0.0, 0.0)
    length, height = 2.0, 1.0
    walls: Tuple[str, ...] = ("x_min", "y_min", "y_max")

    def dirichlet(self, x, t):
        return np.zeros(x.shape[1:]), np.zeros(x.shape[1:])

    def force(self, x, t):
        return None, None

    traction = None

    def initial(self, x):
        return np.zeros(x.shape[1:]), np.zeros(x.shape[1:])


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


def _on_faces(faces: Sequence[str], lo: Sequence[float], hi: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """The test ``x [2, M] → [M]`` of lying on any of ``faces`` (``x_min`` … ``y_max``)."""

    def on(x: np.ndarray) -> np.ndarray:
        hit = np.zeros(x.shape[1:], bool)
        for face in faces:
            a = FACES.index(face) // 2
            hit = hit | np.isclose(x[a], lo[a] if face.endswith("min") else hi[a])
        return hit

    return on


class Discretisation:
    """Taylor–Hood P2/P1 on the structured mesh of the flow's rectangle with ``n`` squares per
    unit length (each cut into two triangles, h = 1/n): the scalar P2 mass ``M`` and stiffness
    ``K``, the divergence blocks ``Bx``, ``By`` (∫ q ∂φ/∂x), the quadrature matrices for the
    convection and the load, the natural faces' facet quadrature, the Dirichlet dofs."""

    def __init__(self, flow: Flow, n: int, intorder: int = 5):
        from skfem import Basis, ElementTriP1, ElementTriP2, FacetBasis, MeshTri

        logging.getLogger("skfem").setLevel(logging.ERROR)
        L, H = flow.length, flow.height
        x0, y0 = getattr(flow, "origin", (0.0, 0.0))
        lo, hi = (x0, y0), (x0 + L, y0 + H)
        self.n = n
        self.mesh = m = MeshTri.init_tensor(np.linspace(x0, x0 + L, int(round(n * L)) + 1),
                                            np.linspace(y0, y0 + H, int(round(n * H)) + 1))
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
        walls = tuple(getattr(flow, "walls", ("x_min", "y_min", "y_max")))
        natural = [f for f in FACES if f not in walls]
        self.fphiT_w: Optional[sp.csr_matrix] = None
        self.xf = np.zeros((2, 0))
        if natural:
            out = m.facets_satisfying(_on_faces(natural, lo, hi))
            fb = FacetBasis(m, ElementTriP2(), facets=out, intorder=intorder)
            fphi, _, _ = quadrature_matrices(fb)
            self.fphiT_w = (sp.diags(fb.dx.ravel()) @ fphi).T.tocsr()
            self.xf = fb.global_coordinates().value.reshape(2, -1)
        d = V.get_dofs(_on_faces(walls, lo, hi)).all()
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

    def loads(self, b: np.ndarray, flow: Flow, t: float) -> None:
        """Add the force's and the natural faces' traction's load vectors at ``t`` to the
        velocity rows of ``b``."""
        nv = self.nv
        fx, fy = flow.force(self.xq, t)
        if fx is not None:
            b[:nv] += self.phiT_w @ np.broadcast_to(fx, self.w.shape)
        if fy is not None:
            b[nv:2 * nv] += self.phiT_w @ np.broadcast_to(fy, self.w.shape)
        if flow.traction is not None and self.fphiT_w is not None:
            hx, hy = flow.traction(self.xf, t)
            b[:nv] += self.fphiT_w @ np.broadcast_to(hx, self.xf.shape[1:])
            b[nv:2 * nv] += self.fphiT_w @ np.broadcast_to(hy, self.xf.shape[1:])


# --------------------------------------------------------------------------------------------
# Linear solves


def pardiso_call(solver: Any, mtype: int, phase: int, n: int, data: np.ndarray, ia: np.ndarray, ja: np.ndarray,
                 b: np.ndarray) -> np.ndarray:
    """One MKL PARDISO call (``phase``: 12 analyse and factorise, 33 solve, −1 free) for the CSR
    matrix ``data, ia, ja`` (1-based, float64 / int32) of type ``mtype`` on pypardiso's handle
    ``solver`` (its ``pt``, ``perm``, ``iparm``); returns x for the right-hand side ``b``."""
    x = np.zeros_like(b)
    err = ctypes.c_int32(0)
    i32, f64 = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_double)
    solver._mkl_pardiso(solver.pt.ctypes.data_as(ctypes.POINTER(solver._pt_type[0])), ctypes.byref(ctypes.c_int32(1)),
                        ctypes.byref(ctypes.c_int32(1)), ctypes.byref(ctypes.c_int32(mtype)),
                        ctypes.byref(ctypes.c_int32(phase)), ctypes.byref(ctypes.c_int32(n)),
                        data.ctypes.data_as(f64), ia.ctypes.data_as(i32), ja.ctypes.data_as(i32),
                        solver.perm.ctypes.data_as(i32), ctypes.byref(ctypes.c_int32(1)), solver.iparm.ctypes.data_as(i32),
                        ctypes.byref(ctypes.c_int32(0)), b.ctypes.data_as(f64), x.ctypes.data_as(f64),
                        ctypes.byref(err))
    if err.value != 0:
        raise RuntimeError(f"PARDISO error {err.value} in phase {phase}")
    return x


_HANDLES: Dict[int, Any] = {}  # one pypardiso handle per matrix type: creating one searches for MKL (about a second)
THREADS = 1  # MKL's threads: on the shared 2-core machine one thread ran fastest (3× faster than two)


def pardiso_handle(mtype: int, n: int, backend: str = "auto") -> Optional[Any]:
    """A fresh PARDISO handle (pypardiso's, its own ``pt``, ``iparm`` and ``perm`` for an ``n``-row
    matrix) of matrix type ``mtype``, copied from one kept per type; None where pypardiso is
    missing and ``backend`` is ``auto`` (the caller falls back to SuperLU)."""
    if backend not in ("auto", "pardiso"):
        return None
    try:
        import pypardiso
    except ImportError:
        if backend == "pardiso":
            raise
        return None
    base = _HANDLES.get(mtype)
    if base is None:
        base = _HANDLES[mtype] = pypardiso.PyPardisoSolver(mtype=mtype)
        base.set_statistical_info_off()
    if THREADS:
        base.libmkl.MKL_Set_Num_Threads(ctypes.c_int(THREADS))
    handle = copy.copy(base)
    handle.pt = np.zeros_like(base.pt)
    handle.iparm = base.iparm.copy()
    handle.perm = np.zeros(n, dtype=np.int32)
    return handle


class Factor:
    """A factorised sparse matrix: ``solve(b)``. PARDISO (pypardiso's MKL) when available: its LU
    of a general real matrix (mtype 11), or with ``spd`` its Cholesky of the upper triangle of a
    symmetric positive definite one (mtype 2); else SuperLU (with ``spd``, ordered on AᵀA + A)."""

    def __init__(self, A: sp.spmatrix, backend: str = "auto", spd: bool = False):
        self.n = A.shape[0]
        self._mtype = 2 if spd else 11
        self._pardiso = pardiso_handle(self._mtype, self.n, backend)
        if self._pardiso is not None:
            if not spd and not self._pardiso.iparm[0]:  # MKL's defaults for mtype 11, from a 1 × 1 solve
                self._data, self._ia, self._ja = np.ones(1), np.array([1, 2], np.int32), np.array([1], np.int32)
                n, self.n = self.n, 1
                self._call(12, np.zeros(1))
                self._call(-1, np.zeros(1))
                self.n = n
                self._pardiso.pt[:] = 0
                self._pardiso.iparm[7] = 0  # no iterative refinement (3× the cost of a solve)
                _HANDLES[11].iparm = self._pardiso.iparm.copy()
            A = sp.triu(A, format="csr") if spd else sp.csr_matrix(A)
            A.sort_indices()
            self._data = np.ascontiguousarray(A.data, dtype=np.float64)
            self._ia = A.indptr.astype(np.int32) + 1
            self._ja = A.indices.astype(np.int32) + 1
            self._call(12, np.zeros(self.n))
            self.solve = lambda b: self._call(33, np.ascontiguousarray(b, dtype=np.float64))
            return
        from scipy.sparse.linalg import splu

        lu = splu(sp.csc_matrix(A), **({"permc_spec": "MMD_AT_PLUS_A"} if spd else {}))
        self.solve = lu.solve

    def _call(self, phase: int, b: np.ndarray) -> np.ndarray:
        return pardiso_call(self._pardiso, self._mtype, phase, self.n, self._data, self._ia, self._ja, b)

    def free(self) -> None:
        if self._pardiso is not None:
            self._call(-1, np.zeros(self.n))
            self._pardiso = None


# --------------------------------------------------------------------------------------------
# Time stepping


class Stepper:
    """SBDF2 on ``d`` with steps of ``tau`` from ``t0``: ``step()`` advances one step and returns
    the solution vector (u, v, p dofs; a buffer that the next step overwrites); ``U`` holds the
    velocity dofs (u then v) now, ``t`` the time now. ``free()`` releases the factorisations."""

    def __init__(self, flow: Flow, d: Discretisation, tau: float, t0: float = 0.0, backend: str = "auto",
                 stress: bool = False):
        self.flow, self.d, self.tau, self.t0 = flow, d, tau, t0
        S1, S2 = d.system(1.0 / tau, flow.nu, stress), d.system(1.5 / tau, flow.nu, stress)  # BDF1, BDF2
        self.fac = {1: Factor(S1[d.free][:, d.free], backend), 2: Factor(S2[d.free][:, d.free], backend)}
        self.coupling = {1: S1[d.free][:, d.dir].tocsr(), 2: S2[d.free][:, d.dir].tocsr()}
        u0, v0 = flow.initial(d.V.doflocs)
        self.U = np.concatenate([u0, v0])  # velocity dofs at tⁿ (u then v)
        self.U_old = self.U
        self.x = np.zeros(d.N)
        self.b = np.zeros(d.N)
        self.k = 0
        self.t = t0

    def step(self) -> np.ndarray:
        d, flow, tau, U, U_old, x, b = self.d, self.flow, self.tau, self.U, self.U_old, self.x, self.b
        nv, k = d.nv, self.k
        t_new = self.t0 + (k + 1) * tau
        if k == 0:  # BDF1: (u¹ − u⁰)/τ + (u⁰·∇)u⁰ + …
            order, hist, star = 1, U / tau, U
        else:  # BDF2: (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2τ) + (u*·∇)u*, u* = 2uⁿ − uⁿ⁻¹
            order, hist, star = 2, (2.0 * U - 0.5 * U_old) / tau, 2.0 * U - U_old
        cx, cy = d.convection(star[:nv], star[nv:])
        b[:nv] = d.M @ hist[:nv] - cx
        b[nv:2 * nv] = d.M @ hist[nv:] - cy
        b[2 * nv:] = 0.0
        d.loads(b, flow, t_new)
        g = np.concatenate(flow.dirichlet(d.xd, t_new))
        x[d.dir] = g
        x[d.free] = self.fac[order].solve(b[d.free] - self.coupling[order] @ g)
        self.U_old, self.U = U, x[:2 * nv].copy()
        self.k, self.t = k + 1, t_new
        return x

    def free(self) -> None:
        self.fac[1].free()
        self.fac[2].free()


def consistent_pressure(flow: Flow, d: Discretisation, t: float, U: np.ndarray,
                        rate: Callable[[np.ndarray, float], Tuple[np.ndarray, np.ndarray]],
                        backend: str = "auto") -> np.ndarray:
    """The pressure dofs that go with the velocity dofs ``U`` at ``t`` (no initial condition
    gives one): the discrete u_t and p of (u_t, w) − (p, ∇·w) = (f, w) − ((u·∇)u, w) −
    ν(∇u, ∇w) + traction, (q, ∇·u_t) = 0, with the walls' normal component u_t·n =
    ``rate(x, t)``·n (the Dirichlet data's time derivative) and the tangential one free: one
    saddle-point solve with the mass matrix. Its limit is the pressure at t0+ (from rest: the
    potential flow's, whose wall layer is infinitely thin; holding the tangential component too
    put an O(h) layer into the pressure, 1.5 % of NS2d-LT's p(0+) at n = 16)."""
    nv = d.nv
    x0, y0 = getattr(flow, "origin", (0.0, 0.0))
    lo, hi = (x0, y0), (x0 + flow.length, y0 + flow.height)
    walls = tuple(getattr(flow, "walls", ("x_min", "y_min", "y_max")))
    normal = [d.V.get_dofs(_on_faces([f for f in walls if FACES.index(f) // 2 == a], lo, hi)).all()
              for a in (0, 1)]
    held = np.unique(np.concatenate([normal[0], normal[1] + nv]).astype(int))  # u on x faces, v on y faces
    free = np.setdiff1d(np.arange(d.N), held)
    S = d.system(1.0, 0.0)
    b = np.zeros(d.N)
    cx, cy = d.convection(U[:nv], U[nv:])
    b[:nv] = -cx - flow.nu * (d.K @ U[:nv])
    b[nv:2 * nv] = -cy - flow.nu * (d.K @ U[nv:])
    d.loads(b, flow, t)
    g = np.concatenate(rate(d.xd, t))  # both components at the walls' nodes, u then v
    full = np.zeros(d.N)
    full[d.dir] = g
    x = np.zeros(d.N)
    x[held] = full[held]
    fac = Factor(S[free][:, free], backend)
    try:
        x[free] = fac.solve(b[free] - S[free][:, held] @ x[held])
    finally:
        fac.free()
    return x[2 * nv:]


def solve(flow: Flow, n: int, tau: float, out_times: Sequence[float], points: np.ndarray,
          backend: str = "auto", intorder: int = 5, p0: Optional[Callable] = None,
          stress: bool = False) -> Dict:
    """``flow`` on the mesh with ``n`` squares per unit length, steps of ``tau`` from t = 0 (BDF1,
    then BDF2; convection extrapolated, 2uⁿ − uⁿ⁻¹), values of u, v, p ``[T, P]`` at ``points``
    ``[2, P]`` and ``out_times`` (each a multiple of ``tau``; at t = 0 the initial velocity and
    ``p0(x, y)``, NaN without it), dofs, steps, seconds, and the last state (``final``: u, v, p
    dofs)."""
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
    stepper = Stepper(flow, d, tau, 0.0, backend, stress)
    Pv, Pp = d.V.probes(points), d.P.probes(points)
    t1 = time.perf_counter()

    U = stepper.U
    out = {k: np.full((len(out_times), points.shape[1]), np.nan) for k in ("u", "v", "p")}
    for j in want.get(0, []):
        out["u"][j], out["v"][j] = Pv @ U[:nv], Pv @ U[nv:]
        if p0 is not None:
            out["p"][j] = p0(*points)
    x = stepper.x
    speed = float(np.abs(U).max())  # the largest |u| or |v| at any velocity node and step
    try:
        for k in range(steps):
            x = stepper.step()
            speed = max(speed, float(np.abs(stepper.U).max()))
            for j in want.get(k + 1, []):
                out["u"][j], out["v"][j], out["p"][j] = Pv @ x[:nv], Pv @ x[nv:2 * nv], Pp @ x[2 * nv:]
                if not np.isfinite(x).all():
                    raise FloatingPointError(f"the solution blew up by t = {stepper.t:g}")
    finally:
        stepper.free()
    t2 = time.perf_counter()
    return dict(out, dofs=int(d.N), steps=steps, time_s=t2 - t0, setup_s=t1 - t0, step_s=t2 - t1,
                n=n, tau=tau, final=x.copy(), disc=d, speed=speed)
