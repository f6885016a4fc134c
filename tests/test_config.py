"""Every config option composes and builds; bad values stop with a clear error."""
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from dinf.errors import ConfigError
from dinf.fields.base import Field
from dinf.pdes.base import Problem
from dinf.app.run import build
from dinf.fields.interpolant import Interpolant
from dinf.solvers.auto import Auto
from dinf.solvers.base import GradientSolver, SolveSolver, Solver
from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.least_squares import LeastSquares
from tests.helpers import CONF, compose_cfg


def _options(group: str):
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


_CLASSICAL = ("fem", "fd", "mol", "spectral", "taylor_hood")  # solvers whose result is a field: they take only the
# problems they can discretise (solver=classical picks one of them by the pde's name)
_PDE_FOR = {"taylor_hood": "ns2d_lt", "classical": "ks"}  # a problem a solver builds for (the default: poisson)


@pytest.mark.parametrize("model", _options("model"))
@pytest.mark.parametrize("pde", _options("pde"))
def test_every_model_builds_for_every_pde(model, pde):
    # The ∂∞-Grid's jet through PyTorch: the fused kernel compiles a specialisation per problem's ρ,
    # features and axes (15-35 s each on a fresh machine); the slow test below runs it.
    _builds_and_gives_a_jet(model, pde, ["model.backend=torch"] if model == "dinf" else [])


@pytest.mark.slow
@pytest.mark.parametrize("pde", _options("pde"))
def test_every_pde_builds_the_grid_with_its_fused_kernel(pde):
    _builds_and_gives_a_jet("dinf", pde, [])


def _builds_and_gives_a_jet(model, pde, extra):
    try:
        problem, field, solver = build(compose_cfg([f"model={model}", f"pde={pde}", *extra]))
    except ConfigError as e:  # the grids refuse in 5+ axes, naming the factored grid; a field refuses orders it lacks
        assert "\n" not in str(e), str(e)
        assert ((e.key in ("kernel.rho", "grid.resolution") and "model=dinf_cp" in str(e))
                or (e.key == "model" and "derivatives of order" in str(e))), str(e)
        return
    assert isinstance(problem, Problem) and isinstance(field, Field) and isinstance(solver, Solver)
    x = problem.sample(8, __import__("torch").Generator().manual_seed(0)).x
    jet = field.jet(x, problem.jet_order)
    assert jet.value.shape == (x.shape[0], problem.out_dim)  # (a periodic condition's points come in pairs)


@pytest.mark.parametrize("solver", _CLASSICAL)
@pytest.mark.parametrize("pde", _options("pde"))
def test_every_classical_solver_solves_or_refuses_every_pde(solver, pde):
    """A classical solver either solves the problem (coarsely here) or refuses it in one line."""
    pytest.importorskip("skfem")
    try:
        coarse = {"fem": ["solver.h=0.1", "solver.order=1"],
                  "mol": [f"solver.n={256 if pde == 'burgers1d' else 16}"],  # Burgers: n >= 192
                  "fd": ["solver.n=16"],
                  # KS form: KS stays finite on 64 points, Burgers1d (γ = 0) resolves its front on 1024
                  "spectral": [f"solver.n={ {'ks': 64, 'burgers1d': 1024}.get(pde, 32)}"],
                  "taylor_hood": ["solver.n=4", "solver.steps=100"]}[solver]
        if solver == "taylor_hood" and pde == "ns2d_lt":
            coarse.append("pde.domain.time.t=[0,0.2]")
        if pde == "wave2d_ms":  # 50 periods: two keep the test short
            coarse.append("pde.domain.time.t=[0,2]")
        problem, field, method = build(compose_cfg([f"solver={solver}", f"pde={pde}", *coarse]))
    except ConfigError as e:
        assert "\n" not in str(e) and len(str(e)) < 200, str(e)
        return
    assert isinstance(problem, Problem) and isinstance(method, ClassicalSolver) and isinstance(field, Interpolant)
    method.solve(field, problem)
    x = problem.sample(8, __import__("torch").Generator().manual_seed(0)).x
    value = field(x)
    assert value.shape == (x.shape[0], problem.out_dim) and bool(value.isfinite().all())


@pytest.mark.parametrize("kernel", _options("kernel"))
@pytest.mark.parametrize("grid", _options("grid"))
def test_kernels_and_grids_reach_the_field(kernel, grid):
    cfg = compose_cfg([f"kernel={kernel}", f"grid={grid}"])
    field = build(cfg)[1]
    assert field.kernel == cfg.kernel.name and kernel.startswith(field.kernel)
    assert (field.eps, field.rho) == (cfg.kernel.eps, cfg.kernel.rho)
    assert field.resolution == cfg.grid.resolution and field.levels == cfg.grid.levels


@pytest.mark.parametrize("name", _options("solver"))
def test_solvers_build(name):
    import torch

    cfg = compose_cfg([f"solver={name}"] + ([f"pde={_PDE_FOR[name]}"] if name in _PDE_FOR else []))
    if name in _CLASSICAL + ("classical",):
        pytest.importorskip("skfem")
    solver = instantiate(cfg.solver)
    if name == "auto":  # the candidates' configs, built when the run has a field and a problem
        assert isinstance(solver, Auto) and set(solver.candidates) == {"least_squares", "gauss_newton", "cp_lm", "newton",
                                                                      "adam"}
        return
    assert isinstance(solver, Solver)
    if not isinstance(solver, GradientSolver):
        return
    opt = solver.optim([torch.nn.Parameter(torch.zeros(3))])
    assert isinstance(opt, torch.optim.Optimizer)
    if solver.scheduler is not None:
        assert solver.scheduler(opt).lr_lambdas[0](5000) == pytest.approx(0.1)


@pytest.mark.parametrize("logger", _options("logger"))
def test_loggers_build(logger, tmp_path):
    cfg = compose_cfg([f"logger={logger}"])
    lg = instantiate(cfg.logger, save_dir=str(tmp_path))
    assert lg is not None
    if logger == "wandb":
        assert cfg.logger.offline is True  # never needs the network by default


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiments_compose(experiment):
    cfg = compose_cfg([f"experiment={experiment}"], tiny=False)
    assert cfg.trainer.inference_mode is False
    _, _, solver = build(cfg)  # the solver it names (or auto picks) applies to its problem and model
    solver = getattr(solver, "inner", solver)  # marching in time windows: each window's solver
    if isinstance(solver, SolveSolver):  # a few solves
        assert isinstance(solver, LeastSquares) or cfg.trainer.max_steps <= 50 or solver.max_solves <= 50
    elif not experiment.startswith(("ablation_", "compare_plate")):  # CPU-sized sweeps
        assert cfg.trainer.max_steps > 1000  # paper-sized Adam


@pytest.mark.parametrize("experiment", [e for e in _options("experiment") if e.startswith(("compare_", "ablation_"))])
def test_sweep_experiments_define_their_sweep(experiment):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    if experiment == "compare_plate_bc":
        assert params["pde.bc"].split(",") == ["hard", "soft"]
    elif "method" in params:  # neural against classical: methods (a model with its solver)
        methods = params.method.split(",")
        assert {"dinf_adam", "dinf_lsq", "siren"} <= set(methods) and {"fem", "fd"} & set(methods)
        assert all((Path(CONF) / "method" / f"{m}.yaml").exists() for m in methods)
    elif experiment == "compare_pinnacle_fem":
        assert params.solver.split(",") == ["auto", "fem"] and len(cfg.fem.h) > 1
    elif experiment == "compare_helmholtz_fd":
        assert params.solver.split(",") == ["auto", "fd"] and len(cfg.fd.n) > 1
    elif experiment == "compare_pinnacle_mol":  # a sequence of grids per problem
        assert params.solver.split(",") == ["auto", "mol"] and len(params.pde.split(",")) == 3
        assert all(len(grids) > 1 for grids in cfg.mol.grids.values())
    elif experiment.startswith("compare_"):
        assert params.model.split(",") == ["dinf", "siren", "linear_grid"]
    elif experiment == "ablation_kernel":
        assert set(params) >= {"kernel", "kernel.eps", "kernel.rho", "grid.levels"}
    elif experiment == "ablation_gates":
        assert params.kernel.split(",") == ["gaussian", "inverse_quadratic", "inverse_multiquadric", "multiquadric"]
        assert params["model.gates"].split(",") == ["none", "scalar", "spatial"]


def test_model_lr_defaults_follow_the_paper():
    assert compose_cfg(["model=siren", "solver=adam"]).solver.optim.lr == pytest.approx(5e-5)
    assert compose_cfg(["model=dinf", "solver=adam"]).solver.optim.lr == pytest.approx(5e-3)
    assert compose_cfg(["model=siren"]).solver.adam.optim.lr == pytest.approx(5e-5)  # auto's fallback


@pytest.mark.parametrize("model, exact", [("dinf", True), ("linear_grid", True), ("siren", False),
                                          ("pinnacle_mlp", False), ("mlp", False)])
def test_exact_conditions_are_for_the_grids(model, exact):
    """Heat2d-MS's pde file makes its conditions exact for the grid models; the networks keep soft
    ones, as PINNacle trains them, and build with the conditions as loss terms."""
    cfg = compose_cfg(["pde=heat2d_ms", f"model={model}", "pde.batch_size=256"])
    problem, _, _ = build(cfg)
    assert bool(problem.hard) is exact
    assert {c.name for c in problem.conditions} == (set() if exact else {"initial", "walls"})


@pytest.mark.parametrize(
    "overrides, key, words",
    [
        (["model.kernel=foo"], "model.kernel", ["gaussian", "inverse_quadratic"]),
        (["grid.resolution=100", "grid.levels=4"], "grid.resolution", ["divisible", "8"]),
        (["kernel.rho=0"], "kernel.rho", [">= 1"]),
        (["pde.image=/nonexistent/cat.png"], "pde.image", ["/nonexistent/cat.png"]),
        (["pde.supervision=hessian"], "pde.supervision", ["gradient", "laplacian"]),
        (["model.decoder=transformer"], "model.decoder", ["linear", "mlp"]),
        (["pde.out_dim=2"], "pde.out_dim", ["1"]),
    ],
)
def test_bad_values_name_the_key(overrides, key, words):
    with pytest.raises(ConfigError) as info:
        build(compose_cfg(overrides))
    assert info.value.key == key
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_unreadable_image_names_the_key(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ConfigError) as info:
        build(compose_cfg([f"pde.image={bad}"]))
    assert info.value.key == "pde.image" and str(bad) in str(info.value)


@pytest.mark.parametrize("group", ["model", "pde", "kernel"])
def test_unknown_group_option_lists_the_choices(group):
    with pytest.raises(MissingConfigException) as info:
        compose_cfg([f"{group}=nonsense"])
    for option in _options(group):
        assert option in str(info.value)


def test_default_grid_follows_the_problem_resolution():
    field = build(compose_cfg(["grid=default", "pde.resolution=64"]))[1]
    assert field.resolution == 64 and field.levels == 6


@pytest.mark.parametrize("method", _options("method"))
def test_every_method_sets_its_model_and_solver(method):
    cfg = compose_cfg([f"method={method}", "pde=plate"])
    name, _, variant = method.partition("_")
    classical = {"fem": "finiteelements", "fd": "finitedifferences", "mol": "methodoflines"}
    if name in classical:
        assert cfg.solver._target_.lower().rsplit(".", 1)[-1] == classical[name]
    else:
        assert cfg.model._target_.lower().rsplit(".", 1)[-1].startswith({"dinf": "dinfgrid"}.get(name, name))
    if variant in ("adam", "lsq"):
        assert cfg.solver._target_.rsplit(".", 1)[-1] == {"adam": "GradientSolver", "lsq": "LeastSquares"}[variant]
    if name == "fem":
        pytest.importorskip("skfem")
        assert build(cfg)[2].plate_element == (variant or "argyris")
