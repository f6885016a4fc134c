"""Equations written as text, read safely into sympy expressions.

The text is parsed by Python's ``ast`` module and only a closed set of nodes is accepted:
numbers, names the problem defines, + − * / ** (and ^, read as **), calls of whitelisted
functions, comparisons and ``a if cond else b`` for piecewise coefficients. Nothing is ever
``eval``-ed, so a config file cannot run code.

Names an expression may use (a ``Vocabulary``):
- unknowns (``u``) and their derivatives: ``u_x``, ``u_t``, ``u_xx``, ``u_xy``, ``u_xxxx``,
  ``u_xxyy`` — one letter per coordinate, up to order ``MAX_ORDER`` (``u_yx`` is ``u_xy``);
- ``u_n``: the derivative along the outward normal, on boundary pieces (``Σ n_a u_a``), and the
  normal's components ``n_x``, ``n_y``, …;
- coordinates, named parameters, named coefficient functions (expressions themselves, or tables
  of numbers: ``dinf.equations.tables``), and the constants ``pi``, ``e`` and ``I`` (the imaginary
  unit).
"""
from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import sympy as sp

from dinf.equations.tables import Table, applied
from dinf.errors import ConfigError, suggest

MAX_ORDER = 6  # names of orders above 2 are made when first read (d⁶ of them would be many)
EAGER_ORDER = 2

# Functions an expression may call, by the names users write.
FUNCTIONS: Dict[str, Callable[..., sp.Expr]] = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asin": sp.asin, "acos": sp.acos,
    "atan": sp.atan, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "atan2": sp.atan2,
    "abs": sp.Abs, "Abs": sp.Abs, "sign": sp.sign, "heaviside": lambda v: sp.Heaviside(v, 1),
    "min": sp.Min, "max": sp.Max, "re": sp.re, "im": sp.im, "conj": sp.conjugate,
    "where": lambda c, a, b: sp.Piecewise((a, c), (b, True)),
}
CONSTANTS: Dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E, "E": sp.E, "I": sp.I, "j": sp.I}
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b}
_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}


@dataclass(frozen=True)
class Entry:
    """One jet entry of one unknown: ``axes`` = () for the value, (i,) for ∂/∂x_i, (i, j) with
    i <= j for ∂²/∂x_i∂x_j."""

    unknown: str
    axes: Tuple[int, ...]

    @property
    def order(self) -> int:
        return len(self.axes)


@dataclass
class Vocabulary:
    """The names an expression may use. ``normals``: whether ``u_n`` and ``n_x``… are defined
    (boundary pieces); ``time``: the time coordinate's name, excluded from normals."""

    unknowns: Sequence[str]
    coords: Sequence[str]
    params: Mapping[str, float] = field(default_factory=dict)
    functions: Mapping[str, "str | Table"] = field(default_factory=dict)
    normals: bool = False
    time: Optional[str] = None

    def __post_init__(self) -> None:
        self.entries: Dict[str, Entry] = {}  # u_xy -> Entry; the symbol's canonical name
        self.aliases: Dict[str, str] = {}  # u_yx -> u_xy
        for u in self.unknowns:
            self.entries[u] = Entry(u, ())
            for order in range(1, EAGER_ORDER + 1):
                for axes in itertools.product(range(len(self.coords)), repeat=order):
                    name = f"{u}_{''.join(self.coords[a] for a in axes)}"
                    canonical = f"{u}_{''.join(self.coords[a] for a in sorted(axes))}"
                    self.entries[canonical] = Entry(u, tuple(sorted(axes)))
                    self.aliases[name] = canonical
        self.space = [c for c in self.coords if c != self.time]
        self.normal_names = [f"n_{c}" for c in self.space] if self.normals else []

    def symbol(self, name: str) -> sp.Symbol:
        return sp.Symbol(name, real=True)

    def higher_entry(self, name: str) -> Optional[str]:
        """The canonical name of a derivative of order 3 … ``MAX_ORDER`` (``u_xxyx`` → ``u_xxxy``),
        registered on first use; None if ``name`` is not one."""
        base, _, suffix = name.partition("_")
        index = {c: a for a, c in enumerate(self.coords)}
        if base not in self.unknowns or not EAGER_ORDER < len(suffix) <= MAX_ORDER or any(c not in index for c in suffix):
            return None
        axes = tuple(sorted(index[c] for c in suffix))
        canonical = f"{base}_{''.join(self.coords[a] for a in axes)}"
        self.entries[canonical] = Entry(base, axes)
        self.aliases[name] = canonical
        return canonical

    def known_names(self) -> List[str]:
        names = list(self.unknowns) + list(self.coords) + list(self.params) + list(self.functions)
        return names + self.normal_names + (["u_n"] if self.normals else [])


def parse(text: object, vocab: Vocabulary, key: str, _inlining: Tuple[str, ...] = ()) -> sp.Expr:
    """The sympy expression of ``text``; a mistake raises a one-line ``ConfigError`` at ``key``."""
    if isinstance(text, bool):
        raise ConfigError(key, f"expected an expression, got {text!r}")
    if isinstance(text, (int, float)):
        return sp.Float(text) if isinstance(text, float) else sp.Integer(text)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, f"expected an expression, got {text!r}")
    try:
        # ^ is a power in equations; Python's ^ (xor) binds looser than + and *, so swap it first.
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as e:
        raise ConfigError(key, f"cannot read {text!r}: {e.msg} at column {e.offset}") from None
    return _Reader(vocab, key, text, _inlining).read(tree.body)


class _Reader:
    def __init__(self, vocab: Vocabulary, key: str, text: str, inlining: Tuple[str, ...]):
        self.vocab, self.key, self.text, self.inlining = vocab, key, text, inlining

    def fail(self, message: str) -> ConfigError:
        return ConfigError(self.key, f"in {self.text!r}: {message}")

    def read(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, complex)):
                raise self.fail(f"{node.value!r} is not a number")
            if isinstance(node.value, complex):
                return sp.Float(node.value.real) + sp.I * sp.Float(node.value.imag)
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](self.read(node.left), self.read(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.read(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.read(v) for v in node.values]
            return sp.And(*parts) if isinstance(node.op, ast.And) else sp.Or(*parts)
        if isinstance(node, ast.IfExp):
            return sp.Piecewise((self.read(node.body), self.read(node.test)), (self.read(node.orelse), True))
        raise self.fail(f"{type(node).__name__.lower()} is not allowed (numbers, names, + - * / ** ^, "
                        "functions, comparisons and 'a if cond else b' are)")

    def name(self, name: str) -> sp.Expr:
        v = self.vocab
        if name in CONSTANTS and name not in v.known_names():
            return CONSTANTS[name]
        if name in v.params:
            return v.symbol(name)
        if name in v.functions and isinstance(v.functions[name], Table):
            table = v.functions[name]
            missing = [a for a in table.axes if a not in v.coords]
            if missing:
                raise self.fail(f"the table {name!r} reads {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                                f"not a coordinate here ({', '.join(v.coords) or 'none'})")
            return applied(name, table)
        if name in v.functions:
            if name in self.inlining:
                raise self.fail(f"function {name!r} is defined in terms of itself")
            return parse(v.functions[name], v, self.key, self.inlining + (name,))
        if name in v.coords:
            return v.symbol(name)
        if name in v.normal_names:
            return v.symbol(name)
        if name in v.entries or name in v.aliases:
            return v.symbol(v.aliases.get(name, name))
        higher = v.higher_entry(name)
        if higher is not None:
            return v.symbol(higher)
        if v.normals and "_" in name and name.rsplit("_", 1)[1] == "n" and name.rsplit("_", 1)[0] in v.unknowns:
            u = name.rsplit("_", 1)[0]
            return sum((v.symbol(f"n_{c}") * v.symbol(f"{u}_{c}") for c in v.space), sp.Integer(0))
        raise self.fail(self.unknown(name))

    def unknown(self, name: str) -> str:
        """Why ``name`` is not known, with the nearest names."""
        v = self.vocab
        base, _, suffix = name.partition("_")
        if base in v.unknowns and suffix:
            if suffix == "n" and not v.normals:
                return f"{name!r} (the normal derivative) exists only in boundary conditions"
            if set(suffix) <= set(v.coords) and len(suffix) > MAX_ORDER:
                return f"{name!r}: derivatives up to order {MAX_ORDER} are supported"
            firsts = ", ".join(f"{base}_{c}" for c in v.coords)
            return f"unknown derivative {name!r}: {base}'s derivatives are {firsts}, {base}_{v.coords[0] * 2}, …"
        if name.startswith("n_") and not v.normals:
            return f"{name!r} (a normal component) exists only in boundary conditions"
        near = suggest(name, v.known_names() + list(FUNCTIONS) + list(CONSTANTS))
        hint = f"; did you mean {near!r}?" if near else ""
        known = ", ".join(v.known_names())
        return f"unknown symbol {name!r}{hint} (known: {known}, and the constants pi, e, I)"

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise self.fail(f"unknown function {name!r} (functions: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise self.fail(f"{node.func.id}() takes no keyword arguments")
        args = [self.read(a) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except TypeError as e:
            raise self.fail(f"{node.func.id}(): {e}") from None

    def compare(self, node: ast.Compare) -> sp.Expr:
        parts, left = [], self.read(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise self.fail(f"comparison {type(op).__name__} is not allowed (<, <=, >, >= are)")
            right = self.read(right_node)
            parts.append(_COMPARE[type(op)](left, right))
            left = right
        return sp.And(*parts) if len(parts) > 1 else parts[0]


def entry_symbols(expr: sp.Expr, vocab: Vocabulary) -> Dict[sp.Symbol, Entry]:
    """The jet entries an expression uses, by symbol."""
    return {s: vocab.entries[s.name] for s in expr.free_symbols if s.name in vocab.entries}


def order_of(exprs: Sequence[sp.Expr], vocab: Vocabulary) -> int:
    """The highest derivative order the expressions use."""
    return max((e.order for x in exprs for e in entry_symbols(x, vocab).values()), default=0)
