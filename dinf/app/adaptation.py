"""The report of a refined grid's adaptation (``grid.adapt: h``): error and estimate against the
unknowns and the training time, cycle by cycle, and the final cells drawn over the solution.

``adaptation(solver, history, field, problem)`` returns what goes into ``metrics.json``
(``adaptation``: one row per solve, with the run's own validation metric at that step) and the
figure ``adaptation.png``; nothing for a run that does not refine.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from dinf.fields.refined import refined_field
from dinf.fields.warped import edges_of
from dinf.pdes.indicator import EdgesOf, leaf_boxes


def adaptation(solver: Any, history: List[Dict[str, Any]], field: torch.nn.Module, problem: Any
               ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``({"adaptation": rows}, {"adaptation": figure})`` for a ``RefiningGrid`` run, else ``({}, {})``."""
    rows = [dict(h) for h in getattr(solver, "history", None) or []]
    r = refined_field(field)
    if not rows or r is None or not isinstance(rows[0], dict) or "unknowns" not in rows[0]:
        return {}, {}
    by_step = {int(h["step"]): h for h in history if "step" in h}
    metric = _metric(problem, history)
    for row in rows:
        seen = by_step.get(int(row.get("step", -1)), {})
        row["train_time_s"] = seen.get("train_time_s", float("nan"))
        if metric is not None:  # a rejected grid's step ends on the grid brought back: its error is not this row's
            row[metric] = float("nan") if row.get("rejected") else seen.get(metric, float("nan"))
    return {"adaptation": rows}, {"adaptation": _figure(rows, metric, r, field, problem)}


def _metric(problem: Any, history: List[Dict[str, Any]]) -> Optional[str]:
    """The run's primary error metric (the first of its metrics in the history), if any."""
    modes = getattr(problem, "metric_modes", {}) or {}
    for name in modes:
        if history and name in history[-1]:
            return name
    return None


def _figure(rows: List[Dict[str, Any]], metric: Optional[str], r: Any, field: torch.nn.Module, problem: Any) -> Any:
    from matplotlib.figure import Figure

    graded = edges_of(field, problem.bounds)
    zoom = _zoom(r, problem, graded)
    fig = Figure(figsize=(20 if zoom is not None else 15, 4.4))
    axes = fig.subplots(1, 4 if zoom is not None else 3)
    unknowns = [row["unknowns"] for row in rows]
    times = [row["train_time_s"] for row in rows]
    for ax, xs, label in ((axes[0], unknowns, "unknowns"), (axes[1], times, "training time (s)")):
        ax.loglog(xs, [row["eta"] for row in rows], "o-", label="estimate η")
        if metric is not None:
            ax.loglog(xs, [row[metric] for row in rows], "s-", label=metric)
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("refined grid: error and estimate per solve")
    _cells_over_solution(axes[2], r, field, problem, graded)
    if zoom is not None:
        _cells_over_solution(axes[3], r, field, problem, graded, zoom)
    fig.tight_layout()
    return fig


def _zoom(r: Any, problem: Any, graded: Optional[EdgesOf]) -> Optional[np.ndarray]:
    """A window ``[2, 2]`` around the leaves of the middle finer level (twice their extent), for
    a grid in two coordinates refined at least twice; else None."""
    bounds = np.asarray(problem.bounds, dtype=np.float64)
    if len(bounds) != 2 or r.refined < 2:
        return None
    ell = (r.refined + 1) // 2
    lo, hi = leaf_boxes(bounds, r.leaf_cells(ell), r.cell_ids[ell - 1], graded)
    lo, hi = lo.min(0), hi.max(0)
    centre, half = (lo + hi) / 2, (hi - lo).max()
    return np.stack([np.maximum(centre - half, bounds[:, 0]), np.minimum(centre + half, bounds[:, 1])], 1)


def _cells_over_solution(ax: Any, r: Any, field: torch.nn.Module, problem: Any, graded: Optional[EdgesOf],
                         window: Optional[np.ndarray] = None) -> None:
    """The leaf cells' edges over the solution's first channel (2D: an image, over ``window``
    where given; 1D: a curve)."""
    bounds = np.asarray(problem.bounds if window is None else window, dtype=np.float64)
    coords = list(getattr(problem, "coords", ["x", "y"]))
    dtype = next(p.dtype for p in field.parameters())
    if len(bounds) == 1:
        x = torch.linspace(float(bounds[0, 0]), float(bounds[0, 1]), 2001, dtype=dtype)[:, None]
        with torch.no_grad():
            ax.plot(x[:, 0].numpy(), field(x)[:, 0].double().numpy(), lw=1)
        for ell, ids in enumerate(r.leaves()):
            edges = leaf_boxes(np.asarray(problem.bounds, dtype=np.float64), r.leaf_cells(ell), ids, graded)[0][:, 0]
            ax.plot(edges, np.full(len(edges), ax.get_ylim()[0]), "|", ms=8, color=f"C{ell % 10}")
        ax.set_xlabel(coords[0])
        ax.set_title("solution and leaf cells (ticks: cell starts, a colour per level)", fontsize=9)
        return
    if len(bounds) != 2:
        ax.set_axis_off()
        ax.set_title(f"{len(bounds)} coordinates: no picture of the cells", fontsize=9)
        return
    k = 400
    gx, gy = (np.linspace(lo, hi, k) for lo, hi in bounds)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=dtype)
    with torch.no_grad():
        u = field(pts)[:, 0].double().numpy().reshape(k, k)
    inside = problem.domain.contains(pts.double()).numpy().reshape(k, k) if hasattr(problem, "domain") else True
    mesh = ax.pcolormesh(gx, gy, np.where(inside, u, np.nan).T, cmap="viridis", shading="auto")
    ax.figure.colorbar(mesh, ax=ax)
    box = np.asarray(problem.bounds, dtype=np.float64)  # the leaves' lattices span the problem's box
    span = bounds[:, 1] - bounds[:, 0]
    segments = []
    for ell, ids in enumerate(r.leaves()):
        lo, hi = leaf_boxes(box, r.leaf_cells(ell), ids, graded)
        for (x0, y0), (x1, y1) in zip(lo, hi):
            segments.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segments, colors="white", linewidths=0.3, alpha=0.7))
    ax.set_aspect("equal" if 0.25 <= span[0] / span[1] <= 4 else "auto")
    ax.set_xlabel(coords[0])
    ax.set_ylabel(coords[1])
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    what = "zoomed in" if window is not None else f"{sum(len(i) for i in r.leaves())} leaf cells, {r.refined} finer levels"
    ax.set_title(f"solution and its leaf cells ({what})", fontsize=9)
