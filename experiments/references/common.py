"""Helpers shared by the reference solvers in this folder (independent of the ``dinf`` package but
for the numerical core of its classical solvers).

- ``rel_l2(a, b)``: ``‖a − b‖ / ‖b‖`` over evaluation points (NaN-free).
- ``convergence(hs, us, times, dofs)``: each refinement's relative L2 difference to the finest
  solution and the observed orders, printed as a table and returned as arrays for the npz.
- ``Factor(A, backend, spd)``: a sparse matrix factorised once, ``solve(b)`` (PARDISO's LU, or
  with ``spd`` its Cholesky, through a pypardiso handle of its own; else SuperLU); it is
  ``dinf.solvers.classical.navier_stokes.Factor`` (a numpy/scipy-only module that imports
  nothing else of ``dinf``, shared with ``solver=taylor_hood``).
- ``probe(basis, u, x)``: a finite-element function at points on straight or curved (quadratic)
  triangle / tetrahedron meshes: among each point's nearest cells the one whose straight-sided
  simplex holds it best, then Newton on the curved cell's own mapping.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from dinf.solvers.classical.navier_stokes import Factor

__all__ = ["Factor", "convergence", "newton", "probe", "rel_l2"]


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Relative discrete L2 difference of ``a`` to ``b`` on the same points."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def convergence(hs: Sequence[float], us: Sequence[np.ndarray], times: Sequence[float],
                dofs: Sequence[int], label: str = "h") -> Dict[str, np.ndarray]:
    """Table of self-convergence: ``us`` (values at the same evaluation points, coarse to fine) against
    the last one. Two orders: ``order_vs_finest`` = log(e_k / e_{k+1}) / log(h_k / h_{k+1}) with
    e the difference to the finest (the last pair is biased low: the finest is not exact), and
    ``order_successive`` from three consecutive solutions, log(‖u_k − u_{k+1}‖ / ‖u_{k+1} − u_{k+2}‖)
    / log(h_k / h_{k+1}), which needs no reference."""
    hs = np.asarray(hs, float)
    fine = us[-1]
    err = np.array([rel_l2(u, fine) for u in us])
    diff = np.array([rel_l2(us[k], us[k + 1]) for k in range(len(us) - 1)] + [np.nan])
    order = np.full(len(us), np.nan)
    order_s = np.full(len(us), np.nan)
    for k in range(len(us) - 1):
        if err[k + 1] > 0:
            order[k + 1] = np.log(err[k] / err[k + 1]) / np.log(hs[k] / hs[k + 1])
    for k in range(len(us) - 2):
        order_s[k + 2] = np.log(diff[k] / diff[k + 1]) / np.log(hs[k] / hs[k + 1])
    print(f"{'ref':>3} {label:>8} {'dofs':>9} {'time (s)':>9} {'rel L2 vs finest':>17} {'order':>6}"
          f" {'rel L2 vs next':>15} {'order (succ.)':>13}")
    for k in range(len(us)):
        print(f"{k:>3} {hs[k]:>8.4g} {int(dofs[k]):>9d} {times[k]:>9.2f} {err[k]:>17.3e} {order[k]:>6.2f}"
              f" {diff[k]:>15.3e} {order_s[k]:>13.2f}")
    return dict(refine_h=hs, refine_dofs=np.asarray(dofs, np.int64), refine_time_s=np.asarray(times, float),
                refine_l2_vs_finest=err, refine_order=order, refine_l2_vs_next=diff,
                refine_order_successive=order_s)


def probe(basis, u: np.ndarray, x: np.ndarray, candidates: int = 12, outside: float = 0.05,
          tol: float = 1e-10) -> np.ndarray:
    """``u`` (dofs of ``basis``) at points ``x`` ``[dim, M]`` on a triangle or tetrahedron mesh, straight
    or quadratic (isoparametric). Each point's cell: among the ``candidates`` cells with the nearest
    centroids (8× and 64× as many for a point none holds), the one whose straight-sided simplex
    holds it (largest least barycentric coordinate); on curved cells, the reference coordinates by
    Newton on the cell's own mapping, and for a point that then falls outside its cell (by more
    than ``tol``), the candidate whose curved cell holds it best. A point farther outside every
    candidate than ``outside`` (reference coordinates) is NaN."""
    from scipy.spatial import cKDTree
    from skfem import MeshTet, MeshTri

    m = basis.mesh
    dim, npts = x.shape
    straight = (MeshTri if dim == 2 else MeshTet)(m.p, m.t)._mapping()
    tree = cKDTree(m.p[:, m.t].mean(axis=1).T)

    def margin(X):  # [dim, M] reference coordinates → least barycentric coordinate (≥ 0 inside)
        return np.minimum(X.min(axis=0), 1 - X.sum(axis=0))

    def nearest(idx, k):
        return tree.query(x[:, idx].T, min(k, m.t.shape[1]))[1].reshape(idx.size, -1)

    best, worst = np.zeros(npts, int), np.full(npts, -np.inf)
    near = np.zeros((npts, 0), int)
    todo = np.arange(npts)
    for k in (candidates, 8 * candidates, 64 * candidates):
        cand = nearest(todo, k)
        if k == candidates:
            near = cand
        for j in range(cand.shape[1]):
            cells = cand[:, j]
            mg = margin(straight.invF(x[:, todo, None], tind=cells)[:, :, 0])
            better = mg > worst[todo]
            best[todo[better]], worst[todo[better]] = cells[better], mg[better]
        todo = todo[worst[todo] < -tol]
        if todo.size == 0:
            break

    def curved_coords(idx, cells):  # reference coordinates [dim, len(idx), 1] on the curved cells
        X = straight.invF(x[:, idx, None], tind=cells)
        bent = np.abs(basis.mapping.F(X, tind=cells) - x[:, idx, None]).max(axis=(0, 2)) > 1e-14
        if bent.any():
            X[:, bent] = newton(basis.mapping, x[:, idx][:, bent], cells[bent], X[:, bent])
        return X

    X = curved_coords(np.arange(npts), best)
    worst = margin(X[:, :, 0])
    todo = np.flatnonzero(worst < -tol)  # outside its curved cell: try the other candidates
    for j in range(near.shape[1]):
        if todo.size == 0:
            break
        cells = near[todo, j]
        Xj = curved_coords(todo, cells)
        mg = margin(Xj[:, :, 0])
        better = mg > worst[todo]
        sel = todo[better]
        best[sel], worst[sel], X[:, sel] = cells[better], mg[better], Xj[:, better]
    out = np.full(npts, np.nan)
    ok = worst > -outside
    cells = best[ok]
    phis = np.array([basis.elem.gbasis(basis.mapping, X[:, ok], k, tind=cells)[0] for k in range(basis.Nbfun)])
    out[ok] = np.einsum("kmq,km->m", phis, u[basis.element_dofs[:, cells]])
    probe.last_margin = worst  # diagnostics: least barycentric coordinate of each point in its cell
    return out


def newton(mapping, x: np.ndarray, cells: np.ndarray, guess: np.ndarray, steps: int = 30) -> np.ndarray:
    """Reference coordinates of ``x`` ``[dim, M]`` in curved ``cells`` by Newton from ``guess``
    ``[dim, M, 1]``; a point that does not converge keeps its straight-sided guess."""
    X = guess.copy()
    for _ in range(steps):
        dX = np.einsum("ijkl,jkl->ikl", mapping.invDF(X, cells), x[:, :, None] - mapping.F(X, cells))
        X += dX
        if np.abs(dX).max() < 1e-13:
            break
    bad = ~np.isfinite(X).all(axis=(0, 2)) | (np.abs(mapping.F(X, cells) - x[:, :, None]).max(axis=(0, 2)) > 1e-10)
    X[:, bad] = guess[:, bad]
    return X
