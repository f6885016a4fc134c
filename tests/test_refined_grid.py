"""A refined grid (grid.adapt: h): finer levels over marked cells, their jets and basis, the points
in them, the loop in a run, resume, refusals."""
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from dinf.app.run import build, train
from dinf.fields.base import autograd_jet
from dinf.fields.dinf_grid import DInfGrid
from dinf.fields.mapped import MappedField
from dinf.fields.refined import RefinedField, dorfler, refined_field
from dinf.fields.warped import AxisFocus, WarpedField, sample_for
from dinf.solvers.least_squares import assemble, layout, read_back, write_back
from dinf.solvers.linalg.node_jets import basis_columns
from dinf.solvers.refining_grid import RefiningGrid
from dinf.linear_system import LinearSystem
from tests.helpers import assert_refused, compose_cfg, killed_in_cycle_two
from tests.test_moving_grid import LAYER

LAYER_RUN = ["solver=least_squares", "grid.levels=1", "trainer.max_time=null"]


def _cfg(overrides, spec=LAYER):
    cfg = compose_cfg(LAYER_RUN + list(overrides))
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(spec)
    return cfg


def _refined(d=2, rho=3, periodic=(), graded=False):
    """A 2-level grid on the box [0, 2] × [-1, 1] (mapped; ``graded``: its cells 4 times finer
    toward x = 0.5), refined twice, with random node values."""
    torch.manual_seed(0)
    grid = DInfGrid(d, 2, resolution=8, levels=2, features=2, rho=rho, eps=1.0, periodic=periodic).double()
    field = MappedField(RefinedField(grid), [[0.0, 2.0]] + [[-1.0, 1.0]] * (d - 1))
    if graded:
        field = WarpedField(field, {0: AxisFocus(0.0, 2.0, 0.5, 4.0)})
    r = refined_field(field)
    r.refine({0: np.array([0, 3 * 8 + 4, 63][: 8 ** d])})
    r.refine({0: np.array([1]), 1: r.leaves()[1][:2]})
    z, bias = read_back(field)
    write_back(field, np.random.default_rng(0).normal(size=z.shape), layout(field), bias)
    return field, r


def _points(n, d=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1
    x[:, 0] += 1.0
    return x


def test_refining_leaves_the_field_exactly_as_it_was():
    torch.manual_seed(0)
    grid = DInfGrid(2, 1, resolution=8, levels=2, features=1, rho=3).double()
    field = MappedField(RefinedField(grid), [[0.0, 2.0], [-1.0, 1.0]])
    x = _points(400)
    before = field.jet(x, 2)
    r = refined_field(field)
    assert r.refine({0: np.array([5, 40])}) == 2 and field.levels == 3
    z, bias = read_back(field)
    write_back(field, z + np.random.default_rng(1).normal(size=z.shape), layout(field), bias)
    before = field.jet(x, 2)
    r.refine({0: np.array([7]), 1: r.leaves()[1][:3]})  # a leaf of each level split
    after = field.jet(x, 2)
    assert field.levels == 4 and r.refined == 2
    for a, b in zip(before.entries().unbind(-1), after.entries().unbind(-1)):
        assert torch.equal(a, b)  # the split adds unknowns, not a change: bit for bit the same


@pytest.mark.parametrize("periodic, graded", [((), False), ((1,), False), ((), True)])
def test_a_refined_fields_jets_match_float64_autograd(periodic, graded):
    field, _ = _refined(periodic=periodic, graded=graded)
    x = _points(300)
    order = 2 if graded else 3  # a graded field's chain rule stops at the second derivative
    jet = field.jet(x, order)
    ref = autograd_jet(field, x, order)  # through forward: the patches' weights by autograd in x
    for name in ("value", "grad", "hess", "higher")[:order + 1]:
        a, b = getattr(jet, name), getattr(ref, name)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.detach().abs().max())), name


@pytest.mark.parametrize("graded", [False, True])
def test_the_basis_gives_the_field_and_the_solvers_columns_agree(graded):
    field, r = _refined(graded=graded)
    x = _points(500)
    with torch.no_grad():
        jet = field.jet(x, 2)
    z, bias = read_back(field)
    cols, w = basis_columns(field, x, 2)  # Gauss–Newton's layout
    n = layout(field).nodes
    assert n == sum(r.level_sizes()) and len(z) == 2 * n
    for c in range(2):
        zc = torch.as_tensor(z[c * n:(c + 1) * n])
        entries = (w * zc[cols][:, None, :]).sum(-1) + torch.nn.functional.pad(torch.tensor([bias[c]]), (0, w.shape[1] - 1))
        assert torch.allclose(entries, jet.entries()[:, c], atol=1e-12)
    # least squares' assembly of the value rows: A z is the field
    coef = torch.eye(2, dtype=torch.float64).reshape(1, 2, 2, 1).expand(len(x), 2, 2, 1)
    A = assemble(field, LinearSystem(x, coef, torch.zeros(len(x), 2, dtype=torch.float64))).matrix
    assert np.allclose((A @ z).reshape(-1, 2) + bias, jet.value.numpy(), atol=1e-12)
    # a finer level's columns are its active nodes only, and a point far from its cells reads none of them
    if graded:  # the rows' derivatives: the chain rule through the grading
        coef = torch.zeros(len(x), 1, 2, 7, dtype=torch.float64)  # value, gradient, Hessian (2 × 2)
        coef[:, 0, 0, 1], coef[:, 0, 1, 6] = 1.0, 1.0  # u_x + v_yy
        A = assemble(field, LinearSystem(x, coef, torch.zeros(len(x), 1, dtype=torch.float64))).matrix
        assert np.allclose(A @ z, (jet.grad[:, 0, 0] + jet.hess[:, 1, 1, 1]).numpy(), atol=1e-9)
        return
    far = torch.tensor([[1.9, 0.9]], dtype=torch.float64)
    rows, c, _ = r.level_rows(field.unit(far), r.inner.levels + 1, 0)
    assert len(rows) == 0


def test_the_leaves_tile_the_box_and_the_marking_is_dorflers():
    _, r = _refined()
    area = sum(len(ids) / np.prod(r.leaf_cells(ell)) for ell, ids in enumerate(r.leaves()))
    assert area == pytest.approx(1.0)
    etas = [(np.array([0, 1, 2]), np.array([3.0, 1.0, 1.0])), (np.array([4, 9]), np.array([2.0, 0.5]))]
    # η² = 9, 1, 1, 4, 0.25 (15.25): θ = 0.5 takes 9; θ = 0.8 takes 9 + 4 = 13 ≥ 12.2
    assert {k: v.tolist() for k, v in dorfler(etas, 0.5).items()} == {0: [0]}
    assert {k: v.tolist() for k, v in dorfler(etas, 0.8).items()} == {0: [0], 1: [4]}
    assert {k: v.tolist() for k, v in dorfler(etas, 0.9, levels=1).items()} == {0: [0, 1]}  # of 11: level 1 cannot split


@pytest.mark.parametrize("focus", [[], ["grid.focus={x: {at: 0.0, ratio: 4}}"]])
def test_points_crowd_the_finer_cells_and_the_loss_stays_an_integral(focus):
    cfg = compose_cfg(["pde=lshape", "solver=least_squares", "grid.levels=1", "grid.resolution=[16,16]",
                       "grid.adapt=h"] + focus, tiny=False)
    problem, field, _ = build(cfg)
    field.double()  # the loss and the rows compared to round-off in float64
    r = refined_field(field)
    r.refine({0: np.array([8 * 16 + 7])})  # a cell at the corner (x just below 0, y just above)
    r.refine({1: r.leaves()[1][:1]})
    batch = sample_for(field, problem, 16 * 256, torch.Generator().manual_seed(0))
    w, sizes = batch.data["weights"], batch.data["sizes"].tolist()
    assert len(w) == sum(sizes) > 16 * 256
    start = 0
    for size in sizes:  # each block's weights have mean 1
        assert float(w[start:start + size].mean()) == pytest.approx(1.0)
        start += size
    x = batch.data["x64"][:sizes[0]]
    if focus:  # graded: the cells (and so the refined ones) in the field's even coordinates
        assert isinstance(field, WarpedField)
        x = x.clone()
        x[:, 0] = field.axes[0](x[:, 0])[0]
    corner = (x[:, 0] > -0.125) & (x[:, 0] < 0) & (x[:, 1] > 0) & (x[:, 1] < 0.125)  # the cell split first
    assert int(corner.sum()) >= 4 * 16  # its 4 children's 16 a cell (the grid's own 16 besides)
    near = (x.abs().max(1).values < 0.05)
    assert float(w[:sizes[0]][near].mean()) < 0.5 * float(w[:sizes[0]][~near].mean())
    # the rows least squares solves weigh each point as the loss does
    jet = field.jet(batch.data["x64"].double(), 2)
    system = problem.linear_system(batch)
    assert float(system.loss(jet)) == pytest.approx(float(problem.loss(jet, batch)["loss"]), rel=1e-10)


def test_the_refined_grid_finds_the_layer_with_fewer_unknowns_than_uniform_cells(tmp_path):
    uniform = train(_cfg(["grid.resolution=128"]), output_dir=str(tmp_path / "uniform"))
    refined = train(_cfg(["grid.adapt=h", "grid.refine.cycles=5"]), output_dir=str(tmp_path / "refined"))
    rows = refined["adaptation"]  # the report: one row per solve, with the run's metric at its step
    assert [r["cycle"] for r in rows] == [1, 2, 3, 4, 5]
    unknowns = [r["unknowns"] for r in rows]
    assert all(b > a for a, b in zip(unknowns, unknowns[1:])) and unknowns[-1] < 2 * (128 + 1)
    assert rows[-1]["l2re"] == pytest.approx(refined["final"]["l2re"]) and rows[-1]["l2re"] < rows[0]["l2re"] / 10
    assert (tmp_path / "refined" / "adaptation.png").exists()
    data = np.load(tmp_path / "refined" / "indicator.npz")  # the final indicator, on the leaves
    levels = int(data["levels"])
    assert levels >= 2 and sum(len(data[f"ids_{ell}"]) / int(data[f"cells_{ell}"][0]) for ell in range(levels)) == 1.0
    assert float(data["total"]) == pytest.approx(rows[-1]["eta"], rel=1e-9)  # the last cycle's, again
    saved = json.loads((tmp_path / "refined" / "metrics.json").read_text())
    assert saved["adaptation"] == rows
    # Measured 2026-12-07: uniform 128 cells 2.5e-2; refined from 32 cells 4.9e-3 on 74 unknowns.
    assert refined["final"]["l2re"] < uniform["final"]["l2re"] / 4


def test_a_resumed_run_continues_on_the_refined_grid_it_had_reached(tmp_path, monkeypatch):
    cfg = _cfg(["grid.adapt=h", "grid.refine.cycles=3", "checkpoint.registry=null"])
    state = killed_in_cycle_two(monkeypatch, RefiningGrid, cfg, tmp_path)  # after cycle 1's split, before cycle 2's
    assert state["cycle"] == 2 and len(state["cells"]) == 1 and state["cells"][0]
    seen = {}
    real_load = RefiningGrid.load_state

    def load(self, s):
        real_load(self, s)
        seen["cells"] = [c.tolist() for c in self.refined.cell_ids]
        seen["cycle"] = self.cycle

    monkeypatch.setattr(RefiningGrid, "load_state", load)
    results = train(cfg, output_dir=str(tmp_path))
    assert results["attempts"] == 2 and seen["cycle"] == 2 and seen["cells"] == state["cells"]
    assert json.loads((tmp_path / "metrics.json").read_text())["final"]["l2re"] < 0.1  # 0.56 uniform


def test_gauss_newton_solves_a_linear_problem_on_a_refined_grid_as_least_squares_does():
    losses = {}
    for solver in ("least_squares", "gauss_newton"):
        problem, field, refiner = build(_cfg([f"solver={solver}", "grid.adapt=h", "grid.refine.cycles=3"]))
        refiner.trainer_steps(compose_cfg([]).trainer)
        gen = torch.Generator().manual_seed(0)
        losses[solver] = []
        for _ in range(40):
            info = refiner.solve(field, problem, gen)
            if "indicator" in info:  # a cycle's end: the loss it reached on its grid
                losses[solver].append(info["loss"])
            if info["converged"]:
                break
    # Measured 2026-12-07: the two agree to 4e-6 at every cycle (Gauss–Newton's λ still damps a little).
    assert len(losses["gauss_newton"]) == 3
    assert np.allclose(losses["gauss_newton"], losses["least_squares"], rtol=1e-4)


@pytest.mark.parametrize("overrides, key, words", [
    (["grid.adapt=rh", "model=siren"], "grid.adapt", "rh adds finer levels to a ∂∞-Grid"),
    (["grid.adapt=h", "model=siren"], "grid.adapt", "not to Siren"),
    (["grid.adapt=h", "model=linear_grid"], "grid.adapt", "not to LinearGrid"),
    (["grid.adapt=h", "solver=adam"], "grid.adapt", "solver=gauss_newton or least_squares"),
    (["grid.adapt=h", "grid.refine.theta=0"], "grid.refine.theta", "must be in (0, 1]"),
    (["grid.adapt=h", "grid.refine.theta=1.5"], "grid.refine.theta", "must be in (0, 1]"),
    (["grid.adapt=h", "grid.refine.max_levels=0"], "grid.refine.max_levels", "must be >= 1"),
    (["grid.adapt=h", "grid.refine.cycles=0"], "grid.refine.cycles", "must be >= 1"),
])
def test_bad_refined_grids_are_refused_in_one_line(overrides, key, words):
    assert_refused(_cfg(overrides), key, words)


@pytest.mark.parametrize("mode", ["r", "h", "rh"])
def test_a_problem_written_as_a_class_is_refused_in_one_line(mode):
    assert_refused(compose_cfg(["pde=helmholtz", f"grid.adapt={mode}"]), "grid.adapt", "HelmholtzPML is not")


def test_an_error_spread_over_the_domain_splits_no_cell():
    smooth = dict(LAYER, params={"d": 1.0})  # u = tanh(x): nothing local to find
    problem, field, refiner = build(_cfg(["grid.adapt=h"], spec=smooth))
    info = refiner.solve(field, problem, torch.Generator().manual_seed(0))
    assert info["converged"] and refined_field(field).refined == 0  # one solve, as without grid.adapt
    assert refiner.history[0]["split"] == 0


def test_rh_moves_the_cells_then_splits_the_moved_ones(tmp_path):
    moving = ["grid.moving.smoothing=2", "grid.moving.cycles=1", "grid.moving.coarsen=2"]
    moved = train(_cfg(["grid.adapt=r"] + moving), output_dir=str(tmp_path / "r"))
    problem, field, solver = build(_cfg(["grid.adapt=rh", "grid.refine.cycles=3"] + moving))
    assert isinstance(field, WarpedField) and solver.mover is not None and "moving, then refined" in solver.name
    both = train(_cfg(["grid.adapt=rh", "grid.refine.cycles=3"] + moving), output_dir=str(tmp_path / "rh"))
    rows = both["adaptation"]
    assert rows[0]["cycle"] == 1 and rows[0]["unknowns"] < rows[-1]["unknowns"]  # the moved grid, then splits
    assert rows[0]["l2re"] == pytest.approx(moved["final"]["l2re"], rel=1e-6)  # cycle 1 is the moving grid's run
    assert both["final"]["l2re"] < moved["final"]["l2re"] / 2
    data = np.load(tmp_path / "rh" / "indicator.npz")  # the leaves, on the moved cells: they tile the box
    assert int(data["levels"]) >= 2


def test_a_split_that_raises_the_estimate_brings_the_last_grid_back(monkeypatch):
    problem, field, refiner = build(_cfg(["grid.adapt=h", "grid.refine.cycles=4"]))
    refiner.trainer_steps(compose_cfg([]).trainer)
    etas = iter([1.0, 0.8, 5.0])  # the second split makes η jump above RISE × the last (0.8)
    import dinf.solvers.refining_grid as module

    real = module.leaf_indicator

    def rising(*args, **kwargs):
        found = real(*args, **kwargs)
        total = next(etas)
        return [(ids, eta / max(module.leaf_total(found), 1e-300) * total, eq) for ids, eta, eq in found]

    monkeypatch.setattr(module, "leaf_indicator", rising)
    gen, x = torch.Generator().manual_seed(0), torch.linspace(-1, 1, 301, dtype=torch.float64)[:, None]
    kept = {}
    for cycle in range(3):
        info = refiner.solve(field, problem, gen)
        if cycle == 0:  # the grid the second solve is on (the lowest η)
            kept["cells"] = refined_field(field).state()
        if cycle == 1:  # its solution (the split after it leaves the field as it is)
            kept["values"] = field(x.to(torch.float32)).detach().clone()
    assert info["converged"] and info["indicator"] == pytest.approx(0.8)
    assert refined_field(field).state() == kept["cells"] and torch.equal(field(x.to(torch.float32)), kept["values"])
    assert [h.get("rejected", False) for h in refiner.history] == [False, False, True]


def test_a_resumed_rh_run_keeps_its_moved_cells(tmp_path, monkeypatch):
    cfg = _cfg(["grid.adapt=rh", "grid.refine.cycles=3", "grid.moving.cycles=1", "grid.moving.coarsen=2",
                "checkpoint.registry=null"])
    state = killed_in_cycle_two(monkeypatch, RefiningGrid, cfg, tmp_path)
    assert state["moved"] and state["cycle"] == 2 and state["mover"]["maps"]
    seen = {}
    real_load = RefiningGrid.load_state

    def load(self, s):
        real_load(self, s)
        seen["centres"] = self.mover.field.axes[0].s.tolist()

    monkeypatch.setattr(RefiningGrid, "load_state", load)
    results = train(cfg, output_dir=str(tmp_path))
    assert results["attempts"] == 2 and seen["centres"] == state["mover"]["maps"][0]["centres"]
