"""The damped step that Gauss–Newton and Newton share: a line search along the solve's direction
and Levenberg–Marquardt's update of the damping from the actual against the predicted decrease."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np


@dataclass
class Step:
    """The outcome of one damped step: the step length ``alpha`` (0: refused), the new point
    ``z`` (None if refused), its ``objective`` and ``payload`` (what ``evaluate`` returned with
    it), the next ``lam``, and whether the decrease was below ``rtol`` of the objective."""

    alpha: float
    z: Optional[np.ndarray]
    objective: float
    payload: Any
    lam: float
    converged: bool


def damped_step(evaluate: Callable[[np.ndarray], Tuple[float, Any]], z: np.ndarray, delta: np.ndarray,
                objective: float, predicted: float, lam: float, halvings: int, rtol: float,
                trusted: float = 3.0) -> Step:
    """Search along ``delta`` from ``z`` (objective ``objective``; the quadratic model predicts
    the change ``predicted``), then update ``lam`` (``trusted``: see ``next_lm``)."""
    alpha, z1, objective1, payload = line_search(evaluate, z, delta, objective, halvings)
    decrease = objective - objective1
    converged = z1 is not None and decrease <= rtol * abs(objective)
    return Step(alpha, z1, objective1, payload, next_lm(lam, alpha, decrease, predicted, trusted), converged)


def line_search(evaluate: Callable[[np.ndarray], Tuple[float, Any]], z: np.ndarray, delta: np.ndarray,
                current: float, halvings: int) -> Tuple[float, Optional[np.ndarray], float, Any]:
    """Halve the step along ``delta`` until ``evaluate(z + α δ)``'s objective falls below
    ``current``: ``(α, z + α δ, objective, payload)``, or ``(0, None, current, None)``."""
    alpha = 1.0
    for _ in range(halvings + 1):
        z1 = z + alpha * delta
        objective, payload = evaluate(z1)
        if np.isfinite(objective) and objective < current:
            return alpha, z1, objective, payload
        alpha *= 0.5
    return 0.0, None, current, None


def next_lm(lam: float, alpha: float, decrease: float, predicted: float, trusted: float = 3.0) -> float:
    """Levenberg–Marquardt's ``λ`` after a step: ×10 when no step was taken (a shorter, more
    gradient-like one next time), ÷3 when a full step gained > 3/4 of the predicted decrease
    (÷``trusted`` when it gained > 9/10), ×2 when it gained < 1/4 or needed halving."""
    if alpha == 0.0:
        return max(lam, 1e-12) * 10.0
    gain = decrease / max(-predicted, 1e-300) if alpha == 1.0 else 0.0
    if gain > 0.9:
        return lam / trusted
    return lam / 3.0 if gain > 0.75 else (lam * 2.0 if gain < 0.25 else lam)
