"""Config checks shared by the multi-resolution grid fields."""
from __future__ import annotations

import math

import numbers
from typing import Any, List, Tuple, Union

from dinf.errors import ConfigError, check

# An int (the same number of cells on every axis) or one int per axis.
Resolution = Union[int, List[int], Tuple[int, ...]]


def resolution_per_axis(in_dim: int, resolution: Any) -> Tuple[int, ...]:
    """The finest level's cells per axis: ``resolution`` repeated for an int, else the list
    itself (any sequence, e.g. a Hydra ``ListConfig``), checked to hold ``in_dim`` integers."""
    if is_int(resolution):
        return (int(resolution),) * in_dim
    try:
        axes = list(resolution)
    except TypeError:
        axes = None
    check(axes is not None and len(axes) == in_dim and all(is_int(r) for r in axes), "resolution",
          f"must be an integer or a list of in_dim = {in_dim} integers, got {_show(resolution)}")
    return tuple(int(r) for r in axes)


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _show(resolution: Any) -> str:
    if isinstance(resolution, (str, bytes)):
        return repr(resolution)
    try:
        return repr(list(resolution))
    except TypeError:
        return repr(resolution)


MAX_VALUES = 1 << 28  # node values of one grid level (2 GiB in float64): beyond, a grid does not fit in memory


def check_grid(in_dim: int, resolution: Any, levels: int, features: int) -> Tuple[int, ...]:
    """Raise ``ConfigError`` unless every level ``s`` has a whole ``r_a / 2^s`` cells on every
    axis a. Returns the finest level's cells per axis."""
    check(in_dim >= 1, "in_dim", f"must be >= 1, got {in_dim}")
    check(levels >= 1, "levels", f"must be >= 1, got {levels}")
    check(features >= 1, "features", f"must be >= 1, got {features}")
    axes = resolution_per_axis(in_dim, resolution)
    values = math.prod(r + 1 for r in axes) * features
    check(values <= MAX_VALUES, "resolution",
          f"{_show(resolution)} cells per axis in {in_dim} axes is {values:,} node values on the finest level "
          f"(at most {MAX_VALUES:,}): use fewer cells, or model=dinf_cp (the factored grid) for many axes")
    step = 2 ** (levels - 1)
    bad = [a for a, r in enumerate(axes) if r < step or r % step]
    if not bad:
        return axes
    if is_int(resolution):
        what = f"{resolution} is not"
    else:
        axes_bad = ", ".join(f"{a} ({axes[a]} cells)" for a in bad)
        what = f"{_show(resolution)}: axis {axes_bad} {'is' if len(bad) == 1 else 'are'} not"
    raise ConfigError(
        "resolution",
        f"{what} divisible by 2^(levels-1) = {step} (levels={levels}); use a multiple of {step}",
    )


def level_cells(axes: Tuple[int, ...], levels: int) -> List[Tuple[int, ...]]:
    """Cells per axis of every level: level s halves the finest level's ``axes`` s times."""
    return [tuple(r // 2**s for r in axes) for s in range(levels)]
