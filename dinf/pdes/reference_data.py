"""Reference solutions read from files, and the errors a prediction is scored with.

Formats
-------
* COMSOL text exports as PINNacle ships them (``.dat``/``.txt``): ``%`` header lines, the last
  of which names the columns (separated by two or more spaces), then one whitespace-separated
  row per node. Time-dependent files are *wide*: the coordinates, then one column per output and
  snapshot (``u (1) @ t=0``, ``u (1) @ t=0.1``, …). A qualifier other than ``t`` (``u @ Re=100``)
  is a single snapshot, not a time. Complex values written as ``1.5+2i`` are read as complex.
* Tables (``.csv`` with a header row, comma or whitespace separated; ``.npz`` with one array per
  column, or a 2-D array plus a ``columns`` array) are *long*: one row per point. A time column
  stays an ordinary coordinate (``coord_names`` holds ``t``, ``times`` is None).

Layout of :class:`ReferenceData`
--------------------------------
``values[name]`` is ``[M]`` for a steady file and ``[M, T]`` for a wide one. ``points()`` and
``stacked()`` are *node-major*: row ``m*T + k`` is node ``m`` at ``times[k]``, which is exactly
``values[name].reshape(-1)`` (C order), so no copy is needed to line values up with points.

Metrics follow PINNacle: the L2RE is pooled, ``‖û − u‖ / ‖u‖`` over every value of every output
and snapshot; the per-output numbers are reported beside it, not averaged into it.

Every problem with the file itself raises :class:`~dinf.errors.ConfigError` under the config key
that named the file, with a one-line message.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dinf.errors import ConfigError
from dinf.files import resolve_path

DEFAULT_KEY = "pde.reference.file"
COMSOL_SUFFIXES = (".dat", ".txt")
TABLE_SUFFIXES = (".csv", ".npz")
_SPACE_NAMES = ("x", "y", "z")

# "u (1) @ t=0.1" -> base "u (1)", qualifier "t", value "0.1"
_QUALIFIED = re.compile(r"(?P<base>.*?)\s*@\s*(?P<q>[A-Za-z_][\w.]*)\s*=\s*(?P<v>\S+)\s*")
_COMPONENT = re.compile(r"\s*\(1\)\s*$")


@dataclass
class ReferenceData:
    """Reference values at nodes (and snapshot times). See the module docstring for the layout."""

    coords: np.ndarray  # [M, d] node coordinates (float64)
    coord_names: List[str]  # e.g. ["x"] or ["x", "y"]
    times: Optional[np.ndarray]  # [T] snapshot times, or None for a steady (or long) file
    values: Dict[str, np.ndarray]  # output name -> [M] or [M, T]
    dimension: Optional[int] = None  # COMSOL's "% Dimension:" line, when present
    source: str = ""  # the file it was read from, for messages
    columns: Dict[str, str] = field(default_factory=dict)  # output name -> the file's column name

    @property
    def n_nodes(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_points(self) -> int:
        """Rows of :meth:`points`: nodes × snapshots."""
        return self.n_nodes * (1 if self.times is None else len(self.times))

    def point_names(self, time_name: str = "t") -> List[str]:
        """Column names of :meth:`points` in its default order: coordinates, then time if wide."""
        return list(self.coord_names) + ([] if self.times is None else [time_name])

    def points(self, time_name: str = "t", order: Optional[Sequence[str]] = None) -> np.ndarray:
        """``[M*T, d+1]`` space-time points, node-major (row ``m*T + k`` = node m at ``times[k]``),
        or ``coords`` itself for a steady file. ``order`` rearranges the columns by name (a
        permutation of :meth:`point_names`), e.g. to put the time first."""
        names = self.point_names(time_name)
        if self.times is None:
            cols = {n: self.coords[:, i] for i, n in enumerate(names)}
        else:
            T = len(self.times)
            cols = {n: np.repeat(self.coords[:, i], T) for i, n in enumerate(self.coord_names)}
            cols[time_name] = np.tile(np.asarray(self.times, dtype=np.float64), self.n_nodes)
        if order is None:
            if self.times is None:
                return self.coords
            order = names
        if sorted(order) != sorted(names):
            raise ValueError(f"order {list(order)} is not a permutation of the point columns {names}")
        return np.stack([cols[n] for n in order], axis=1)

    def stacked(self, names: Sequence[str]) -> np.ndarray:
        """``[M*T, len(names)]`` values, rows in the same (node-major) order as :meth:`points`."""
        missing = [n for n in names if n not in self.values]
        if missing:
            raise KeyError(f"no output {', '.join(missing)} (outputs: {', '.join(self.values)})")
        return np.stack([np.asarray(self.values[n]).reshape(-1) for n in names], axis=1)


# --------------------------------------------------------------------------------------------
# Parsing helpers


def _one_line(text: object) -> str:
    """Exception texts from numpy/zipfile can span lines; a ConfigError must not."""
    return " ".join(str(text).split())


def _read_lines(path: Path, key: str) -> List[str]:
    try:
        # PINNacle's headers carry Chinese descriptions; never fail on the text we do not use.
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().splitlines()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {_one_line(exc.strerror or exc)}") from None


def _parse_token(tok: str) -> complex:
    try:
        return float(tok)
    except ValueError:
        # COMSOL writes complex numbers as "1.5+2i"; Python as "1.5+2j".
        return complex(tok.replace("i", "j").replace("I", "j"))


def _parse_rows(rows: List[Tuple[int, List[str]]], ncols: int, path: Path, key: str) -> np.ndarray:
    """``[N, ncols]`` numbers from ``(line number, tokens)`` rows; a bad row names its line."""
    for lineno, toks in rows:
        if len(toks) != ncols:
            raise ConfigError(key, f"{path} line {lineno} has {len(toks)} values, the header names {ncols} columns")
    if not rows:
        raise ConfigError(key, f"{path} has a header but no data rows")
    flat = [t for _, toks in rows for t in toks]
    try:
        # Fast path: numpy parses a list of decimal strings in C.
        return np.array(flat, dtype=np.float64).reshape(len(rows), ncols)
    except ValueError:
        pass
    out: List[complex] = []
    for lineno, toks in rows:
        for tok in toks:
            try:
                out.append(_parse_token(tok))
            except ValueError:
                raise ConfigError(key, f"{path} line {lineno}: cannot read {tok!r} as a number") from None
    arr = np.array(out, dtype=np.complex128).reshape(len(rows), ncols)
    return arr


def _column_values(col: np.ndarray) -> np.ndarray:
    """A column as float64 unless it really holds complex values."""
    if np.iscomplexobj(col) and not np.any(col.imag):
        return np.ascontiguousarray(col.real, dtype=np.float64)
    return np.ascontiguousarray(col)


def _output_base(name: str) -> str:
    """``"u (1)"`` -> ``"u"``: COMSOL's component suffix is not part of the name."""
    return _COMPONENT.sub("", name).strip()


# --------------------------------------------------------------------------------------------
# COMSOL


def read_comsol(path: os.PathLike | str, key: str = DEFAULT_KEY) -> ReferenceData:
    """Read a COMSOL text export (see the module docstring). Coordinates are the leading columns
    named ``x``/``y``/``z`` (any case; stored lower-case); a wide file's ``@ t=`` snapshots
    become ``times`` and ``[M, T]`` values."""
    path = Path(path)
    lines = _read_lines(path, key)
    header: List[str] = []
    rows: List[Tuple[int, List[str]]] = []
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("%"):
            if not rows:  # the column line is the last % line *before* the data
                header.append(s[1:].strip())
            continue
        rows.append((i, s.split()))
    if not header:
        raise ConfigError(key, f"{path} has no '%' header line naming the columns (not a COMSOL export?)")

    meta: Dict[str, str] = {}
    for h in header[:-1]:
        if ":" in h:
            k, v = h.split(":", 1)
            meta[k.strip().lower()] = v.strip()
    dimension = None
    if "dimension" in meta:
        try:
            dimension = int(meta["dimension"])
        except ValueError:
            raise ConfigError(key, f"{path}: cannot read '% Dimension: {meta['dimension']}'") from None

    names = [n.strip() for n in re.split(r"\s{2,}", header[-1]) if n.strip()]
    data = _parse_rows(rows, len(names), path, key)
    if "nodes" in meta:
        # A truncated export is otherwise silently accepted with fewer nodes.
        try:
            n_nodes = int(meta["nodes"])
        except ValueError:
            n_nodes = None
        if n_nodes is not None and n_nodes != len(rows):
            raise ConfigError(key, f"{path}: the header says {n_nodes} nodes, the file has {len(rows)} rows")

    n_coord = 0
    while n_coord < len(names) and names[n_coord].lower() in _SPACE_NAMES:
        n_coord += 1
    if n_coord == 0:
        raise ConfigError(key, f"{path}: the first column is {names[0]!r}, not a coordinate x, y or z")
    if n_coord == len(names):
        raise ConfigError(key, f"{path} has coordinate columns only, no outputs")
    coord_names = [n.lower() for n in names[:n_coord]]
    if len(set(coord_names)) != n_coord:
        raise ConfigError(key, f"{path} repeats a coordinate column: {', '.join(names[:n_coord])}")
    coords = np.ascontiguousarray(data[:, :n_coord].real, dtype=np.float64)

    # Each output column: (output name, snapshot time or None).
    parsed: List[Tuple[str, Optional[float]]] = []
    for name in names[n_coord:]:
        m = _QUALIFIED.fullmatch(name)
        base, time = name, None
        if m is not None:
            base = m.group("base")
            if m.group("q").lower() == "t":
                try:
                    time = float(m.group("v"))
                except ValueError:
                    raise ConfigError(key, f"{path}: cannot read the time in column {name!r}") from None
        parsed.append((_output_base(base), time))

    timed = [t is not None for _, t in parsed]
    raw = names[n_coord:]
    if any(timed) and not all(timed):
        steady = [r for r, is_t in zip(raw, timed) if not is_t]
        raise ConfigError(key, f"{path} mixes '@ t=' snapshots with steady columns ({', '.join(steady)})")

    values: Dict[str, np.ndarray] = {}
    columns: Dict[str, str] = {}
    times: Optional[np.ndarray] = None
    if not any(timed):
        for j, ((out, _), r) in enumerate(zip(parsed, raw)):
            if out in values:
                raise ConfigError(key, f"{path} has more than one column for output {out!r} ({columns[out]!r}, {r!r})")
            values[out] = _column_values(data[:, n_coord + j])
            columns[out] = r
    else:
        per_output: Dict[str, List[Tuple[float, int]]] = {}
        for j, (out, t) in enumerate(parsed):
            per_output.setdefault(out, []).append((t, n_coord + j))  # type: ignore[arg-type]
        first = next(iter(per_output))
        ref_times = [t for t, _ in per_output[first]]
        if len(set(ref_times)) != len(ref_times):
            raise ConfigError(key, f"{path} repeats a snapshot time for output {first!r}")
        for out, snaps in per_output.items():
            if [t for t, _ in snaps] != ref_times:
                raise ConfigError(key, f"{path}: output {out!r} has snapshot times different from {first!r}'s")
            values[out] = _column_values(data[:, [j for _, j in snaps]])
            columns[out] = out
        times = np.array(ref_times, dtype=np.float64)
    return ReferenceData(coords, coord_names, times, values, dimension, str(path), columns)


# --------------------------------------------------------------------------------------------
# Tables (CSV, NPZ)


def _split_table(names: List[str], data_cols: List[np.ndarray], coords: Optional[Sequence[str]],
                 path: Path, key: str) -> ReferenceData:
    """Split named columns into coordinates and outputs (long format; ``t`` is a coordinate)."""
    lower = [n.lower() for n in names]
    if len(set(lower)) != len(lower):
        raise ConfigError(key, f"{path} repeats a column name (case-insensitive): {', '.join(names)}")
    if coords is None:
        # Leading single-letter coordinate columns, the same rule as COMSOL's plus the time.
        n = 0
        while n < len(names) and lower[n] in _SPACE_NAMES + ("t",):
            n += 1
        coord_idx = list(range(n))
        coord_names = [lower[i] for i in coord_idx]
    else:
        coord_idx = []
        for c in coords:
            if c.lower() not in lower:
                raise ConfigError(key, f"{path} has columns {', '.join(names)}; the problem's coordinates are "
                                       f"{', '.join(coords)} (no column {c})")
            coord_idx.append(lower.index(c.lower()))
        coord_names = list(coords)
    if not coord_idx:
        raise ConfigError(key, f"{path}: the first column is {names[0]!r}, not a coordinate x, y, z or t")
    out_idx = [i for i in range(len(names)) if i not in coord_idx]
    if not out_idx:
        raise ConfigError(key, f"{path} has coordinate columns only, no outputs")
    for i in coord_idx:
        if np.iscomplexobj(data_cols[i]) and np.any(np.asarray(data_cols[i]).imag):
            raise ConfigError(key, f"{path}: coordinate column {names[i]!r} holds complex values")
    coord_arr = np.stack([np.asarray(data_cols[i]).real.astype(np.float64) for i in coord_idx], axis=1)
    values = {_output_base(names[i]): _column_values(np.asarray(data_cols[i])) for i in out_idx}
    columns = {_output_base(names[i]): names[i] for i in out_idx}
    return ReferenceData(coord_arr, coord_names, None, values, None, str(path), columns)


def _read_csv(path: Path, coords: Optional[Sequence[str]], key: str) -> ReferenceData:
    lines = _read_lines(path, key)
    header: Optional[List[str]] = None
    rows: List[Tuple[int, List[str]]] = []
    sep: Optional[str] = None
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if header is None:
            sep = "," if "," in s else None  # comma-separated if the header has commas
            header = [h.strip().strip("\"'").strip() for h in (s.split(",") if sep else s.split())]
            continue
        rows.append((i, [tok.strip() for tok in (s.split(",") if sep else s.split())]))
    if header is None:
        raise ConfigError(key, f"{path} is empty (expected a header row naming the columns)")
    data = _parse_rows(rows, len(header), path, key)
    return _split_table(header, [data[:, j] for j in range(len(header))], coords, path, key)


def _read_npz(path: Path, coords: Optional[Sequence[str]], key: str) -> ReferenceData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}  # files keep the saved order
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(key, f"cannot read {path} as .npz: {_one_line(exc)}") from None
    if not arrays:
        raise ConfigError(key, f"{path} holds no arrays")
    if "columns" in arrays:
        names = [str(c) for c in arrays.pop("columns").reshape(-1)]
        if len(arrays) == 1:
            data = next(iter(arrays.values()))
        elif "data" in arrays:
            data = arrays["data"]
        else:
            raise ConfigError(key, f"{path} has 'columns' and several arrays ({', '.join(arrays)}); "
                                   "name the table 'data'")
        if data.ndim != 2 or data.shape[1] != len(names):
            raise ConfigError(key, f"{path}: the data array has shape {data.shape}, "
                                   f"'columns' names {len(names)} columns")
        cols = [data[:, j] for j in range(len(names))]
    else:
        names = list(arrays)
        cols = []
        for n in names:
            a = arrays[n]
            if a.ndim == 2 and a.shape[1] == 1:
                a = a[:, 0]
            if a.ndim != 1:
                raise ConfigError(key, f"{path}: array {n!r} has shape {a.shape}; expected one 1-D array per column")
            cols.append(a)
        lengths = {len(c) for c in cols}
        if len(lengths) != 1:
            raise ConfigError(key, f"{path}: the column arrays have different lengths {sorted(lengths)}")
    for n, c in zip(names, cols):
        if not (np.issubdtype(c.dtype, np.number) and not np.issubdtype(c.dtype, np.timedelta64)):
            raise ConfigError(key, f"{path}: column {n!r} is not numeric (dtype {c.dtype})")
    cols = [c.astype(np.complex128 if np.iscomplexobj(c) else np.float64) for c in cols]
    return _split_table(names, cols, coords, path, key)


def read_table(path: os.PathLike | str, coords: Optional[Sequence[str]] = None,
               key: str = DEFAULT_KEY) -> ReferenceData:
    """Read a long table (``.csv`` or ``.npz``; see the module docstring). ``coords`` names the
    coordinate columns (matched case-insensitively, stored with the given spelling); without it
    the leading columns named ``x``/``y``/``z``/``t`` are the coordinates. A time column stays a
    coordinate: ``times`` is None and ``points()`` returns the coordinates as they are."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path, coords, key)
    return _read_csv(path, coords, key)


# --------------------------------------------------------------------------------------------
# Loading for a problem


def _is_comsol(path: Path, key: str) -> bool:
    """A ``.dat``/``.txt`` file is a COMSOL export if it starts with a ``%`` line, else a table."""
    for line in _read_lines(path, key):
        if line.strip():
            return line.lstrip().startswith("%")
    return True  # empty: let the COMSOL reader say so


def _find_output(target: str, outputs: Sequence[str]) -> Optional[str]:
    if target in outputs:
        return target
    hits = [o for o in outputs if o.lower() == target.lower()]
    return hits[0] if len(hits) == 1 else None


def load_reference(path: os.PathLike | str, coords: Sequence[str], unknowns: Sequence[str],
                   columns: Optional[Mapping[str, str]] = None, key: str = DEFAULT_KEY,
                   search_dirs: Sequence[os.PathLike | str] = (), time_name: str = "t") -> ReferenceData:
    """Read a reference file for a problem with coordinates ``coords`` (``time_name`` among them
    if it is time-dependent) and outputs ``unknowns``.

    The file type follows the extension: ``.dat``/``.txt`` COMSOL (or a whitespace table when
    the file has no ``%`` header), ``.csv`` and ``.npz`` tables. Outputs map onto the unknowns by
    name (case-insensitive), or by ``columns`` (unknown -> the file's output name). The result
    holds exactly the unknowns (in order), its space coordinates in the problem's order and
    spelling. Anything wrong raises ``ConfigError(key, ...)`` with one line.
    """
    resolved = resolve_path(path, search_dirs, key)
    suffix = resolved.suffix.lower()
    coords = list(coords)
    space = [c for c in coords if c.lower() != time_name.lower()]
    has_time = len(space) < len(coords)

    if suffix in COMSOL_SUFFIXES and _is_comsol(resolved, key):
        ref = read_comsol(resolved, key)
        file_space = list(ref.coord_names)
        if sorted(c.lower() for c in file_space) != sorted(c.lower() for c in space):
            raise ConfigError(key, f"{resolved.name} has coordinates {', '.join(file_space)}; "
                                   f"the problem's space coordinates are {', '.join(space) or '(none)'}")
        if has_time and ref.times is None:
            raise ConfigError(key, f"{resolved.name} is steady (no '@ t=' columns) "
                                   f"but the problem has time coordinate {time_name}")
        if not has_time and ref.times is not None:
            raise ConfigError(key, f"{resolved.name} has {len(ref.times)} '@ t=' snapshots "
                                   f"but the problem has no time coordinate {time_name}")
        lower = [c.lower() for c in file_space]
        order = [lower.index(c.lower()) for c in space]
        ref.coords = np.ascontiguousarray(ref.coords[:, order])
        ref.coord_names = space
    elif suffix in COMSOL_SUFFIXES + TABLE_SUFFIXES:
        ref = read_table(resolved, coords, key)  # raises naming any missing coordinate column
        # A coordinate the problem lacks (a time column for a steady problem, z for a 2-D one)
        # would otherwise be read as an output and the rows silently taken as distinct points.
        stray = [o for o in ref.values if o.lower() in _SPACE_NAMES + (time_name.lower(),)]
        if stray:
            raise ConfigError(key, f"{resolved.name} has coordinate column {', '.join(stray)}; "
                                   f"the problem's coordinates are {', '.join(coords)}")
    else:
        raise ConfigError(key, f"cannot read {resolved.name}: unsupported file type {suffix or '(none)'!r} "
                               f"(use .dat or .txt for a COMSOL export, .csv or .npz for a table)")

    outputs = list(ref.values)
    columns = dict(columns or {})
    extra = [k for k in columns if k not in unknowns]
    if extra:
        raise ConfigError(key, f"the columns mapping names {', '.join(extra)}, which the problem does not have "
                               f"(unknowns: {', '.join(unknowns)})")
    mapped: Dict[str, str] = {}
    missing: List[str] = []
    for u in unknowns:
        hit = _find_output(columns.get(u, u), outputs)
        if hit is None:
            missing.append(u)
        else:
            mapped[u] = hit
    if missing:
        bad = [u for u in missing if u in columns]
        if bad:
            u = bad[0]
            raise ConfigError(key, f"the columns mapping sends {u} to {columns[u]!r}, but {resolved.name} has "
                                   f"outputs {', '.join(outputs)}")
        raise ConfigError(key, f"{resolved.name} has outputs {', '.join(outputs)}; "
                               f"the problem's unknowns are {', '.join(unknowns)}")
    ref.values = {u: ref.values[f] for u, f in mapped.items()}
    ref.columns = {u: ref.columns.get(f, f) for u, f in mapped.items()}
    ref.source = str(resolved)
    return ref


# --------------------------------------------------------------------------------------------
# Metrics


def _aligned(pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """``(name, prediction, reference)`` per reference output, the prediction in the reference's
    shape. A flat prediction of a wide ``[M, T]`` reference is read node-major (``points()``
    order), which is C-order reshaping."""
    if not ref:
        raise ValueError("no reference outputs to compare against")
    out = []
    for name, r in ref.items():
        if name not in pred:
            raise ValueError(f"the prediction has no output {name!r} (it has {', '.join(pred) or 'none'})")
        r = np.asarray(r)
        p = np.asarray(pred[name])
        if p.shape != r.shape:
            if p.size != r.size or (p.ndim > 1 and p.shape[1:] != (1,)):
                raise ValueError(f"output {name!r}: prediction shape {p.shape} "
                                 f"does not match the reference's {r.shape}")
            p = p.reshape(r.shape)
        out.append((name, p, r))
    return out


def _sq_norm(a: np.ndarray) -> float:
    # |·|² works for real and complex alike; float64 accumulation for float32 predictions.
    a = np.abs(a.astype(np.complex128 if np.iscomplexobj(a) else np.float64))
    return float(np.sum(a * a))


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


def l2re(pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """PINNacle's L2 relative error: ``{"l2re": ‖û − u‖ / ‖u‖ pooled over every value of every
    output and snapshot, "l2re_<name>": the same per output}``. Complex outputs use ``|·|``.
    A zero reference gives 0 for a zero error and ``inf`` otherwise."""
    err_tot = ref_tot = 0.0
    result: Dict[str, float] = {}
    for name, p, r in _aligned(pred, ref):
        e, n = _sq_norm(p - r), _sq_norm(r)
        err_tot += e
        ref_tot += n
        result[f"l2re_{name}"] = _ratio(e, n)
    return {"l2re": _ratio(err_tot, ref_tot), **result}


def max_abs_error(pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> float:
    """``max |û − u|`` pooled over every output and snapshot (``|·|`` for complex outputs)."""
    return max(float(np.max(np.abs(p - r))) if r.size else 0.0 for _, p, r in _aligned(pred, ref))
