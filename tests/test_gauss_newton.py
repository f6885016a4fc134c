"""Gauss–Newton: its Jacobian, its jets, one step on linear problems, descent on nonlinear ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.fields.mapped import MappedField
from dinf.gauss_newton import GaussNewton
from dinf.lsq import LeastSquares, read_back
from dinf.pdes.equation_problem import EquationProblem
from dinf.run import build, train
from tests.helpers import compose_cfg

BURGERS = dict(unknowns=["u"], domain={"space": {"x": [-1, 1]}, "time": {"t": [0, 1]}},
               params={"nu": 0.05}, residuals={"pde": "u_t + u*u_x - nu*u_xx"},
               conditions={"ic": {"type": "initial", "value": "-sin(pi*x)", "weight": 10, "points": 64},
                           "walls": {"type": "dirichlet", "piece": "box", "value": 0, "weight": 10, "points": 64}},
               evaluation={"resolution": 33, "times": 9}, batch_size=512)


def _field(res=(16, 8), levels=2, out_dim=1, bounds=((-1.0, 1.0), (0.0, 1.0))):
    torch.manual_seed(0)
    inner = DInfGrid(in_dim=2, out_dim=out_dim, resolution=list(res), levels=levels, features=max(2, out_dim))
    return MappedField(inner, bounds).double()


def _residuals(state, z):
    jet = state.jet_at(z)
    return state.linearize(jet).residual(jet).reshape(-1).numpy()


@pytest.mark.parametrize("kind", ["soft", "hard", "periodic"])
def test_jacobian_equals_finite_differences_of_the_residuals(kind):
    spec = dict(BURGERS)
    if kind == "hard":
        spec["conditions"] = {"ic": {"type": "initial", "value": "-sin(pi*x)", "hard": True},
                              "walls": {"type": "dirichlet", "piece": "box", "value": 0, "hard": True}}
    if kind == "periodic":
        spec["conditions"] = {"ic": {"type": "initial", "value": "-sin(pi*x)", "points": 64},
                              "per": {"type": "periodic", "axis": "x", "points": 32}}
    p = EquationProblem(**spec)
    field = _field()
    gn = GaussNewton(points=256)
    st = gn._start(field, p, torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    z = 0.3 * rng.standard_normal(st.z.shape)
    A = st.jacobian(st.linearize(st.jet_at(z)))
    for _ in range(3):
        v = rng.standard_normal(z.shape)
        h = 1e-5
        fd = (_residuals(st, z + h * v) - _residuals(st, z - h * v)) / (2 * h)
        np.testing.assert_allclose(A @ v, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_jets_from_node_values_equal_the_fields_autograd_jets():
    """``E z`` (the entry matrix) against the field's own jet after writing ``z`` back."""
    p = EquationProblem(**BURGERS)
    field = _field()
    gn = GaussNewton(points=256)
    st = gn._start(field, p, torch.Generator().manual_seed(0))
    z = np.random.default_rng(1).standard_normal(st.z.shape)
    from dinf.lsq import write_back

    write_back(field, z, st.layout, np.array([0.25]))
    x = st.x.requires_grad_(True)
    u = field(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    uxx = torch.autograd.grad(g[:, 0].sum(), x)[0][:, 0]
    st.bias = np.array([0.25])
    jet = st.jet_at(z)
    torch.testing.assert_close(jet.value[:, 0], u.detach(), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(jet.grad[:, 0], g.detach(), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(jet.hess[:, 0, 0, 0], uxx, rtol=1e-9, atol=1e-9)
    z_back, bias = read_back(field)
    np.testing.assert_allclose(z_back, z, rtol=1e-12, atol=1e-12)
    assert bias[0] == pytest.approx(0.25)


def test_one_step_on_a_linear_problem_is_the_least_squares_solution():
    cfg = compose_cfg(["pde=poisson2d_c", "grid.levels=2", "pde.resolution=16"])
    problem, field = build(cfg)
    field = field.double()
    lsq = LeastSquares(points=2048, damping=1e-10, method="direct")
    lsq.solve(field, problem, torch.Generator().manual_seed(3))
    want = problem.predict(field, problem.eval_x)
    gn = GaussNewton(points=2048, damping=1e-10, lm=0.0, method="direct")
    field.inner.grids[0].data.normal_()  # the cold start ignores what the field holds
    info = gn.solve(field, problem, torch.Generator().manual_seed(3))
    got = problem.predict(field, problem.eval_x)
    assert info["step"] == 1.0
    # The normal equations are nearly singular (damping 1e-10): the two solves agree to ~1e-7.
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert info["loss"] == pytest.approx(lsq.info["loss"], rel=1e-6)
    assert gn.solve(field, problem, torch.Generator())["converged"]  # nothing left to gain


def test_burgers_from_a_cold_start_descends_monotonically_to_a_small_error():
    p = EquationProblem(**BURGERS, reference={"exact": {"u": "0*x"}})
    field = _field(res=(32, 8))
    gn = GaussNewton(points=2048)
    losses = []
    for _ in range(8):
        info = gn.solve(field, p, torch.Generator().manual_seed(0))
        losses.append(info["loss"])
        if info["converged"]:
            break
    assert info["loss_zero"] > losses[0]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 1e-3 * info["loss_zero"], losses
    # The residual itself (not the loss on the drawn points) is small on a fresh grid of points.
    assert p.residual_rms(field, p.eval_x) < 0.05


def test_fields_without_a_linear_basis_are_refused_in_one_line():
    p = EquationProblem(**BURGERS)
    gn = GaussNewton()
    from dinf.fields import Siren

    with pytest.raises(ConfigError, match="Gauss-Newton needs a grid field with a basis, not Siren"):
        gn.check(Siren(in_dim=2, out_dim=1), p)
    inner = DInfGrid(in_dim=2, out_dim=1, resolution=8, levels=2, decoder="mlp")
    with pytest.raises(ConfigError, match="model.decoder: Gauss-Newton needs the linear decoder"):
        gn.check(inner, p)


def test_an_energy_without_residuals_is_refused(tmp_path):
    cfg = compose_cfg(["pde=cloth", "optimizer=gauss_newton"])
    with pytest.raises(ConfigError, match="Gauss-Newton needs a loss of squared residuals"):
        train(cfg, output_dir=str(tmp_path))


def test_a_run_logs_its_solves_and_stops_when_converged(tmp_path):
    cfg = compose_cfg(["pde=burgers1d", "optimizer=gauss_newton", "grid.levels=2", "pde.resolution=[32,8]",
                       "pde.params.nu=0.05", "optimizer.gauss_newton.points=2048", "trainer.max_steps=30",
                       "trainer.val_check_interval=1", "optimizer.gauss_newton.rtol=1e-3"])
    metrics = train(cfg, output_dir=str(tmp_path))
    steps = [h["step"] for h in metrics["history"]]
    assert steps[0] == 0 and 1 < metrics["steps"] < 30  # stopped by its tolerance
    assert metrics["history"][-1]["l2re"] < 0.5 * metrics["history"][1]["l2re"]


# --- Newton on energies (the cloth) ---------------------------------------------------------------
def _cloth(res=4, points=64):
    from dinf.newton import Newton, _EnergyState

    cfg = compose_cfg(["pde=cloth", "optimizer=newton", "grid.levels=1", f"grid.resolution={res}", "grid.features=3"])
    problem, field = build(cfg)
    field = field.double()
    st = _EnergyState(field, problem, points, torch.Generator().manual_seed(0), 1e-6)
    return problem, field, st, Newton


def test_cloth_energy_density_is_its_loss():
    problem, field, st, _ = _cloth()
    from dinf.pdes.base import Batch

    x = st.x
    jet = field.jet(x, 2)
    want = problem.loss(jet, Batch(x=x))["loss"]
    got = st.weight * problem.energy_density(jet, x).sum()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-12)


def test_energy_gradient_and_hessian_equal_autograd_in_the_node_values():
    problem, field, st, _ = _cloth()
    z = 0.05 * np.random.default_rng(0).standard_normal(st.z.shape)
    E = torch.as_tensor(st.nodes.entries.toarray())
    n, u = st.x.shape[0], len(st.nodes.used)

    def total(zt):  # the energy as a function of z, through E as a dense matrix
        return st.weight * problem.energy_density(st.nodes.jet_of((E @ zt).reshape(n, u)), st.x).sum()

    zt = torch.as_tensor(z)
    want_g = torch.autograd.functional.jacobian(total, zt)
    want_h = torch.autograd.functional.hessian(total, zt)
    g, H = st.point_derivatives(z)
    blocks = torch.block_diag(*H)  # [N·U, N·U]
    torch.testing.assert_close(E.t() @ g.reshape(-1), want_g, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(E.t() @ blocks @ E, want_h, rtol=1e-8, atol=1e-10)
    assert st.total(z) == pytest.approx(float(total(zt)), rel=1e-12)
    # The projected Hessian: each point's block with its negative eigenvalues set to zero.
    grad, A = st.derivatives(z)
    w, V = np.linalg.eigh(H.numpy())
    projected = np.einsum("nij,nj,nkj->nik", V, np.clip(w, 0, None), V)
    want_p = E.numpy().T @ torch.block_diag(*torch.as_tensor(projected)).numpy() @ E.numpy()
    np.testing.assert_allclose((A.T @ A).toarray(), want_p, rtol=1e-8, atol=1e-10 * np.abs(want_p).max())
    assert (w < -1e-12).any()  # the cloth's energy is not convex here: the projection did something


def test_newton_lowers_the_cloth_energy_every_step():
    problem, field, _, Newton = _cloth(res=8, points=1024)
    newton = Newton(cold_start=False)
    energies = [newton.solve(field, problem, torch.Generator().manual_seed(0))["loss"] for _ in range(5)]
    assert newton.info["loss_zero"] > energies[0]
    assert all(b < a for a, b in zip(energies, energies[1:])), energies
    assert problem.evaluate(field)["energy"] < 0.0  # the drape hangs below its flat start's energy (~0.75)


def test_newton_refuses_a_problem_without_an_energy():
    from dinf.newton import Newton

    with pytest.raises(ConfigError, match="Newton needs an energy density; EquationProblem states none"):
        Newton().check(_field(), EquationProblem(**BURGERS))
