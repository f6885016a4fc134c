"""ETDRK4 (Cox & Matthews 2002) for v' = L v + N(v) with a diagonal L, its coefficients by Kassam
& Trefethen's contour integral (SIAM J. Sci. Comput. 26, 2005), shared by the Fourier
pseudo-spectral solvers: ``solver=spectral`` (``spectral.py``, with the operators of
``fourier.py``) and the reference scripts ``experiments/references/ks.py`` and ``grayscott.py``.
numpy only; it imports nothing else from ``dinf``.

One step of size h (K&T's notation, products elementwise)::

    a = E2 v + Q N(v)                       E  = e^{hL},  E2 = e^{hL/2}
    b = E2 v + Q N(a)                       Q  = h φ1(hL/2)/2 = h ((e^{z/2} − 1)/z)
    c = E2 a + Q (2 N(b) − N(v))            f1 = h (−4 − z + e^z (4 − 3z + z²)) / z³
    v⁺ = E v + f1 N(v) + 2 f2 (N(a) + N(b)) f2 = h (2 + z + e^z (z − 2)) / z³
         + f3 N(c)                          f3 = h (−4 − 3z − z² + e^z (4 − z)) / z³,  z = hL

The φ-type functions lose every digit to cancellation for small |z| if evaluated as written;
each is entire, so its value at z is the mean of its values on a circle around z (Cauchy), and
the trapezoidal rule on ``M`` equispaced points of the circle |w − z| = ``radius`` converges
geometrically fast in M. The points sit at angles π(2j + 1)/M, never on the real axis, and the
smallest |w| on such a circle is about π/M (for z = −1), so the cancellation costs at most about
(M/π)³ ulps at a single point (M = 64: ~1e-12 there, ~1e-14 in the mean); the tests check the
coefficients against their Taylor series and the direct formulas.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np


def coefficients(L: np.ndarray, h: float, M: int = 64, radius: float = 1.0) -> Dict[str, np.ndarray]:
    """``E``, ``E2``, ``Q``, ``f1``, ``f2``, ``f3`` for the diagonal ``L`` (any shape, real or
    complex) and step ``h``: the contour means over ``M`` points at distance ``radius`` around
    each z = hL (accumulated point by point, so memory stays at a few copies of ``L``). Real
    ``L`` gives real coefficients (the imaginary parts of the mean cancel to round-off)."""
    L = np.asarray(L)
    z = h * L.astype(np.complex128)
    acc = {k: np.zeros(z.shape, np.complex128) for k in ("Q", "f1", "f2", "f3")}
    for j in range(M):
        r = radius * np.exp(1j * np.pi * (2 * j + 1) / M)
        w = z + r
        ew, ew2 = np.exp(w), np.exp(w / 2)
        w3 = w ** 3
        acc["Q"] += (ew2 - 1) / w
        acc["f1"] += (-4 - w + ew * (4 - 3 * w + w * w)) / w3
        acc["f2"] += (2 + w + ew * (w - 2)) / w3
        acc["f3"] += (-4 - 3 * w - w * w + ew * (4 - w)) / w3
    out = {k: h * v / M for k, v in acc.items()}
    out["E"], out["E2"] = np.exp(z), np.exp(z / 2)
    if not np.iscomplexobj(L):
        out = {k: np.ascontiguousarray(v.real) for k, v in out.items()}
    return out


class ETDRK4:
    """Fourth-order exponential time differencing Runge–Kutta for v' = L v + N(v) with diagonal
    ``L`` (the array of its diagonal, the shape of v) and an autonomous ``nonlinear(v)``."""

    def __init__(self, L: np.ndarray, h: float, nonlinear: Callable[[np.ndarray], np.ndarray], M: int = 64):
        self.h = float(h)
        self.N = nonlinear
        c = coefficients(L, h, M)
        self.E, self.E2, self.Q, self.f1, self.f2, self.f3 = (c[k] for k in ("E", "E2", "Q", "f1", "f2", "f3"))

    def step(self, v: np.ndarray) -> np.ndarray:
        E2, Q, N = self.E2, self.Q, self.N
        Nv = N(v)
        a = E2 * v + Q * Nv
        Na = N(a)
        b = E2 * v + Q * Na
        Nb = N(b)
        c = E2 * a + Q * (2 * Nb - Nv)
        Nc = N(c)
        return self.E * v + self.f1 * Nv + 2 * self.f2 * (Na + Nb) + self.f3 * Nc

    def run(self, v0: np.ndarray, out_times: Sequence[float], observe: Callable[[np.ndarray], np.ndarray]
            ) -> np.ndarray:
        """Integrate from ``v0`` at t = 0 and return ``observe(v)`` at ``out_times`` (sorted, each a
        whole number of steps from 0), stacked ``[len(out_times), ...]``."""
        counts = [t / self.h for t in out_times]
        steps = [int(round(c)) for c in counts]
        if any(abs(c - s) > 1e-9 * max(1.0, abs(c)) for c, s in zip(counts, steps)) or steps != sorted(steps):
            raise ValueError(f"output times {list(out_times)} are not sorted multiples of the step {self.h}")
        out: List[np.ndarray] = []
        v, n = v0, 0
        for s in steps:
            while n < s:
                v = self.step(v)
                n += 1
            out.append(observe(v))
        return np.stack(out)
