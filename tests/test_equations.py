"""Equations as text: parsing, evaluation on jets, linear rows, conditions, config problems."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dinf.equations import Residual, Unknowns, Vocabulary
from dinf.errors import ConfigError
from dinf.fields.base import Field, autograd_jet
from dinf.jet import Jet
from dinf.pdes.equation_problem import EquationProblem

torch.set_default_dtype(torch.float32)


class Exact(Field):
    """A field given by a torch function of the coordinates (jets by float64 autograd)."""

    def __init__(self, fn, in_dim: int, out_dim: int, bump: float = 0.0):
        super().__init__(in_dim, out_dim)
        self.fn, self.bump = fn, bump
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        x = x.double()
        out = self.fn(x)
        if self.bump:  # a smooth perturbation that every condition notices
            out = out + self.bump * torch.exp(-((x - 0.3) ** 2).sum(1, keepdim=True))
        return out + 0 * self.dummy

    def jet(self, x, order=2):
        return autograd_jet(self, x.double(), order)


def _random_jet(n: int, c: int, d: int, seed: int = 0) -> Jet:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, c, d, d, generator=g, dtype=torch.float64)
    return Jet(torch.randn(n, c, generator=g, dtype=torch.float64), torch.randn(n, c, d, generator=g, dtype=torch.float64),
               h + h.transpose(-1, -2))


# --- parsing and evaluation ---------------------------------------------------------------
def test_residual_matches_a_hand_computed_jet():
    vocab = Vocabulary(["u", "v"], ["x", "y", "t"], {"nu": 0.3}, {"f": "sin(pi*x)*exp(-t)"}, time="t")
    r = Residual("u_t + u*u_x + v*u_y - nu*(u_xx + u_yy) + v_xy - f + x^2*y", vocab, Unknowns(["u", "v"]), "r",
                 {"nu": 0.3})
    jet = _random_jet(7, 2, 3)
    x = torch.rand(7, 3, dtype=torch.float64)
    data = {"x": x[:, 0], "y": x[:, 1], "t": x[:, 2]}
    u, v = 0, 1
    want = (jet.grad[:, u, 2] + jet.value[:, u] * jet.grad[:, u, 0] + jet.value[:, v] * jet.grad[:, u, 1]
            - 0.3 * (jet.hess[:, u, 0, 0] + jet.hess[:, u, 1, 1]) + jet.hess[:, v, 0, 1]
            - torch.sin(math.pi * x[:, 0]) * torch.exp(-x[:, 2]) + x[:, 0] ** 2 * x[:, 1])
    got = r.evaluate(jet, data)
    assert got.shape == (7, 1)
    torch.testing.assert_close(got[:, 0], want, rtol=1e-12, atol=1e-12)
    assert r.order == 2 and r.nonlinear_term == "u*u_x"


def test_piecewise_coefficients_and_caret_power():
    vocab = Vocabulary(["u"], ["x"])
    r = Residual("(2 if x < 0 else 3)*u_xx + where(x > 0.5, 1, 0)*u + x^2", vocab, Unknowns(["u"]), "r")
    jet = _random_jet(5, 1, 1)
    x = torch.tensor([-0.5, 0.0, 0.25, 0.75, 1.0], dtype=torch.float64)
    want = torch.where(x < 0, 2.0, 3.0) * jet.hess[:, 0, 0, 0] + (x > 0.5).double() * jet.value[:, 0] + x**2
    torch.testing.assert_close(r.evaluate(jet, {"x": x})[:, 0], want)
    assert r.linear


def test_complex_unknown_splits_into_real_and_imaginary_residuals():
    vocab = Vocabulary(["psi"], ["x", "t"], time="t")
    r = Residual("I*psi_t + 0.5*psi_xx + 2*psi", vocab, Unknowns({"psi": "complex"}), "r")
    jet = _random_jet(6, 2, 2)
    got = r.evaluate(jet, {})
    re, im = jet.value[:, 0], jet.value[:, 1]
    want_re = -jet.grad[:, 1, 1] + 0.5 * jet.hess[:, 0, 0, 0] + 2 * re
    want_im = jet.grad[:, 0, 1] + 0.5 * jet.hess[:, 1, 0, 0] + 2 * im
    torch.testing.assert_close(got, torch.stack([want_re, want_im], 1))
    assert r.linear


@pytest.mark.parametrize("text, words", [
    ("u_t + foo", ["unknown symbol 'foo'"]),
    ("u_q", ["unknown derivative 'u_q'", "u_x"]),
    ("u_xxxxxxx", ["up to order 6"]),
    ("u_n", ["only in boundary conditions"]),
    ("__import__('os').system('true')", ["unknown function", "__import__"]),
    ("__import__('os')", ["unknown function '__import__'"]),
    ("u.real", ["attribute is not allowed"]),
    ("(lambda: 1)()", ["unknown function"]),
    ("lambda: 1", ["lambda is not allowed"]),
    ("nuu*u", ["did you mean 'nu'"]),
    ("u +* 2", ["cannot read"]),
])
def test_bad_expressions_are_one_clear_line(text, words):
    vocab = Vocabulary(["u"], ["x", "t"], {"nu": 1.0}, time="t")
    with pytest.raises(ConfigError) as err:
        Residual(text, vocab, Unknowns(["u"]), "pde.residuals.r")
    msg = str(err.value)
    assert msg.startswith("pde.residuals.r: ") and "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_linear_rows_equal_the_residual():
    vocab = Vocabulary(["u", "v"], ["x", "y"], {"k": 2.0})
    r = Residual("u_xx + k^2*sin(x)*u - v_y*exp(y) + 3*x", vocab, Unknowns(["u", "v"]), "r", {"k": 2.0})
    jet = _random_jet(9, 2, 2)
    x = torch.rand(9, 2, dtype=torch.float64)
    data = {"x": x[:, 0], "y": x[:, 1]}
    coef, rhs = r.rows(data, 2, 2, x[:, 0])
    from dinf.linear_system import jet_entries

    rows = torch.einsum("npca,nca->np", coef, jet_entries(jet, 7)) - rhs
    torch.testing.assert_close(rows, r.evaluate(jet, data))


# --- config problems: conditions on manufactured solutions --------------------------------
def _problem(**kw) -> EquationProblem:
    base = dict(unknowns=["u"], domain={"space": {"x": [0, 1], "y": [0, 1]}}, residuals={"pde": "u_xx + u_yy - f"},
                functions={"f": "-2*pi^2*sin(pi*x)*sin(pi*y)"}, reference={"exact": {"u": "sin(pi*x)*sin(pi*y)"}},
                evaluation={"resolution": 17}, batch_size=512)
    base.update(kw)
    return EquationProblem(**base)


def _loss_terms(problem, field, n=512):
    batch = problem.sample(n, torch.Generator().manual_seed(0))
    jet = field.jet(batch.data["x64"], problem.jet_order)
    return {k: float(v) for k, v in problem.loss(jet, batch).items()}


EXACT = "sin(pi*x)*sin(pi*y)"


def _exact_2d(x):
    return (torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1]))[:, None]


@pytest.mark.parametrize("condition", [
    {"type": "dirichlet", "piece": "box", "value": EXACT},
    {"type": "neumann", "piece": "x_max", "value": "-pi*sin(pi*y)"},   # ∂u/∂n = u_x at x = 1
    {"type": "neumann", "piece": "left", "value": "-pi*sin(pi*y)"},    # ∂u/∂n = −u_x at x = 0
    {"type": "robin", "piece": "y_min", "a": 2, "b": 1, "value": "-pi*sin(pi*x)"},  # 2u − u_y at y = 0
    {"type": "point", "at": {"x": 0.5, "y": 0.5}, "value": 1},
    {"type": "residual", "piece": "y_max", "expr": "u_n + pi*sin(pi*x)*n_y"},  # u_y = −π sin(πx) at y = 1
])
def test_each_condition_vanishes_on_the_exact_solution_only(condition):
    p = _problem(conditions={"c": condition})
    exact = _loss_terms(p, Exact(_exact_2d, 2, 1))
    bumped = _loss_terms(p, Exact(_exact_2d, 2, 1, bump=0.05))
    assert exact["loss_c"] < 1e-20 and exact["loss_pde"] < 1e-18, exact
    assert bumped["loss_c"] > 1e-6, bumped


def test_hole_condition_uses_outward_normals():
    # u = x² + y² around a hole of radius 0.2 at the centre: ∂u/∂n on the hole (normal into the
    # hole, towards the centre) is −2r = −0.4.
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [-1, 1], "y": [-1, 1]},
                                                "holes": {"h": {"disk": {"center": [0, 0], "radius": 0.2}}}},
                        residuals={"pde": "u_xx + u_yy - 4"}, conditions={"c": {"type": "neumann", "piece": "h", "value": -0.4}},
                        reference={"exact": {"u": "x^2 + y^2"}}, evaluation={"resolution": 9}, batch_size=256)
    field = Exact(lambda x: (x**2).sum(1, keepdim=True), 2, 1)
    assert _loss_terms(p, field, 256)["loss_c"] < 1e-20
    p2 = EquationProblem(unknowns=["u"], domain={"space": {"x": [-1, 1], "y": [-1, 1]},
                                                 "holes": {"h": {"disk": {"center": [0, 0], "radius": 0.2}}}},
                         residuals={"pde": "u_xx + u_yy - 4"}, conditions={"c": {"type": "neumann", "piece": "h", "value": 0.4}},
                         reference={"exact": {"u": "x^2 + y^2"}}, evaluation={"resolution": 9}, batch_size=256)
    assert _loss_terms(p2, field, 256)["loss_c"] > 0.1


def test_initial_value_and_rate_and_periodic():
    # u = sin(2πx)·cos(t): periodic in x on [0, 1], u_t(x, 0) = 0.
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1]}, "time": {"t": [0, 1]}},
                        residuals={"pde": "u_tt + u"},
                        conditions={"ic": {"type": "initial", "value": "sin(2*pi*x)"},
                                    "rate": {"type": "initial_rate", "value": 0},
                                    "per": {"type": "periodic", "axis": "x"}},
                        reference={"exact": {"u": "sin(2*pi*x)*cos(t)"}}, evaluation={"resolution": 9, "times": 5},
                        batch_size=512)
    exact = lambda x: (torch.sin(2 * math.pi * x[:, 0]) * torch.cos(x[:, 1]))[:, None]  # noqa: E731
    good = _loss_terms(p, Exact(exact, 2, 1))
    assert max(good.values()) < 1e-20, good
    shifted = lambda x: (torch.sin(2 * math.pi * x[:, 0] * 0.9) * torch.cos(x[:, 1]) + 0.1 * x[:, 1])[:, None]  # noqa: E731
    bad = _loss_terms(p, Exact(shifted, 2, 1))
    assert bad["loss_ic"] > 1e-4 and bad["loss_rate"] > 1e-4 and bad["loss_per"] > 1e-4


def test_linear_system_equals_the_loss_including_periodic_pairs():
    p = EquationProblem(unknowns=["u"], domain={"space": {"x": [0, 1]}, "time": {"t": [0, 1]}},
                        residuals={"pde": {"expr": "u_t - 0.1*u_xx + x", "weight": 3}},
                        conditions={"ic": {"type": "initial", "value": "sin(2*pi*x)", "weight": 5},
                                    "per": {"type": "periodic", "axis": "x", "weight": 2},
                                    "pin": {"type": "point", "at": [[0.5, 0.5]], "value": 1}},
                        reference={"exact": {"u": "x"}}, evaluation={"resolution": 9, "times": 5}, batch_size=300)
    batch = p.sample(300, torch.Generator().manual_seed(0))
    system = p.linear_system(batch)
    assert system.mix is not None
    field = Exact(lambda x: torch.sin(3 * x[:, :1]) * torch.exp(x[:, 1:]) + x[:, 1:] ** 2, 2, 1)
    jet = field.jet(batch.data["x64"], 2)
    assert float(system.loss(jet)) == pytest.approx(float(p.loss(jet, batch)["loss"]), rel=1e-9)


def test_nonlinear_problem_refuses_least_squares_naming_the_term():
    p = _problem(residuals={"pde": "u_xx + u_yy + u*u_x - f"})
    with pytest.raises(ConfigError, match=r"residuals.pde has the nonlinear term u\*u_x"):
        p.check_linear()


@pytest.mark.parametrize("kw, key, words", [
    ({"conditions": {"c": {"type": "dirichlet", "piece": "moon", "value": 0}}}, "conditions.c.piece", ["moon", "x_min"]),
    ({"conditions": {"c": {"type": "dirichlet", "value": 0}}}, "conditions.c.piece", ["needs a boundary piece"]),
    ({"conditions": {"c": {"type": "neuman", "piece": "box"}}}, "conditions.c.type", ["neumann"]),
    ({"conditions": {"c": {"type": "initial", "value": 0}}}, "conditions.c.type", ["time axis"]),
    ({"conditions": {"c": {"type": "dirichlet", "piece": "box", "value": 0, "wieght": 2}}}, "conditions.c.wieght", ["weight"]),
    ({"residuals": {"pde": "u_xx + w"}}, "residuals.pde", ["unknown symbol 'w'"]),
    ({"in_dim": 3}, "in_dim", ["x, y"]),
    ({"reference": {"exact": {"v": "x"}}}, "reference.exact", ["missing u"]),
    ({"reference": {"exact": {"u": "x"}, "fille": "a.dat"}}, "reference.fille", ["file"]),
])
def test_bad_problem_config_is_one_line(kw, key, words):
    with pytest.raises(ConfigError) as err:
        _problem(**kw)
    assert err.value.key == key, str(err.value)
    for w in words:
        assert w in str(err.value)


def test_reference_file_with_other_columns_is_refused(tmp_path):
    f = tmp_path / "ref.dat"
    f.write_text("% Nodes: 2\n% X    Y    w (1)\n0 0 1\n1 1 2\n")
    with pytest.raises(ConfigError) as err:
        _problem(reference={"file": str(f)})
    assert err.value.key == "reference.file" and "u" in str(err.value) and "w" in str(err.value)


# --- the Python path ------------------------------------------------------------------------
from dinf.equations import register_residual  # noqa: E402


@register_residual("test_burgers")
def _burgers(env, params):
    return env["u_t"] + env["u"] * env["u_x"] - params["nu"] * env["u_xx"]


@register_residual("test_heat")
def _heat(env, params):
    return env["u_t"] - params["nu"] * env["u_xx"] + torch.sin(env["x"])


def _time_problem(residual) -> EquationProblem:
    return EquationProblem(unknowns=["u"], domain={"space": {"x": [-1, 1]}, "time": {"t": [0, 1]}},
                           params={"nu": 0.1}, residuals={"pde": residual},
                           conditions={"ic": {"type": "initial", "value": "-sin(pi*x)"}},
                           reference={"exact": {"u": "x"}}, evaluation={"resolution": 9, "times": 5}, batch_size=256)


def test_python_residual_equals_the_same_expression():
    by_text = _time_problem("u_t + u*u_x - nu*u_xx")
    by_python = _time_problem({"python": "test_burgers"})
    batch = by_text.sample(256, torch.Generator().manual_seed(0))
    field = Exact(lambda x: torch.sin(2 * x[:, :1]) * torch.exp(-x[:, 1:]), 2, 1)
    jet = field.jet(batch.data["x64"], 2)
    assert float(by_python.loss(jet, batch)["loss"]) == pytest.approx(float(by_text.loss(jet, batch)["loss"]), rel=1e-12)
    assert not by_python.residuals["pde"].linear
    with pytest.raises(ConfigError, match="test_burgers"):
        by_python.check_linear()


def test_linear_python_residual_gives_the_rows_of_the_expression():
    by_text = _time_problem("u_t - nu*u_xx + sin(x)")
    by_python = _time_problem({"python": "test_heat"})
    assert by_python.residuals["pde"].linear
    batch = by_text.sample(256, torch.Generator().manual_seed(1))
    a, b = by_text.linear_system(batch), by_python.linear_system(batch)
    torch.testing.assert_close(a.coef, b.coef)
    torch.testing.assert_close(a.rhs, b.rhs)


def test_python_residual_by_import_path_and_bad_names():
    p = _time_problem({"python": "tests.test_equations:_heat"})
    assert p.residuals["pde"].linear
    with pytest.raises(ConfigError, match="no residual function 'nope'"):
        _time_problem({"python": "nope"})
    with pytest.raises(ConfigError, match="cannot import"):
        _time_problem({"python": "tests.test_equations:missing"})


def test_without_a_reference_a_run_reports_its_residual():
    p = _problem(reference=None, conditions={"walls": {"type": "dirichlet", "piece": "box", "value": 0}})
    assert p.metric_modes == {"residual_rms": "min"}
    good = p.evaluate(Exact(_exact_2d, 2, 1))["residual_rms"]
    bad = p.evaluate(Exact(_exact_2d, 2, 1, bump=0.05))["residual_rms"]
    assert good < 1e-10 < 1e-3 < bad


# --- exact (hard) conditions -----------------------------------------------------------------
def _hard_problem(**kw) -> EquationProblem:
    base = dict(unknowns=["u"], domain={"space": {"x": [-1, 1]}, "time": {"t": [0, 1]}},
                residuals={"pde": "u_t - 0.1*u_xx"},
                conditions={"ic": {"type": "initial", "value": "-sin(pi*x)", "hard": True},
                            "walls": {"type": "dirichlet", "piece": "box", "value": 0, "hard": True}},
                reference={"exact": {"u": "x"}}, evaluation={"resolution": 9, "times": 5}, batch_size=256)
    base.update(kw)
    return EquationProblem(**base)


def test_hard_conditions_hold_for_any_field_and_their_jets_are_right():
    p = _hard_problem()
    assert p.conditions == [] and p.hard  # no loss terms for them
    field = Exact(lambda x: torch.cos(3 * x[:, :1]) * torch.exp(x[:, 1:]) + x[:, 1:], 2, 1)
    x = torch.tensor([[-1.0, 0.3], [1.0, 0.7], [0.2, 0.0], [-0.4, 0.0]], dtype=torch.float64)
    u = p.predict(field, x)[:, 0]
    torch.testing.assert_close(u, torch.tensor([0.0, 0.0, -math.sin(0.2 * math.pi), math.sin(0.4 * math.pi)],
                                                dtype=torch.float64), atol=1e-12, rtol=0)

    def composite(y):  # u = g + B·N with g = −sin(πx), B = (t − 0)(x + 1)/2 (1 − x)/2
        g = -torch.sin(math.pi * y[:, :1])
        b = y[:, 1:] * (y[:, :1] + 1) / 2 * (1 - y[:, :1]) / 2
        return g + b * field(y)

    y = torch.rand(11, 2, dtype=torch.float64) * torch.tensor([2.0, 1.0]) - torch.tensor([1.0, 0.0])
    want = autograd_jet(composite, y, 2)
    got = p.hard.jet(field.jet(y, 2), y)
    for a, b in ((got.value, want.value), (got.grad, want.grad), (got.hess, want.hess)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_hard_conditions_keep_least_squares_equal_to_the_loss():
    p = _hard_problem()
    batch = p.sample(256, torch.Generator().manual_seed(0))
    system = p.linear_system(batch)
    field = Exact(lambda x: torch.sin(2 * x[:, :1]) * torch.exp(x[:, 1:]), 2, 1)
    jet = field.jet(batch.data["x64"], 2)
    assert float(system.loss(jet)) == pytest.approx(float(p.loss(jet, batch)["loss"]), rel=1e-9)


def test_hard_conditions_that_no_one_lift_meets_are_refused():
    conditions = {"ic": {"type": "initial", "value": "1", "hard": True},
                  "walls": {"type": "dirichlet", "piece": "box", "value": 0, "hard": True}}
    with pytest.raises(ConfigError, match="give pde.lift.u"):
        _hard_problem(conditions=conditions)
    # A lift that meets both (1 at t = 0 is not 0 at x = ±1: still refused) …
    with pytest.raises(ConfigError, match="lift"):
        _hard_problem(conditions=conditions, lift={"u": "1 - x^2"})
    # … and one that does: 1 − x² is 0 on the walls, so initial value 1 − x² with walls 0 works.
    ok = _hard_problem(conditions={"ic": {"type": "initial", "value": "1 - x^2", "hard": True},
                                   "walls": {"type": "dirichlet", "piece": "box", "value": 0, "hard": True}})
    assert ok.hard
    with pytest.raises(ConfigError, match="not neumann"):
        _hard_problem(conditions={"n": {"type": "neumann", "piece": "x_min", "value": 0, "hard": True}})
