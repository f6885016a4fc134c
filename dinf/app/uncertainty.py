"""Pointwise uncertainty of an inverse problem's unknowns (issue 30): the Laplace approximation's
standard deviation map from a solver that has one (Gauss–Newton's ``pointwise_std``), scored and
drawn after the run.

Metrics, per unknown ``u``: ``std_u`` (the RMS of the standard deviation over a lattice inside the
domain) and, where an exact solution is known, ``coverage_u``: the fraction of the lattice where
the error is within two standard deviations (about 95 % if the map is calibrated and the error is
the noise's; discretisation error the approximation does not know of lowers it). The picture
(``uncertainty.png``, problems in two coordinates): the map, and the error over it.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from dinf.geometry.domain import closed_contains
from dinf.pdes.conditions import Data

log = logging.getLogger(__name__)
LATTICE = {1: 256, 2: 48, 3: 14}  # points per axis: a few thousand right sides to solve


def uncertainty(solver: Any, problem: Any, field: torch.nn.Module) -> Tuple[Dict[str, float], Optional[Any]]:
    """``(metrics, figure or None)``; nothing for a problem without observations or a solver
    without a Laplace approximation."""
    observed = any(isinstance(c, Data) for c in getattr(problem, "conditions", ()))
    if not observed or not hasattr(solver, "pointwise_std") or getattr(solver, "_state", None) is None:
        return {}, None
    d = problem.in_dim
    if d not in LATTICE:
        return {}, None
    bounds = problem.domain.bounds
    axes = [torch.linspace(float(bounds[i, 0]), float(bounds[i, 1]), LATTICE[d], dtype=torch.float64)
            for i in range(d)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    inside = closed_contains(problem.domain, grid)
    x = grid[inside]
    std = solver.pointwise_std(field, problem, x)
    names = problem.unknowns.channel_names()
    metrics = {f"std_{u}": float(np.sqrt(np.mean(std[:, i] ** 2))) for i, u in enumerate(names)}
    error = None
    reference = problem.reference
    if reference.exact is not None or reference.python is not None:  # an exact solution to score against
        with torch.no_grad():
            pred = problem.predict(field, x).double()
        error = (pred - reference.exact_values(x)).abs().numpy()
        for i, u in enumerate(names):
            metrics[f"coverage_{u}"] = float(np.mean(error[:, i] <= 2.0 * std[:, i]))
    log.info("uncertainty (Laplace): %s", " · ".join(f"{k} {v:.3g}" for k, v in metrics.items()))
    figure = _picture(axes, inside, std, error, names) if d == 2 else None
    return metrics, figure


def _picture(axes: Any, inside: torch.Tensor, std: np.ndarray, error: Optional[np.ndarray], names: Any) -> Any:
    import matplotlib.pyplot as plt

    n = len(axes[0])
    columns = 2 if error is not None else 1
    fig, grid = plt.subplots(len(names), columns, figsize=(4.2 * columns, 3.6 * len(names)), squeeze=False)
    extent = [float(axes[0][0]), float(axes[0][-1]), float(axes[1][0]), float(axes[1][-1])]
    mask = inside.numpy().reshape(n, n)

    def show(ax: Any, values: np.ndarray, title: str) -> None:
        image = np.full(n * n, math.nan)
        image[mask.reshape(-1)] = values
        im = ax.imshow(image.reshape(n, n).T, origin="lower", extent=extent, aspect="auto")
        fig.colorbar(im, ax=ax)
        ax.set_title(title)

    for i, u in enumerate(names):
        show(grid[i, 0], std[:, i], f"{u}: standard deviation (Laplace)")
        if error is not None:
            inside_2 = float(np.mean(error[:, i] <= 2.0 * std[:, i]))
            show(grid[i, 1], error[:, i] / np.maximum(std[:, i], 1e-300),
                 f"{u}: |error| / std ({100 * inside_2:.0f} % within 2)")
    fig.tight_layout()
    return fig
