"""Unknown parameters of a config problem, identified together with the field (issue 30).

```yaml
params:
  lam1: {unknown: true, init: 0.5, bounds: [0, 2], truth: 1.0}
  nu: 0.01                  # a known one, as before
```

An unknown parameter enters residuals and conditions like a known one, but stays a symbol. It is
carried as one more channel of the jet: value θ at every point, every derivative zero. Residuals
are then functions of the extended jet, so the machinery that linearises ``u·u_x`` linearises
``lam1·u·u_x`` too, and its coefficient on the parameter's channel (``∂r/∂θ``) is the parameter's
column of the Gauss–Newton Jacobian (``dinf.solvers.gauss_newton``). Adam trains θ as a parameter
of the problem. ``bounds`` clamp the value the residuals see; ``truth`` (optional) is scored as
``<name>_error`` = |θ − truth| / |truth| in the metrics.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from dinf.errors import ConfigError, check
from dinf.jet import Jet

KEYS = ("unknown", "init", "bounds", "truth")


def split_params(params: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Mapping[str, Any]]]:
    """``(known, unknown)``: the mappings ``{unknown: true, …}`` apart from the numbers."""
    known, unknown = {}, {}
    for name, spec in params.items():
        if isinstance(spec, Mapping):
            extra = sorted(set(spec) - set(KEYS))
            if extra:
                raise ConfigError(f"params.{name}.{extra[0]}", f"not an option of a parameter ({', '.join(KEYS)})")
            if spec.get("unknown") is not True:
                raise ConfigError(f"params.{name}", "a parameter given as a mapping is an unknown one: write "
                                  f"{{unknown: true, init: …}}, or give {name} a number")
            unknown[str(name)] = spec
        else:
            known[name] = spec
    return known, unknown


class InferredParams(nn.Module):
    """The unknown parameters: their names, values ``theta`` (a float64 ``nn.Parameter``),
    bounds, true values, and standard deviations once a solver has estimated them."""

    def __init__(self, specs: Mapping[str, Mapping[str, Any]]):
        super().__init__()
        self.names: List[str] = list(specs)
        inits, self.bounds, self.truth = [], [], {}
        for name, spec in specs.items():
            key = f"params.{name}"
            check(name.isidentifier() and "_" not in name, key, "an unknown parameter's name is letters and digits "
                  "(lam1, nu): an underscore would read as a derivative")
            init = spec.get("init")
            check(_number(init), f"{key}.init", f"give the starting value, a number, got {init!r}")
            lo, hi = -math.inf, math.inf
            if spec.get("bounds") is not None:
                b = spec["bounds"]
                ok = isinstance(b, (list, tuple)) and len(b) == 2 and all(_number(v) for v in b) and b[0] < b[1]
                check(ok, f"{key}.bounds", f"give [low, high] with low < high, got {b!r}")
                lo, hi = float(b[0]), float(b[1])
                check(lo <= float(init) <= hi, f"{key}.init", f"{init} lies outside the bounds [{lo:g}, {hi:g}]")
            if spec.get("truth") is not None:
                check(_number(spec["truth"]), f"{key}.truth", f"give the true value, a number, got {spec['truth']!r}")
                self.truth[name] = float(spec["truth"])
            inits.append(float(init))
            self.bounds.append((lo, hi))
        self.theta = nn.Parameter(torch.tensor(inits, dtype=torch.float64))
        self.std: Optional[List[float]] = None  # the Laplace approximation's, set by Gauss–Newton

    def __len__(self) -> int:
        return len(self.names)

    def values(self) -> Tensor:
        """θ clamped into its bounds (what the residuals see)."""
        lo = self.theta.new_tensor([b[0] for b in self.bounds])
        hi = self.theta.new_tensor([b[1] for b in self.bounds])
        return torch.maximum(torch.minimum(self.theta, hi), lo)

    def set(self, values: Any) -> None:
        """Store new values (clamped into the bounds)."""
        with torch.no_grad():
            self.theta.copy_(torch.as_tensor(values, dtype=torch.float64))
            self.theta.copy_(self.values())

    def randomize(self, seed: int = 0) -> Tensor:
        """Set θ to seeded random values inside the bounds (a solver's probe of which jet entries
        the residuals read); returns the values it replaced."""
        saved = self.theta.detach().clone()
        u = torch.rand(len(self), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        lo = torch.tensor([b[0] if math.isfinite(b[0]) else -1.0 for b in self.bounds], dtype=torch.float64)
        hi = torch.tensor([b[1] if math.isfinite(b[1]) else lo[i] + 2.0 for i, b in enumerate(self.bounds)],
                          dtype=torch.float64)
        self.set(lo + (0.1 + 0.8 * u) * (hi - lo))
        return saved

    def extend(self, jet: Jet) -> Jet:
        """``jet`` with one more channel per parameter: value θ, derivatives zero."""
        n, dtype = jet.value.shape[0], jet.value.dtype
        theta = self.values().to(device=jet.value.device, dtype=dtype)
        value = torch.cat([jet.value, theta.expand(n, -1)], 1)

        def zeros(t: Optional[Tensor]) -> Optional[Tensor]:
            if t is None:
                return None
            shape = list(t.shape)
            shape[1] = len(self)
            return torch.cat([t, t.new_zeros(shape)], 1)

        return Jet(value, zeros(jet.grad), zeros(jet.hess), zeros(jet.higher))

    def metrics(self) -> Dict[str, float]:
        """Each parameter's value, its error against ``truth`` and its standard deviation."""
        out: Dict[str, float] = {}
        values = self.values().detach().tolist()
        for i, name in enumerate(self.names):
            out[name] = float(values[i])
            if name in self.truth:
                out[f"{name}_error"] = abs(values[i] - self.truth[name]) / max(abs(self.truth[name]), 1e-300)
            if self.std is not None:
                out[f"{name}_std"] = float(self.std[i])
        return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
