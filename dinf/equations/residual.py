"""Residuals of text equations, evaluated on a field's jet, and their least-squares rows.

A problem's unknowns map onto the field's output channels (a real unknown one channel, a complex
one two: real and imaginary part). A residual is split into real parts (two for a complex
residual); each part is a sympy expression over real symbols: jet entries (``u_x``, or
``u_x.re`` and ``u_x.im`` for a complex unknown), coordinates, normals. Parameters are
substituted by their values.

Linearity is read off the expression: a part is affine in the jet entries exactly when no
derivative ∂r/∂J_k contains a jet entry, and then ``r = Σ_k c_k(x) J_k + r_0(x)`` with
``c_k = ∂r/∂J_k`` and ``r_0 = r(J = 0)``: the least-squares rows, with no hand-written indices.

Each use is compiled once, on first call, to one torch function (``compile.py``): the parts'
values (read straight from the jet's tensors), the linear rows' coefficients, and the parts with
their derivatives ``∂r/∂J_k`` for the rows of the residual linearised around a jet (Gauss–Newton;
the same rows autograd gives, without building a graph). ``evaluate_tree`` and ``rows_tree``
walk the trees instead: the reference the compiled functions are tested against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import sympy as sp
import torch
from torch import Tensor

from dinf.equations.compile import Compiled, compile_exprs
from dinf.equations.evaluate import evaluate_tree
from dinf.equations.parse import Entry, Vocabulary, entry_symbols, parse
from dinf.errors import ConfigError
from dinf.jet import Jet, entry_count, entry_position, higher_index

KINDS = ("real", "complex")


class Unknowns:
    """Names of the unknowns and their channels in the field's output."""

    def __init__(self, spec: Union[Sequence[str], Mapping[str, str]], key: str = "pde.unknowns"):
        items = list(spec.items()) if isinstance(spec, Mapping) else [(name, "real") for name in spec]
        if not items:
            raise ConfigError(key, "at least one unknown is needed, e.g. [u]")
        self.names: List[str] = []
        self.complex: List[str] = []
        self.channels: Dict[str, Tuple[int, ...]] = {}
        c = 0
        for name, kind in items:
            name = str(name)
            if not name.isidentifier() or "_" in name:
                raise ConfigError(key, f"{name!r}: an unknown's name is letters and digits (u, v, p, psi)")
            if kind not in KINDS:
                raise ConfigError(f"{key}.{name}", f"{kind!r} is not one of {', '.join(KINDS)}")
            if name in self.names:
                raise ConfigError(key, f"{name!r} is listed twice")
            self.names.append(name)
            width = 2 if kind == "complex" else 1
            if width == 2:
                self.complex.append(name)
            self.channels[name] = tuple(range(c, c + width))
            c += width
        self.out_dim = c

    def channel_names(self) -> List[str]:
        """``u`` or ``u.re``, ``u.im``, in channel order."""
        return [f"{n}.{part}" if n in self.complex else n for n in self.names
                for part in (("re", "im") if n in self.complex else ("",))]


def entry_index(axes: Tuple[int, ...], dim: int) -> int:
    """Position of a jet entry in ``Jet.entries`` order: value, gradient, Hessian (row-major),
    then the higher derivatives (``dinf.jet.higher_axes``)."""
    return entry_position(axes, dim)


def jet_width(order: int, dim: int) -> int:
    """Entries per channel of a jet of ``order`` in ``dim`` coordinates."""
    return entry_count(order, dim)


@dataclass
class Part:
    """One real part of a residual: its expression, and (when affine) its row coefficients."""

    expr: sp.Expr
    coefficients: Optional[Dict[sp.Symbol, sp.Expr]]  # None: not affine
    constant: Optional[sp.Expr]


class Residual:
    """A residual (or condition) written as text, over the problem's unknowns and coordinates."""

    def __init__(self, text: object, vocab: Vocabulary, unknowns: Unknowns, key: str,
                 params: Mapping[str, float] | None = None):
        self.text, self.key, self.vocab, self.unknowns = text, key, vocab, unknowns
        self.expr = parse(text, vocab, key)
        self.entries = entry_symbols(self.expr, vocab)
        self.order = max((e.order for e in self.entries.values()), default=0)
        values = {sp.Symbol(p, real=True): sp.Float(v) for p, v in (params or {}).items()}
        expr = self.expr.subs(values) if values else self.expr
        self.parts: List[Part] = [self._part(p) for p in _real_parts(expr, self.entries, unknowns)]
        self.nonlinear_term = _nonlinear_term(self.expr, list(self.entries))
        self._compiled: Dict[str, Optional[Compiled]] = {}  # made on first use; None: walk the tree
        self._columns: List[Tuple[int, str, int]] = []  # linearised rows: (part, symbol, output)

    @property
    def linear(self) -> bool:
        return self.nonlinear_term is None

    def __getstate__(self) -> Dict[str, object]:
        """Pickled without the compiled functions (made from source at run time): they are
        made again on first use."""
        return {**self.__dict__, "_compiled": {}, "_columns": []}

    def _part(self, expr: sp.Expr) -> Part:
        symbols = [s for s in expr.free_symbols if _entry_name(s.name) in self.vocab.entries]
        coefficients: Dict[sp.Symbol, sp.Expr] = {}
        for s in symbols:
            c = sp.diff(expr, s)
            if c.free_symbols & set(symbols):
                return Part(expr, None, None)
            coefficients[s] = c
        constant = expr.subs({s: 0 for s in symbols})
        return Part(expr, coefficients, constant)

    # --- evaluation -----------------------------------------------------------------------
    def environment(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        """Symbol values at the jet's points: the jet entries this residual uses, plus
        ``point_data`` (coordinates, normals)."""
        env = dict(point_data)
        for symbol, entry in self.entries.items():
            channels = self.unknowns.channels[entry.unknown]
            names = [symbol.name] if len(channels) == 1 else [f"{symbol.name}.re", f"{symbol.name}.im"]
            for name, c in zip(names, channels):
                env[name] = _entry(jet, c, entry)
        return env

    def evaluate(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Tensor:
        """``[N, P]``: the residual's real parts at the jet's points."""
        fn = self._function("values")
        if fn is None:
            return self.evaluate_tree(jet, point_data)
        return torch.stack(fn(point_data, jet.value[:, 0], jet.value, jet.grad, jet.hess, jet.higher), 1)

    def evaluate_tree(self, jet: Jet, point_data: Mapping[str, Tensor]) -> Tensor:
        """``evaluate`` by walking the parts' trees (the reference)."""
        env = self.environment(jet, point_data)
        like = jet.value[:, 0]
        return torch.stack([evaluate_tree(p.expr, env, like) for p in self.parts], 1)

    def rows(self, point_data: Mapping[str, Tensor], dim: int, order: int, like: Tensor
             ) -> Tuple[Tensor, Tensor]:
        """Least-squares rows of an affine residual: ``coef`` ``[N, P, C, A]`` and ``rhs``
        ``[N, P]`` with ``residual = coef · J − rhs``."""
        fn = self._function("rows")
        if fn is None:
            return self.rows_tree(point_data, dim, order, like)
        values = iter(fn(point_data, like))
        coef, rhs = self._empty_rows(like, dim, order)
        for p, part in enumerate(self.parts):
            for symbol in part.coefficients:
                channel, index = self._slot(symbol.name, dim)
                coef[:, p, channel, index] += next(values)
            rhs[:, p] = -next(values)
        return coef, rhs

    def rows_tree(self, point_data: Mapping[str, Tensor], dim: int, order: int, like: Tensor
                  ) -> Tuple[Tensor, Tensor]:
        """``rows`` by walking the coefficients' trees (the reference)."""
        coef, rhs = self._empty_rows(like, dim, order)
        for p, part in enumerate(self.parts):
            for symbol, c in part.coefficients.items():
                channel, index = self._slot(symbol.name, dim)
                coef[:, p, channel, index] += evaluate_tree(c, point_data, like)
            rhs[:, p] = -evaluate_tree(part.constant, point_data, like)
        return coef, rhs

    def _empty_rows(self, like: Tensor, dim: int, order: int) -> Tuple[Tensor, Tensor]:
        if not self.linear:
            raise ValueError(f"{self.key} is not linear in the unknowns")
        n, width = like.shape[0], jet_width(order, dim)
        coef = torch.zeros(n, len(self.parts), self.unknowns.out_dim, width, dtype=like.dtype, device=like.device)
        rhs = torch.zeros(n, len(self.parts), dtype=like.dtype, device=like.device)
        return coef, rhs

    def linearized_rows(self, jet: Jet, point_data: Mapping[str, Tensor], dim: int, order: int
                        ) -> Optional[Tuple[Tensor, Tensor]]:
        """Rows of the residual linearised at ``jet`` (``linearize.linearized_rows``), from the
        compiled parts and derivatives ``∂r/∂J_k``; None where they do not compile (a derivative
        with no torch form, such as a DiracDelta): autograd then gives them."""
        fn = self._function("linearized")
        if fn is None:
            return None
        jet = Jet(*(t.detach() if t is not None else None for t in (jet.value, jet.grad, jet.hess, jet.higher)))
        like = jet.value[:, 0]
        out = fn(point_data, like, jet.value, jet.grad, jet.hess, jet.higher)
        parts = len(self.parts)
        width = jet_width(order, dim)
        coef = like.new_zeros(like.shape[0], parts, self.unknowns.out_dim, width)
        rhs = [-r for r in out[:parts]]  # coef · J₀ − r(J₀)
        for p, name, k in self._columns:
            channel, index = self._slot(name, dim)
            if index < width:
                coef[:, p, channel, index] += out[k]
                rhs[p] = rhs[p] + out[k] * _entry(jet, channel, self.vocab.entries[_entry_name(name)])
        return coef, torch.stack(rhs, 1)

    # --- compiled functions -----------------------------------------------------------------
    def _function(self, what: str) -> Optional[Compiled]:
        """The compiled function of ``what`` (values, rows, linearized), made on first use."""
        if what not in self._compiled:
            try:
                self._compiled[what] = self._compile(what)
            except Exception:  # noqa: BLE001 - a node with no torch form: the tree walk (or autograd) instead
                self._compiled[what] = None
        return self._compiled[what]

    def _compile(self, what: str) -> Compiled:
        if what == "rows":
            if not self.linear:
                raise ValueError(f"{self.key} is not linear in the unknowns")
            exprs = [e for part in self.parts for e in (*part.coefficients.values(), part.constant)]
            return compile_exprs(exprs)
        exprs = [p.expr for p in self.parts]
        if what == "linearized":
            columns = []
            for p, part in enumerate(self.parts):
                for s in sorted(part.expr.free_symbols, key=lambda s: s.name):
                    if _entry_name(s.name) in self.vocab.entries:
                        columns.append((p, s.name, len(exprs)))
                        exprs.append(sp.diff(part.expr, s))
            self._columns = columns
        return compile_exprs(exprs, self._loads())

    def _loads(self) -> Dict[str, str]:
        """Where each jet entry's symbol is in the jet's tensors, as code."""
        loads = {}
        for symbol, entry in self.entries.items():
            channels = self.unknowns.channels[entry.unknown]
            names = [symbol.name] if len(channels) == 1 else [f"{symbol.name}.re", f"{symbol.name}.im"]
            for name, c in zip(names, channels):
                if entry.order == 0:
                    loads[name] = f"value[:, {c}]"
                elif entry.order == 1:
                    loads[name] = f"grad[:, {c}, {entry.axes[0]}]"
                elif entry.order == 2:
                    loads[name] = f"hess[:, {c}, {entry.axes[0]}, {entry.axes[1]}]"
                else:
                    loads[name] = f"higher[:, {c}, {higher_index(entry.axes, len(self.vocab.coords))}]"
        return loads

    def _slot(self, name: str, dim: int) -> Tuple[int, int]:
        base, _, part = name.partition(".")
        entry = self.vocab.entries[base]
        channels = self.unknowns.channels[entry.unknown]
        return channels[1 if part == "im" else 0], entry_index(entry.axes, dim)


def _entry(jet: Jet, c: int, entry: Entry) -> Tensor:
    return jet.entry(entry.axes)[:, c]


def _entry_name(name: str) -> str:
    return name.partition(".")[0]


def _real_parts(expr: sp.Expr, entries: Mapping[sp.Symbol, Entry], unknowns: Unknowns) -> List[sp.Expr]:
    """The residual's real parts: one for a real residual, [re, im] for a complex one. A complex
    unknown's entries become ``re + I·im`` of two real symbols first."""
    subs = {}
    for s, e in entries.items():
        if e.unknown in unknowns.complex:
            subs[s] = sp.Symbol(f"{s.name}.re", real=True) + sp.I * sp.Symbol(f"{s.name}.im", real=True)
    if subs:
        expr = expr.subs(subs)
    if not expr.has(sp.I) and not subs:
        return [expr]
    re, im = sp.expand_complex(expr).as_real_imag()
    re, im = sp.simplify(re) if re.has(sp.re, sp.im) else re, sp.simplify(im) if im.has(sp.re, sp.im) else im
    return [re] if im == 0 else [re, im]


def _nonlinear_term(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> Optional[str]:
    """The first term of ``expr`` that is not affine in ``symbols`` (as text), or None."""
    symbols = set(symbols)
    if not symbols:
        return None
    if all(not (sp.diff(expr, s).free_symbols & symbols) for s in symbols):
        return None
    for term in sp.Add.make_args(sp.expand(expr)):
        if any(sp.diff(term, s).free_symbols & symbols for s in symbols):
            return str(term)
    return str(expr)
