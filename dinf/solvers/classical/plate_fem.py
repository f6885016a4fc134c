"""Plate elements for the simply supported Kirchhoff plate (``pde=plate``, ``plate_sine``).

The bilinear form is the plate's bending energy, ``a(w, v) = ∫ D [(1 − ν) ∇²w : ∇²v + ν Δw Δv]``,
and the load's work ``∫ q v`` the right-hand side: the Ritz system the neural fields minimise, on
a structured triangle mesh of ``[-1, 1]²``. Elements (scikit-fem):

* ``morley``: the non-conforming quadratic (vertex values, edge-midpoint normal slopes); the
  simple support fixes the boundary's vertex values, the moment-free condition is natural.
* ``argyris``: the C¹ quintic (value, gradient and Hessian at vertices, normal slope at edge
  midpoints). ``w = 0`` along an edge also fixes its tangential slope and curvature at the
  vertices there (``u_y``, ``u_yy`` on ``x = ±1``; ``u_x``, ``u_xx`` on ``y = ±1``).
"""
from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np
import torch

from dinf.solvers.linalg.sparse_solve import solve_spd

PLATE_ELEMENTS = ("morley", "argyris")


def plate_system(problem: Any, h: float, element: str) -> Tuple[Any, Any, Any, np.ndarray]:
    """The mesh's basis, stiffness matrix, load vector and the supported dofs."""
    from skfem import Basis, BilinearForm, ElementTriArgyris, ElementTriMorley, LinearForm, MeshTri
    from skfem.helpers import dd, ddot, trace

    n = max(1, math.ceil(2.0 / h))
    m = MeshTri.init_tensor(np.linspace(-1.0, 1.0, n + 1), np.linspace(-1.0, 1.0, n + 1))
    # Quadrature exact for the element's products of second derivatives (degree 2 (p − 2)) and
    # one degree past them for the load.
    basis = Basis(m, ElementTriMorley() if element == "morley" else ElementTriArgyris(),
                  intorder=4 if element == "morley" else 8)
    d, nu = problem.stiffness, problem.poisson_ratio

    @BilinearForm
    def bending(u, v, w):
        U, V = dd(u), dd(v)
        return d * ((1.0 - nu) * ddot(U, V) + nu * trace(U) * trace(V))

    @LinearForm
    def load(v, w):
        pts = torch.as_tensor(w.x.reshape(2, -1).T)
        return problem.pressure(pts).numpy().reshape(w.x.shape[1:]) * v

    K, f = bending.assemble(basis), load.assemble(basis)
    fixed = [basis.get_dofs().all("u")]
    if element == "argyris":  # w = 0 along an edge: its tangential slope and curvature too
        on_x = basis.get_dofs(lambda x: np.isclose(np.abs(x[0]), 1.0))
        on_y = basis.get_dofs(lambda x: np.isclose(np.abs(x[1]), 1.0))
        fixed += [on_x.all("u_y"), on_x.all("u_yy"), on_y.all("u_x"), on_y.all("u_xx")]
    return basis, K, f, np.unique(np.concatenate(fixed))


def solve_plate(problem: Any, h: float, element: str, backend: str = "auto") -> Tuple[Any, np.ndarray, float]:
    """The plate's deflection dofs on elements of size ``h``; returns the basis, the dofs and the
    algebraic residual of the solve (relative)."""
    from skfem import condense

    basis, K, f, fixed = plate_system(problem, h, element)
    u = np.zeros(basis.N)
    Kc, fc, _, free = condense(K, f, x=u, D=fixed)
    Kc = Kc.tocsr()
    u[free] = solve_spd(Kc, fc, backend)
    residual = float(np.linalg.norm(Kc @ u[free] - fc) / max(np.linalg.norm(fc), 1e-300))
    return basis, u, residual
