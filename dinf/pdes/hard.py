"""Exact (hard) Dirichlet and initial conditions on box faces: ``u = g + B·N``.

``N`` is the field's output, ``B`` the product of the normalised distances to the constrained
faces (``(x − lo)/(hi − lo)`` for a ``x_min`` face, ``(t − t0)/(t1 − t0)`` for the initial
slice), so ``B = 0`` there, and ``g`` (the lift) equals the prescribed values on every
constrained face. ``g`` is the conditions' own value when one expression serves them all (it is
checked on each face), or ``pde.lift.<u>`` given by the user. Jets follow by the product rule,
with g's and B's derivatives from sympy; least-squares rows are mapped the same way, so
``solver=least_squares`` keeps working.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import sympy as sp
import torch
from torch import Tensor

from dinf.equations.evaluate import evaluate
from dinf.equations.parse import Vocabulary, parse
from dinf.errors import ConfigError
from dinf.jet import Jet, entry_position, higher_axes, leibniz, order_of_width, splits
from dinf.pdes.conditions import Condition


@dataclass
class Ansatz:
    """``u = g + B·N`` for one real channel: sympy expressions of the coordinates."""

    channel: int
    lift: sp.Expr
    factor: sp.Expr


def _jet_exprs(expr: sp.Expr, coords: Sequence[sp.Symbol], order: int) -> List[sp.Expr]:
    """value, gradient (d), Hessian (d·d, row-major), higher derivatives (``higher_axes``) of
    ``expr``, up to ``order``."""
    out = [expr]
    if order >= 1:
        out += [sp.diff(expr, c) for c in coords]
    if order >= 2:
        out += [sp.diff(expr, a, b) for a, b in itertools.product(coords, coords)]
    out += [sp.diff(expr, *[coords[a] for a in axes]) for axes in higher_axes(len(coords), order)]
    return out


class HardConditions:
    """The ansatz of every unknown with hard conditions; transforms jets, values and rows."""

    def __init__(self, ansatz: List[Ansatz], coords: Sequence[str], order: int):
        self.ansatz, self.coords, self.order = ansatz, list(coords), order
        symbols = [sp.Symbol(c, real=True) for c in coords]
        self._g = {a.channel: _jet_exprs(a.lift, symbols, order) for a in ansatz}
        self._b = {a.channel: _jet_exprs(a.factor, symbols, order) for a in ansatz}

    def __bool__(self) -> bool:
        return bool(self.ansatz)

    def _eval(self, exprs: List[sp.Expr], x: Tensor) -> Tensor:
        data = {c: x[:, i] for i, c in enumerate(self.coords)}
        return torch.stack([evaluate(e, data, x[:, 0]) for e in exprs], 1)  # [N, A]

    def values(self, n_values: Tensor, x: Tensor) -> Tensor:
        """``[N, C]`` field outputs → the unknowns' values."""
        out = n_values.clone()
        for a in self.ansatz:
            g = self._eval(self._g[a.channel][:1], x)[:, 0]
            b = self._eval(self._b[a.channel][:1], x)[:, 0]
            out[:, a.channel] = g.to(out.dtype) + b.to(out.dtype) * n_values[:, a.channel]
        return out

    def jet(self, jet: Jet, x: Tensor) -> Jet:
        """The field's jet → the unknowns' jet (product rule)."""
        value, grad = jet.value.clone(), None if jet.grad is None else jet.grad.clone()
        hess = None if jet.hess is None else jet.hess.clone()
        higher = None if jet.higher is None else jet.higher.clone()
        d = x.shape[1]
        for a in self.ansatz:
            c = a.channel
            G = self._eval(self._g[c], x).to(value.dtype)
            B = self._eval(self._b[c], x).to(value.dtype)
            n = jet.value[:, c]
            value[:, c] = G[:, 0] + B[:, 0] * n
            if grad is not None:
                ng = jet.grad[:, c]
                grad[:, c] = G[:, 1:1 + d] + B[:, 1:1 + d] * n[:, None] + B[:, :1] * ng
            if hess is not None:
                ng, nh = jet.grad[:, c], jet.hess[:, c]
                Bg, Bh = B[:, 1:1 + d], B[:, 1 + d:1 + d + d * d].reshape(-1, d, d)
                hess[:, c] = (G[:, 1 + d:1 + d + d * d].reshape(-1, d, d) + Bh * n[:, None, None]
                              + Bg[:, :, None] * ng[:, None, :] + ng[:, :, None] * Bg[:, None, :] + B[:, :1, None] * nh)
            if higher is not None:  # Leibniz for B·N, entry by entry
                Bj = Jet.from_entries(B[:, None, :], d)
                Nj = Jet(*(t[:, c:c + 1] for t in (jet.value, jet.grad, jet.hess, jet.higher)))
                axes = higher_axes(d, jet.order)
                higher[:, c] = G[:, 1 + d + d * d:] + torch.cat([leibniz(Bj, Nj, a) for a in axes], 1)
        return Jet(value, grad, hess, higher)

    def rows(self, coef: Tensor, rhs: Tensor, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Rows over the unknowns' jet entries → rows over the field's (``coef`` ``[N, E, C, A]``)."""
        coef, rhs = coef.clone(), rhs.clone()
        n, _, _, width = coef.shape
        d = x.shape[1]
        for a in self.ansatz:
            c = a.channel
            G = self._eval(self._g[c], x).to(coef.dtype)[:, :width]
            B = self._eval(self._b[c], x).to(coef.dtype)[:, :width]
            T = _product_map(B, d, width)  # J_u = T J_N + J_G
            cu = coef[:, :, c, :]
            rhs = rhs - torch.einsum("nea,na->ne", cu, G)
            coef[:, :, c, :] = torch.einsum("nea,nab->neb", cu, T)
        return coef, rhs


def _product_map(B: Tensor, d: int, width: int) -> Tensor:
    """``T`` ``[N, A, A]`` with ``J(B·N) = T J(N)`` for jets up to ``width`` entries."""
    n = B.shape[0]
    T = B.new_zeros(n, width, width)
    T[:, 0, 0] = B[:, 0]
    if width > 1:
        for i in range(d):
            T[:, 1 + i, 0] = B[:, 1 + i]
            T[:, 1 + i, 1 + i] = B[:, 0]
    if width > 1 + d:
        for i, j in itertools.product(range(d), range(d)):
            r = 1 + d + i * d + j
            T[:, r, 0] = B[:, r]
            T[:, r, 1 + j] += B[:, 1 + i]
            T[:, r, 1 + i] += B[:, 1 + j]
            T[:, r, r] = B[:, 0]
    for axes in higher_axes(d, order_of_width(width, d)):  # ∂^α(B·N) = Σ_β C(α, β) ∂^(α−β)B ∂^β N
        r = entry_position(axes, d)
        for sub, count in splits(axes):
            rest = list(axes)
            for s in sub:
                rest.remove(s)
            T[:, r, entry_position(sub, d)] += count * B[:, entry_position(tuple(rest), d)]
    return T



def build_hard(conditions: Sequence[Condition], lifts: Mapping[str, str], unknowns, coords: Sequence[str],
               time: Optional[str], bounds: Tensor, domain, params: Mapping[str, float],
               functions: Mapping[str, str], order: int) -> HardConditions:
    """The ansatz of each unknown from the conditions marked ``hard`` (Dirichlet on box faces,
    initial values); checks that the lift meets every hard condition on its face."""
    vocab = Vocabulary([], coords, params, functions, time=time)
    values = {s: v for s, v in ((sp.Symbol(p, real=True), val) for p, val in params.items())}
    per_unknown: Dict[str, List[Tuple[sp.Expr, sp.Expr, object]]] = {}
    for c in conditions:
        if not c.hard:
            continue
        key = f"conditions.{c.name}.hard"
        faces = c.exact_faces(domain)  # a condition that cannot be exact says so
        for u, value in c.targets.items():
            g = parse(value, vocab, f"conditions.{c.name}.value").subs(values)
            for face in faces:
                per_unknown.setdefault(u, []).append((g, _distance(face, coords, time, bounds, key), c))
    ansatz = []
    for u, items in per_unknown.items():
        if u in unknowns.complex:
            raise ConfigError(f"conditions.{items[0][2].name}.hard", "exact conditions are for real unknowns")
        factor = sp.Mul(*[b for _, b, _ in items])
        if u in lifts:
            lift = parse(lifts[u], vocab, f"lift.{u}").subs(values)
            for g, b, c in items:
                _check_lift(lift, g, b, coords, bounds, f"conditions.{c.name}", u)
        else:  # the first of the conditions' own values that meets all of them
            lift, failure = None, None
            for candidate in dict.fromkeys(g for g, _, _ in items):
                try:
                    for g, b, c in items:
                        _check_lift(candidate, g, b, coords, bounds, f"conditions.{c.name}", u)
                except ConfigError as e:
                    failure = failure or e
                    continue
                lift = candidate
                break
            if lift is None:
                raise failure
        ansatz.append(Ansatz(unknowns.channels[u][0], lift, factor))
    return HardConditions(ansatz, coords, order)


def _distance(face: Optional[str], coords: Sequence[str], time: Optional[str], bounds: Tensor, key: str) -> sp.Expr:
    """The normalised distance to a box face (or to the initial slice when ``face`` is None)."""
    if face is None:
        i = coords.index(time)
        lo, hi = (float(v) for v in bounds[i])
        return (sp.Symbol(time, real=True) - lo) / (hi - lo)
    axis, _, side = face.rpartition("_")
    if axis not in coords or side not in ("min", "max"):
        raise ConfigError(key, f"exact conditions need box faces (x_min, y_max, …); {face!r} is not one")
    i = coords.index(axis)
    lo, hi = (float(v) for v in bounds[i])
    s = sp.Symbol(axis, real=True)
    return (s - lo) / (hi - lo) if side == "min" else (hi - s) / (hi - lo)


def _check_lift(lift: sp.Expr, g: sp.Expr, b: sp.Expr, coords: Sequence[str], bounds: Tensor, key: str,
                u: str) -> None:
    """``lift == g`` where ``b == 0`` (on the face), at random points of the face."""
    gen = torch.Generator().manual_seed(0)
    lo, hi = bounds[:, 0].double(), bounds[:, 1].double()
    x = lo + (hi - lo) * torch.rand(64, len(coords), generator=gen, dtype=torch.float64)
    # Put the points on the face: solve b = 0 for the one coordinate it depends on.
    (s,) = [sym for sym in b.free_symbols]
    i = coords.index(s.name)
    x[:, i] = float(sp.solve(sp.Eq(b, 0), s)[0])
    data = {c: x[:, k] for k, c in enumerate(coords)}
    gap = (evaluate(lift - g, data, x[:, 0])).abs().max()
    scale = max(float(evaluate(g, data, x[:, 0]).abs().max()), 1.0)
    if float(gap) > 1e-9 * scale:
        raise ConfigError(key, f"exact conditions of {u} need one lift that meets them all: {lift} differs from "
                               f"{g} on this face by {float(gap):.3g}; give pde.lift.{u} (an expression equal "
                               "to every hard value on its face)")
