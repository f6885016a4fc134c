"""Coefficient tables read from a problem file's ``functions`` (``dinf.equations.tables``).

A function whose entry is a mapping is a table::

    functions:
      a: {table: poisson_a_coef.dat, blocks: {x: 5, y: 5}}          # 5 × 5 equal blocks of the domain
      c11: {table: poisson_f_coef.dat, blocks: {x: 5, y: 5}, shape: [5, 5, 2, 2], select: [1, 1]}
      k: {values: [[1, 2], [3, 4]], blocks: {x: [0, 0.3, 1], y: 2}}  # edges, or a count of equal blocks
      s: {table: speed.csv, grid: {x: [0, 1], y: [0, 1]}, method: cubic}   # values on grid nodes
      m: {table: probes.dat, scattered: [x, y]}                       # columns x, y, value

``table`` is a text file (``%`` or ``#`` comments, whitespace or commas) or ``.npy``, found as
reference files are; ``values`` gives the numbers inline. ``shape`` reshapes them (C order) and
``select`` picks trailing indices. Blocks and grid nodes are the array's leading axes, in the
order the mapping names the coordinates. Every mistake is one ``ConfigError`` line at its key.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from torch import Tensor

from dinf.equations.tables import Blocks, Gridded, Scattered, Table
from dinf.errors import ConfigError, check

KINDS = ("blocks", "grid", "scattered")
KEYS = ("table", "values", "shape", "select", "method", "column") + KINDS
METHODS = ("linear", "cubic", "nearest", "slinear", "quintic")
_REL = 1e-9  # block edges must meet the domain's ends to this fraction of its extent


def read_functions(functions: Optional[Mapping[str, Any]], coords: Sequence[str], bounds: Tensor,
                   search_dirs: Sequence[Union[str, Path]], key: str = "functions") -> Dict[str, Union[str, Table]]:
    """The problem's functions: expressions stay text, mappings become tables (a ``Table`` built
    in code, such as a time window's handed-over initial value, is kept as it is)."""
    out: Dict[str, Union[str, Table]] = {}
    for name, spec in (functions or {}).items():
        if isinstance(spec, Table):
            out[str(name)] = spec
        elif isinstance(spec, Mapping):
            out[str(name)] = read_table(spec, coords, bounds, search_dirs, f"{key}.{name}")
        else:
            out[str(name)] = str(spec)
    return out


def read_table(spec: Mapping[str, Any], coords: Sequence[str], bounds: Tensor,
               search_dirs: Sequence[Union[str, Path]], key: str) -> Table:
    """One table from its config mapping; ``bounds`` ``[dim, 2]`` are the domain's per coordinate."""
    for k in spec:
        check(k in KEYS, f"{key}.{k}", f"not an option of a table ({', '.join(KEYS)})")
    kinds = [k for k in KINDS if k in spec]
    check(len(kinds) == 1, key, f"a table needs exactly one of {', '.join(KINDS)}; got "
          f"{', '.join(kinds) if kinds else 'none'}")
    check(("table" in spec) != ("values" in spec), key, "give the numbers as table: <file> or values: [...] (one of them)")
    values = _load(spec, search_dirs, key)
    kind = kinds[0]
    layout = spec[kind]
    if kind == "scattered":
        return _scattered(spec, layout, values, coords, key)
    if "shape" in spec:
        shape = _ints(spec["shape"], f"{key}.shape")
        check(math.prod(shape) == values.size, f"{key}.shape",
              f"{_show(shape)} needs {math.prod(shape)} values; the table has {values.size}")
        values = values.reshape(shape)
    if "select" in spec:
        select = _ints(spec["select"], f"{key}.select")
        check(len(select) < values.ndim, f"{key}.select", f"picks {len(select)} trailing indices of an array of "
              f"shape {_show(values.shape)}; it may pick at most {values.ndim - 1}")
        trailing = values.shape[values.ndim - len(select):]
        bad = [i for i, (s, n) in enumerate(zip(select, trailing)) if not 0 <= s < n]
        check(not bad, f"{key}.select", f"index {select[bad[0]] if bad else ''} is out of range for the trailing "
              f"shape {_show(trailing)}")
        values = values[(Ellipsis, *select)]
    check(isinstance(layout, Mapping) and len(layout) > 0, f"{key}.{kind}",
          f"must map coordinates to {'block counts or edges' if kind == 'blocks' else '[lo, hi] or node lists'}")
    axes = [str(a) for a in layout]
    for a in axes:
        check(a in coords, f"{key}.{kind}.{a}", f"is not a coordinate of this problem ({', '.join(coords)})")
    if values.ndim != len(axes):  # a flat or differently shaped file: it must at least hold the right count
        want = [_count(layout[a], kind) for a in axes]
        if None not in want and values.size == math.prod(want) and kind == "blocks":
            values = values.reshape(want)
        else:
            raise ConfigError(key, f"the table has shape {_show(values.shape)} ({values.size} values); {kind} over "
                                   f"{', '.join(axes)} need {len(axes)} axes" +
                              (f" of {_show(want)}" if None not in want else "") + " (reshape with shape: [...])")
    if kind == "blocks":
        edges = [_edges(layout[a], values.shape[i], bounds[coords.index(a)], f"{key}.blocks.{a}", a)
                 for i, a in enumerate(axes)]
        return Blocks(axes, edges, values)
    method = str(spec.get("method", "linear"))
    check(method in METHODS, f"{key}.method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    nodes = [_nodes(layout[a], values.shape[i], f"{key}.grid.{a}") for i, a in enumerate(axes)]
    need = {"cubic": 4, "quintic": 6}.get(method, 2)
    short = [a for a, n in zip(axes, nodes) if len(n) < need]
    check(not short, f"{key}.method", f"{method} needs at least {need} nodes per axis; {', '.join(short)} has fewer")
    return Gridded(axes, nodes, values, method)


def _load(spec: Mapping[str, Any], search_dirs: Sequence[Union[str, Path]], key: str) -> np.ndarray:
    if "values" in spec:
        try:
            values = np.asarray(_plain(spec["values"]), dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}.values", "must be numbers (a nested list of equal lengths)") from None
    else:
        from dinf.files import resolve_path

        path = resolve_path(str(spec["table"]), search_dirs, f"{key}.table")
        try:
            if path.suffix == ".npy":
                values = np.load(path, allow_pickle=False).astype(np.float64)
            else:
                text = [ln for ln in path.read_text().splitlines() if ln.strip() and ln.lstrip()[0] not in "%#"]
                rows = [ln.replace(",", " ").split() for ln in text]
                widths = {len(r) for r in rows}
                check(len(widths) == 1, f"{key}.table", f"{path.name}: rows have different lengths ({sorted(widths)})")
                values = np.array(rows, dtype=np.float64)
        except ValueError as e:
            raise ConfigError(f"{key}.table", f"{path.name}: {str(e).splitlines()[0]}") from None
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
    check(values.size > 0, f"{key}.{'values' if 'values' in spec else 'table'}", "holds no numbers")
    check(bool(np.isfinite(values).all()), f"{key}.{'values' if 'values' in spec else 'table'}",
          "holds a value that is not a finite number")
    return values


def _plain(v: Any) -> Any:
    """OmegaConf containers as plain lists."""
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        return v
    return [_plain(x) for x in v]


def _ints(v: Any, key: str) -> List[int]:
    ok = isinstance(v, Sequence) and not isinstance(v, str) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    check(ok and len(v) > 0, key, f"must be a list of integers, got {v!r}")
    return [int(i) for i in v]


def _show(shape: Sequence[int]) -> str:
    return " × ".join(str(int(n)) for n in shape) or "a single number"


def _count(layout: Any, kind: str) -> Optional[int]:
    """Blocks (or nodes) a layout entry asks for, when it says."""
    if isinstance(layout, int) and not isinstance(layout, bool):
        return layout
    if isinstance(layout, Sequence) and not isinstance(layout, str):
        n = len(layout)
        return n - 1 if kind == "blocks" else (n if n > 2 else None)
    return None


def _edges(layout: Any, count: int, bound: Tensor, key: str, axis: str) -> List[float]:
    """Block edges along one axis: ``count`` equal blocks of the domain's extent, or the given
    edges, which must span it."""
    lo, hi = float(bound[0]), float(bound[1])
    if isinstance(layout, int) and not isinstance(layout, bool):
        check(layout == count, key, f"asks for {layout} blocks; the table has {count} along {axis}")
        return list(np.linspace(lo, hi, count + 1))
    ok = isinstance(layout, Sequence) and not isinstance(layout, str)
    check(ok, key, f"must be a number of equal blocks or a list of edges, got {layout!r}")
    edges = [float(v) for v in layout]
    check(len(edges) == count + 1, key, f"gives {len(edges)} edges, so {len(edges) - 1} blocks; the table has {count} "
          f"along {axis}")
    check(all(a < b for a, b in zip(edges, edges[1:])), key, "edges must increase")
    tol = _REL * (hi - lo)
    check(abs(edges[0] - lo) <= tol and abs(edges[-1] - hi) <= tol, key,
          f"the blocks cover {axis} ∈ [{edges[0]:g}, {edges[-1]:g}]; the domain's {axis} is [{lo:g}, {hi:g}]")
    return edges


def _nodes(layout: Any, count: int, key: str) -> List[float]:
    ok = isinstance(layout, Sequence) and not isinstance(layout, str) and len(layout) >= 2
    check(ok, key, f"must be [lo, hi] (evenly spaced nodes) or the list of nodes, got {layout!r}")
    vals = [float(v) for v in layout]
    if len(vals) == 2 and count != 2:
        vals = list(np.linspace(vals[0], vals[1], count))
    check(len(vals) == count, key, f"gives {len(vals)} nodes; the table has {count} values along this axis")
    check(all(a < b for a, b in zip(vals, vals[1:])), key, "nodes must increase")
    return vals


def _scattered(spec: Mapping[str, Any], layout: Any, values: np.ndarray, coords: Sequence[str], key: str) -> Table:
    ok = isinstance(layout, Sequence) and not isinstance(layout, str) and len(layout) > 0
    check(ok, f"{key}.scattered", f"must list the coordinates of the file's first columns, e.g. [x, y]; got {layout!r}")
    axes = [str(a) for a in layout]
    for a in axes:
        check(a in coords, f"{key}.scattered", f"{a!r} is not a coordinate of this problem ({', '.join(coords)})")
    k = len(axes)
    column = spec.get("column", k)
    check(values.ndim == 2 and values.shape[1] > k, key,
          f"a scattered table needs rows of {', '.join(axes)} and a value; the table has shape {_show(values.shape)}")
    check(isinstance(column, int) and k <= column < values.shape[1], f"{key}.column",
          f"must be a column index from {k} to {values.shape[1] - 1}, got {column!r}")
    check(values.shape[0] > k, key, f"{values.shape[0]} points are too few to interpolate in {k} coordinates")
    return Scattered(axes, values[:, :k], values[:, column])


__all__ = ["read_functions", "read_table"]
