"""Reading a problem stated in a config file for the classical solvers that recognise an equation's
form (``solver=spectral``, ``solver=taylor_hood``): its box and time interval, the values its
conditions prescribe, and each residual as a polynomial in the jet entries with constant
coefficients, written in canonical names (the unknown's name, then ``t`` for the time axis and
``x``, ``y`` for the first and second space axes, whatever the coordinates are called)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import sympy
import torch

from dinf.equations.evaluate import evaluate
from dinf.errors import ConfigError
from dinf.pdes.equation_problem import EquationProblem

SPACE_LETTERS = "xyz"
Monomial = Tuple[str, ...]  # sorted canonical names of its factors: ("u", "u_x") is u·u_x


def require_box(problem: Any, who: str, hint: str) -> Tuple[float, float]:
    """The time interval of a time-dependent problem stated in a config file on a box (no holes,
    additions or exact conditions); else a one-line ``ConfigError`` (``who``: ``solver=spectral``;
    ``hint``: what to write instead)."""
    if not isinstance(problem, EquationProblem):
        raise ConfigError("solver", f"{who} solves problems stated in a config file; {type(problem).__name__} is not one")
    name = problem.name
    if problem.time is None:
        raise ConfigError("solver", f"{who} solves time-dependent problems; {name} has no time axis ({hint})")
    domain = problem.domain
    if domain.holes or domain.additions or getattr(domain, "within", None):
        raise ConfigError("solver", f"{who} discretises a box; {name}'s domain has holes or additions ({hint})")
    if problem.hard:
        raise ConfigError("solver", f"{who} reads the conditions as stated; {name} makes some exact "
                                    "(pde.conditions.<name>.hard: false)")
    if problem.unknowns.complex:
        raise ConfigError("solver", f"{who} solves real unknowns; {name} has complex ones ({hint})")
    t0, t1 = (float(v) for v in domain.bounds[problem.coords.index(problem.time)])
    return t0, t1


def space_axes(problem: Any) -> List[int]:
    """The coordinates' indices of the space axes, in order."""
    return [i for i, c in enumerate(problem.coords) if c != problem.time]


def face_of(problem: Any, face: str) -> Tuple[int, str]:
    """``x_min`` → (space axis index among the space axes, ``min``)."""
    coord, side = face.rsplit("_", 1)
    space = [c for c in problem.coords if c != problem.time]
    return space.index(coord), side


def targets(condition: Any) -> Dict[str, sympy.Expr]:
    """The values a value condition (initial, Dirichlet) prescribes: unknown → ``g`` of
    ``u − g`` (an expression of the coordinates, parameters substituted)."""
    out: Dict[str, sympy.Expr] = {}
    for r in condition.residuals:
        part = r.parts[0]
        (sym, coef), = part.coefficients.items()
        out[r.entries[sym].unknown] = -part.constant / coef
    return out


def values_at(expr: sympy.Expr, coords: Dict[str, np.ndarray], like_shape: Tuple[int, ...]) -> np.ndarray:
    """``expr`` at points (``coords``: name → array, all of one shape) by the project's evaluator."""
    env = {k: torch.as_tensor(np.array(np.broadcast_to(v, like_shape), dtype=np.float64).ravel()) for k, v in coords.items()}
    like = next(iter(env.values()))
    with torch.no_grad():
        return evaluate(expr, env, like).numpy().reshape(like_shape)


def terms(problem: Any, rname: str) -> Optional[Dict[Monomial, sympy.Expr]]:
    """``residuals.rname`` as {monomial of jet entries (canonical names): its coefficient, an
    expression of the coordinates}; None where it is not a polynomial in the jet entries."""
    return residual_terms(problem, problem.residuals[rname])


def residual_terms(problem: Any, r: Any) -> Optional[Dict[Monomial, sympy.Expr]]:
    """``terms`` of a residual object (an equation's or a condition's)."""
    parts = getattr(r, "parts", None)
    if not parts or len(parts) != 1:
        return None
    expr = parts[0].expr
    entries = getattr(r, "entries", {})
    ti = problem.coords.index(problem.time)
    space = space_axes(problem)
    names = {}
    for s, e in entries.items():
        letters = sorted("t" if a == ti else SPACE_LETTERS[space.index(a)] for a in e.axes)
        names[s] = e.unknown + (f"_{''.join(letters)}" if letters else "")
    syms = list(entries)
    if not syms:
        return {(): expr}
    try:
        poly = sympy.Poly(sympy.expand(expr), *syms)
    except sympy.PolynomialError:
        return None
    out: Dict[Monomial, sympy.Expr] = {}
    for powers, coef in poly.terms():
        key = tuple(sorted(n for s, k in zip(syms, powers) for n in [names[s]] * k))
        out[key] = out.get(key, 0) + coef.as_expr()
    return out


def constant(coefficients: Optional[Dict[Monomial, sympy.Expr]]) -> Optional[Dict[Monomial, float]]:
    """``terms``' coefficients as numbers; None where one depends on the coordinates."""
    if coefficients is None or any(c.free_symbols for c in coefficients.values()):
        return None
    return {k: float(c) for k, c in coefficients.items()}


def show(monomial: Monomial) -> str:
    """``("u", "v", "v")`` → ``u*v^2``; ``()`` → ``1``."""
    if not monomial:
        return "1"
    parts = []
    for name in dict.fromkeys(monomial):
        k = monomial.count(name)
        parts.append(name if k == 1 else f"{name}^{k}")
    return "*".join(parts)


def same(a: float, b: float, tol: float = 1e-12) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300)
