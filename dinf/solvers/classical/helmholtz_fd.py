"""Finite differences for Helmholtz on a uniform node grid (``solver=fd`` with ``pde=helmholtz``,
``helmholtz_k30``, ``helmholtz_k40`` or any wavenumber, and ``pde=helmholtz_manufactured``).

Grid and operator
-----------------
Nodes ``x_i = −1 + i h``, ``h = 2 / n``, on ``[−1, 1]²``; ``u = 0`` on the outer boundary (the end
of the PML; the manufactured problem's Dirichlet condition). The PML equation of
``dinf.pdes.helmholtz`` is discretised in its flux form

    ∂x(A ∂x u) + ∂y(B ∂y u) + C k² u + f = 0,   A = e_y / e_x,  B = e_x / e_y,  C = e_x e_y,

with ``1 / e`` at the half nodes: per axis ``T = −Gᵀ diag(1 / e_{i+½}) G`` (``G`` the difference
from the nodes to the half nodes), and ``K = T ⊗ E + E ⊗ T + k² E ⊗ E``, ``E = diag(e)`` at the
nodes (the conservative 5-point stencil). ``e`` is the problem's own ``pml_coefficients``. The
manufactured problem ``Δu + k²u = q`` is the same with ``e = 1``.

Why the flux form rather than the expanded ``operator`` (``A u_xx + A_x u_x + …``, central
differences): the two are the same stencil where ``e = 1`` (all the metrics see) and differ only
inside the layer. Per grid their errors agree to within 2.5 % of each other (k = 20 and 40,
n = 64 … 256, orders 2 and 4; the expanded form ahead in six of nine cases, as its local error is
O(h²) everywhere, while the flux form's is O(h) on the lines next to the layer's inner edge, where
``e''`` jumps, ``s ∝ d²``; the flux form 6 % ahead in one). But the flux form keeps ``K`` complex
symmetric, so its solve is a symmetric indefinite factorisation, 1.5× faster than the
nonsymmetric one (n = 256, 512): for the same time it is the more accurate.

``order=4``: where a node's 3 × 3 neighbourhood lies where ``e = 1`` (everywhere for the
manufactured problem), the compact 9-point scheme ``(Δ_h + h²/6 δx²δy²) u + k² (1 + h²/12 Δ_h) u
= (1 + h²/12 Δ_h)(rhs)`` replaces the 5-point row; the layer keeps the flux form (second order
there, so the PML problem converges at order 2 overall, with a constant 10× (k = 20) to 20×
(k = 40) smaller).

Source
------
The Gaussian ``f = amp · exp(−r² / 2σ) / (2πσ)`` (σ = 1e-4, narrower than a cell) is integrated
over each node's dual cell exactly (a product of ``erf`` differences), so its mass is ``amp`` on
any grid. The reference ``−(i/4) H0⁽²⁾(kr) · amp · exp(−k²σ/2)`` is this Gaussian's exact field
outside it: ``exp(−k²σ/2) ≈ 1 − k²σ/2`` is the Gaussian's Fourier transform at ``|ξ| = k``, set
by its mass and its variance σ per axis, and the discrete field's far-field factor is likewise set
by the node masses' mass and variance. While ``h ≲ 3√σ`` (n ≳ 64) that variance is ``σ + h²/12``:
the far field is ``exp(−k²h²/24)`` too weak, an O(h²) error of the 5-point scheme's own order
(the fitted amplitude is 0.975 at k = 40,
n = 96). Only for ``h ≳ 6√σ`` (n ≲ 32) does the mass sit on one node,
making the field the point source's ``amp · G``, ``1 − exp(−k²σ/2)`` (2 % at k = 20, 8 % at
k = 40) above the reference, on grids whose dispersion error is far larger. With ``order=4`` the
masses are convolved per axis with ``[w, 1 − 2w, w]``, ``w`` chosen so their variance is σ
exactly (mass kept): the fitted amplitude of the field against the reference is then 1 within
0.5 % from n = 64 on, where the plain cell masses would bound the compact scheme at second order
(k = 20, n = 128: 0.22 % instead of 0.52 %; k = 40: 0.88 % instead of 1.9 %).

With ``pde.source_model=singular`` the problem's field is ``u − u_s`` (``dinf.pdes.point_source``):
the source is then the problem's own smooth remainder at the nodes, and the problem adds ``u_s``
back when it probes the field, so ``rel_l2`` over the whole square, core included, falls with n too.

Solve and probe
---------------
Complex ``K`` by SuperLU (scipy, complex LU) or PARDISO (real only: the 2 × 2 block form,
``[[Re K, Im K], [Im K, −Re K]]`` symmetric indefinite for a symmetric ``K``, else
``[[Re K, −Im K], [Im K, Re K]]``); ``auto`` takes PARDISO when installed. On two cores shared
with other work (k = 20, order 2, n = 512): PARDISO 7.1 s, SuperLU 46 s with its BLAS's two
threads (they thrash under load), 4.9 s with one thread (PARDISO then 8.3 s).

The field between nodes is a bicubic spline through the node values (per channel): its own error
is O(h⁴). Linear interpolation's O((kh)²) would be the larger error with ``order=4`` (k = 20 and
40, n = 64 … 256: 4–6× the spline's rel_l2_core); with ``order=2`` the two agree within 11 %
(linear slightly lower: its damping offsets some of the scheme's own error).
"""
from __future__ import annotations

import functools
import math
import threading
from typing import Any, Tuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy import special
from scipy.interpolate import RectBivariateSpline

from dinf.pdes.helmholtz import HelmholtzPML, pml_coefficients
from dinf.pdes.helmholtz_manufactured import HelmholtzManufactured
from dinf.solvers.linalg.sparse_solve import backend_for

ORDERS = (2, 4)
PROBLEMS = (HelmholtzPML, HelmholtzManufactured)


def nodes(n: int) -> np.ndarray:
    """The ``n + 1`` node coordinates of an axis of ``[−1, 1]``."""
    return -1.0 + (2.0 / n) * np.arange(n + 1)


def axis_operator(e_half: np.ndarray, h: float) -> sp.csr_matrix:
    """``∂t((1/e) ∂t ·)`` on the ``n − 1`` inner nodes of an axis with zero ends, from ``e`` at
    its ``n`` half nodes: ``−Gᵀ diag(1/e) G``."""
    n = len(e_half)
    G = sp.diags([np.ones(n), -np.ones(n)], [0, -1], shape=(n, n - 1)) / h
    return (-(G.T @ sp.diags(1.0 / e_half) @ G)).tocsr()


def flux_operator(e_node: np.ndarray, e_half: np.ndarray, k2: float, h: float) -> sp.csr_matrix:
    """``∂x(A ∂x u) + ∂y(B ∂y u) + C k² u`` on the inner nodes (x-index major), from the
    stretching ``e`` at the inner nodes and at the half nodes (the same on both axes)."""
    T, E = axis_operator(e_half, h), sp.diags(e_node)
    return (sp.kron(T, E) + sp.kron(E, T) + k2 * sp.kron(E, E)).tocsr()


def compact_operator(m: int, k2: float, h: float) -> sp.csr_matrix:
    """The compact 9-point ``(Δ_h + h²/6 δx²δy²) + k² (1 + h²/12 Δ_h)`` on ``m × m`` inner nodes."""
    D, I = axis_operator(np.ones(m + 1), h), sp.identity(m)
    Dx, Dy = sp.kron(D, I), sp.kron(I, D)
    return (Dx + Dy + (h**2 / 6) * (Dx @ Dy) + k2 * (sp.identity(m * m) + (h**2 / 12) * (Dx + Dy))).tocsr()


def cell_masses(x: np.ndarray, center: float, sigma: float, exact_variance: bool) -> np.ndarray:
    """The 1D Gaussian's mass over each node's dual cell ``[x − h/2, x + h/2]`` (``erf``); with
    ``exact_variance``, convolved with ``[w, 1 − 2w, w]`` so the masses' variance is ``sigma``."""
    h, s = x[1] - x[0], math.sqrt(2.0 * sigma)
    mu = 0.5 * (special.erf((x + h / 2 - center) / s) - special.erf((x - h / 2 - center) / s))
    if exact_variance:
        w = (sigma - float(np.sum(mu * (x - center) ** 2))) / (2 * h**2)
        mu = np.convolve(mu, [w, 1.0 - 2.0 * w, w], mode="same")
    return mu


def gaussian_source(problem: HelmholtzPML, x: np.ndarray, exact_variance: bool = False) -> np.ndarray:
    """The source ``f`` at every node ``[n + 1, n + 1]`` (complex): cell mass over cell area."""
    h, (cx, cy), s = x[1] - x[0], problem.source_center, problem.source_sigma
    amp = complex(*problem.source_amplitude)
    return amp * np.outer(cell_masses(x, cx, s, exact_variance), cell_masses(x, cy, s, exact_variance)) / h**2


def _smoothed(F: np.ndarray) -> np.ndarray:
    """``(1 + h²/12 Δ_h) F`` at the inner nodes, from ``F`` at every node."""
    c = F[1:-1, 1:-1]
    return c + (F[2:, 1:-1] + F[:-2, 1:-1] + F[1:-1, 2:] + F[1:-1, :-2] - 4 * c) / 12.0


def assemble(problem: Any, n: int, order: int = 2) -> Tuple[sp.csr_matrix, np.ndarray, bool]:
    """``K``, ``b`` with ``K u = b`` at the inner nodes (x-index major), and whether ``K`` is
    symmetric (complex symmetric for the PML)."""
    x, h, m = nodes(n), 2.0 / n, n - 1
    half = x[:-1] + h / 2
    X = torch.as_tensor(np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2))
    if isinstance(problem, HelmholtzPML):
        e_node, e_half = (_stretching(problem, t) for t in (x[1:-1], half))
        k2 = problem.wavenumber**2
        if problem.singular is None:  # K u = −f
            F = -gaussian_source(problem, x, exact_variance=order == 4)
        else:  # pde.source_model=singular: the field is u − u_s, its source the smooth remainder
            F = -problem.operator(X)[1].numpy().reshape(n + 1, n + 1)
        plain = np.abs(x[1:-1]) + h <= 1.0 - problem.pml_width + 1e-9 * h  # e = 1 at the node's neighbours
    else:
        e_node, e_half, k2 = np.ones(m), np.ones(n), problem.k**2
        F = problem.rhs(X).numpy().reshape(n + 1, n + 1)  # K u = q
        plain = np.ones(m, dtype=bool)
    K, b = flux_operator(e_node, e_half, k2, h), F[1:-1, 1:-1]
    if order == 2:
        return K, b.ravel(), True
    rows = np.outer(plain, plain).ravel()
    K = (sp.diags(rows.astype(float)) @ compact_operator(m, k2, h) + sp.diags((~rows).astype(float)) @ K).tocsr()
    b = np.where(rows, _smoothed(F).ravel(), b.ravel())
    return K, b, bool(rows.all())


def _stretching(problem: HelmholtzPML, t: np.ndarray) -> np.ndarray:
    """The problem's ``e = 1 − i s/k`` at coordinates ``t`` of one axis."""
    pts = torch.as_tensor(np.stack([t, t], 1))
    return pml_coefficients(pts, problem.pml_width, problem.pml_strength)["e"][:, 0].numpy()


_PARDISO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _pardiso(mtype: int) -> Any:
    """A kept PARDISO handle (creating one searches for MKL): ``-2`` real symmetric indefinite
    (it reads the upper triangle), ``11`` real nonsymmetric."""
    import pypardiso

    solver = pypardiso.PyPardisoSolver(mtype=mtype)
    solver.set_statistical_info_off()
    return solver


def solve(K: sp.spmatrix, b: np.ndarray, symmetric: bool, backend: str = "auto") -> np.ndarray:
    """``K⁻¹ b``, complex or real. SuperLU: LU with a fill-reducing ordering of ``K + Kᵀ`` (the
    pattern is symmetric) and threshold pivoting. PARDISO: real only, so a complex ``K`` goes as
    its real 2 × 2 block form."""
    if backend_for(backend) == "superlu":
        lu = spla.splu(sp.csc_matrix(K), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1,
                       options={"SymmetricMode": True})
        return lu.solve(b)
    N, cplx = K.shape[0], np.iscomplexobj(K) or np.iscomplexobj(b)
    if cplx:  # symmetric: (R + iI)(a + ic) = b  ⇔  [[R, I], [I, −R]] [a; −c] = [Re b; Im b]
        R, I = sp.csr_matrix(K.real), sp.csr_matrix(K.imag)
        M = sp.bmat([[R, I], [I, -R]] if symmetric else [[R, -I], [I, R]], format="csr")
        rhs = np.concatenate([b.real, b.imag])
    else:
        M, rhs = sp.csr_matrix(K), np.asarray(b, dtype=np.float64)
    with _PARDISO_LOCK:
        solver = _pardiso(-2 if symmetric else 11)
        try:
            z = solver.solve(sp.triu(M, format="csr") if symmetric else M, rhs)
        finally:
            solver.free_memory(everything=True)
    if not cplx:
        return z
    return z[:N] - 1j * z[N:] if symmetric else z[:N] + 1j * z[N:]


def warm_up(backend: str = "auto") -> None:
    """Load the solver (PARDISO's handles, MKL; SuperLU) on tiny systems of each kind."""
    K = sp.csr_matrix(np.array([[2.0 + 1j, 1.0], [1.0, 3.0]]))
    for symmetric in (True, False):
        solve(K, np.ones(2, dtype=complex), symmetric, backend)
        solve(sp.csr_matrix(K.real), np.ones(2), symmetric, backend)


class NodeProbe:
    """The field between the nodes: a bicubic spline through the node values, per channel."""

    def __init__(self, x: np.ndarray, values: np.ndarray):
        self.splines = [RectBivariateSpline(x, x, values[..., c], kx=3, ky=3) for c in range(values.shape[-1])]

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Values ``[N, channels]`` at ``pts`` ``[N, 2]`` (clipped to the square)."""
        p = np.clip(pts, -1.0, 1.0)
        return np.stack([s.ev(p[:, 0], p[:, 1]) for s in self.splines], -1)


def node_values(u: np.ndarray, n: int, channels: int) -> np.ndarray:
    """The inner-node solution with its zero boundary, as real channels ``[n + 1, n + 1, C]``."""
    U = np.zeros((n + 1, n + 1), dtype=u.dtype)
    U[1:-1, 1:-1] = u.reshape(n - 1, n - 1)
    return np.stack([U.real, U.imag], -1) if channels == 2 else U.real[..., None]
