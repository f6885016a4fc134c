"""Least squares: the grid's sparse basis, problems' linear systems, and the solve."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dinf.errors import ConfigError
from dinf.fields import DInfGrid
from dinf.solvers.least_squares import LeastSquares, assemble, linear_vector
from dinf.pdes import HelmholtzManufactured, HelmholtzPML, KirchhoffPlate, PoissonImage
from dinf.app.run import train
from tests.helpers import compose_cfg


@pytest.mark.parametrize("kernel,window", [("gaussian", 0.0), ("gaussian", 1.0), ("inverse_quadratic", 0.0)])
@pytest.mark.parametrize("edge", ["pad", "clamp"])
@pytest.mark.parametrize("d", [2, 3])
def test_basis_reproduces_the_feature_jets(kernel, window, edge, d):
    torch.manual_seed(0)
    g = DInfGrid(in_dim=d, resolution=8 if d == 3 else 16, levels=2, features=2, kernel=kernel, edge=edge,
                 rho=2 if d == 3 else 3, init_scale=1.0, backend="torch", window=window).double()
    x = torch.rand(40, d, dtype=torch.float64) * 2 - 1
    x[0], x[1] = -1.0, 1.0  # the domain's corners, where clamping and padding differ
    jet = g.features_jet(x, 2)
    for s in range(2):
        cols, w = g.basis(x, s, 2)
        out = torch.einsum("nak,nkf->nfa", w, g.grids[s].detach().reshape(-1, 2)[cols])
        sl = slice(2 * s, 2 * s + 2)
        torch.testing.assert_close(out[..., 0], jet.value[:, sl].detach())
        torch.testing.assert_close(out[..., 1 : 1 + d], jet.grad[:, sl].detach())
        torch.testing.assert_close(out[..., 1 + d :], jet.hess[:, sl].detach().reshape(40, 2, d * d))


def _node_values(field: DInfGrid) -> np.ndarray:
    """The decoder folded into the node values: channel-major, level by level (bias must be 0)."""
    w = field.decoder.layer.weight.detach().double()
    f = field.features
    blocks = [torch.einsum("cf,nf->cn", w[:, s * f : (s + 1) * f], g.detach().double().reshape(-1, f))
              for s, g in enumerate(field.grids)]
    return torch.cat(blocks, 1).reshape(-1).numpy()


def _problems():
    return [
        PoissonImage(resolution=16, supervision="gradient"),
        PoissonImage(resolution=16, supervision="laplacian"),
        HelmholtzPML(resolution=8, source_sigma=1e-2, source_weight=1.0),
        HelmholtzManufactured(a=2, resolution=8, boundary_points=64),
        PoissonImage(resolution=16, supervision="laplacian", bc="soft", bc_weight=3.0),
        PoissonImage(resolution=16, supervision="laplacian", bc="hard"),
        PoissonImage(resolution=16, supervision="gradient", bc="hard"),
        KirchhoffPlate(load="sine", poisson_ratio=0.25),
        KirchhoffPlate(bc="soft", bc_weight=7.0),
    ]


def _problem_id(p) -> str:
    return f"{type(p).__name__}-{getattr(p, 'supervision', '')}-{getattr(p, 'bc', '')}"


@pytest.mark.parametrize("problem", _problems(), ids=_problem_id)
def test_system_rows_square_to_the_problem_loss(problem):
    torch.manual_seed(0)
    field = DInfGrid(out_dim=problem.out_dim, resolution=16, levels=2, features=2, init_scale=1.0).double()
    with torch.no_grad():
        field.decoder.layer.bias.zero_()
    batch = problem.sample(300, torch.Generator().manual_seed(1))
    batch.x = batch.x.double()
    system = problem.linear_system(batch)
    want = float(problem.loss(field.jet(batch.x, problem.jet_order), batch)["loss"].detach())
    asm = assemble(field, system)
    z = _node_values(field)
    got = float(np.sum((asm.matrix @ z - asm.rhs) ** 2) - 2.0 * linear_vector(field, system) @ z)
    assert got == pytest.approx(want, rel=1e-9)
    assert float(system.loss(field.jet(batch.x, problem.jet_order))) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("method", ["direct", "cg", "lsqr"])
def test_solve_minimises_the_loss_it_reports(method):
    problem = HelmholtzPML(resolution=8, source_sigma=1e-2, wavenumber=5.0, source_weight=1.0)
    # 2 features: the kernel specialisation of tests/test_fields.py's grids (its backward in float64)
    field = DInfGrid(out_dim=2, resolution=16, levels=2, features=2)
    gen = torch.Generator().manual_seed(0)
    solver = LeastSquares(points=2000, method=method, maxiter=5000)
    info = solver.solve(field, problem, gen)
    assert info["loss"] < 1e-3 * info["loss_zero"]
    # The written-back field has that loss on the same points, and no direction lowers it.
    batch = problem.sample(2000, torch.Generator().manual_seed(0))
    field = field.double()
    batch.x = batch.x.double()
    loss = problem.loss(field.jet(batch.x, 2), batch)["loss"]
    assert float(loss) == pytest.approx(info["loss"], rel=1e-4)
    loss.backward()
    grads = torch.cat([g.grad.reshape(-1) for g in field.grids])
    step = 1e-3 * grads / grads.norm()
    with torch.no_grad():
        for g in field.grids:
            n = g.numel()
            g -= step[:n].reshape(g.shape)
            step = step[n:]
    assert float(problem.loss(field.jet(batch.x, 2), batch)["loss"]) >= float(loss) * (1 - 1e-6)


def test_manufactured_helmholtz_solves_to_high_accuracy():
    # A wide kernel (ε = 0.7) with a neighbourhood that does not truncate it (ρ = 5).
    problem = HelmholtzManufactured(a=2, resolution=32, boundary_points=256)
    field = DInfGrid(resolution=16, levels=1, eps=0.7, rho=5)
    LeastSquares().solve(field, problem, torch.Generator().manual_seed(0))
    assert problem.evaluate(field)["rel_l2"] < 1e-3


def test_lsq_run_end_to_end(tmp_path):
    cfg = compose_cfg(["solver=least_squares", "pde.resolution=16", "grid.resolution=16", "grid.levels=2"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["steps"] == 1 and metrics["history"][-1]["step"] == 1
    assert metrics["psnr"] > metrics["history"][0]["psnr"] + 6  # 12 -> 20 dB at 16² pixels
    assert metrics["train_loss"]["last"] < 1e-3 * metrics["train_loss"]["first"]
    assert (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("override, key", [
    (["model=siren"], "solver"),
    (["model.decoder=mlp"], "model.decoder"),
    (["solver.method=qr"], "solver.method"),
])
def test_lsq_refuses_what_it_cannot_solve(tmp_path, override, key):
    cfg = compose_cfg(["solver=least_squares", *override])
    with pytest.raises(ConfigError) as err:
        train(cfg, output_dir=str(tmp_path))
    assert str(err.value).startswith(key)


def test_auto_factorises_small_systems_and_iterates_on_large_ones(monkeypatch):
    import dinf.solvers.least_squares as lsq

    problem = HelmholtzManufactured(a=1, resolution=8, boundary_points=64)
    small = LeastSquares(points=512)
    small.solve(DInfGrid(resolution=8, levels=1), problem, torch.Generator().manual_seed(0))
    assert small.info["method"] == "direct"
    monkeypatch.setattr(lsq, "DIRECT_LIMIT", 10)
    large = LeastSquares(points=512)
    large.solve(DInfGrid(resolution=8, levels=1), problem, torch.Generator().manual_seed(0))
    assert large.info["method"] == "lsqr"


def test_a_solve_too_large_for_memory_is_refused_before_it_starts(monkeypatch):
    """The assembly and the normal matrix are estimated against the memory available: a solve
    that cannot fit stops in one line with its sizes and the keys that shrink it."""
    from dinf.solvers.linalg import sparse_solve

    problem = HelmholtzManufactured(a=1, resolution=8, boundary_points=64)
    field = DInfGrid(resolution=8, levels=1)
    monkeypatch.setattr(sparse_solve, "available_bytes", lambda: 1e6)  # 1 MB
    with pytest.raises(ConfigError) as info:
        LeastSquares(points=512, method="direct").solve(field, problem, torch.Generator().manual_seed(0))
    message = str(info.value)
    assert message.startswith("solver.method: least squares on ") and "GB are available" in message
    assert "grid.resolution" in message and "\n" not in message
    monkeypatch.setattr(sparse_solve, "available_bytes", lambda: 1e12)
    LeastSquares(points=512, method="direct").solve(field, problem, torch.Generator().manual_seed(0))  # fits
