"""PINNacle's six problems as config files, their sweep, and the README's worked example."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dinf.errors import ConfigError
from dinf.app.run import build
from dinf.solvers.base import GradientSolver
from dinf.solvers.gauss_newton import GaussNewton
from dinf.solvers.least_squares import LeastSquares, check_linear
from dinf.solvers.marching import Marching
from dinf.solvers.moving_grid import MovingGrid
from tests.helpers import CONF, compose_cfg

ROOT = Path(__file__).resolve().parents[1]
SWEEP = OmegaConf.load(Path(CONF) / "experiment" / "pinnacle.yaml").hydra.sweeper.params
PROBLEMS = SWEEP.pde.split(",")  # the problems the sweep varies; pde=<same name> runs one
LINEAR = {"poisson2d_c", "poisson2d_cg", "heat2d_ms", "wave1d", "poisson2d_ms", "poisson3d_cg", "heat2d_cg"}


def test_the_sweep_covers_the_nine_problems_and_three_models():
    assert len(PROBLEMS) == 9 and SWEEP.model.split(",") == ["dinf", "siren", "pinnacle_mlp"]
    for name in PROBLEMS:  # a sweep job (experiment=pinnacle pde=…) is the single pde run
        job = compose_cfg(["experiment=pinnacle", f"pde={name}"], tiny=False)
        single = compose_cfg([f"pde={name}"], tiny=False)
        assert OmegaConf.to_container(job.pde) == OmegaConf.to_container(single.pde)
        assert (job.grid, job.kernel, job.solver) == (single.grid, single.kernel, single.solver)


@pytest.mark.parametrize("pde", PROBLEMS)
def test_each_problem_gets_least_squares_exactly_when_linear_and_gauss_newton_else(pde):
    cfg = compose_cfg([f"pde={pde}"], tiny=False)
    assert cfg.solver._target_.endswith("Auto") and cfg.trainer.max_time == "00:00:05:00"
    assert cfg.pde._target_ == "dinf.pdes.EquationProblem"  # a config file, no problem-specific class
    problem, field, solver = build(cfg)
    if isinstance(solver, MovingGrid):  # NS2d-C and Burgers move their cells between Gauss–Newton solves
        assert pde in ("ns2d_c", "burgers1d")
        solver = solver.inner
    if isinstance(solver, Marching):  # Heat2d-CG marches in time windows, each a least-squares solve
        assert pde == "heat2d_cg" and isinstance(solver.inner, LeastSquares)
        solver.check(field, problem)
    elif pde in LINEAR:
        check_linear(field, problem)
        assert isinstance(solver, LeastSquares)
    else:
        with pytest.raises(ConfigError, match="nonlinear term"):
            check_linear(field, problem)
        assert isinstance(solver, GaussNewton) and solver.max_solves <= 30
    _, _, adam = build(compose_cfg([f"pde={pde}", "model=siren"], tiny=False))  # the networks: Adam
    assert isinstance(adam, GradientSolver)


def test_reference_data_and_exact_solutions_agree_with_the_statement():
    problem, _, _ = build(compose_cfg(["pde=heat2d_ms"]))
    x = torch.tensor([[0.025, 0.5, 2.0]], dtype=torch.float64)  # sin(20π·0.025) = 1
    assert float(problem.reference.exact_values(x)) == pytest.approx(math.exp(-1.0016 * 2.0), rel=1e-12)
    burgers, _, _ = build(compose_cfg(["pde=burgers1d"]))
    assert 1.0e-2 < burgers.reference.metrics(burgers.eval_values[:, 1:2])["l2re"] < 1.6e-2  # the file vs exact
    ns, _, _ = build(compose_cfg(["pde=ns2d_c"]))
    assert ns.eval_x.shape == (10201, 2) and ns.eval_values.shape == (10201, 3)


def test_docs_example_is_the_config_file_and_solves(tmp_path):
    page = (ROOT / "docs" / "guide" / "equations.md").read_text()
    block = re.search(r"```yaml\n# conf/pde/example_hole.yaml\n(.*?)```", page, re.S)
    assert block, "docs/guide/equations.md's worked example is missing"
    shown = block.group(1)
    assert len(shown.strip().splitlines()) <= 30
    assert shown.strip() == _without_comment_header((Path(CONF) / "pde" / "example_hole.yaml").read_text())
    cfg = compose_cfg(["pde=example_hole", "solver=least_squares", "kernel=gaussian_wide", "grid.levels=1",
                       "grid.resolution=[32,16]", "~logger", "checkpoint.registry=null",
                       "trainer.enable_progress_bar=false"], tiny=False)
    from dinf.app.run import train

    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["l2re"] < 1e-3, metrics["l2re"]


def _without_comment_header(text: str) -> str:
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines).strip()
