"""The inverse problems' files: PInv's truth solves the equation this project states (PINNacle's
own source term does not), HInv's truth solves its own, and Burgers identification's observations
are the exact solution."""
from __future__ import annotations

import math

import numpy as np
import torch

from dinf.app.run import build
from dinf.fields.base import autograd_jet
from dinf.fields.split import SplitField
from dinf.pdes.conditions import Data
from dinf.pdes.exact import burgers_cole_hopf
from tests.helpers import compose_cfg

PINNACLE_F = ("2*pi^2*ua*aa + 2*pi*((2*x + 1)*cos(pi*x)*sin(pi*y) + (2*y + 1)*sin(pi*x)*cos(pi*y))*aa^2")


class _Truth(torch.nn.Module):
    """PInv's (u, a), written independently of the config's expressions."""

    def forward(self, xy: torch.Tensor) -> torch.Tensor:
        x, y = xy[:, 0], xy[:, 1]
        u = torch.sin(math.pi * x) * torch.sin(math.pi * y)
        a = 1.0 / (1 + x**2 + y**2 + (x - 1) ** 2 + (y - 1) ** 2)
        return torch.stack([u, a], 1)


def _pinv_residual(overrides=()):
    problem, _, _ = build(compose_cfg(["pde=pinv", "solver=gauss_newton", *overrides]))
    x = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jet = autograd_jet(_Truth(), x, 2)
    r = problem.residuals["pde"].evaluate(jet, {"x": x[:, 0], "y": x[:, 1]})
    return float(r.detach().abs().max())


def test_pinv_truth_solves_the_stated_equation_and_not_pinnacles():
    assert _pinv_residual() < 1e-10
    assert _pinv_residual([f"pde.functions.f='{PINNACLE_F}'"]) > 0.5  # PINNacle's (2x + 1): not a solution


def test_burgers_observations_are_the_exact_solution():
    problem, _, _ = build(compose_cfg(["pde=burgers_inverse", "solver=gauss_newton", "grid.resolution=[16,8]",
                                       "~pde.best"]))
    (data,) = [c for c in problem.conditions if isinstance(c, Data)]
    x = data.at.numpy()
    assert x.shape == (2000, 2) and data.sigma == 0.0
    want = burgers_cole_hopf(x[:, 0], x[:, 1], nu=0.01 / np.pi)
    np.testing.assert_allclose(data.observed[:, 0].numpy(), want, rtol=0, atol=1e-12)


class _HeatTruth(torch.nn.Module):
    """HInv's (u, a), written independently of the config's expressions."""

    def forward(self, xyt: torch.Tensor) -> torch.Tensor:
        x, y, t = xyt[:, 0], xyt[:, 1], xyt[:, 2]
        s = torch.sin(math.pi * x) * torch.sin(math.pi * y)
        return torch.stack([torch.exp(-t) * s, 2 + s], 1)


def test_hinv_truth_solves_its_equation_and_its_data_are_pinnacles_points():
    problem, field, _ = build(compose_cfg(["pde=hinv", "solver=gauss_newton", "grid.levels=1", "grid.resolution=[4,4,2]", "~pde.best"]))
    assert isinstance(field, SplitField) and field.axes == [[0, 1, 2], [0, 1]] and field.channels == [[0], [1]]
    x = torch.rand(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x[:, 2] = (x[:, 2] + 1) / 2
    jet = problem.extended(autograd_jet(_HeatTruth(), x, 2))
    data = {"x": x[:, 0], "y": x[:, 1], "t": x[:, 2]}
    assert float(problem.residuals["pde"].evaluate(jet, data).detach().abs().max()) < 1e-10
    (obs,) = [c for c in problem.conditions if isinstance(c, Data)]
    assert obs.at.shape == (2500, 3) and obs.sigma == 0.1
    noise = obs.observed[:, 0] - _HeatTruth()(obs.at)[:, 0]
    assert abs(float(noise.std()) - 0.1) < 0.01 and abs(float(noise.mean())) < 0.01


def test_observations_come_on_top_of_the_batch_and_do_not_starve_the_wall():
    problem, _, _ = build(compose_cfg(["pde=hinv", "solver=gauss_newton", "grid.levels=1", "grid.resolution=[4,4,2]", "~pde.best"]))
    interior, observed, wall = problem.counts(4096)
    # 2 500 observations counted against 4 096 points had left the wall of a one point
    assert observed == 2500 and wall >= 1024 and interior == 4096 - wall
