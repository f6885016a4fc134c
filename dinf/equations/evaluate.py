"""Sympy expressions evaluated on tensors.

Symbols are looked up by name in an environment of ``[N]`` tensors (jet entries, coordinates,
normals); numbers broadcast. Piecewise expressions become ``torch.where``.

``evaluate_tree`` walks the expression tree at every call: the reference, and the definition of
what each node means. ``evaluate`` gives the same values from a function compiled once per
expression (``compile.py``: the same torch operations in the same order, written out), which
skips the walk's per-node dispatch on every later call.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import sympy as sp
import torch
from torch import Tensor

from dinf.equations.compile import UNARY as _UNARY
from dinf.equations.compile import Compiled, compile_exprs
from dinf.equations.tables import TableFunction

_COMPILED: Dict[sp.Basic, Optional[Compiled]] = {}  # expression -> its function (None: walk it)
_CACHE_SIZE = 4096


def evaluate(expr: sp.Basic, env: Mapping[str, Tensor], like: Tensor) -> Tensor:
    """``expr`` at N points: ``env`` maps symbol names to ``[N]`` tensors; ``like`` gives the
    shape, dtype and device of a constant result. Compiled on the first call for ``expr``; the
    values are ``evaluate_tree``'s."""
    fn = compiled(expr)
    return fn(env, like)[0] if fn is not None else evaluate_tree(expr, env, like)


def compiled(expr: sp.Basic) -> Optional[Compiled]:
    """``expr``'s compiled function, made once (None where only the walk can say what is wrong)."""
    try:
        return _COMPILED[expr]
    except KeyError:
        pass
    except TypeError:  # not hashable: not a sympy expression; the walk says so
        return None
    try:
        fn: Optional[Compiled] = compile_exprs([expr])
    except Exception:  # noqa: BLE001 - Uncompilable, or a tree the walk itself refuses: walk it
        fn = None
    if len(_COMPILED) >= _CACHE_SIZE:
        _COMPILED.pop(next(iter(_COMPILED)))  # the oldest
    _COMPILED[expr] = fn
    return fn


def evaluate_tree(expr: sp.Basic, env: Mapping[str, Tensor], like: Tensor) -> Tensor:
    """``expr`` at N points by walking its tree: the reference ``evaluate`` is tested against."""
    out = _eval(expr, env, like)
    if not isinstance(out, Tensor):
        return torch.full_like(like, float(out))
    return out if out.shape == like.shape else out.expand_as(like)


def _eval(e: sp.Basic, env: Mapping[str, Tensor], like: Tensor):  # -> Tensor | float | bool
    if e.is_Number or e in (sp.pi, sp.E):
        if e.is_real is False:
            raise ValueError(f"complex constant {e} left in a real residual")
        return float(e)
    if isinstance(e, sp.Symbol):
        try:
            return env[e.name]
        except KeyError:
            raise KeyError(f"no value for symbol {e.name!r}") from None
    if isinstance(e, sp.Add):
        total = 0.0
        for a in e.args:
            total = total + _eval(a, env, like)
        return total
    if isinstance(e, sp.Mul):
        prod = 1.0
        for a in e.args:
            prod = prod * _eval(a, env, like)
        return prod
    if isinstance(e, sp.Pow):
        base, exp = _eval(e.base, env, like), e.exp
        if exp == sp.Rational(1, 2):
            return torch.sqrt(base) if isinstance(base, Tensor) else float(base) ** 0.5
        if exp.is_Integer:
            return base ** int(exp)
        return base ** _eval(exp, env, like)
    if type(e) in _UNARY or e.func in _UNARY:
        arg = _eval(e.args[0], env, like)
        return _UNARY[e.func](arg if isinstance(arg, Tensor) else torch.full_like(like, float(arg)))
    if isinstance(e, TableFunction):
        return type(e).table(*[_tensor(_eval(a, env, like), like) for a in e.args])
    if isinstance(e, sp.atan2):
        y, x = (_tensor(_eval(a, env, like), like) for a in e.args)
        return torch.atan2(y, x)
    if isinstance(e, sp.Heaviside):
        arg = _tensor(_eval(e.args[0], env, like), like)
        at_zero = float(e.args[1]) if len(e.args) > 1 else 0.5
        return torch.where(arg > 0, 1.0, torch.where(arg < 0, 0.0, at_zero)).to(like.dtype)
    if isinstance(e, (sp.Min, sp.Max)):
        vals = [_tensor(_eval(a, env, like), like) for a in e.args]
        op = torch.minimum if isinstance(e, sp.Min) else torch.maximum
        out = vals[0]
        for v in vals[1:]:
            out = op(out, v)
        return out
    if isinstance(e, sp.Piecewise):
        out = None
        for value, cond in reversed(e.args):  # the first true condition wins: build from the last
            v = _tensor(_eval(value, env, like), like)
            if out is None and cond is sp.true:
                out = v
                continue
            fallback = out if out is not None else torch.full_like(like, float("nan"))  # no piece applies
            out = torch.where(_bool(_eval(cond, env, like), like), v, fallback)
        return out
    if isinstance(e, sp.core.relational.Relational):
        a, b = _eval(e.lhs, env, like), _eval(e.rhs, env, like)
        ops = {sp.StrictLessThan: "__lt__", sp.LessThan: "__le__", sp.StrictGreaterThan: "__gt__",
               sp.GreaterThan: "__ge__"}
        return getattr(_tensor(a, like), ops[type(e)])(_tensor(b, like))
    if isinstance(e, sp.And):
        out = _bool(_eval(e.args[0], env, like), like)
        for a in e.args[1:]:
            out = out & _bool(_eval(a, env, like), like)
        return out
    if isinstance(e, sp.Or):
        out = _bool(_eval(e.args[0], env, like), like)
        for a in e.args[1:]:
            out = out | _bool(_eval(a, env, like), like)
        return out
    if isinstance(e, sp.Not):
        return ~_bool(_eval(e.args[0], env, like), like)
    if e is sp.true or e is sp.false:
        return bool(e)
    raise ValueError(f"cannot evaluate {type(e).__name__} ({e}) on tensors")


def _tensor(v, like: Tensor) -> Tensor:
    return v if isinstance(v, Tensor) else torch.full_like(like, float(v))


def _bool(v, like: Tensor) -> Tensor:
    if isinstance(v, Tensor):
        return v.bool()
    return torch.full(like.shape, bool(v), dtype=torch.bool, device=like.device)
