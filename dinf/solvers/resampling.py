"""Residual-based adaptive collocation points for the gradient solvers (``solver.resample``).

RAR-D (Wu, Zhu, Tan, Kartha & Lu 2023, "A comprehensive study of non-adaptive and
residual-based adaptive sampling for physics-informed neural networks", CMAME 403): every
``every`` steps, ``pool`` candidate points are drawn uniformly over the interior and the squared
equation residual ε(x)² is evaluated at each; until the next redraw, each step's interior points
are drawn from the candidates with probability

    p(x) ∝ ε(x)^k / mean(ε^k) + c,

so ``c`` → ∞ is uniform sampling and ``c = 0`` puts the points only where the residual is. The
conditions' points are drawn as always. It applies to every model trained by a gradient solver
(SIREN, the MLPs, ∂∞-Grid by Adam), so baselines get the same help as the grids' adaptivity.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

from dinf.errors import ConfigError, check, check_choice

METHODS = ("rar_d",)


class ResidualResampler:
    """Draws the interior points of a gradient solver's batches as RAR-D does (module docstring).

    ``k`` ≥ 0 and ``c`` ≥ 0 shape the density, ``every`` ≥ 1 is the number of steps between
    redraws of the candidates, ``pool`` ≥ 1 their count."""

    def __init__(self, method: str = "rar_d", every: int = 250, k: float = 1.0, c: float = 1.0, pool: int = 65536):
        check_choice("resample", method, METHODS)
        check(int(every) >= 1, "resample_every", f"steps between redraws must be ≥ 1, got {every}")
        check(int(pool) >= 1, "resample_pool", f"candidate points must be ≥ 1, got {pool}")
        check(float(k) >= 0 and math.isfinite(float(k)), "resample_k", f"the exponent must be ≥ 0, got {k}")
        check(float(c) >= 0 and math.isfinite(float(c)), "resample_c", f"the floor must be ≥ 0, got {c}")
        self.every, self.k, self.c, self.pool = int(every), float(k), float(c), int(pool)
        self.candidates: Optional[torch.Tensor] = None  # float64 [pool, d]
        self.probabilities: Optional[torch.Tensor] = None
        self.drawn_at = -1

    @staticmethod
    def check_problem(problem: Any) -> None:
        """RAR-D reads the equations' residuals at points: a problem stated in a config file."""
        if not (hasattr(problem, "residuals") and hasattr(problem, "residual_values")):
            raise ConfigError("resample", f"residual-based points need a problem stated in a config file "
                              f"(its residuals:); {type(problem).__name__} has none (solver.resample=null)")

    def batch(self, field: Any, problem: Any, n: int, generator: torch.Generator, step: int,
              sampler: Any) -> Any:
        """A batch of ``n`` points from ``sampler(field, problem, n, generator)`` whose interior
        block is redrawn from the candidates by the RAR-D density."""
        if self.candidates is None or step - self.drawn_at >= self.every:
            self._redraw(field, problem, generator, sampler)
            self.drawn_at = step
        batch = sampler(field, problem, n, generator)
        inner = int(batch.data["sizes"][0])
        pick = torch.multinomial(self.probabilities, inner, replacement=True, generator=generator)
        x64 = self.candidates[pick].to(batch.data["x64"].device)
        batch.data["x64"][:inner] = x64
        batch.x[:inner] = x64.to(batch.x.dtype)
        return batch

    def _redraw(self, field: Any, problem: Any, generator: torch.Generator, sampler: Any) -> None:
        pool = sampler(field, problem, self.pool, generator)
        inner = int(pool.data["sizes"][0])
        x = pool.data["x64"][:inner].detach().cpu()
        was_training = field.training
        field.eval()
        try:
            eps = problem.residual_values(field, x).sqrt().double()
        finally:
            field.train(was_training)
        weight = eps.pow(self.k)
        mean = float(weight.mean())
        density = (weight / mean if mean > 0 else torch.zeros_like(weight)) + self.c
        if float(density.sum()) <= 0:  # a zero residual everywhere with c = 0: uniform
            density = torch.ones_like(density)
        self.candidates, self.probabilities = x, density / density.sum()
