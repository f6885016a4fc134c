"""Searches for a regularisation weight (``dinf.pdes.regularization``): the discrepancy principle's
and the least predictive risk's. Each proposal costs a solve, warm-started from the previous one.

**Discrepancy.**
The mean squared data misfit ``m(α)`` of the solution at weight α grows with α. The search
brackets the α with ``m(α) = target·σ²`` by factors of ``step`` (×10), then narrows the bracket by
the secant in ``(log α, log m)`` (m is close to a power of α there), falling back to bisection
in log α when the secant would land near an end: a tolerance of 5 % typically takes 3–6 solves.

**Risk.** The unbiased predictive risk estimate ``U(α) = m(α)/σ² + 2p(α)/n − 1`` (p the degrees of
freedom the fit spends, ``tr H``) estimates the mean squared error of the fitted values against
the noise-free data, in units of σ², from the data alone. The search steps by decades until the
least ``U`` seen has a larger one on each side, then tries the vertex of the parabola through
those three in log α, and ends at the least ``U`` seen (solving there again when it was not the
last tried).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple


class DiscrepancySearch:
    """Proposes the next weight from the ``(α, m/σ²)`` pairs seen; ``None`` once one is reached."""

    def __init__(self, tolerance: float, step: float = 10.0, limit: int = 16):
        self.tolerance, self.step, self.limit = tolerance, math.log(step), limit
        self.seen: List[Tuple[float, float]] = []  # (log α, log m − log target)

    def propose(self, alpha: float, ratio: float, target: float) -> Optional[float]:
        """The next α after the solve at ``alpha`` gave a misfit of ``ratio``·σ² where ``target``·σ²
        is wanted; ``None`` when it is met within the tolerance, or after ``limit`` solves (the last
        α stays)."""
        gap = math.log(max(ratio, 1e-300)) - math.log(target)
        self.seen.append((math.log(alpha), gap))
        if abs(math.exp(gap) - 1.0) <= self.tolerance or len(self.seen) >= self.limit:
            return None
        low = [p for p in self.seen if p[1] < 0]   # too little misfit: α too small
        high = [p for p in self.seen if p[1] > 0]  # too much: α too large
        if not high:
            return math.exp(max(p[0] for p in low) + self.step)
        if not low:
            return math.exp(min(p[0] for p in high) - self.step)
        a, fa = max(low)   # the bracket's ends nearest each other
        b, fb = min(high)
        x = a - fa * (b - a) / (fb - fa)
        if not a + 0.1 * (b - a) <= x <= b - 0.1 * (b - a):
            x = 0.5 * (a + b)
        return math.exp(x)

    @property
    def solves(self) -> int:
        return len(self.seen)


class RiskSearch:
    """Proposes the next weight from the ``(α, U)`` pairs seen; ``None`` once the solve just made
    is at the least ``U``."""

    def __init__(self, step: float = 10.0, limit: int = 10):
        self.step, self.limit = math.log(step), limit
        self.seen: List[Tuple[float, float]] = []  # (log α, U)
        self.vertex_tried = False

    def propose(self, alpha: float, risk: float) -> Optional[float]:
        """The next α after the solve at ``alpha`` gave ``risk``; ``None`` when it is the least."""
        here = math.log(alpha)
        self.seen.append((here, risk))
        pts = sorted(self.seen)
        best = min(range(len(pts)), key=lambda i: pts[i][1])
        done = self.vertex_tried or len(self.seen) >= self.limit
        if not done and best == 0:
            return math.exp(pts[0][0] - self.step)
        if not done and best == len(pts) - 1:
            return math.exp(pts[-1][0] + self.step)
        if not done:
            (a, fa), (b, fb), (c, fc) = pts[best - 1], pts[best], pts[best + 1]
            denom = (b - a) * (fb - fc) - (b - c) * (fb - fa)
            x = b if denom == 0 else b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / denom
            self.vertex_tried = True
            if min(abs(x - p[0]) for p in pts) > 0.05 * self.step:
                return math.exp(min(max(x, a), c))
        least = pts[best][0]
        return None if abs(least - here) < 1e-12 else math.exp(least)

    @property
    def solves(self) -> int:
        return len(self.seen)
