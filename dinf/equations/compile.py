"""Sympy expressions compiled once to a torch function: the tree walk of ``evaluate.py``, done at
compile time instead of at every call.

``compile_exprs([e₁, e₂, …])`` writes one Python function that computes every expression from
its inputs with the same torch operations, in the same order, as ``evaluate.evaluate_tree`` does
when it walks the tree (so the values agree to the last bit), and gives it back as a
``Compiled``. A node that occurs in several expressions (a residual and its derivatives share
most of theirs) is computed once. Symbols are read from the environment by name or, for a
residual's jet entries, straight from the jet's tensors (``value[:, c]``, ``grad[:, c, a]``,
``hess[:, c, a, b]``, ``higher[:, c, k]``), so no environment dictionary is built per call.

The source is generated from the expression tree only: temporaries named ``t<k>``, numbers as
Python float literals, symbol names as string literals (``repr``), and a fixed set of torch
functions. No text of a config file becomes code (``parse.py`` reads it into sympy without
``eval``; this module writes code from the tree it produced). A node the tree walk cannot
evaluate makes ``compile_exprs`` raise ``Uncompilable``; callers then keep the tree walk, which
raises its own error when (and only when) such a node is evaluated.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import sympy as sp
import torch
from torch import Tensor

from dinf.equations.tables import TableFunction

# The functions of one argument, sympy's and torch's (evaluate.py's tree walk reads them too).
UNARY: Dict[type, Callable[[Tensor], Tensor]] = {
    sp.sin: torch.sin, sp.cos: torch.cos, sp.tan: torch.tan, sp.exp: torch.exp, sp.log: torch.log,
    sp.sinh: torch.sinh, sp.cosh: torch.cosh, sp.tanh: torch.tanh, sp.asin: torch.asin,
    sp.acos: torch.acos, sp.atan: torch.atan, sp.Abs: torch.abs, sp.sign: torch.sign,
}
NUM, TENSOR, BOOL, BTENSOR = "num", "tensor", "bool", "btensor"  # what a node is at run time
_TORCH_NAME = {fn: f"torch.{fn.__name__}" for fn in set(UNARY.values())}
_RELATIONS = {sp.StrictLessThan: "<", sp.LessThan: "<=", sp.StrictGreaterThan: ">", sp.GreaterThan: ">="}
_SIGNATURE = "env, like, value=None, grad=None, hess=None, higher=None"


class Uncompilable(ValueError):
    """A node the compiler (like the tree walk) has no torch operation for."""


class Compiled:
    """``fn(env, like, value=None, grad=None, hess=None, higher=None)`` → one ``like``-shaped tensor per
    expression (a constant broadcast to ``like``, as ``evaluate`` returns it). ``source``: the
    generated code, for reading."""

    def __init__(self, fn: Callable[..., List[Tensor]], source: str, symbols: Sequence[str]):
        self.fn, self.source, self.symbols = fn, source, tuple(symbols)

    def __call__(self, env: Mapping[str, Tensor], like: Tensor, value: Optional[Tensor] = None,
                 grad: Optional[Tensor] = None, hess: Optional[Tensor] = None,
                 higher: Optional[Tensor] = None) -> List[Tensor]:
        try:
            return self.fn(env, like, value, grad, hess, higher)
        except KeyError as e:
            raise KeyError(f"no value for symbol {e.args[0]!r}") from None


def compile_exprs(exprs: Sequence[sp.Basic], loads: Optional[Mapping[str, str]] = None) -> Compiled:
    """One function computing ``exprs``. ``loads``: symbol name → where its value is, as code
    over the function's arguments (``"value[:, 0]"``, ``"grad[:, 1, 0]"``); a symbol not named
    there is read from ``env`` by its name."""
    gen = _Writer(dict(loads or {}))
    outs = [gen.output(e) for e in exprs]
    body = gen.lines + [f"return [{', '.join(outs)}]"]
    source = f"def compiled({_SIGNATURE}):\n" + "\n".join("    " + line for line in body) + "\n"
    namespace: Dict[str, object] = {"torch": torch, "_out": _out, "_full": _full, "_bool": _bool,
                                    "_nan": math.nan, "_inf": math.inf, **gen.objects}
    exec(compile(source, "<dinf.equations.compile>", "exec"), namespace)  # noqa: S102 - code from the tree only
    return Compiled(namespace["compiled"], source, gen.symbols)


# --- run-time helpers (as evaluate.py's) ---------------------------------------------------------
def _out(v, like: Tensor) -> Tensor:
    """An expression's result as ``evaluate`` returns it: like's shape, a constant filled in."""
    if not isinstance(v, Tensor):
        return torch.full_like(like, float(v))
    return v if v.shape == like.shape else v.expand_as(like)


def _literal(v: float) -> str:
    if math.isfinite(v):
        return f"({v!r})"
    return "_nan" if math.isnan(v) else ("_inf" if v > 0 else "(-_inf)")


def _full(v, like: Tensor) -> Tensor:
    return torch.full_like(like, float(v))


def _bool(v: bool, like: Tensor) -> Tensor:
    return torch.full(like.shape, bool(v), dtype=torch.bool, device=like.device)


class _Writer:
    """Writes one assignment per node, children first; a node seen before is reused."""

    def __init__(self, loads: Dict[str, str]):
        self.loads = loads
        self.lines: List[str] = []
        self.memo: Dict[sp.Basic, Tuple[str, str]] = {}
        self.names = (f"t{k}" for k in itertools.count())
        self.symbols: List[str] = []
        self.objects: Dict[str, object] = {}  # tables the code calls, by their names in it

    def output(self, e: sp.Basic) -> str:
        code, _ = self.node(e)
        return f"_out({code}, like)"

    def assign(self, code: str) -> str:
        name = next(self.names)
        self.lines.append(f"{name} = {code}")
        return name

    # As evaluate._tensor and evaluate._bool, decided at compile time from the node's kind.
    @staticmethod
    def tensor(code: str, kind: str) -> str:
        return code if kind in (TENSOR, BTENSOR) else f"_full({code}, like)"

    @staticmethod
    def boolean(code: str, kind: str) -> str:
        if kind == TENSOR:
            return f"{code}.bool()"
        return code if kind == BTENSOR else f"_bool({code}, like)"

    def node(self, e: sp.Basic) -> Tuple[str, str]:
        if e in self.memo:
            return self.memo[e]
        out = self.write(e)
        if out[1] not in (NUM, BOOL):  # literals are inlined, nodes named
            self.memo[e] = out
        return out

    def write(self, e: sp.Basic) -> Tuple[str, str]:  # noqa: C901 - a branch per node type, as evaluate._eval
        if e.is_Number or e in (sp.pi, sp.E):
            if e.is_real is False:
                raise Uncompilable(f"complex constant {e} left in a real residual")
            return _literal(float(e)), NUM
        if isinstance(e, sp.Symbol):
            if e.name not in self.symbols:
                self.symbols.append(e.name)
            return self.assign(self.loads.get(e.name, f"env[{e.name!r}]")), TENSOR
        if isinstance(e, (sp.Add, sp.Mul)):
            args = [self.node(a) for a in e.args]
            op = " + " if isinstance(e, sp.Add) else " * "
            code = op.join(c for c, _ in args)
            if all(k == NUM for _, k in args):
                return f"({code})", NUM
            return self.assign(code), TENSOR
        if isinstance(e, sp.Pow):
            base, kind = self.node(e.base)
            exp = e.exp
            if exp == sp.Rational(1, 2):
                if kind == TENSOR:
                    return self.assign(f"torch.sqrt({base})"), TENSOR
                return f"(float({base}) ** 0.5)", NUM
            if exp.is_Integer:
                code = f"{base} ** {int(exp)}"
                return (self.assign(code), TENSOR) if kind == TENSOR else (f"({code})", NUM)
            power, pkind = self.node(exp)
            code = f"{base} ** {power}"
            return (self.assign(code), TENSOR) if TENSOR in (kind, pkind) else (f"({code})", NUM)
        if type(e) in UNARY or e.func in UNARY:
            arg, kind = self.node(e.args[0])
            fn = _TORCH_NAME[UNARY[e.func]]
            return self.assign(f"{fn}({arg if kind == TENSOR else f'_full({arg}, like)'})"), TENSOR
        if isinstance(e, TableFunction):
            name = f"_table{len(self.objects)}"
            self.objects[name] = type(e).table
            args = ", ".join(self.tensor(*self.node(a)) for a in e.args)
            return self.assign(f"{name}({args})"), TENSOR
        if isinstance(e, sp.atan2):
            y, x = (self.tensor(*self.node(a)) for a in e.args)
            return self.assign(f"torch.atan2({y}, {x})"), TENSOR
        if isinstance(e, sp.Heaviside):
            arg = self.assign(self.tensor(*self.node(e.args[0])))
            at_zero = _literal(float(e.args[1]) if len(e.args) > 1 else 0.5)
            step = f"torch.where({arg} > 0, 1.0, torch.where({arg} < 0, 0.0, {at_zero}))"
            return self.assign(f"{step}.to(like.dtype)"), TENSOR
        if isinstance(e, (sp.Min, sp.Max)):
            vals = [self.tensor(*self.node(a)) for a in e.args]
            op = "torch.minimum" if isinstance(e, sp.Min) else "torch.maximum"
            out = vals[0]
            for v in vals[1:]:
                out = self.assign(f"{op}({out}, {v})")
            return out, TENSOR
        if isinstance(e, sp.Piecewise):
            out: Optional[str] = None
            for value, cond in reversed(e.args):  # the first true condition wins: built from the last
                v = self.tensor(*self.node(value))
                if out is None and cond is sp.true:
                    out = v
                    continue
                fallback = out if out is not None else "torch.full_like(like, _nan)"  # no piece applies
                out = self.assign(f"torch.where({self.boolean(*self.node(cond))}, {v}, {fallback})")
            return out, TENSOR
        if isinstance(e, sp.core.relational.Relational):
            if type(e) not in _RELATIONS:
                raise Uncompilable(f"cannot evaluate {type(e).__name__} ({e}) on tensors")
            a, b = self.tensor(*self.node(e.lhs)), self.tensor(*self.node(e.rhs))
            return self.assign(f"{a} {_RELATIONS[type(e)]} {b}"), BTENSOR
        if isinstance(e, (sp.And, sp.Or)):
            op = " & " if isinstance(e, sp.And) else " | "
            return self.assign(op.join(self.boolean(*self.node(a)) for a in e.args)), BTENSOR
        if isinstance(e, sp.Not):
            return self.assign(f"~{self.boolean(*self.node(e.args[0]))}"), BTENSOR
        if e is sp.true or e is sp.false:
            return repr(bool(e)), BOOL
        raise Uncompilable(f"cannot evaluate {type(e).__name__} ({e}) on tensors")


__all__ = ["Compiled", "Uncompilable", "compile_exprs", "UNARY"]
