"""The classical answer to Poisson image reconstruction (``pde=poisson``): least squares on the
pixel grid, diagonalised by cosine transforms (``solver=fd``).

The targets were made by scipy's filters with the ``reflect`` boundary (half-sample symmetric),
which is the symmetry of the type-II cosine transform (DCT-II). In that basis the centred
difference ``(u[i+1] − u[i−1]) / 2h`` of mode ``k`` is the type-II sine mode ``k`` times
``−sin(πk/R) / h``, and the ``[1 2 1]/4`` smoothing is diagonal with ``cos²(πk/2R)``. So the
least-squares fit of ``G u ≈ g`` (``G``: the difference operator, per axis) is, mode by mode,
``û = Σₐ σₐ ĝₐ / Σₐ σₐ²``, exact and ``O(R² log R)``:

* ``gradient="central"``: ``G`` is the centred difference, the pixel-grid version of what a field
  matches (its derivative at the pixel centres); the Sobel targets' smoothing is then a mismatch;
* ``gradient="sobel"``: ``G`` is the Sobel filter that made the targets (the measurement model
  ``pde.sobel_smoothing=true`` gives the fields), which recovers the image to round-off;
* Laplacian targets: the 5-point stencil that made them, eigenvalues ``−(2 − 2cos(πk/R)) / h²``.

The constant mode is free (the metrics fit gain and offset) and is set to zero.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.fft import dctn, dstn, idctn

GRADIENTS = ("auto", "central", "sobel")


def reconstruct(target: np.ndarray, supervision: str, gradient: str) -> np.ndarray:
    """The least-squares image ``[R, R]`` from targets ``[R, R, 2]`` (gradient) or ``[R, R, 1]``."""
    R = target.shape[0]
    h = 2.0 / (R - 1)
    k = np.arange(R)
    if supervision == "laplacian":  # one diagonal operator: û = λ ĝ / λ²
        lam = -(2.0 - 2.0 * np.cos(math.pi * k / R)) / h**2
        eig = lam[:, None] + lam[None, :]
        return _from_modes(eig * dctn(target[..., 0], type=2, norm="ortho"), eig**2)
    # Mode k of the centred difference: DST-II mode k (1 ≤ k ≤ R; scipy's index k − 1).
    diff = -np.sin(math.pi * k / R) / h
    smooth = np.cos(math.pi * k / (2 * R)) ** 2 if gradient == "sobel" else np.ones(R)
    num = np.zeros((R, R))
    den = np.zeros((R, R))
    for axis in (0, 1):
        sigma = diff[:, None] * smooth[None, :] if axis == 0 else smooth[:, None] * diff[None, :]
        # The difference turns the cosine modes along its axis into sine modes: transform g that way.
        g_hat = _dst_along(target[..., axis], axis)
        # scipy's DST-II index j holds mode j + 1; mode k (0 < k < R) sits at index k − 1, mode R is unreachable.
        aligned = np.zeros((R, R))
        if axis == 0:
            aligned[1:, :] = g_hat[:-1, :]
        else:
            aligned[:, 1:] = g_hat[:, :-1]
        num += sigma * aligned
        den += sigma**2
    return _from_modes(num, den)


def _from_modes(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The image of cosine modes ``num / den``; the constant mode (``den = 0``) is free: zero."""
    den = den.copy()
    den[0, 0] = 1.0
    u_hat = num / den
    u_hat[0, 0] = 0.0
    return idctn(u_hat, type=2, norm="ortho")


def _dst_along(a: np.ndarray, axis: int) -> np.ndarray:
    """DST-II along ``axis``, DCT-II along the other (orthonormal)."""
    other = 1 - axis
    return dctn(dstn(a, type=2, axes=[axis], norm="ortho"), type=2, axes=[other], norm="ortho")


def gradient_for(problem: Any, gradient: str) -> str:
    """``auto``: the Sobel operator when the problem models it (``sobel_smoothing``), else central."""
    if gradient != "auto":
        return gradient
    return "sobel" if problem.smoothing else "central"
