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


REFERENCES: Dict[str, ReferenceFn] = {
    "burgers_cole_hopf": burgers_reference,
}

__all__ = ["REFERENCES", "ReferenceFn", "burgers_reference", "burgers_cole_hopf", "burgers_cole_hopf_u_x",
           "default_nodes", "DEFAULT_NU"]
