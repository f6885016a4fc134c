"""Gauss–Newton: its Jacobian, its jets, one step on linear problems, descent on nonlinear ones."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.fields.mapped import MappedField
from dinf.solvers.gauss_newton import GaussNewton
from dinf.solvers.least_squares import LeastSquares, read_back
from dinf.pdes.equation_problem import EquationProblem
from dinf.app.run import build, train
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
    from dinf.solvers.least_squares import write_back

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
    # ρ = 3 (the problem's best is 5): the kernel specialisation of tests/test_fields.py's grids
    cfg = compose_cfg(["pde=poisson2d_c", "grid.levels=2", "pde.resolution=16", "kernel.rho=3"])
    problem, field, _ = build(cfg)
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

    with pytest.raises(ConfigError, match=r"Gauss-Newton needs a grid field with a basis \(model=dinf\), not Siren"):
        gn.check(Siren(in_dim=2, out_dim=1), p)
    inner = DInfGrid(in_dim=2, out_dim=1, resolution=8, levels=2, decoder="mlp")
    with pytest.raises(ConfigError, match="model.decoder: Gauss-Newton needs the linear decoder"):
        gn.check(inner, p)


def test_an_energy_without_residuals_is_refused(tmp_path):
    cfg = compose_cfg(["pde=cloth", "solver=gauss_newton"])
    with pytest.raises(ConfigError, match="Gauss-Newton needs a loss of squared residuals"):
        train(cfg, output_dir=str(tmp_path))


def test_a_run_logs_its_solves_and_stops_when_converged(tmp_path):
    cfg = compose_cfg(["pde=burgers1d", "solver=gauss_newton", "grid.levels=2", "pde.resolution=[32,8]",
                       "pde.params.nu=0.05", "solver.points=2048", "trainer.max_steps=30",
                       "trainer.val_check_interval=1", "solver.rtol=1e-3"])
    metrics = train(cfg, output_dir=str(tmp_path))
    steps = [h["step"] for h in metrics["history"]]
    assert steps[0] == 0 and 1 < metrics["steps"] < 30  # stopped by its tolerance
    assert metrics["history"][-1]["l2re"] < 0.5 * metrics["history"][1]["l2re"]


# --- Newton on energies (the cloth) ---------------------------------------------------------------
class _EnergyOnly:
    """A problem's energy without its closed-form derivatives: Newton's autograd path."""

    closed_form_derivatives = False

    def __init__(self, problem):
        self.energy_density, self.energy_measure = problem.energy_density, problem.energy_measure
        self.jet_order, self.sample = problem.jet_order, problem.sample


def _cloth(res=4, points=64, quadrature=None, refine=1, autograd=False):
    from dinf.solvers.newton import Newton, _EnergyState

    cfg = compose_cfg(["pde=cloth", "solver=newton", "grid.levels=1", f"grid.resolution={res}", "grid.features=3"])
    problem, field, _ = build(cfg)
    field = field.double()
    newton = Newton(points=points, quadrature=quadrature, refine=refine)
    st = _EnergyState(field, _EnergyOnly(problem) if autograd else problem, newton, torch.Generator().manual_seed(0))
    return problem, field, st


def _dense_energy(problem, st):
    """The energy as a function of the node values, through ``E`` as a dense matrix."""
    E = torch.as_tensor(st.nodes.entries.toarray())
    n, u = st.x.shape[0], len(st.nodes.used)
    return lambda zt: (st.w * problem.energy_density(st.nodes.jet_of((E @ zt).reshape(n, u)), st.x)).sum()


def _upper_to_full(U):
    return U.toarray() + np.triu(U.toarray(), 1).T


def test_cloth_energy_density_is_its_loss():
    problem, field, st = _cloth()
    from dinf.pdes.base import Batch

    x = st.x
    jet = field.jet(x, 2)
    want = problem.loss(jet, Batch(x=x))["loss"]
    got = (st.w * problem.energy_density(jet, x)).sum()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-12)


@pytest.mark.parametrize("quadrature", [None, 2])
def test_energy_gradient_and_hessian_equal_autograd_in_the_node_values(quadrature):
    """The closed-form path (the cloth's energy_derivatives, unprojected) assembled by dense
    blocks per cell, against autograd of the energy as a function of the node values."""
    problem, field, st = _cloth(quadrature=quadrature)
    z = 0.05 * np.random.default_rng(0).standard_normal(st.z.shape)
    total = _dense_energy(problem, st)
    zt = torch.as_tensor(z)
    want_g = torch.autograd.functional.jacobian(total, zt)
    want_h = torch.autograd.functional.hessian(total, zt).numpy()
    g, H = problem.energy_derivatives(st.nodes.jet_of(st.nodes.values(z), st.bias), st.x, weight=st.w)
    g, H = g.reshape(st.x.shape[0], -1)[:, st.select], H.reshape(st.x.shape[0], 18, 18)[:, st.select][:, :, st.select]
    np.testing.assert_allclose(st.nodes.transpose(g.numpy()), want_g.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_upper_to_full(st.hessian.upper(H)), want_h, rtol=1e-8,
                               atol=1e-10 * np.abs(want_h).max())
    assert st.total(z) == pytest.approx(float(total(zt)), rel=1e-12)


def test_autograd_path_projects_each_points_hessian():
    """Without closed-form derivatives: autograd per point, negative eigenvalues set to zero."""
    problem, field, st = _cloth(autograd=True)
    z = 0.05 * np.random.default_rng(0).standard_normal(st.z.shape)
    values = st.nodes.values(z).requires_grad_(True)
    n, u = values.shape

    def energy(v):
        return (st.w * problem.energy_density(st.nodes.jet_of(v.reshape(n, u), st.bias), st.x)).sum()

    full = torch.autograd.functional.hessian(energy, values.detach().reshape(-1)).reshape(n, u, n, u)
    blocks = torch.stack([full[k, :, k] for k in range(n)]).numpy()  # the Hessian is block diagonal
    w, V = np.linalg.eigh(blocks)
    projected = np.einsum("nij,nj,nkj->nik", V, np.clip(w, 0, None), V)
    g, H, count = st.point_derivatives(z)
    np.testing.assert_allclose(H.numpy(), projected, rtol=1e-8, atol=1e-10 * np.abs(projected).max())
    assert count == int((w.min(axis=1) < -1e-12 * np.abs(w).max(axis=1)).sum()) > 0  # the energy is not convex here
    E = st.nodes.entries.toarray()
    want = E.T @ torch.block_diag(*torch.as_tensor(projected)).numpy() @ E
    np.testing.assert_allclose(_upper_to_full(st.hessian.upper(H)), want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("levels, used", [
    (1, None), (2, [[1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 0, 0, 1]])])
def test_grouped_hessian_and_basis_products_equal_the_matrix(levels, used):
    """``Eᵀ blockdiag(H) E`` by cells, ``E z`` and ``Eᵀ g`` from the basis, against ``E`` itself:
    random points (cells with different point counts), channels reading different entries."""
    from dinf.solvers.linalg.node_jets import GroupedHessian, NodeJets

    torch.manual_seed(0)
    field = DInfGrid(in_dim=2, out_dim=3, resolution=8, levels=levels, features=3).double()
    x = torch.rand(300, 2, dtype=torch.float64) * 2 - 1
    mask = torch.ones(3, 7, dtype=torch.bool) if used is None else torch.tensor(used, dtype=torch.bool)
    nodes = NodeJets(field, x, 2, mask, merge_twins=True)
    E = nodes.entries.toarray()
    rng = np.random.default_rng(0)
    z = rng.standard_normal(E.shape[1])
    g = rng.standard_normal((300, len(nodes.used)))
    np.testing.assert_allclose(nodes.values(z).numpy().reshape(-1), E @ z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nodes.transpose(g), E.T @ g.reshape(-1), rtol=1e-12, atol=1e-11)
    H = torch.as_tensor(rng.standard_normal((300, len(nodes.used), len(nodes.used))))
    H = H + H.transpose(1, 2)
    U = GroupedHessian(nodes).upper(H)
    assert U.has_sorted_indices and (U.diagonal() == U.data[U.indptr[:-1]]).all()
    want = E.T @ torch.block_diag(*H).numpy() @ E
    np.testing.assert_allclose(_upper_to_full(U), want, rtol=1e-11, atol=1e-11 * np.abs(want).max())


@pytest.mark.parametrize("order, split", [(1, 1), (2, 1), (3, 1), (4, 2)])
def test_cell_quadrature_integrates_polynomials_exactly(order, split):
    from dinf.fields.mapped import MappedField
    from dinf.solvers.newton import cell_quadrature

    inner = DInfGrid(in_dim=2, out_dim=1, resolution=[4, 3], levels=1, features=2)
    boxed = MappedField(inner, [[0.0, 2.0], [1.0, 1.5]])
    for field, lo, hi in ((inner, (-1.0, -1.0), (1.0, 1.0)), (boxed, (0.0, 1.0), (2.0, 1.5))):
        x, w, cell = cell_quadrature(field, order, split)
        assert x.shape[0] == 12 * (order * split) ** 2 and cell.max() == 11
        assert float(w.sum()) == pytest.approx(1.0, rel=1e-14)
        for a in range(2 * order):
            for b in range(2 * order):
                # Exact per cell up to degree 2·order − 1 per axis: so on the box, as fractions of it.
                ix = (hi[0] ** (a + 1) - lo[0] ** (a + 1)) / (a + 1)
                iy = (hi[1] ** (b + 1) - lo[1] ** (b + 1)) / (b + 1)
                exact = ix * iy / ((hi[0] - lo[0]) * (hi[1] - lo[1]))
                assert float((w * x[:, 0] ** a * x[:, 1] ** b).sum()) == pytest.approx(exact, rel=1e-12, abs=1e-14)


def test_refined_quadrature_splits_the_cells_at_the_pulled_corners():
    from dinf.solvers.newton import cell_quadrature, refined_quadrature

    cfg = compose_cfg(["pde=cloth", "grid.levels=1", "grid.resolution=8", "grid.features=3"])
    problem, field, _ = build(cfg)
    x, w = refined_quadrature(field, problem, 3, 4, 1e-4, cold=True)
    plain, _, _ = cell_quadrature(field, 3)
    assert x.shape[0] > plain.shape[0]
    assert float(w.sum()) == pytest.approx(1.0, rel=1e-13)
    assert float((w * x[:, 0] ** 5 * x[:, 1] ** 4).sum()) == pytest.approx(0.0, abs=1e-15)  # still exact
    assert float((w * x[:, 0] ** 4 * x[:, 1] ** 2).sum()) == pytest.approx(1 / 15, rel=1e-12)
    # The split cells are those at the two pulled corners (x = ±1, y = 1).
    cell = ((x + 1) / 2 * 8).floor().long()
    cells, counts = torch.unique(cell[:, 0] * 8 + cell[:, 1], return_counts=True)
    split = torch.stack([cells[counts > 9] // 8, cells[counts > 9] % 8], 1)
    assert (split[:, 1] == 7).all() and ((split[:, 0] == 0) | (split[:, 0] == 7)).all()
    assert set(split[:, 0].tolist()) == {0, 7}


@pytest.mark.parametrize("quadrature", [None, 3])
def test_newton_lowers_the_cloth_energy_every_step(quadrature):
    from dinf.solvers.newton import Newton

    cfg = compose_cfg(["pde=cloth", "solver=newton", "grid.levels=1", "grid.resolution=8", "grid.features=3"])
    problem, field, _ = build(cfg)
    field = field.double()
    newton = Newton(points=1024, quadrature=quadrature, refine=4, cold_start=False)
    energies = [newton.solve(field, problem, torch.Generator().manual_seed(0))["loss"] for _ in range(5)]
    assert newton.info["loss_zero"] > energies[0]
    assert all(b < a for a, b in zip(energies, energies[1:])), energies
    assert problem.evaluate(field)["energy"] < 0.0  # the drape hangs below its flat start's energy (~0.75)


def test_spd_solver_keeps_its_analysis_for_new_values():
    """Two matrices with one pattern (PARDISO factorises the second on the first's analysis),
    and SuperLU, against dense solves."""
    from dinf.solvers.linalg.sparse_solve import PatternSolver
    from dinf.solvers.linalg.sparse_solve import pardiso_available

    rng = np.random.default_rng(0)
    A = sp.random(60, 60, density=0.1, random_state=0, format="csr")
    pattern = (A @ A.T + sp.identity(60)).tocsr()
    backends = ["superlu"] + (["pardiso"] if pardiso_available() else [])
    for backend in backends:
        solve = PatternSolver(backend)
        for k in range(2):
            M = pattern.copy()
            M.data = rng.standard_normal(M.nnz)
            M = (M @ M.T + 60 * sp.identity(60)).tocsr()  # SPD, the same pattern for both
            M = sp.csr_matrix((M.toarray() != 0) * M.toarray() + (pattern.toarray() != 0) * 0.0)
            upper = sp.triu(M, format="csr")
            upper.sort_indices()
            b = rng.standard_normal(60)
            np.testing.assert_allclose(solve(upper, b), np.linalg.solve(M.toarray(), b), rtol=1e-9, atol=1e-12)


def test_newton_refuses_a_problem_without_an_energy():
    from dinf.solvers.newton import Newton

    with pytest.raises(ConfigError, match="Newton needs an energy density; EquationProblem states none"):
        Newton().check(_field(), EquationProblem(**BURGERS))


@pytest.mark.parametrize("optimizer", ["newton", "gauss_newton"])
def test_warm_start_runs_its_adam_steps_then_solves(tmp_path, monkeypatch, optimizer):
    steps = []
    step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (steps.append(1), step(self, *a, **k))[1])
    if optimizer == "newton":
        overrides = ["pde=cloth", "grid.levels=1", "grid.resolution=8", "grid.features=3", "pde.batch_size=256",
                     "solver.quadrature=3", "solver.refine=4", "solver.cold_start=false"]
    else:
        overrides = ["pde=burgers1d", "grid.levels=2", "pde.resolution=[32,8]", "pde.params.nu=0.05",
                     "solver.points=2048"]
    cfg = compose_cfg(overrides + [f"solver={optimizer}", "solver.warm_start_steps=7",
                                   "trainer.max_steps=2", "trainer.val_check_interval=1"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert len(steps) == 7  # the warm start's, and no other Adam step
    assert metrics["steps"] == 2  # then the solves
    history = [h for h in metrics["history"]]
    key = "energy" if optimizer == "newton" else "l2re"
    assert history[-1][key] < history[0][key]
