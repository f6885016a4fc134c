"""The Fourier pseudo-spectral operators of Kuramoto–Sivashinsky (1 space axis) and Gray–Scott
(2 space axes, 2 species) on periodic grids, and the trigonometric interpolant of a grid
function at any points: the numerical core of ``solver=spectral`` (``spectral.py``) and of the
reference scripts ``experiments/references/ks.py`` and ``grayscott.py``, which step them with
ETDRK4 (``etdrk4.py``). numpy and scipy only; it imports nothing else from ``dinf``.

Both write v' = L v + N(v) for the grid function's real FFT v (numpy's rfft along the one axis,
scipy's rfft2 on the plane: the full FFT along the first axis, the real one along the last),
with L diagonal and N evaluated on the grid (no dealiasing unless asked):

- KS, u_t + α u u_x + β u_xx + γ u_xxxx = 0 with period ``length``: L(k) = βk² − γk⁴ and
  N(v) = −(α/2) i k FFT(u²), the Nyquist mode's ik set to 0 (its odd derivative is not real).
- Gray–Scott, u_t = ε₁Δu + b(1 − u) − c u v², v_t = ε₂Δv − d v + c u v²: L = (−ε₁|k|² − b,
  −ε₂|k|² − d) per species, N = (b − c u v², c u v²).

The interpolant of an n-point grid function (x_j = lo + j·period/n) is the real, least-
oscillating trigonometric polynomial through it: the Nyquist modes as cosines, the rfft axis's
modes weighted 1, 2, …, 2, 1. It is exact for the grid function and spectrally accurate for a
smooth periodic one.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.fft as sfft

TWO_PI = 2 * np.pi
Pair = Union[float, Sequence[float]]


# --------------------------------------------------------------------------------------------
# Kuramoto–Sivashinsky


def ks_operators(n: int, alpha: float, beta: float, gamma: float, dealias: bool = False,
                 length: float = TWO_PI) -> Tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``L`` (rfft modes of an n-point grid of period ``length``) and the nonlinear term
    ``N(v) = −(α/2) i k FFT(u²)``; ``dealias`` zeroes the modes |m| ≥ n/3 of u²."""
    m = np.arange(n // 2 + 1, dtype=float)
    k = m * (TWO_PI / length)  # exactly m for the period 2π
    L = beta * k**2 - gamma * k**4
    g = -0.5j * alpha * k
    g[-1] = 0.0  # Nyquist mode: its odd derivative is not real
    if dealias:
        g = g * (m < n / 3)

    def nonlinear(v: np.ndarray) -> np.ndarray:
        return g * np.fft.rfft(np.fft.irfft(v, n) ** 2)

    return L, nonlinear


def resample(v: np.ndarray, n: int, p: int) -> np.ndarray:
    """The trigonometric polynomial with rfft coefficients ``v`` (n points) at the p points of
    the same period: a subsample when p divides n, else zero padding (the Nyquist coefficient
    split in two)."""
    if n >= p and n % p == 0:
        return np.fft.irfft(v, n)[:: n // p]
    if n > p:
        raise ValueError(f"{n} points do not nest the {p} output points")
    w = v.copy()
    w[-1] *= 0.5
    return np.fft.irfft(w, p) * (p / n)


def rfft_basis(n: int, points: np.ndarray, lo: float = 0.0, period: float = TWO_PI,
                scale: Optional[float] = None) -> np.ndarray:
    """``[len(points), n/2 + 1]`` complex: the interpolant of an n-point grid function is
    ``Re(basis @ rfft(values))`` at ``points`` (``scale``: the divisor, n by default)."""
    k = (TWO_PI / period) * np.arange(n // 2 + 1)
    w = np.full(k.size, 2.0)
    w[0] = w[-1] = 1.0
    scale = float(n) if scale is None else scale
    e = np.exp(1j * np.multiply.outer(np.asarray(points) - lo, k)) * w / scale
    e[:, -1] = np.cos(k[-1] * (np.asarray(points) - lo)) / scale
    return e


# --------------------------------------------------------------------------------------------
# Gray–Scott


def gs_wavenumbers(n: int, period: float = 2.0) -> Tuple[np.ndarray, np.ndarray]:
    """k along the full axis (fft order) and along the rfft axis, for ``period``."""
    c = TWO_PI / period  # exactly π for the period 2
    return c * np.fft.fftfreq(n, 1.0 / n), c * np.arange(n // 2 + 1)


def gs_operators(n: int, eps: Sequence[float], b: float, d: float, c: float = 1.0, period: Pair = 2.0,
                 workers: int = 2) -> Tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``L`` ``[2, n, n/2 + 1]`` and the grid nonlinearity ``N(w) = rfft2(b − c u v², c u v²)``
    on the n × n grid of periods ``period`` (one, or one per axis; ``c`` = 1 is PINNacle's, 0
    leaves diffusion, decay and the constant feed)."""
    px, py = _pair(period)
    kx, _ = gs_wavenumbers(n, px)
    _, ky = gs_wavenumbers(n, py)
    k2 = kx[:, None] ** 2 + ky[None, :] ** 2
    L = np.stack([-eps[0] * k2 - b, -eps[1] * k2 - d])

    def nonlinear(w: np.ndarray) -> np.ndarray:
        u, v = sfft.irfft2(w, s=(n, n), workers=workers)
        r = c * u * v * v
        return sfft.rfft2(np.stack([b - r, r]), workers=workers)

    return L, nonlinear


class Sampler:
    """The trigonometric interpolant of an n × n grid function (given by its rfft2) at the tensor
    grid ``px`` × ``py``: Re(Ex V Eyᵀ) with the Nyquist modes as cosines (the interpolant's
    real, least-oscillating form) and the rfft axis's weights 1, 2, …, 2, 1. ``lo``: the grid's
    first node, ``period``: its periods (one, or one per axis)."""

    def __init__(self, n: int, px: np.ndarray, py: np.ndarray, lo: Pair = -1.0, period: Pair = 2.0):
        (lx, ly), (pex, pey) = _pair(lo), _pair(period)
        kx, _ = gs_wavenumbers(n, pex)
        self.ex = np.exp(1j * np.multiply.outer(px - lx, kx))
        self.ex[:, n // 2] = np.cos(kx[n // 2] * (px - lx))
        self.ey = rfft_basis(n, py, ly, pey, scale=float(n * n))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """``w`` ``[..., n, n/2 + 1]`` → values ``[..., len(px), len(py)]``."""
        return np.real(self.ex @ w @ self.ey.T)


def _pair(value: Pair) -> Tuple[float, float]:
    if np.ndim(value) == 0:
        return float(value), float(value)
    a, b = value
    return float(a), float(b)
