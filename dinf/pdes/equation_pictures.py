"""Pictures of a config-defined problem: solution, reference and error, one row per unknown.

1D: curves. 1D + t: images over (x, t). 2D: images over the domain (points outside it blank).
2D + t: three time slices. 3D (± t): the middle slice across the last space axis. The reference
is the exact solution where there is one, else the data file interpolated onto the grid.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch
from matplotlib.figure import Figure

from dinf.geometry.domain import closed_contains


def pictures(problem: Any, field: Any, resolution: int = 160) -> Dict[str, Figure]:
    space = [c for c in problem.coords if c != problem.time]
    if len(space) == 1 and problem.time is None:
        return {problem.name: _curves(problem, field)}
    if len(space) == 1 or (len(space) == 2 and problem.time is None):
        return {problem.name: _images(problem, field, [None], resolution)}
    times = [None]
    if problem.time is not None:
        i = problem.coords.index(problem.time)
        lo, hi = (float(v) for v in problem.domain.bounds[i])
        times = [lo, 0.5 * (lo + hi), hi]
    return {problem.name: _images(problem, field, times, resolution)}


MAX_LEVELS = 1000  # a coordinate with at most this many distinct values in the file is a set of slices


def file_dims(problem: Any, fixed: Optional[Dict[int, float]] = None) -> int:
    """The coordinates ``reference_at`` interpolates a reference file in, the ``fixed`` ones held
    (0 where the reference is exact or absent): those not fixed, and the fixed ones the file
    gives on more than ``MAX_LEVELS`` values."""
    ref = problem.reference
    if not ref.given or ref.exact is not None:
        return 0
    nodes = problem.eval_x.cpu().double().numpy()
    held = [a for a in (fixed or {}) if len(np.unique(nodes[:, a])) <= MAX_LEVELS]
    return nodes.shape[1] - len(held)


def reference_at(problem: Any, x: torch.Tensor, fixed: Optional[Dict[int, float]] = None) -> Optional[np.ndarray]:
    """Reference values ``[M, C]`` at ``x``, or None where only a file exists and it has no
    value there (linear interpolation of the file's nodes, nearest outside them). A coordinate
    held at ``fixed[a]`` that the file gives on a few slices (snapshot times, grid planes) is
    read on the nearest slice, in the free coordinates only: a Delaunay triangulation in three or
    more coordinates of a large file takes minutes."""
    ref = problem.reference
    if not ref.given:
        return None
    if ref.exact is not None:
        return ref.exact_values(x).numpy()
    from scipy.interpolate import griddata

    nodes = problem.eval_x.cpu().double().numpy()
    vals = problem.eval_values.cpu().double().numpy()[:, : problem.unknowns.out_dim]
    pts = x.numpy()
    keep = list(range(nodes.shape[1]))
    for a, v in (fixed or {}).items():
        levels = np.unique(nodes[:, a])
        if len(levels) <= MAX_LEVELS:
            on = nodes[:, a] == levels[np.argmin(np.abs(levels - v))]
            nodes, vals = nodes[on], vals[on]
            keep.remove(a)
    nodes, pts = nodes[:, keep], pts[:, keep]
    if nodes.shape[1] > 3:
        return None
    out = _linear(nodes, vals, pts)
    near = griddata(nodes, vals, pts, method="nearest")
    return np.where(np.isnan(out), near, out)


def _linear(nodes: np.ndarray, vals: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Linear interpolation on the nodes' Delaunay triangulation, NaN outside it: what
    ``griddata(method="linear")`` gives, with the point search on one BLAS thread."""
    from scipy.spatial import Delaunay

    if nodes.shape[1] == 1:
        order = np.argsort(nodes[:, 0])
        x = nodes[order, 0]
        out = np.stack([np.interp(pts[:, 0], x, vals[order, c]) for c in range(vals.shape[1])], 1)
        out[(pts[:, 0] < x[0]) | (pts[:, 0] > x[-1])] = np.nan
        return out
    from threadpoolctl import threadpool_limits

    tri = Delaunay(nodes)
    # One BLAS thread: find_simplex's many tiny LAPACK calls, after a numba kernel's OpenMP
    # threads ran, took 12 s instead of 0.03 s for 20 000 points on two cores (threads fighting).
    with threadpool_limits(1, user_api="blas"):
        simplex = tri.find_simplex(pts)
    d = nodes.shape[1]
    T = tri.transform[np.maximum(simplex, 0)]
    bary = np.einsum("mij,mj->mi", T[:, :d], pts - T[:, d])
    weights = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], 1)
    out = np.einsum("mk,mkc->mc", weights, vals[tri.simplices[np.maximum(simplex, 0)]])
    out[simplex < 0] = np.nan
    return out


def _grid(problem: Any, fixed: Dict[int, float], free: List[int], n: int) -> torch.Tensor:
    lins = [torch.linspace(float(problem.domain.bounds[a, 0]), float(problem.domain.bounds[a, 1]), n,
                           dtype=torch.float64) for a in free]
    mesh = torch.meshgrid(*lins, indexing="ij")
    x = torch.zeros(mesh[0].numel(), problem.in_dim, dtype=torch.float64)
    for a, m in zip(free, mesh):
        x[:, a] = m.reshape(-1)
    for a, v in fixed.items():
        x[:, a] = v
    return x


def _images(problem: Any, field: Any, times: List[Optional[float]], n: int) -> Figure:
    names = problem.unknowns.channel_names()
    space = [i for i, c in enumerate(problem.coords) if c != problem.time]
    ti = problem.coords.index(problem.time) if problem.time is not None else None
    free = space[:2] if len(space) >= 2 else space + [ti]
    fixed: Dict[int, float] = {}
    if len(space) == 3:
        fixed[space[2]] = float(problem.domain.bounds[space[2]].mean())
    rows = len(names) * len(times)
    fig = Figure(figsize=(13, 3.6 * rows))
    axes = np.atleast_2d(fig.subplots(rows, 3))
    r = 0
    for t in times:
        f = dict(fixed)
        if t is not None and ti is not None and ti not in free:
            f[ti] = t
        x = _grid(problem, f, free, n)
        inside = closed_contains(problem.domain, x).numpy()
        pred = problem.predict(field, x).numpy()
        ref = reference_at(problem, x, f)
        ext = [float(problem.domain.bounds[free[0], 0]), float(problem.domain.bounds[free[0], 1]),
               float(problem.domain.bounds[free[1], 0]), float(problem.domain.bounds[free[1], 1])]
        # Space against space at true proportions (a disk stays round); (x, t) fills the panel.
        aspect = "equal" if ti not in free and (ext[1] - ext[0]) <= 4 * (ext[3] - ext[2]) else "auto"
        for c, name in enumerate(names):
            p = np.where(inside, pred[:, c], np.nan).reshape(n, n).T
            when = f" at {problem.time} = {t:g}" if t is not None and ti not in free else ""
            panels = [(p, f"{name}{when}", "RdBu_r")]
            if ref is not None:
                q = np.where(inside, ref[:, c], np.nan).reshape(n, n).T
                panels += [(q, f"reference {name}", "RdBu_r"), (np.abs(p - q), f"|error| {name}", "inferno")]
            # The field and its reference share one colour scale, so the eye can compare them.
            shown = np.concatenate([np.ravel(q) for q, _, cm in panels if cm == "RdBu_r"])
            lim = (float(np.nanmin(shown)), float(np.nanmax(shown))) if np.isfinite(shown).any() else (None, None)
            for k, (img, title, cmap) in enumerate(panels):
                ax = axes[r, k]
                scale = {"vmin": lim[0], "vmax": lim[1]} if cmap == "RdBu_r" else {}
                im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap, aspect=aspect, **scale)
                ax.set_title(title)
                ax.set_xlabel(problem.coords[free[0]])
                ax.set_ylabel(problem.coords[free[1]])
                fig.colorbar(im, ax=ax)
            for k in range(len(panels), 3):
                axes[r, k].axis("off")
            r += 1
    fig.tight_layout()
    return fig


def _curves(problem: Any, field: Any, n: int = 400) -> Figure:
    names = problem.unknowns.channel_names()
    x = _grid(problem, {}, [0], n)
    pred = problem.predict(field, x).numpy()
    ref = reference_at(problem, x)
    fig = Figure(figsize=(10, 3.6 * len(names)))
    axes = np.atleast_1d(fig.subplots(len(names), 1))
    for c, name in enumerate(names):
        ax = axes[c]
        ax.plot(x[:, 0], pred[:, c], label=f"{name} (field)")
        if ref is not None:
            ax.plot(x[:, 0], ref[:, c], "--", label="reference")
        ax.set_xlabel(problem.coords[0])
        ax.legend()
    fig.tight_layout()
    return fig
