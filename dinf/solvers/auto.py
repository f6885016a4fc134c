"""``solver=auto``: for each problem and field, the fastest solver that applies, and why.

The order is the speed order measured on this project's problems: least squares (a linear problem
on a field linear in its node values: one sparse solve), Gauss–Newton (squared residuals on such
a field: a few linearised solves), Levenberg–Marquardt on the factored grid's factors (squared
rows on ``model=dinf_cp``, whose jets are multilinear in its factors), Newton (an energy on such
a field), else Adam (networks, and grids the others refuse). Each candidate's own ``check``
decides, so what ``auto`` picks is what that solver, named alone, would accept.
"""
from __future__ import annotations

from typing import Callable, Tuple

import torch

from dinf.errors import ConfigError
from dinf.pdes.capabilities import EnergyProblem, LinearProblem, ResidualProblem
from dinf.solvers.base import Solver

# The candidates in the order tried, with what each needs of the problem to be worth trying.
ORDER = (("least_squares", LinearProblem), ("gauss_newton", ResidualProblem),
         ("cp_lm", (LinearProblem, ResidualProblem)), ("newton", EnergyProblem))
WHY = {
    "least_squares": "the problem is linear and the field is linear in its node values: one sparse solve",
    "gauss_newton": "the residuals are nonlinear and the field is linear in its node values: a few linearised solves",
    "cp_lm": "the field is the factored grid (multilinear in its factors) and the loss is squared rows: "
             "a few dense Levenberg–Marquardt steps",
    "newton": "the problem is an energy and the field is linear in its node values: a few Newton solves",
}


class Auto:
    """Holds the candidates' configs (``solver.least_squares``, ``solver.gauss_newton``,
    ``solver.cp_lm``, ``solver.newton``, ``solver.adam``); ``choose`` builds the first that applies."""

    def __init__(self, windows: object = None, overlap: float = 0.0, **candidates: object):
        # windows, overlap: marching in time, which the run sets up around the chosen solver
        self.windows, self.overlap = windows, overlap
        self.candidates = candidates

    def choose(self, field: torch.nn.Module, problem: torch.nn.Module,
               build: Callable[[str], Solver]) -> Tuple[Solver, str, str]:
        """The solver, its candidate name and a one-line reason. ``build(name)`` instantiates
        candidate ``name`` (so a bad option in it is reported under its own key)."""
        refused = []
        for name, kind in ORDER:
            if not isinstance(problem, kind):
                continue
            solver = build(name)
            try:
                solver.check(field, problem)
            except ConfigError as e:
                refused.append(e.detail.split(" (use ")[0])  # each names its solver: "least squares needs …"
                continue
            return solver, name, WHY[name]
        solver = build("adam")
        why = "; ".join(refused) if refused else f"{type(problem).__name__} states no linear rows, residuals or energy"
        return solver, "adam", f"no faster solver applies: {why}"
