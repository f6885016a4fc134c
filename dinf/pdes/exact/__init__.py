"""Exact (closed-form or quadrature) reference solutions, by name.

``REFERENCES[name](coords, **params)`` takes a dict of coordinate arrays (``{"x": ..., "t": ...}``,
broadcastable) and the problem's parameters, and returns a dict of outputs (``{"u": ...}``).
Parameters a reference does not use are ignored, so a problem can pass its whole parameter
set. numpy/scipy only: this package does not import torch itself.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

import numpy as np

from dinf.pdes.exact.burgers import DEFAULT_NU, burgers_cole_hopf, burgers_cole_hopf_u_x, default_nodes
from dinf.pdes.exact.wave2d_ms import (wave2d_ms_c1n, wave2d_ms_cm2, wave2d_ms_error_bound, wave2d_ms_particular,
                                       wave2d_ms_pinnacle, wave2d_ms_series, wave2d_ms_series_u_t)

ReferenceFn = Callable[..., Dict[str, np.ndarray]]


def _need(name: str, coords: Mapping[str, Any], *names: str) -> list:
    missing = [n for n in names if n not in coords]
    if missing:
        raise KeyError(f"{name} needs coordinates {', '.join(names)}; got {', '.join(coords) or 'none'}")
    return [np.asarray(coords[n], dtype=np.float64) for n in names]


def burgers_reference(coords: Mapping[str, np.ndarray], **params: Any) -> Dict[str, np.ndarray]:
    """``{"u": u(x, t)}`` from :func:`burgers_cole_hopf`; params ``nu`` (default 0.01/π), ``nodes``."""
    x, t = _need("burgers_cole_hopf", coords, "x", "t")
    nu = params.get("nu")
    return {"u": burgers_cole_hopf(x, t, nu=DEFAULT_NU if nu is None else float(nu), nodes=params.get("nodes"))}


def wave2d_ms_reference(coords: Mapping[str, np.ndarray], **params: Any) -> Dict[str, np.ndarray]:
    """``{"u": u(x, y, t)}`` from :func:`wave2d_ms_series`: Wave2d-MS solved as posed (PINNacle's own
    formula ``g`` is not a solution); param ``terms`` (default None: the accelerated evaluation)."""
    x, y, t = _need("wave2d_ms_series", coords, "x", "y", "t")
    return {"u": wave2d_ms_series(x, y, t, terms=params.get("terms"))}


REFERENCES: Dict[str, ReferenceFn] = {
    "burgers_cole_hopf": burgers_reference,
    "wave2d_ms_series": wave2d_ms_reference,
}

__all__ = ["REFERENCES", "ReferenceFn", "burgers_reference", "burgers_cole_hopf", "burgers_cole_hopf_u_x",
           "default_nodes", "DEFAULT_NU", "wave2d_ms_reference", "wave2d_ms_series", "wave2d_ms_series_u_t",
           "wave2d_ms_pinnacle", "wave2d_ms_particular", "wave2d_ms_c1n", "wave2d_ms_cm2", "wave2d_ms_error_bound"]
