"""Finite differences on the problem's own pixel grid (``model=fd``): Poisson image
reconstruction by cosine transforms (``dinf.classical.poisson_fd``)."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator
from torch import Tensor

from dinf.classical.base import ClassicalSolver
from dinf.classical.poisson_fd import GRADIENTS, gradient_for, reconstruct
from dinf.errors import ConfigError, check
from dinf.pdes.poisson import PoissonImage


class FiniteDifferences(ClassicalSolver):
    """The least-squares solution of the problem's difference equations on its pixel grid, probed
    by bilinear interpolation (exact at the pixel centres, where the metrics look).
    ``gradient``: the difference operator fitted to gradient targets (``auto``: Sobel when the
    problem models it, ``pde.sobel_smoothing``; else centred)."""

    prefix = "fd"

    def __init__(self, in_dim: int = 2, out_dim: int = 1, gradient: str = "auto"):
        super().__init__(in_dim, out_dim, "finite differences")
        check(gradient in GRADIENTS, "gradient", f"must be one of {GRADIENTS}, got {gradient!r}")
        self.gradient = gradient
        self._probe: Optional[RegularGridInterpolator] = None

    def check(self, field: Any, problem: Any) -> None:
        if not isinstance(problem, PoissonImage):
            raise ConfigError("model", f"model=fd solves pde=poisson and poisson_laplacian; {type(problem).__name__} is not one")
        if problem.bc != "none":
            raise ConfigError("model", f"model=fd solves Poisson images with pde.bc=none, got {problem.bc}")

    def solve(self, field: Any, problem: Any, generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
        """One cosine-transform solve; ``loss``: the least-squares residual relative to the targets."""
        self.check(field, problem)
        R = problem.resolution
        target = problem.target.detach().cpu().double().numpy().reshape(R, R, -1)
        t0 = time.perf_counter()
        gradient = gradient_for(problem, self.gradient)
        u = reconstruct(target, problem.supervision, gradient)
        seconds = time.perf_counter() - t0
        lin = np.linspace(-1.0, 1.0, R)
        self._u, self._probe = u, RegularGridInterpolator((lin, lin), u, method="linear")
        self.info = {"loss": _residual(u, target, problem.supervision, gradient), "loss_zero": 1.0,
                     "dofs": int(u.size), "time_s": seconds, "converged": True}
        return self.info

    def forward(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, 2]`` (zero before the solve)."""
        if self._probe is None:
            return torch.zeros(x.shape[0], 1, dtype=torch.float64)
        pts = x.detach().double().cpu().numpy().clip(-1.0, 1.0)
        return torch.as_tensor(self._probe(pts))[:, None]


def _residual(u: np.ndarray, target: np.ndarray, supervision: str, gradient: str) -> float:
    """``‖G u − g‖ / ‖g‖`` with the operator the solve fitted (scipy's filters, ``reflect``)."""
    import scipy.ndimage as ndi

    R = u.shape[0]
    h = 2.0 / (R - 1)
    if supervision == "laplacian":
        fit = ndi.laplace(u)[..., None] / h**2
    elif gradient == "sobel":
        fit = np.stack([ndi.sobel(u, axis=a) / (8 * h) for a in (0, 1)], -1)
    else:
        fit = np.stack([ndi.correlate1d(u, [-1.0, 0.0, 1.0], axis=a) / (2 * h) for a in (0, 1)], -1)
    return float(np.linalg.norm(fit - target) / max(np.linalg.norm(target), 1e-300))
