"""Regularisation of an inverse problem: residuals that share one weight α, fixed or chosen from
the data (issue 30)::

    regularization:
      terms: {smooth_x: a_x, smooth_y: a_y}   # Tikhonov on ∇a; a prior: {prior: lam1 - 0.5}
      weight: risk                            # or discrepancy, lcurve, or a number
      init: 1.0e-4                            # risk, discrepancy, lcurve: the first weight tried
      tau: 1.0                                # discrepancy: reach a data misfit of τ²σ²(1 − p/n)
      dof: false                              # … true: p the degrees of freedom the fit spends (else 0)
      tolerance: 0.05                         # … within this fraction

Each term is a residual like those of ``residuals`` (its loss ``weight · mean r²`` over the
interior points), all with the one weight α. Where α is chosen, Gauss–Newton solves at one
weight until the objective settles, then moves α (``dinf.solvers.weight_search``); both choices
read the observations (``type: data`` conditions of known σ) and nothing of the truth:

- ``discrepancy`` (Morozov): α at which the mean squared misfit of the observations equals τ²σ².
  A smaller α fits the noise; a larger one smooths away what the data resolve. A fit that spends
  p of the n observations' degrees of freedom (p = tr H, H the influence matrix of the fitted
  values on the data) leaves an expected misfit of σ²(n − p)/n, not σ²; ``dof: true`` aims there.
- ``risk``: the least unbiased predictive risk estimate U = misfit/σ² + 2p/n − 1, the mean squared
  error of the fitted values against the noise-free data (Mallows' C_L), p estimated by
  Hutchinson's trace estimator at each weight.
- ``lcurve``: the corner of the curve (log fit, log penalty) over α, seven decades around
  ``init``; needs no noise level (the fit is the objective without the regularisation terms,
  the penalty those terms over α).

On PInv (σ = 0.1) the misfit hardly moves over α = 1e-6 … 1e-3, so the discrepancy principle
accepts them all within 5 %, while U is least at 1e-4, where a is best (the scan is in
``docs/guide/inverse.md``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from dinf.errors import ConfigError, check

KEYS = ("terms", "weight", "init", "tau", "dof", "tolerance")
MODES = ("discrepancy", "risk", "lcurve")
CHOICES = ", ".join(MODES[:-1]) + " or " + MODES[-1]
NEEDS_SIGMA = ("discrepancy", "risk")  # read the observations' noise level; the L-curve does not


class Regularization:
    """The terms (name → expression text), the weight α they share, and how α is chosen:
    ``mode`` ``discrepancy`` (with ``tau``, ``dof``, ``tolerance``), ``risk``, ``lcurve``, or None
    (fixed)."""

    def __init__(self, spec: Mapping[str, Any], key: str = "regularization"):
        check(isinstance(spec, Mapping), key, f"give {{terms: {{smooth: a_x}}, weight: …}}, got {spec!r}")
        extra = sorted(set(spec) - set(KEYS))
        check(not extra, f"{key}.{extra[0] if extra else ''}", f"not an option of regularization ({', '.join(KEYS)})")
        terms = spec.get("terms")
        check(isinstance(terms, Mapping) and len(terms) > 0, f"{key}.terms",
              "give the terms by name, e.g. {smooth_x: a_x, smooth_y: a_y}")
        self.terms: Dict[str, str] = {}
        for name, expr in terms.items():
            check(isinstance(expr, (str, int, float)) and not isinstance(expr, bool), f"{key}.terms.{name}",
                  f"give an expression, e.g. a_x, got {expr!r}")
            self.terms[str(name)] = str(expr)
        weight = spec.get("weight")
        self.mode: Optional[str] = weight if weight in MODES else None
        self.auto = self.mode is not None
        if self.auto:
            self.weight = _positive(spec.get("init", 1e-4), f"{key}.init", "the first weight tried")
        else:
            self.weight = _positive(weight, f"{key}.weight", f"a number, {CHOICES}")
            check("init" not in spec, f"{key}.init", f"is the first weight a search tries; with a fixed weight "
                  f"leave it out (or write weight: {CHOICES})")
        for name in ("tau", "dof", "tolerance"):
            check(self.mode == "discrepancy" or name not in spec, f"{key}.{name}", "is for weight: discrepancy")
        self.tau = _positive(spec.get("tau", 1.0), f"{key}.tau", "the misfit to reach in units of σ")
        self.dof = spec.get("dof", False)
        check(isinstance(self.dof, bool), f"{key}.dof", f"true or false, got {self.dof!r}")
        self.tolerance = _positive(spec.get("tolerance", 0.05), f"{key}.tolerance", "a fraction such as 0.05")
        self.key = key

    def reached(self, ratio: float, target: float) -> bool:
        """Whether a mean squared misfit of ``ratio``·σ² meets ``target``·σ² within the tolerance."""
        return abs(ratio / target - 1.0) <= self.tolerance


def _positive(value: Any, key: str, what: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)) and value > 0
    if not ok:
        raise ConfigError(key, f"give a number > 0 ({what}), got {value!r}")
    return float(value)


def read_regularization(spec: Optional[Mapping[str, Any]]) -> Optional[Regularization]:
    """``None`` where the problem has none."""
    return None if spec is None else Regularization(spec)
