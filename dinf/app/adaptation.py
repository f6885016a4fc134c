"""The report of a grid's adaptation (``grid.adapt: r``, ``h``, ``rh``): error and estimate
against the unknowns and the training time, cycle by cycle, and the final cells drawn over the
solution.

``adaptation(solver, history, field, problem)`` returns what goes into ``metrics.json``
(``adaptation``: one row per solve, with the run's own validation metric at that step) and the
figure ``adaptation.png``; nothing for a run that does not adapt its grid.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from dinf.fields.base import innermost
from dinf.fields.refined import refined_field
from dinf.fields.warped import edges_of
from dinf.pdes.indicator import EdgesOf, leaf_boxes


def adaptation(solver: Any, history: List[Dict[str, Any]], field: torch.nn.Module, problem: Any
               ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``({"adaptation": rows}, {"adaptation": figure})`` for a moving or refined grid's run
    (``CycledGrid``), else ``({}, {})``."""
    rows = [dict(h) for h in getattr(solver, "history", None) or []]
    if not rows or not isinstance(rows[0], dict) or "unknowns" not in rows[0]:
        return {}, {}
    by_step = {int(h["step"]): h for h in history if "step" in h}
    metric = _metric(problem, history)
    for row in rows:
        seen = by_step.get(int(row.get("step", -1)), {})
        row["train_time_s"] = seen.get("train_time_s", float("nan"))
        if metric is not None:  # a rejected grid's step ends on the grid brought back: its error is not this row's
            row[metric] = float("nan") if row.get("rejected") else seen.get(metric, float("nan"))
    return {"adaptation": rows}, {"adaptation": _figure(rows, metric, refined_field(field), field, problem)}


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
    kind = "refined" if r is not None and r.refined else "moving"
    axes[0].set_title(f"{kind} grid: error and estimate per solve")
    lattices = r.leaf_lattices() if r is not None else [(_cells(field), None)]
    _cells_over_solution(axes[2], lattices, field, problem, graded)
    if zoom is not None:
        _cells_over_solution(axes[3], lattices, field, problem, graded, zoom)
    fig.tight_layout()
    return fig


def _zoom(r: Any, problem: Any, graded: Optional[EdgesOf]) -> Optional[np.ndarray]:
    """A window ``[2, 2]`` around the leaves of the middle finer level (twice their extent), for
    a grid in two coordinates refined at least twice; else None."""
    bounds = np.asarray(problem.bounds, dtype=np.float64)
    if len(bounds) != 2 or r is None or r.refined < 2:
        return None
    ell = (r.refined + 1) // 2
    lo, hi = leaf_boxes(bounds, r.leaf_cells(ell), r.cell_ids[ell - 1], graded)
    lo, hi = lo.min(0), hi.max(0)
    centre, half = (lo + hi) / 2, (hi - lo).max()
    return np.stack([np.maximum(centre - half, bounds[:, 0]), np.minimum(centre + half, bounds[:, 1])], 1)


MAX_LINES = 64  # a moving grid's picture: cell edges drawn per axis at most


def _cells(field: torch.nn.Module) -> Tuple[int, ...]:
    return tuple(int(n) for n in innermost(field).resolution_per_axis)


def _cells_over_solution(ax: Any, lattices: List[Tuple[Any, Optional[np.ndarray]]], field: torch.nn.Module,
                         problem: Any, graded: Optional[EdgesOf], window: Optional[np.ndarray] = None) -> None:
    """The leaf cells' edges (``lattices``: per level its cells per axis and leaves, None for
    all) over the solution's first channel (2D: an image, over ``window`` where given; 1D: a
    curve)."""
    bounds = np.asarray(problem.bounds if window is None else window, dtype=np.float64)
    coords = list(getattr(problem, "coords", ["x", "y"]))
    dtype = next(p.dtype for p in field.parameters())
    if len(bounds) == 1:
        x = torch.linspace(float(bounds[0, 0]), float(bounds[0, 1]), 2001, dtype=dtype)[:, None]
        with torch.no_grad():
            ax.plot(x[:, 0].numpy(), field(x)[:, 0].double().numpy(), lw=1)
        for ell, (cells, ids) in enumerate(lattices):
            ids = np.arange(int(np.prod(cells))) if ids is None else ids
            edges = leaf_boxes(np.asarray(problem.bounds, dtype=np.float64), cells, ids, graded)[0][:, 0]
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
    segments, every = [], [1]
    if len(lattices) == 1 and lattices[0][1] is None:  # one lattice (a moving grid): its lines, at most ~64 an axis
        cells = lattices[0][0]
        edges = graded(list(cells)) if graded is not None else [np.linspace(a, b, int(n) + 1) for (a, b), n in zip(box, cells)]
        every = [max(1, -(-int(n) // MAX_LINES)) for n in cells]
        segments += [[(x, box[1, 0]), (x, box[1, 1])] for x in edges[0][::every[0]]]
        segments += [[(box[0, 0], y), (box[0, 1], y)] for y in edges[1][::every[1]]]
    for cells, ids in lattices if not segments else []:
        lo, hi = leaf_boxes(box, cells, np.arange(int(np.prod(cells))) if ids is None else ids, graded)
        for (x0, y0), (x1, y1) in zip(lo, hi):
            segments.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segments, colors="white", linewidths=0.3, alpha=0.7))
    ax.set_aspect("equal" if 0.25 <= span[0] / span[1] <= 4 else "auto")
    ax.set_xlabel(coords[0])
    ax.set_ylabel(coords[1])
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    count = sum(int(np.prod(c)) if i is None else len(i) for c, i in lattices)
    what = "zoomed in" if window is not None else f"{count} leaf cells, {len(lattices) - 1} finer levels"
    if max(every) > 1:
        what = f"{' × '.join(str(int(n)) for n in lattices[0][0])}; edges drawn every {', '.join(map(str, every))}"
    ax.set_title(f"solution and its cells ({what})", fontsize=9)
