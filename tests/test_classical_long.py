"""The classical baselines of PINNacle's long-time problems: solver=spectral (Fourier pseudo-spectral,
ETDRK4: KS and Gray–Scott) and solver=taylor_hood (Taylor–Hood P2/P1, SBDF2: NS2d-LT), and
solver=classical, which picks each problem's. They read the problem's coefficients and data from
its config, are fourth order in time (ETDRK4), reproduce the reference scripts' solves, probe their
own snapshots exactly at the snapshots' times and grid points and interpolate between them, refuse
other problems in one line, and run end to end through train.py as classical runs."""
from __future__ import annotations

import importlib.util
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dinf.app.run import build, train
from dinf.errors import ConfigError
from dinf.pdes.equation_problem import EquationProblem
from dinf.solvers.classical.etdrk4 import ETDRK4
from dinf.solvers.classical.spectral import EDGE_WARN, FourierSpectral, SpectralForm
from dinf.solvers.classical.taylor_hood import TaylorHood
from tests.helpers import compose_cfg

ROOT = Path(__file__).resolve().parents[1]


def _problem(pde, *overrides):
    """The problem of ``pde=<pde>`` with ``overrides`` (its best: block is for the other groups)."""
    spec = OmegaConf.to_container(compose_cfg([f"pde={pde}", *overrides]).pde, resolve=True)
    return instantiate({k: v for k, v in spec.items() if k != "best"})


NO_FILE = ["~pde.reference", "~pde.targets", "~pde.published", "pde.evaluation.resolution=9", "pde.evaluation.times=3"]


@lru_cache(maxsize=None)  # a problem holds no solver state: the tests share each one
def _ks(t1=0.1):
    return _problem("ks", f"pde.domain.time.t=[0,{t1}]")


@lru_cache(maxsize=None)
def _gs(t1=20):
    """Gray–Scott on t ∈ [0, t1], scored on a small grid (no file)."""
    return _problem("grayscott", f"pde.domain.time.t=[0,{t1}]", *NO_FILE)


@lru_cache(maxsize=None)
def _ns(t1=0.2):
    return _problem("ns2d_lt", f"pde.domain.time.t=[0,{t1}]")


def _solved(solver, problem):
    field = solver.result_field()
    solver.solve(field, problem)
    return field


def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_reference_for_classical", ROOT / "experiments" / "references" /
                                                  f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- solver=spectral ---------------------------------------------------------------------------


def test_the_ks_form_and_gray_scott_form_are_read_from_the_config():
    ks = SpectralForm(_ks())
    assert ks.kind == "ks" and ks.coef == pytest.approx({"alpha": 100 / 16, "beta": 100 / 16**2, "gamma": 100 / 16**4})
    assert ks.period[0] == pytest.approx(2 * math.pi) and (ks.t0, ks.t1) == (0.0, 0.1)
    gs = SpectralForm(_gs())
    assert gs.kind == "grayscott" and gs.species == ["u", "v"] and gs.channels == [0, 1]
    assert gs.coef == pytest.approx({"eps1": 1e-5, "eps2": 5e-6, "b": 0.04, "d": 0.1, "c": 1.0})
    assert list(gs.lo) == [-1, -1] and list(gs.period) == [2, 2] and len(gs.dirichlet) == 4


def test_gray_scott_species_are_told_apart_by_the_reaction_not_by_their_names():
    """The same system with the unknowns renamed and listed the other way round."""
    spec = dict(unknowns=["q", "p"], domain={"space": {"x": [-1, 1], "y": [-1, 1]}, "time": {"t": [0, 1]}},
                residuals={"one": "q_t - 2e-6*(q_xx + q_yy) + 0.3*q - p*q^2",
                           "two": "p_t - 1e-5*(p_xx + p_yy) - 0.05*(1 - p) + p*q^2"},
                conditions={"initial": {"type": "initial", "value": {"p": "1", "q": "exp(-80*(x^2 + y^2))"}},
                            "edges": {"type": "periodic", "axis": "x"}, "edges_y": {"type": "periodic", "axis": "y"}},
                evaluation={"resolution": 5, "times": 2}, batch_size=64)
    form = SpectralForm(EquationProblem(**spec))
    assert form.species == ["p", "q"] and form.channels == [1, 0]
    assert form.coef == pytest.approx({"eps1": 1e-5, "eps2": 2e-6, "b": 0.05, "d": 0.3, "c": 1.0})


def test_spectral_ks_is_the_reference_scripts_solve():
    """Same grid, same steps: the reference script's values at its output points and times."""
    ks = _script("ks")
    problem = _ks()
    solver = FourierSpectral(in_dim=2, n=128, steps=1600)
    field = _solved(solver, problem)
    times = [0.0, 0.05, 0.1]
    ref = ks.solve(128, 1600, times=times)["u"]  # [T, 256]
    x = ks.grid(ks.P_OUT)
    pts = torch.tensor([[xi, t] for t in times for xi in x], dtype=torch.float64)
    got = field(pts).numpy().reshape(len(times), -1)
    assert np.abs(got - ref).max() < 1e-12 * np.abs(ref).max()


def test_spectral_ks_is_fourth_order_in_time():
    """KS on t ∈ [0, 0.1], 64 points: 1600, 3200, 6400 steps per unit time against 51 200
    (orders 3.96, 3.98; at 128 points ETDRK4's order reduction shows at these steps: 3.2, 3.5)."""
    problem = _ks()

    def final(steps):
        solver = FourierSpectral(in_dim=2, n=64, steps=steps)
        _solved(solver, problem)
        return solver._u[0]

    fine = final(51200)
    errs = [_rel(final(s), fine) for s in (1600, 3200, 6400)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert ((orders > 3.7) & (orders < 4.3)).all(), (errs, orders)


def test_spectral_probe_gives_the_snapshots_at_grid_points_and_interpolates_between():
    """At a snapshot's time and the grid's points the probe is the stored state; midway between
    two steps it is the state a half step gives, to the scheme's own local error."""
    problem = _ks(0.05)
    solver = FourierSpectral(in_dim=2, n=64, steps=400)
    field = _solved(solver, problem)
    snaps, form = solver._snaps, solver._form
    x = form.grid(64)[0]
    for k in (0, 7, snaps.m):
        t = snaps.t0 + k * snaps.dt
        got = field(torch.tensor(np.stack([x, np.full_like(x, t)], 1)))[:, 0].numpy()
        assert np.abs(got - np.fft.irfft(snaps.states[k], 64)).max() < 1e-12
    L, N = form.operators(64)
    half = ETDRK4(L, snaps.dt / 2, N)
    for k in (0, 9, snaps.m - 1):
        t = snaps.t0 + (k + 0.5) * snaps.dt
        ref = np.fft.irfft(half.step(snaps.states[k]), 64)
        got = field(torch.tensor(np.stack([x, np.full_like(x, t)], 1)))[:, 0].numpy()
        assert _rel(got, ref) < 1e-6, (k, _rel(got, ref))
    off = torch.tensor([[0.123, 0.0314], [6.0, 0.05]], dtype=torch.float64)  # off the grid too
    assert field(off).shape == (2, 1) and bool(field(off).isfinite().all())


def test_spectral_gray_scott_is_fourth_order_in_time_and_probes_its_grid():
    problem = _gs()

    def run(steps):
        solver = FourierSpectral(in_dim=3, out_dim=2, n=32, steps=steps)
        field = _solved(solver, problem)
        return solver, field

    fine, field = run(32.0)  # t ∈ [0, 20] on 32²: h = 1, 1/2, 1/4 against 1/32 (orders 4.4, 4.1)
    errs = [_rel(run(s)[0]._u, fine._u) for s in (1.0, 2.0, 4.0)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert ((orders > 3.7) & (orders < 4.7)).all(), (errs, orders)
    form, snaps = fine._form, fine._snaps
    X, Y = np.meshgrid(*form.grid(32), indexing="ij")
    k = snaps.m // 2
    pts = np.stack([X.ravel(), Y.ravel(), np.full(X.size, snaps.t0 + k * snaps.dt)], 1)
    got = field(torch.tensor(pts)).numpy()
    want = form.grid_values(32, snaps.states[k]).reshape(2, -1).T
    assert np.abs(got - want).max() < 1e-12
    scattered = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (300, 3)) * [1, 1, 0] + [0, 0, 7.3])
    ref = torch.tensor(np.c_[scattered[:, :2].numpy(), np.full(300, 7.3)])
    assert torch.allclose(field(scattered), field(ref))  # the tensor-grid and point-by-point paths agree
    assert fine.info["edge_deviation"] < EDGE_WARN  # u = 1, v = 0 on the faces, up to 32 points' ringing


def _refused_in_one_line(solver, options, wrong_counts, words):
    """Each of ``options`` (settings, the words of its refusal) refused under its first key, and
    the coordinate and unknown counts ``wrong_counts`` refused with ``words``: one line each."""
    for option, match in options:
        with pytest.raises(ConfigError, match=match) as info:
            solver(**option)
        assert info.value.key == next(iter(option)) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=words) as info:
        solver(**wrong_counts)
    assert "\n" not in str(info.value)


def test_spectral_settings_and_refusals_are_one_line():
    _refused_in_one_line(FourierSpectral, ((dict(n=[30, 6]), "even integer >= 8"), (dict(n=[]), "a list of them"),
                                           (dict(steps=[1, 2, 3], n=[32, 64]), "one per grid"),
                                           (dict(steps=-1), "positive"), (dict(snapshots=0), "positive number")),
                         dict(in_dim=3, out_dim=1), "KS.*Gray–Scott.*solver=mol")


def _spectral_refusal(problem) -> str:
    with pytest.raises(ConfigError) as info:
        FourierSpectral(in_dim=problem.in_dim, out_dim=problem.out_dim).check(None, problem)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 200 and "try solver=mol" in msg, msg
    return msg


def _one(residual, conditions, space=None, time=(0, 1)):
    return EquationProblem(unknowns=["u"], domain={"space": space or {"x": [0, 1]}, "time": {"t": list(time)}},
                           residuals={"pde": residual}, conditions=conditions,
                           evaluation={"resolution": 5, "times": 2}, batch_size=64)


PERIODIC = {"p": {"type": "periodic", "axis": "x"}, "initial": {"type": "initial", "value": "sin(2*pi*x)"}}


@pytest.mark.parametrize("make, words", [
    (lambda: _one("u_tt - u_xx", PERIODIC), "residuals.pde has no u_t"),
    (lambda: _one("u_t + u_xxx", PERIODIC), "u_xxx term"),
    (lambda: _one("u_t - x*u_xx", PERIODIC), "constant coefficients"),
    (lambda: _one("u_t - u_xx", {"initial": PERIODIC["initial"], "n": {"type": "neumann", "piece": "box", "value": 0}}),
     "conditions.n is neumann"),
    (lambda: _one("u_t - u_xx", {"initial": {"type": "initial", "value": "cos(2*pi*x)"},
                                 "w": {"type": "dirichlet", "piece": "box", "value": 0}}), "the initial u is not 0 on x_min"),
    (lambda: _one("u_t - u_xx", {"initial": PERIODIC["initial"]}), "x is neither periodic nor held constant"),
    (lambda: EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1], "y": [0, 1]}},
                             residuals={"pde": "u_xx + u_yy"}, batch_size=64, evaluation={"resolution": 5}),
     "no time axis"),
    (lambda: _problem("grayscott", "pde.residuals.species_u='u_t - 1e-5*u_xx - 2e-5*u_yy - 0.04*(1 - u) + u*v^2'",
                      *NO_FILE), "residuals.species_u is not Gray–Scott's u_t = ε₁Δu + b(1 − u) − c u v² (its u_yy term)"),
])
def test_spectral_refuses_other_problems_in_one_line(make, words):
    assert words in _spectral_refusal(make())


# --- solver=taylor_hood ------------------------------------------------------------------------


def test_the_navier_stokes_form_is_read_from_the_config():
    from dinf.solvers.classical.taylor_hood import NavierStokesForm

    form = NavierStokesForm(_ns())
    assert (form.a, form.b, form.p, form.nu) == ("u", "v", "p", 0.01)
    assert sorted(form.walls) == ["x_min", "y_max", "y_min"] and form.outlets == ["x_max"]
    flow = form.flow()
    x = np.array([[0.0, 0.0, 2.0, 1.0], [0.5, 0.0, 0.5, 1.0]])
    u, v = flow.dirichlet(x, 0.1)
    a = np.sin(0.1 * np.pi) + np.sin(0.3 * np.pi) + np.sin(0.5 * np.pi)
    assert np.allclose(u[:2], [a, 0.0]) and np.allclose(v, 0.0) and u[3] == 0.0
    fx, fy = flow.force(x, 0.25)
    assert fx is None and np.allclose(fy, -np.sin(np.pi * x[0]) * np.sin(np.pi * x[1]) * np.sin(0.25 * np.pi))


def test_taylor_hood_is_the_reference_scripts_solve_and_probes_its_dofs():
    """n = 4, τ = 1/100 on t ∈ [0, 0.2]: the script's values at its points at t = 0.1, 0.2; at a
    snapshot's time the probe at the dofs' nodes is the stored dofs."""
    ns = _script("ns2d_lt")
    problem = _ns()
    solver = TaylorHood(n=4, steps=100, snapshots=100)
    field = _solved(solver, problem)
    pts = ns.eval_points(0.25)
    ref = ns.solve(ns.Flow(), 4, 0.01, [0.1, 0.2], pts)
    for j, t in enumerate((0.1, 0.2)):
        got = field(torch.tensor(np.c_[pts.T, np.full(pts.shape[1], t)])).numpy()
        for c, name in enumerate("uvp"):
            assert np.abs(got[:, c] - ref[name][j]).max() < 1e-10, name
    d, snaps = solver._disc, solver._snaps
    nodes = d.V.doflocs.T
    k = 13
    got = field(torch.tensor(np.c_[nodes, np.full(len(nodes), k * snaps.dt)])).numpy()
    state = snaps.states[k]
    assert np.abs(got[:, 0] - state[:d.nv]).max() < 1e-12 and np.abs(got[:, 1] - state[d.nv:2 * d.nv]).max() < 1e-12
    corners = d.P.doflocs.T
    p = field(torch.tensor(np.c_[corners, np.full(len(corners), k * snaps.dt)])).numpy()[:, 2]
    assert np.abs(p - state[2 * d.nv:]).max() < 1e-10 * np.abs(state[2 * d.nv:]).max()


def test_taylor_hood_starts_from_the_consistent_pressure():
    """At t0 the probe's pressure is the discrete p(0+) (the inlet's acceleration through the
    potential flow), close to the script's series for it."""
    ns = _script("ns2d_lt")
    solver = TaylorHood(n=8, steps=100, snapshots=100)
    field = _solved(solver, _ns(0.1))
    pts = ns.eval_points(0.1)
    p = field(torch.tensor(np.c_[pts.T, np.zeros(pts.shape[1])])).numpy()[:, 2]
    assert _rel(p, ns.initial_pressure(*pts)) < 2e-3


def test_taylor_hood_settings_and_refusals_are_one_line():
    _refused_in_one_line(TaylorHood, ((dict(n=[0]), "positive integers"),
                                      (dict(steps=[100, 200], n=[4, 8, 16]), "one per mesh"),
                                      (dict(snapshots=-1), "positive"), (dict(backend="mumps"), "auto, pardiso")),
                         dict(in_dim=2, out_dim=1), "try solver=mol")


@pytest.mark.parametrize("overrides, words", [
    (["~pde.conditions.outlet_u"], "x_max needs the velocity or the do-nothing outlet"),
    (["pde.conditions.outlet_u.expr=nu*u_x + p"], "conditions.outlet_u is not ν ∂u/∂n − p n = 0"),
    (["pde.residuals.momentum_x='u_t + p_x - nu*(u_xx + u_yy)'"], "its u*u_x term"),
    (["pde.residuals.momentum_x='u_t + u*u_x + v*u_y + p_x - x*(u_xx + u_yy)'"], "constant ν"),
    (["+pde.conditions.p_in={type: dirichlet, piece: x_min, value: {p: 0}}"], "gives the pressure"),
])
def test_taylor_hood_refuses_other_problems_in_one_line(overrides, words):
    problem = _problem("ns2d_lt", "pde.domain.time.t=[0,0.1]", *overrides)
    with pytest.raises(ConfigError) as info:
        TaylorHood().check(None, problem)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 200 and words in msg and "try solver=mol" in msg, msg


def test_taylor_hood_refuses_a_steady_problem():
    with pytest.raises(ConfigError, match=r"solves 3 unknowns \(u, v, p\) in x, y, t, got 3 in 2") as info:
        build(compose_cfg(["pde=ns2d_c", "solver=taylor_hood"]))
    assert "\n" not in str(info.value)


# --- solver=classical and train.py ---------------------------------------------------------------


def test_classical_picks_each_problems_method_and_refuses_the_others_in_one_line():
    for pde, cls in (("ks", FourierSpectral), ("grayscott", FourierSpectral), ("ns2d_lt", TaylorHood)):
        _, _, solver = build(compose_cfg([f"pde={pde}", "solver=classical"]))
        assert type(solver) is cls
    _, _, solver = build(compose_cfg(["pde=ks", "solver=classical", "solver.methods.spectral.n=[64,128]"]))
    assert solver.grids == [64, 128]
    with pytest.raises(ConfigError, match="names no classical method for pde=ns2d_c") as info:
        build(compose_cfg(["pde=ns2d_c", "solver=classical"]))
    assert "\n" not in str(info.value)


@pytest.fixture
def no_pictures(monkeypatch):
    """train's pictures interpolate a reference file's nodes (scipy's griddata: 10–30 s for these
    problems); not what these tests check."""
    monkeypatch.setattr(EquationProblem, "pictures", lambda self, field: {})


def test_train_runs_a_spectral_refinement_sequence_as_a_classical_run(tmp_path, no_pictures):
    cfg = compose_cfg(["pde=ks", "solver=spectral", "solver.n=[64,128]", "solver.steps=[400,1600]",
                       "pde.domain.time.t=[0,0.05]"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["classical"] and metrics["model"] == "FourierSpectral" and metrics["steps"] == 2
    errors = [h["l2re"] for h in metrics["history"]]
    assert errors[0] == 1.0 and errors[2] < 1e-6 and errors[1] > 10 * errors[2], errors
    assert json.loads((tmp_path / "metrics.json").read_text())["classical"] is True


def test_train_runs_taylor_hood_through_solver_classical(tmp_path, no_pictures):
    cfg = compose_cfg(["pde=ns2d_lt", "solver=classical", "solver.methods.taylor_hood.n=4",
                       "solver.methods.taylor_hood.steps=100", "pde.domain.time.t=[0,0.2]"])
    metrics = train(cfg, output_dir=str(tmp_path))
    assert metrics["classical"] and metrics["model"] == "TaylorHood" and metrics["status"] == "completed"
    assert metrics["l2re"] < 0.05, metrics["l2re"]
    assert json.loads((tmp_path / "metrics.json").read_text())["classical"] is True
