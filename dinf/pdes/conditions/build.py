"""Conditions from the config mapping ``name -> {type, piece, value, …}`` (``pde.conditions``)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Type

from dinf.equations import Unknowns
from dinf.errors import ConfigError
from dinf.pdes.conditions.base import Condition, Reading
from dinf.pdes.conditions.data import Data
from dinf.pdes.conditions.expression import ResidualCondition
from dinf.pdes.conditions.initial import Initial, InitialRate
from dinf.pdes.conditions.on_piece import Dirichlet, Neumann, Robin
from dinf.pdes.conditions.periodic import Periodic
from dinf.pdes.conditions.point import Point

# ``type:`` -> class, in the order the error messages list them.
TYPES: Dict[str, Type[Condition]] = {c.type: c for c in (Dirichlet, Neumann, Robin, Initial, InitialRate, Point,
                                                          Periodic, ResidualCondition, Data)}
KEYS = {"type", "piece", "value", "unknown", "a", "b", "weight", "points", "at", "axis", "expr", "hard", "derivatives",
        "noise", "sigma"}


def build_conditions(spec: Mapping[str, Any], unknowns: Unknowns, coords: List[str], time: Optional[str],
                     params: Mapping[str, float], functions: Mapping[str, str], domain: Any,
                     weight_of: Callable[[Any, str], float], key: str = "pde.conditions",
                     symbols: Optional[Unknowns] = None) -> List[Condition]:
    """Conditions from the config mapping ``name -> {type, piece, value, …}`` on ``domain`` (the
    problem's ``Domain``: its pieces, bounds and inside test); ``weight_of(value, key)`` reads a
    weight (a number or an expression of the parameters); ``symbols``: what residuals read, when
    unknown parameters join the unknowns (``dinf.pdes.inferred``)."""
    reading = Reading(unknowns, list(coords), time, params, functions, domain, symbols)
    out = []
    for name, c in (spec or {}).items():
        k = f"{key}.{name}"
        if c is None:  # removed from the command line (~pde.conditions.name)
            continue
        if not isinstance(c, Mapping):
            raise ConfigError(k, f"expected a mapping with a type ({', '.join(TYPES)}), got {c!r}")
        unknown_keys = set(c) - KEYS
        if unknown_keys:
            raise ConfigError(f"{k}.{sorted(unknown_keys)[0]}", f"not an option of a condition ({', '.join(sorted(KEYS))})")
        kind = c.get("type")
        if kind not in TYPES:
            raise ConfigError(f"{k}.type", f"{kind!r} is not one of {', '.join(TYPES)}")
        for only in ("noise", "sigma"):  # observations' options
            if only in c and kind != "data":
                raise ConfigError(f"{k}.{only}", f"is an option of observations (type: data), not of a {kind} condition")
        condition = TYPES[kind].from_config(name, c, reading, k)
        points = c.get("points", condition.points)
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ConfigError(f"{k}.points", f"must be a positive integer, got {points!r}")
        condition.points = points
        condition.weight = weight_of(c.get("weight", 1.0), f"{k}.weight")
        hard = c.get("hard", False)
        if not isinstance(hard, bool):
            raise ConfigError(f"{k}.hard", f"must be true or false, got {hard!r}")
        condition.hard = hard
        out.append(condition)
    return out
