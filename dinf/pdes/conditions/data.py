"""``data``: observations, the data term of an inverse problem. An unknown, or one of its
derivatives, equals observed values at given points, one value per point::

    observed:
      type: data
      at: {file: heatinv_points.dat, columns: {x: 0, y: 1, t: 2}}
      # or at: {lattice: {x: 50, y: 50}}, or at: {random: 2000, seed: 0}
      value: {u: exact}             # per quantity (u, u_x, …) an expression, or {file: obs.csv, columns: {u: 3}}
      noise: {sigma: 0.1, seed: 0}  # optional: N(0, σ²) added to the values once, when the problem is built
      # or sigma: 0.1               # the noise level the values already carry (measured data), nothing added
      weight: 1.0

Points: a file's rows (``columns`` picks each coordinate's column, by index or by the name a
header gives; without it the header's names, else the first columns in the problem's order); a
lattice over the domain's bounding box in every coordinate, ends included, the first coordinate
varying fastest, points outside the domain (in a hole) left out; or ``random`` points drawn
uniformly inside the domain by a seeded generator. A file point outside the (closed) domain is
refused. Every batch holds all the points (``fixed_points``), in this order.

Files: text (``.dat``, ``.txt``, ``.csv``: whitespace or commas; ``#`` comments; ``%`` lines as
COMSOL writes them, the last one before the data naming the columns; a first row that is not
numbers is a header), ``.npz`` (one 2-D array, ``data`` with ``columns``, or one 1-D array per
column) and ``.npy``, found as reference files are (``SEARCH_DIRS``: the working directory, the
repository, ``data/``, ``data/pinnacle/``). ``reference_data.load_reference`` reads named
coordinate and output columns matched to the unknowns; an observation file (PINNacle's
``heatinv_points.dat`` has three unnamed columns) need not have them, so the columns are read
here by position, and ``dinf.files.resolve_path`` finds the file.

The observed values ride on the condition, not in the point data: the residual of a quantity q
is the text ``q`` itself (one jet entry), ``values`` subtracts the observations ``d`` ``[N, Q]``
and ``rows`` adds ``d`` to each residual's right side (``coef·J − rhs − d``) before
``Condition.rows`` weighs them, so the loss is ``weight · mean over points of Σ_q (q − d_q)²`` and
the linear and linearised rows give the same. This is right because the batch's block of the
condition is exactly its points in its order (``sample`` returns them whole); the point data
hold coordinates and normals only, so a per-point symbol would need the problem to carry it.

PINNacle (``src/pde/inverse.py``): PoissonInv observes u on ``np.linspace(0, 1, 50)`` × the same
(ends included, x fastest: ``lattice: {x: 50, y: 50}``), HeatInv at the 2 500 rows of
``heatinv_points.dat`` (x, y, t); both add absolute noise ``np.random.normal(0, 0.1)`` to the exact
u once, when the problem is built (NumPy's global generator, not seeded there; here a seeded one).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from dinf.equations import Residual, Vocabulary, parse
from dinf.equations.evaluate import evaluate as evaluate_expr
from dinf.errors import ConfigError, check
from dinf.geometry.domain import Spacing, closed_contains
from dinf.jet import Jet
from dinf.pdes.conditions.base import Condition, Reading, RowsOf
from dinf.files import SEARCH_DIRS, resolve_path

FORMS = ("file", "lattice", "random")
AT_HELP = "give at: {file: …, columns: {x: 0, …}}, {lattice: {x: 50, …}} or {random: 2000, seed: 0}"


class Data(Condition):
    """``q − d`` at the points ``at`` ``[N, dim]`` for each observed quantity ``q`` (``u``,
    ``u_x``…), the observations ``observed`` ``[N, Q]`` (float64, noise included)."""

    type = "data"
    fixed_points = True

    def __init__(self, name: str, at: Tensor, residuals: List[Residual], observed: Tensor, **common: Any):
        common.setdefault("points", len(at))  # one batch row per observation
        super().__init__(name, residuals, None, **common)
        self.at = at
        self.observed = observed
        self.sigma = 0.0  # the observations' noise σ where known (a Laplace approximation's scale)
        self.quantities = [str(r.text) for r in residuals]

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "Data":
        domain = reading.domain
        check("points" not in spec, f"{key}.points", "a data condition uses all its observations in every batch; "
              "leave points out")
        at = read_at(spec.get("at"), domain, f"{key}.at")
        value = spec.get("value")
        check(isinstance(value, Mapping) and len(value) > 0, f"{key}.value",
              "give {u: expression} per observed quantity, or {file: …, columns: {u: 3}}")
        from_file = "file" in value
        names = value.get("columns") if from_file else value
        quantities = [str(q) for q in names] if isinstance(names, Mapping) else []
        residuals = [_quantity(q, reading, f"{key}.value.{q}") for q in quantities]
        if from_file:
            observed = _values_from_file(value, quantities, at.shape[0], f"{key}.value")
        else:
            observed = torch.stack([_expression_values(value[q], at, reading, f"{key}.value.{q}")
                                    for q in quantities], 1)
        noise, sigma = spec.get("noise"), spec.get("sigma")
        if noise is not None:
            check(sigma is None, f"{key}.sigma", "noise: {sigma: …} gives the noise added and its level; "
                  "leave sigma out")
            observed = observed + _noise(noise, tuple(observed.shape), f"{key}.noise")
            sigma = noise["sigma"]
        elif sigma is not None:
            ok = isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and np.isfinite(float(sigma))
            check(ok and float(sigma) >= 0, f"{key}.sigma", f"the observations' noise level, a number >= 0, "
                  f"got {sigma!r}")
        out = cls(name, at, residuals, observed)
        out.sigma = float(sigma or 0.0)
        return out

    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        return self.at, None

    def values(self, jet: Jet, data: Mapping[str, Tensor]) -> Tensor:
        out = super().values(jet, data)
        return out - self._observed(out)

    def rows(self, rows_of: RowsOf, jet: Optional[Jet], data: Mapping[str, Tensor]) -> Tuple[Tensor, Tensor]:
        column = {id(r): q for q, r in enumerate(self.residuals)}

        def shifted(r: Residual, j: Optional[Jet], d: Mapping[str, Tensor]) -> Tuple[Tensor, Tensor]:
            coef, rhs = rows_of(r, j, d)
            return coef, rhs + self._observed(rhs)[:, column[id(r)], None]

        return super().rows(shifted, jet, data)

    def _observed(self, like: Tensor) -> Tensor:
        if like.shape[0] != self.observed.shape[0]:
            raise ValueError(f"conditions.{self.name}: {like.shape[0]} rows for {self.observed.shape[0]} observations")
        return self.observed.to(device=like.device, dtype=like.dtype)


# --- points -------------------------------------------------------------------------------------
def read_at(at: Any, domain: Any, key: str) -> Tensor:
    """The observation points ``[N, dim]`` (float64) of an ``at`` mapping (see the module doc)."""
    coords = list(domain.coords)
    check(isinstance(at, Mapping), key, f"a data condition needs its points: {AT_HELP}")
    forms = [f for f in FORMS if f in at]
    what = f"choose one of {', '.join(forms)}" if forms else f"{', '.join(map(str, at)) or 'nothing'} is not a form of at"
    check(len(forms) == 1, key, f"{what}: {AT_HELP}")
    form = forms[0]
    allowed = {"file": {"file", "columns"}, "lattice": {"lattice"}, "random": {"random", "seed"}}[form]
    extra = sorted(set(at) - allowed)
    check(not extra, f"{key}.{extra[0] if extra else ''}", f"not an option of at: {{{form}: …}} "
          f"({', '.join(sorted(allowed))})")
    if form == "file":
        table, names, path = read_columns(at["file"], f"{key}.file")
        given = at.get("columns")
        if given is None:
            lower = [n.lower() for n in names or []]
            given = {c: lower.index(c) for c in coords} if all(c in lower for c in coords) else \
                {c: i for i, c in enumerate(coords)}
        check(isinstance(given, Mapping) and sorted(map(str, given)) == sorted(coords), f"{key}.columns",
              f"name every coordinate's column ({', '.join(coords)}), got {given!r}")
        x = torch.as_tensor(np.stack([_column(table, names, path, given[c], f"{key}.columns.{c}") for c in coords], 1))
        inside = closed_contains(domain, x)
        out = int((~inside).sum())
        if out:
            first = x[~inside][0].tolist()
            raise ConfigError(f"{key}.file", f"{out} of {len(x)} points of {path.name} lie outside the domain "
                              f"(the first: {', '.join(f'{c}={v:g}' for c, v in zip(coords, first))})")
        return x
    lo, hi = domain.bounds[:, 0], domain.bounds[:, 1]
    if form == "lattice":
        lattice = at["lattice"]
        check(isinstance(lattice, Mapping) and sorted(map(str, lattice)) == sorted(coords), f"{key}.lattice",
              f"give the number of points along every coordinate ({', '.join(coords)}), got {lattice!r}")
        axes = []
        for i, c in enumerate(coords):
            n = lattice[c]
            check(isinstance(n, int) and not isinstance(n, bool) and n >= 2, f"{key}.lattice.{c}",
                  f"must be an integer >= 2 (the box's ends are points), got {n!r}")
            axes.append(torch.linspace(float(lo[i]), float(hi[i]), n, dtype=torch.float64))
        grids = torch.meshgrid(*axes[::-1], indexing="ij")  # the last coordinate slowest, the first fastest
        x = torch.stack(grids[::-1], -1).reshape(-1, len(coords))
        x = x[closed_contains(domain, x)]
        check(len(x) > 0, f"{key}.lattice", "no lattice point lies in the domain")
        return x
    n, seed = at["random"], at.get("seed")
    check(isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"{key}.random",
          f"must be a positive number of points, got {n!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool), f"{key}.seed",
          f"random points need an integer seed, got {seed!r}")
    generator = torch.Generator().manual_seed(seed)
    kept, have = [], 0
    for _ in range(1000):  # uniform over the bounding box, kept where inside the domain
        x = lo + torch.rand(max(2 * (n - have), 64), len(coords), generator=generator, dtype=torch.float64) * (hi - lo)
        x = x[domain.contains(x)][: n - have]
        kept.append(x)
        have += len(x)
        if have == n:
            return torch.cat(kept)
    raise ConfigError(f"{key}.random", "the domain fills too little of its bounding box to draw points in it")


# --- files --------------------------------------------------------------------------------------
def read_columns(file: Any, key: str) -> Tuple[np.ndarray, Optional[List[str]], Path]:
    """A file's numbers ``[rows, columns]`` (float64), the columns' names where it gives them, and
    its path. A missing or unreadable file raises a one-line ``ConfigError`` at ``key``."""
    check(isinstance(file, str) and bool(file), key, f"must be a file name, got {file!r}")
    path = resolve_path(file, SEARCH_DIRS, key)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            table, names = np.load(path, allow_pickle=False), None
        elif suffix == ".npz":
            table, names = _npz(path, key)
        else:
            table, names = _text(path, key)
        table = np.asarray(table, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise ConfigError(key, f"cannot read {path.name}: {' '.join(str(e).split())}") from None
    table = table[:, None] if table.ndim == 1 else table
    check(table.ndim == 2 and table.size > 0, key, f"{path.name} holds no table of numbers (shape {table.shape})")
    if names is not None and len(names) != table.shape[1]:
        names = None  # a header that does not name every column names none
    return table, names, path


def _npz(path: Path, key: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k]) for k in npz.files}
    names = [str(c) for c in arrays.pop("columns").reshape(-1)] if "columns" in arrays else None
    if "data" in arrays or len(arrays) == 1:
        return arrays.get("data", next(iter(arrays.values()))), names
    check(all(a.ndim == 1 for a in arrays.values()) and len({len(a) for a in arrays.values()}) == 1, key,
          f"{path.name}: expected one 2-D array, 'data', or 1-D arrays of one length (got {', '.join(arrays)})")
    return np.stack(list(arrays.values()), 1), list(arrays)


def _text(path: Path, key: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    names: Optional[List[str]] = None
    rows: List[List[str]] = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("%"):  # COMSOL: the last % line before the data names the columns
            if not rows:
                names = [n for n in re.split(r"\s{2,}", s[1:].strip()) if n]
            continue
        tokens = [t.strip().strip("\"'") for t in s.split(",")] if "," in s else s.split()
        try:
            numbers = [float(t) for t in tokens]
        except ValueError:
            if not rows and names is None:  # a header row
                names = tokens
                continue
            raise ConfigError(key, f"{path.name} line {i}: cannot read {s[:40]!r} as numbers") from None
        if rows and len(numbers) != len(rows[0]):
            raise ConfigError(key, f"{path.name} line {i} has {len(numbers)} values, the rows before {len(rows[0])}")
        rows.append(numbers)
    check(bool(rows), key, f"{path.name} has no rows of numbers")
    return np.array(rows, dtype=np.float64), names


def _column(table: np.ndarray, names: Optional[Sequence[str]], path: Path, which: Any, key: str) -> np.ndarray:
    """A column by index, or by the name the file's header gives it."""
    width = table.shape[1]
    if isinstance(which, str):
        lower = [n.lower() for n in names or []]
        check(which.lower() in lower, key, f"{path.name} has no column named {which!r}" +
              (f" ({', '.join(names)})" if names else " (its columns have no names: give an index)"))
        which = lower.index(which.lower())
    check(isinstance(which, int) and not isinstance(which, bool), key, f"must be a column index or name, got {which!r}")
    check(0 <= which < width, key, f"column {which} is out of range: {path.name} has {width} columns (0 … {width - 1})")
    return table[:, which]


# --- values -------------------------------------------------------------------------------------
def _quantity(q: str, reading: Reading, key: str) -> Residual:
    """The residual ``q`` of one observed quantity: an unknown or a derivative entry of one."""
    names = reading.unknowns.names
    base = q.partition("_")[0]
    check(base in names and q.isidentifier(), key,
          f"{q!r} is not an unknown or a derivative of one ({', '.join(names)}, {names[0]}_x, …)")
    check(base not in reading.unknowns.complex, key, f"observations are real numbers; {base!r} is complex")
    (res,) = reading.residuals([q], key)
    check(isinstance(res.expr, sp.Symbol) and res.expr.name in res.vocab.entries, key,
          f"{q!r} is not an unknown or a derivative of one ({', '.join(names)}, {names[0]}_x, …)")
    return res


def _expression_values(text: Any, at: Tensor, reading: Reading, key: str) -> Tensor:
    """An expression of the coordinates, parameters and functions at the points ``[N]``."""
    vocab = Vocabulary([], reading.coords, reading.params, reading.functions, time=reading.time)
    expr = parse(text, vocab, key)
    expr = expr.subs({s: reading.params[s.name] for s in expr.free_symbols if s.name in reading.params})
    out = evaluate_expr(expr, {c: at[:, i] for i, c in enumerate(reading.coords)}, at[:, 0])
    check(not out.is_complex() and bool(torch.isfinite(out).all()), key,
          f"{text!r} is not a finite real number at {int((~torch.isfinite(out)).sum()) or 'some'} points")
    return out.double()


def _values_from_file(value: Mapping[str, Any], quantities: List[str], n: int, key: str) -> Tensor:
    extra = sorted(set(value) - {"file", "columns"})
    check(not extra, f"{key}.{extra[0] if extra else ''}", "values from a file take file and columns "
          "(an expression per quantity is the other form)")
    table, names, path = read_columns(value["file"], f"{key}.file")
    columns = value.get("columns")
    check(isinstance(columns, Mapping) and len(columns) > 0, f"{key}.columns",
          "say which column holds each observed quantity, e.g. {u: 3}")
    check(table.shape[0] == n, f"{key}.file", f"{path.name} has {table.shape[0]} rows; there are {n} points")
    cols = [_column(table, names, path, columns[q], f"{key}.columns.{q}") for q in quantities]
    out = torch.as_tensor(np.stack(cols, 1))
    check(bool(torch.isfinite(out).all()), f"{key}.file", f"{path.name}: a value is not a finite number")
    return out


def _noise(spec: Any, shape: Tuple[int, ...], key: str) -> Tensor:
    """Seeded Gaussian noise ``N(0, σ²)`` of ``shape`` (absolute, as PINNacle adds it)."""
    check(isinstance(spec, Mapping), key, f"give noise: {{sigma: 0.1, seed: 0}}, got {spec!r}")
    extra = sorted(set(spec) - {"sigma", "seed"})
    check(not extra, f"{key}.{extra[0] if extra else ''}", "not an option of noise (sigma, seed)")
    sigma, seed = spec.get("sigma"), spec.get("seed")
    ok = isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and float(sigma) >= 0
    check(ok and np.isfinite(float(sigma)), f"{key}.sigma", f"must be a number >= 0, got {sigma!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool), f"{key}.seed",
          f"noise needs an integer seed (reproducible data), got {seed!r}")
    return torch.as_tensor(np.random.default_rng(seed).normal(0.0, float(sigma), size=shape))


__all__ = ["Data", "read_at", "read_columns"]
