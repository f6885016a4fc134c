"""Residuals written in Python, for what an expression cannot say.

```python
from dinf.equations import register_residual

@register_residual("burgers")
def burgers(env, params):
    # env: every jet entry by name (u, u_x, u_t, u_xx, u_xt, …, canonical order of the axes),
    # the coordinates (x, t) and, on boundary pieces, the normal (n_x); all [N] tensors.
    return env["u_t"] + env["u"] * env["u_x"] - params["nu"] * env["u_xx"]
```

and in the problem's YAML ``residuals: {pde: {python: burgers}}`` (or ``python: my.module:func``
for a function in an importable module). A complex unknown's entries come as complex tensors;
a complex result is split into real and imaginary parts. It works with every model and
optimizer: linearity is tested numerically, ``r(J₁ + J₂) − r(J₁) − r(J₂) + r(0) = 0`` on random
jets, and the least-squares rows are ``r(e_k) − r(0)``.
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinf.equations.parse import Vocabulary
from dinf.equations.residual import Unknowns, entry_index, jet_width
from dinf.errors import ConfigError
from dinf.jet import Jet

RESIDUALS: Dict[str, Callable[..., Tensor]] = {}


def register_residual(name: str) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Register ``fn(env, params) -> [N]`` (or ``[N, P]``) under ``name`` for ``{python: name}``."""
    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        RESIDUALS[name] = fn
        return fn
    return deco


def resolve(spec: str, key: str) -> Callable[..., Tensor]:
    """A registered name, or ``module:function`` / ``module.function`` to import."""
    if spec in RESIDUALS:
        return RESIDUALS[spec]
    module, sep, attr = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
    if not sep or not module:
        raise ConfigError(key, f"no residual function {spec!r} is registered ({', '.join(RESIDUALS) or 'none'}); "
                               "or give module:function")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(key, f"cannot import {spec!r}: {e}") from None
    if not callable(fn):
        raise ConfigError(key, f"{spec!r} is not a function")
    return fn


class PythonResidual:
    """A residual computed by a Python function of named jet entries; the interface of
    ``Residual`` (order, parts, linear, evaluate, rows)."""

    def __init__(self, spec: str, vocab: Vocabulary, unknowns: Unknowns, key: str, params: Mapping[str, float],
                 bounds: Tensor, order: int = 2):
        self.fn, self.key, self.text = resolve(spec, key), key, f"python: {spec}"
        self.vocab, self.unknowns, self.params = vocab, unknowns, dict(params)
        if order not in (0, 1, 2):
            raise ConfigError(f"{key}.order", f"must be 0, 1 or 2, got {order!r}")
        self.order = order
        self.dim = len(vocab.coords)
        self.names = [n for n, e in vocab.entries.items() if e.order <= order]
        g = torch.Generator().manual_seed(0)
        lo, hi = bounds[:, 0].double(), bounds[:, 1].double()
        self._x = lo + (hi - lo) * torch.rand(16, self.dim, generator=g, dtype=torch.float64)
        try:
            probe = self._call(self._jet(16, g), self._data(self._x))
        except Exception as e:  # noqa: BLE001 - the user's function failed: say where
            raise ConfigError(key, f"{spec} failed on a test jet: {type(e).__name__}: {e}") from None
        self.parts = [None] * probe.shape[1]
        self.nonlinear_term: Optional[str] = None if self._affine(g) else f"(in {spec}, found numerically)"

    @property
    def linear(self) -> bool:
        return self.nonlinear_term is None

    # --- calling the function ---------------------------------------------------------------
    def _data(self, x: Tensor) -> Dict[str, Tensor]:
        return {c: x[:, i] for i, c in enumerate(self.vocab.coords)}

    def _jet(self, n: int, g: torch.Generator) -> Jet:
        c, d = self.unknowns.out_dim, self.dim
        h = torch.randn(n, c, d, d, generator=g, dtype=torch.float64)
        return Jet(torch.randn(n, c, generator=g, dtype=torch.float64), torch.randn(n, c, d, generator=g, dtype=torch.float64),
                   h + h.transpose(-1, -2))

    def _env(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        env = dict(point_data)
        for name in self.names:
            e = self.vocab.entries[name]
            chans = self.unknowns.channels[e.unknown]
            parts = [_entry(jet, c, e.axes) for c in chans]
            env[name] = parts[0] if len(parts) == 1 else torch.complex(parts[0], parts[1])
        return env

    def _call(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Tensor:
        out = self.fn(self._env(jet, point_data), self.params)
        out = torch.as_tensor(out)
        out = out.unsqueeze(1) if out.dim() == 1 else out
        if out.is_complex():
            out = torch.cat([out.real, out.imag], 1)
        return out

    def evaluate(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Tensor:
        return self._call(jet, point_data)

    # --- linearity and rows ------------------------------------------------------------------
    def _affine(self, g: torch.Generator) -> bool:
        data, n = self._data(self._x), self._x.shape[0]
        j1, j2 = self._jet(n, g), self._jet(n, g)
        zero = Jet(j1.value * 0, j1.grad * 0, j1.hess * 0)
        both = Jet(j1.value + j2.value, j1.grad + j2.grad, j1.hess + j2.hess)
        r = [self._call(j, data) for j in (both, j1, j2, zero)]
        gap = (r[0] - r[1] - r[2] + r[3]).abs().max()
        scale = max(float(r[0].abs().max()), float(r[1].abs().max()), 1.0)
        return float(gap) <= 1e-9 * scale

    def rows(self, point_data: Mapping[str, Tensor], dim: int, order: int, like: Tensor) -> Tuple[Tensor, Tensor]:
        """``coef[:, :, c, a] = r(e_(c,a)) − r(0)`` and ``rhs = −r(0)``, ``e`` a unit jet entry."""
        if not self.linear:
            raise ValueError(f"{self.key} is not linear in the unknowns")
        n, width, channels = like.shape[0], jet_width(order, dim), self.unknowns.out_dim
        zero = Jet(like.new_zeros(n, channels), like.new_zeros(n, channels, dim), like.new_zeros(n, channels, dim, dim))
        r0 = self._call(zero, point_data)
        coef = like.new_zeros(n, r0.shape[1], channels, width)
        for c in range(channels):
            for name in self.names:
                e = self.vocab.entries[name]
                if c not in self.unknowns.channels[e.unknown]:
                    continue
                unit = Jet(zero.value.clone(), zero.grad.clone(), zero.hess.clone())
                _set(unit, c, e.axes)
                coef[:, :, c, entry_index(e.axes, dim)] = self._call(unit, point_data) - r0
        return coef, -r0


def _entry(jet: Jet, c: int, axes: Tuple[int, ...]) -> Tensor:
    if not axes:
        return jet.value[:, c]
    if len(axes) == 1:
        return jet.grad[:, c, axes[0]]
    return jet.hess[:, c, axes[0], axes[1]]


def _set(jet: Jet, c: int, axes: Tuple[int, ...]) -> None:
    """Entry (c, axes) of a jet set to 1 (both Hessian entries of a mixed derivative: the
    function reads the canonical one, and the rows put the coefficient there)."""
    if not axes:
        jet.value[:, c] = 1.0
    elif len(axes) == 1:
        jet.grad[:, c, axes[0]] = 1.0
    else:
        jet.hess[:, c, axes[0], axes[1]] = 1.0
        jet.hess[:, c, axes[1], axes[0]] = 1.0


__all__: List[str] = ["register_residual", "PythonResidual", "RESIDUALS", "resolve"]
