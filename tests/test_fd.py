"""solver=fd: the cosine-transform solve is the least-squares solution of the difference equations."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from dinf.solvers.classical.fd import FiniteDifferences
from dinf.solvers.classical.poisson_fd import reconstruct
from dinf.errors import ConfigError
from dinf.app.run import build, train
from tests.helpers import compose_cfg

R = 12
H = 2.0 / (R - 1)


def _gradient(u: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sobel":
        return np.stack([ndi.sobel(u, axis=a) / (8 * H) for a in (0, 1)], -1)
    return np.stack([ndi.correlate1d(u, [-1.0, 0.0, 1.0], axis=a, mode="reflect") / (2 * H) for a in (0, 1)], -1)


@pytest.mark.parametrize("kind", ["central", "sobel"])
def test_the_transform_solve_is_dense_least_squares(kind):
    # The operator as a dense matrix, column by column, and numpy's least squares on noisy targets.
    rng = np.random.default_rng(0)
    G = np.stack([_gradient(e.reshape(R, R), kind).ravel() for e in np.eye(R * R)], 1)
    g = _gradient(rng.standard_normal((R, R)), kind) + 0.1 * rng.standard_normal((R, R, 2))
    ref = np.linalg.lstsq(G, g.ravel(), rcond=None)[0].reshape(R, R)
    mine = reconstruct(g, "gradient", kind)
    np.testing.assert_allclose(mine - mine.mean(), ref - ref.mean(), atol=1e-11)


def test_the_laplacian_is_inverted_up_to_a_constant():
    img = np.random.default_rng(1).standard_normal((R, R))
    mine = reconstruct((ndi.laplace(img) / H**2)[..., None], "laplacian", "central")
    np.testing.assert_allclose(mine - mine.mean(), img - img.mean(), atol=1e-11)


def test_a_run_recovers_the_image_from_its_own_measurement_model(tmp_path):
    cfg = compose_cfg(["pde=poisson", "solver=fd", "pde.resolution=64", "pde.sobel_smoothing=true"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["classical"] and metrics["steps"] == 1 and metrics["params"] == 64 * 64
    assert metrics["psnr"] > 80  # the Sobel operator inverted: the float32 targets' round-off


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match="solver=fd solves pde=poisson"):
        build(compose_cfg(["pde=plate", "solver=fd"]))
    with pytest.raises(ConfigError, match="pde.bc=none"):
        build(compose_cfg(["pde=poisson", "pde.bc=hard", "solver=fd"]))
    with pytest.raises(ConfigError, match="gradient: must be one of"):
        FiniteDifferences(gradient="forward")
