"""The L-shaped domain (pde=lshape): its exact solution as stated in config, and what solves it."""
import numpy as np
import pytest
import torch

from dinf.app.run import build
from dinf.errors import ConfigError
from tests.helpers import compose_cfg


def _exact(x: np.ndarray) -> np.ndarray:
    """r^(2/3) sin(2θ/3), θ ∈ [0, 2π) from the positive x axis (the domain holds θ ≤ 3π/2)."""
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    return np.hypot(x[:, 0], x[:, 1]) ** (2 / 3) * np.sin(2 * theta / 3)


def test_the_config_states_the_corner_solution_continuously_over_the_domain():
    problem, _, _ = build(compose_cfg(["pde=lshape", "solver=least_squares", "grid.levels=1"]))
    x = problem.sample(4096, torch.Generator().manual_seed(0)).x.double()  # interior and boundary points
    assert not bool(((x[:, 0] > 1e-9) & (x[:, 1] < -1e-9)).any())  # none in the removed quadrant
    got = problem.reference.exact_values(x)[:, 0].numpy()
    assert np.allclose(got, _exact(x.numpy()), atol=1e-12)
    # Across y = 0 for x < 0 (where atan2(y, x) jumps) the value is continuous ...
    side = torch.tensor([[-0.5, 1e-12], [-0.5, -1e-12]], dtype=torch.float64)
    above, below = problem.reference.exact_values(side)[:, 0]
    assert abs(float(above - below)) < 1e-9
    # ... and it is zero on the two edges that meet at the re-entrant corner.
    edges = torch.tensor([[0.3, 0.0], [1.0, 0.0], [0.0, -0.3], [0.0, -1.0]], dtype=torch.float64)
    assert float(problem.reference.exact_values(edges).abs().max()) < 1e-12


def test_least_squares_solves_it_and_fem_refuses_its_square_hole(tmp_path):
    from dinf.app.run import train

    results = train(compose_cfg(["pde=lshape", "grid.resolution=[16,16]"]), output_dir=str(tmp_path))
    assert results["final"]["l2re"] < 2e-2  # 9.0e-3 absolute L2 at 16 cells (experiments/lshape.py)
    with pytest.raises(ConfigError, match="holes.quadrant is a"):
        build(compose_cfg(["pde=lshape", "solver=fem"]))
