"""Reference options: ``reference.formula`` (a formula a benchmark scores against that is not the
solution, PINNacle's Wave2d-MS) is scored beside the truth, and refused where it cannot be; a
shorter time interval is scored on the reference file's times inside it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.app.run import build
from dinf.errors import ConfigError
from dinf.pdes.exact.wave2d_ms import wave2d_ms_pinnacle, wave2d_ms_series
from tests.helpers import compose_cfg


def test_the_formula_is_scored_beside_the_truth():
    problem, _, _ = build(compose_cfg(["pde=wave2d_ms", "pde.evaluation.resolution=11", "pde.evaluation.times=41",
                                       "pde.domain.time.t=[0,10]"]))
    assert problem.metric_modes["l2re_formula"] == "min"
    x = problem.eval_x.cpu().double().numpy()
    truth = wave2d_ms_series(x[:, 0], x[:, 1], x[:, 2])
    formula = wave2d_ms_pinnacle(x[:, 0], x[:, 1], x[:, 2])
    metrics = problem.reference.metrics(torch.as_tensor(truth)[:, None])
    assert metrics["l2re"] < 1e-12
    want = np.linalg.norm(truth - formula) / np.linalg.norm(formula)
    assert abs(metrics["l2re_formula"] - want) < 1e-12 and 0.05 < want < 0.2  # 0.115 on a fine grid


def test_a_formula_needs_an_exact_solution_beside_it():
    with pytest.raises(ConfigError, match="reference.formula: expected"):
        build(compose_cfg(["pde=wave1d", "+pde.reference.formula=1"]))


def test_a_shorter_interval_is_scored_on_the_files_times_inside_it():
    whole, _, _ = build(compose_cfg(["pde=ks"]))
    short, _, _ = build(compose_cfg(["pde=ks", "pde.domain.time.t=[0,0.1]"]))
    assert whole.eval_x.shape[0] == 256 * 101 and short.eval_x.shape[0] == 256 * 11
    assert float(short.eval_x[:, 1].max()) == pytest.approx(0.1)
    keep = whole.eval_x[:, 1] <= 0.1 + 1e-9
    torch.testing.assert_close(short.eval_values, whole.eval_values[keep])
