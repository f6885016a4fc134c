"""An image's boundary values as a smooth function of the whole square, for hard constraints.

``u = h + B·d`` meets the boundary data exactly for any field ``d`` when ``B = (1 − x²)(1 − y²)``
vanishes on the edges and ``h`` takes the data there. ``h`` is the Coons patch (transfinite
interpolation) of the four edge curves, each a cubic spline through the edge pixels, so ``h`` is
C² and its jet is exact.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import CubicSpline
from torch import Tensor

from dinf.jet import Jet


class CoonsPatch:
    """``h`` on ``[-1, 1]²`` from an image ``[R, R]`` whose pixel ``[i, j]`` sits at
    ``(lin[i], lin[j])``, ``lin = linspace(-1, 1, R)``: ``h`` equals the image on the edges."""

    def __init__(self, image: np.ndarray):
        img = np.asarray(image, dtype=np.float64)
        lin = np.linspace(-1.0, 1.0, img.shape[0])
        # Edges as functions of the coordinate along them: x₀ = −1, +1 (of x₁); x₁ = −1, +1 (of x₀).
        self.left, self.right = CubicSpline(lin, img[0, :]), CubicSpline(lin, img[-1, :])
        self.bottom, self.top = CubicSpline(lin, img[:, 0]), CubicSpline(lin, img[:, -1])
        self.corners = img[0, 0], img[-1, 0], img[0, -1], img[-1, -1]  # P00, P10, P01, P11

    def jet(self, x: Tensor) -> Jet:
        """Value ``[N, 1]``, gradient ``[N, 1, 2]`` and Hessian ``[N, 1, 2, 2]`` of ``h`` at ``x``."""
        p = x.detach().cpu().double().numpy()
        x0, x1 = p[:, 0], p[:, 1]
        s, t = (x0 + 1.0) / 2.0, (x1 + 1.0) / 2.0
        L, R = [np.stack([c(x1, nu) for nu in range(3)]) for c in (self.left, self.right)]
        Bo, T = [np.stack([c(x0, nu) for nu in range(3)]) for c in (self.bottom, self.top)]
        p00, p10, p01, p11 = self.corners
        corner = (1 - s) * (1 - t) * p00 + s * (1 - t) * p10 + (1 - s) * t * p01 + s * t * p11
        value = (1 - s) * L[0] + s * R[0] + (1 - t) * Bo[0] + t * T[0] - corner
        # ds/dx₀ = dt/dx₁ = 1/2.
        g0 = 0.5 * (R[0] - L[0]) + (1 - t) * Bo[1] + t * T[1] - 0.5 * ((1 - t) * (p10 - p00) + t * (p11 - p01))
        g1 = (1 - s) * L[1] + s * R[1] + 0.5 * (T[0] - Bo[0]) - 0.5 * ((1 - s) * (p01 - p00) + s * (p11 - p10))
        h00 = (1 - t) * Bo[2] + t * T[2]
        h11 = (1 - s) * L[2] + s * R[2]
        h01 = 0.5 * (R[1] - L[1]) + 0.5 * (T[1] - Bo[1]) - 0.25 * (p00 - p10 - p01 + p11)
        grad = np.stack([g0, g1], -1)[:, None, :]
        hess = np.stack([np.stack([h00, h01], -1), np.stack([h01, h11], -1)], -2)[:, None]
        dev, dtype = x.device, x.dtype
        return Jet(*(torch.as_tensor(a, dtype=dtype, device=dev) for a in (value[:, None], grad, hess)))
