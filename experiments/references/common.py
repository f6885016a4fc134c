"""Helpers shared by the reference solvers in this folder (independent of the ``dinf`` package).

- ``rel_l2(a, b)``: ``‖a − b‖ / ‖b‖`` over evaluation points (NaN-free).
- ``convergence(hs, us, times, dofs)``: each refinement's relative L2 difference to the finest
  solution and the observed orders, printed as a table and returned as arrays for the npz.
- ``probe(basis, u, x)``: a finite-element function at points on straight or curved (quadratic)
  triangle / tetrahedron meshes: among each point's nearest cells the one whose straight-sided
  simplex holds it best, then Newton on the curved cell's own mapping.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


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


def probe(basis, u: np.ndarray, x: np.ndarray, candidates: int = 12, outside: float = 0.05) -> np.ndarray:
    """``u`` (dofs of ``basis``) at points ``x`` ``[dim, M]`` on a triangle or tetrahedron mesh, straight
    or quadratic (isoparametric). A point farther outside every candidate cell than ``outside``
    (reference coordinates) is NaN."""
    from scipy.spatial import cKDTree
    from skfem import MeshTet, MeshTri

    m = basis.mesh
    dim = x.shape[0]
    straight = (MeshTri if dim == 2 else MeshTet)(m.p, m.t)._mapping()
    centroids = m.p[:, m.t].mean(axis=1).T
    near = cKDTree(centroids).query(x.T, min(candidates, m.t.shape[1]))[1].reshape(x.shape[1], -1)
    best, worst = np.zeros(x.shape[1], int), np.full(x.shape[1], -np.inf)
    for j in range(near.shape[1]):
        cells = near[:, j]
        X = straight.invF(x[:, :, None], tind=cells)[:, :, 0]
        margin = np.minimum(X.min(axis=0), 1 - X.sum(axis=0))  # ≥ 0 inside the simplex
        better = margin > worst
        best[better], worst[better] = cells[better], margin[better]
    out = np.full(x.shape[1], np.nan)
    ok = worst > -outside
    cells = best[ok]
    X = straight.invF(x[:, ok, None], tind=cells)
    curved = np.abs(basis.mapping.F(X, tind=cells) - x[:, ok, None]).max(axis=(0, 2)) > 1e-14
    if curved.any():
        X[:, curved] = newton(basis.mapping, x[:, ok][:, curved], cells[curved], X[:, curved])
    phis = np.array([basis.elem.gbasis(basis.mapping, X, k, tind=cells)[0] for k in range(basis.Nbfun)])
    out[ok] = np.einsum("kmq,km->m", phis, u[basis.element_dofs[:, cells]])
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
