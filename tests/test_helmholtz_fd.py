"""solver=fd on Helmholtz: the stencil is the PML operator, the orders are the schemes', the PML
problem converges to the Hankel reference, and bad settings are refused in one line."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dinf.solvers.classical import helmholtz_fd
from dinf.solvers.classical.fd import FiniteDifferences
from dinf.errors import ConfigError
from dinf.pdes import HelmholtzManufactured, HelmholtzPML
from dinf.app.run import build, train
from dinf.solvers.linalg.sparse_solve import pardiso_available
from tests.helpers import compose_cfg

W = (3.0, -2.0)


def _test_jet(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(1 − x²)(1 − y²) exp(i(3x − 2y))`` (zero on the boundary) and its jet entries
    ``(u, u_x, u_y, u_xx, u_xy, u_yx, u_yy)`` ``[N, 7]``."""
    e = np.exp(1j * (W[0] * x + W[1] * y))
    px, py = 1 - x**2, 1 - y**2
    dx, dy = -2 * x + 1j * W[0] * px, -2 * y + 1j * W[1] * py
    dxx = -2 - 4j * W[0] * x - W[0] ** 2 * px
    dyy = -2 - 4j * W[1] * y - W[1] ** 2 * py
    return np.stack([px * py, dx * py, px * dy, dxx * py, dx * dy, dx * dy, px * dyy], -1) * e[:, None]


def _order(errors) -> np.ndarray:
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def test_the_stencil_is_the_pml_operator():
    # K u at the nodes against the problem's Σ k_a ∂_a u: second order except on the lines next to
    # the layer's inner edge, where e'' jumps (s ∝ d²) and the flux form is first order.
    problem = HelmholtzPML(wavenumber=20.0, resolution=8)
    away, near = [], []
    for n in (64, 128):
        x = helmholtz_fd.nodes(n)[1:-1]
        X, Y = (a.ravel() for a in np.meshgrid(x, x, indexing="ij"))
        jet = _test_jet(X, Y)
        k, _ = problem.operator(torch.as_tensor(np.stack([X, Y], 1)))
        K, _, symmetric = helmholtz_fd.assemble(problem, n, order=2)
        err = np.abs(K @ jet[:, 0] - (k.numpy() * jet).sum(-1))
        edge = (np.abs(np.abs(X) - 0.5) < 1.5 * 2 / n) | (np.abs(np.abs(Y) - 0.5) < 1.5 * 2 / n)
        away.append(err[~edge].max())
        near.append(err[edge].max())
        assert symmetric and abs(K - K.T).max() == 0  # complex symmetric: the flux form
    assert abs(_order(away)[0] - 2) < 0.1
    assert abs(_order(near)[0] - 1) < 0.1


@pytest.mark.parametrize("order", [2, 4])
def test_the_manufactured_problem_converges_at_the_schemes_order(order):
    problem = HelmholtzManufactured(a=2.0, k=4.0, resolution=64)
    sizes = [16, 32, 64] if order == 2 else [32, 64, 128]
    fd = FiniteDifferences(n=list(reversed(sizes)), order=order)  # solved coarse to fine whatever the order given
    field = fd.result_field()
    fd.check(field, problem)
    errors = []
    for n in sizes:
        info = fd.solve(field, problem)
        assert info["n"] == n and info["loss"] < 1e-12 and info["converged"] == (n == sizes[-1])
        errors.append(problem.evaluate(field)["rel_l2"])
    assert abs(_order(errors)[-1] - order) < (0.1 if order == 2 else 0.35), errors


def test_the_pml_error_falls_under_refinement_in_a_run(tmp_path, monkeypatch):
    # k = 20 against the Hankel reference; one run solves the three sizes, each timed alone.
    monkeypatch.setattr(HelmholtzPML, "pictures", lambda self, field: {})  # seconds of matplotlib
    cfg = compose_cfg(["pde=helmholtz", "solver=fd", "solver.n=[32,64,128]", "pde.resolution=32"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["classical"] and metrics["steps"] == 3 and metrics["params"] == 2 * 127**2
    core = [h["rel_l2_core"] for h in metrics["history"][1:]]
    assert core[0] > 4 * core[1] > 16 * core[2] and core[2] < 0.03, core
    times = [h["train_time_s"] for h in metrics["history"][1:]]
    assert all(0 < t < 10 for t in times)


def test_the_singular_source_model_solves_for_the_smooth_remainder():
    # The field is u − u_s; the problem adds u_s when probing, so the core converges as well.
    pytest.importorskip("dinf.pdes.point_source")
    problem = HelmholtzPML(wavenumber=20.0, resolution=32, source_model="singular")
    fd = FiniteDifferences(out_dim=2, n=[64, 128], order=4)
    field = fd.result_field()
    fd.check(field, problem)
    errors = [(fd.solve(field, problem), problem.evaluate(field)["rel_l2"])[1] for _ in range(2)]
    assert errors[0] > 3 * errors[1] and errors[1] < 0.01, errors


def test_the_gaussian_source_keeps_its_mass_and_variance():
    problem = HelmholtzPML(resolution=8, source_center=(0.013, -0.2))
    for n in (16, 40, 256):
        x, h = helmholtz_fd.nodes(n), 2.0 / n
        for exact in (False, True):
            f = helmholtz_fd.gaussian_source(problem, x, exact_variance=exact)
            assert f.sum() * h**2 == pytest.approx(1 + 1j, rel=1e-12)
        mu = helmholtz_fd.cell_masses(x, 0.013, 1e-4, exact_variance=True)
        assert np.sum(mu * (x - 0.013) ** 2) == pytest.approx(1e-4, rel=1e-9)


@pytest.mark.skipif(not pardiso_available(), reason="needs pypardiso")
@pytest.mark.parametrize("order", [2, 4])
def test_pardiso_block_forms_agree_with_complex_lu(order):
    K, b, symmetric = helmholtz_fd.assemble(HelmholtzPML(resolution=8), 32, order)
    assert symmetric == (order == 2)
    u = helmholtz_fd.solve(K, b, symmetric, "superlu")
    v = helmholtz_fd.solve(K, b, symmetric, "pardiso")
    assert np.iscomplexobj(v) and np.abs(u - v).max() < 1e-10 * np.abs(u).max()


def test_refusals_are_one_line():
    cases = [
        (lambda: build(compose_cfg(["pde=helmholtz_manufactured_eq", "solver=fd"])), "solver: solver=fd solves pde=poisson"),
        (lambda: build(compose_cfg(["pde=poisson", "solver=fd", "solver.n=[64,128]"])), "solver.n: Poisson images are solved once"),
        (lambda: build(compose_cfg(["pde=helmholtz", "solver=fd", "solver.n=2"])), "solver.n: must be an integer >= 4"),
        (lambda: FiniteDifferences(order=3), r"order: must be one of \(2, 4\)"),
        (lambda: FiniteDifferences(n=[]), "n: must be an integer >= 4"),
        (lambda: FiniteDifferences(backend="umfpack"), "backend: 'umfpack' is not one of"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigError, match=message) as e:
            make()
        assert "\n" not in str(e.value)
