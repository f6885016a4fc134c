"""Condition classes: each type's points, residual against a hand computation, loss, rows, and
what the exact ansatz and the classical methods ask of it."""
from __future__ import annotations

import math
from typing import Dict, List

import pytest
import torch
from torch import Tensor

from dinf.equations import Unknowns
from dinf.errors import ConfigError
from dinf.geometry import Domain
from dinf.jet import Jet
from dinf.linear_system import jet_entries
from dinf.pdes.conditions import (TYPES, Condition, Data, Dirichlet, Initial, InitialRate, Neumann, Periodic, Point,
                                  ResidualCondition, Robin, build_conditions)

SPACE = {"space": {"x": [0, 1], "y": [0, 1]}}
SPACE_TIME = {"space": {"x": [0, 1]}, "time": {"t": [0, 2]}}


def _build(spec: Dict, domain_spec: Dict) -> tuple:
    domain = Domain.from_config(dict(domain_spec), key="domain")
    time = next(iter(domain_spec["time"])) if "time" in domain_spec else None
    conditions = build_conditions(spec, Unknowns(["u"]), list(domain.coords), time, {}, {}, domain,
                                  lambda v, k: float(v), key="conditions")
    return domain, conditions


def _jet(x: Tensor) -> Jet:
    """u = a² + 3ab of the two coordinates (a, b) = (x, y) or (x, t), with its exact jet."""
    a, b = x[:, 0], x[:, 1]
    value = (a * a + 3 * a * b)[:, None]
    grad = torch.stack([2 * a + 3 * b, 3 * a], 1)[:, None]
    hess = torch.tensor([[2.0, 3.0], [3.0, 0.0]], dtype=x.dtype).expand(x.shape[0], 1, 2, 2)
    return Jet(value, grad, hess)


def _data(domain: Domain, x: Tensor, normal) -> Dict[str, Tensor]:
    data = {c: x[:, i] for i, c in enumerate(domain.coords)}
    if normal is not None:
        data.update({f"n_{c}": normal[:, i] for i, c in enumerate(domain.coords) if c in domain.space})
    return data


def _sampled(condition: Condition, domain: Domain, m: int = 64):
    x, normal = condition.sample(domain, m, torch.Generator().manual_seed(0))
    return x, normal, _data(domain, x, normal)


# (config, domain, check of the points, hand-computed residual [N, P] at the points)
CASES = [
    ({"type": "dirichlet", "piece": "x_max", "value": "y"}, SPACE, lambda x: x[:, 0] == 1,
     lambda x: (1 + 2 * x[:, 1])[:, None]),                              # 1 + 3y − y
    ({"type": "neumann", "piece": "y_min", "value": "x"}, SPACE, lambda x: x[:, 1] == 0,
     lambda x: (-4 * x[:, 0])[:, None]),                                 # −u_y − x = −3x − x
    ({"type": "robin", "piece": "x_min", "a": 2, "b": 1, "value": 1}, SPACE, lambda x: x[:, 0] == 0,
     lambda x: (-3 * x[:, 1] - 1)[:, None]),                             # 2·0 − u_x − 1
    ({"type": "residual", "piece": "y_max", "expr": "u_n - x*n_y"}, SPACE, lambda x: x[:, 1] == 1,
     lambda x: (2 * x[:, 0])[:, None]),                                  # u_y − x = 3x − x
    ({"type": "initial", "value": "x"}, SPACE_TIME, lambda x: x[:, 1] == 0,
     lambda x: (x[:, 0] ** 2 - x[:, 0])[:, None]),                       # x² − x
    ({"type": "initial_rate", "value": 1}, SPACE_TIME, lambda x: x[:, 1] == 0,
     lambda x: (3 * x[:, 0] - 1)[:, None]),                              # u_t − 1 = 3x − 1
    ({"type": "point", "at": [[0.5, 0.25], [0.0, 1.0]], "value": 2}, SPACE,
     lambda x: (x == torch.tensor([[0.5, 0.25], [0.0, 1.0]], dtype=x.dtype)).all(1),
     lambda x: torch.tensor([[0.25 + 0.375 - 2], [-2.0]], dtype=x.dtype)),
]


@pytest.mark.parametrize("spec, domain_spec, on, hand", CASES, ids=[c[0]["type"] for c in CASES])
def test_each_type_samples_its_points_and_its_residual_is_the_hand_computed_one(spec, domain_spec, on, hand):
    domain, (c,) = _build({"c": {**spec, "weight": 3}}, domain_spec)
    assert type(c) is TYPES[spec["type"]] and c.type == spec["type"]
    x, normal, data = _sampled(c, domain)
    assert on(x).all()
    values = c.values(_jet(x), data)
    assert torch.allclose(values, hand(x), atol=1e-12, rtol=0), (values, hand(x))
    assert float(c.loss(_jet(x), data)) == pytest.approx(3 * float(hand(x).pow(2).mean()), rel=1e-12)


@pytest.mark.parametrize("spec, domain_spec, on, hand", CASES, ids=[c[0]["type"] for c in CASES])
def test_each_types_rows_are_its_residual_weighted_as_the_loss(spec, domain_spec, on, hand):
    domain, (c,) = _build({"c": {**spec, "weight": 3}}, domain_spec)
    x, normal, data = _sampled(c, domain)
    coef, rhs = c.rows(lambda r, jet, d: r.rows(d, 2, 2, d["x"]), None, data)
    entries = jet_entries(_jet(x), coef.shape[-1])  # [N, C, A]
    rows = torch.einsum("npca,nca->np", coef, entries) - rhs
    assert torch.allclose(rows, math.sqrt(3 / x.shape[0]) * hand(x), atol=1e-12, rtol=0)
    assert c.pairs(0, x.shape[0]) == [] and c.terms(x.shape[0]) == x.shape[0]


def test_on_piece_points_carry_outward_normals():
    domain, (c,) = _build({"c": {"type": "neumann", "piece": "y_min", "value": 0}}, SPACE)
    _, normal, _ = _sampled(c, domain)
    assert torch.equal(normal, torch.tensor([[0.0, -1.0]], dtype=normal.dtype).expand_as(normal))
    assert isinstance(c, Neumann) and c.piece == "y_min"


def test_periodic_pairs_the_faces_and_differences_value_and_first_derivative():
    domain, (c,) = _build({"p": {"type": "periodic", "axis": "x", "weight": 2}}, SPACE)
    assert isinstance(c, Periodic) and c.points == 512 and c.order == 1 and c.axis == 0
    x, normal, data = _sampled(c, domain, 32)
    assert normal is None and x.shape[0] == 64
    assert (x[:32, 0] == 0).all() and (x[32:, 0] == 1).all() and torch.equal(x[:32, 1], x[32:, 1])
    y = x[:32, 1]
    # u(0, y) − u(1, y) = −(1 + 3y); u_x(0, y) − u_x(1, y) = 3y − (2 + 3y) = −2
    hand = torch.stack([-(1 + 3 * y), torch.full_like(y, -2.0)], 1)
    assert torch.allclose(c.values(_jet(x), data), hand, atol=1e-12, rtol=0)
    assert float(c.loss(_jet(x), data)) == pytest.approx(2 * float(hand.pow(2).sum(1).mean()), rel=1e-12)
    assert c.terms(64) == 32 and c.pairs(10, 64) == [(10, 32)]


def test_point_conditions_keep_their_own_points_and_others_default_counts():
    _, conditions = _build({"pin": {"type": "point", "at": {"x": 0.5, "y": 0.5}, "value": 0},
                            "wall": {"type": "dirichlet", "piece": "box", "value": 0},
                            "few": {"type": "neumann", "piece": "box", "value": 0, "points": 7}}, SPACE)
    pin, wall, few = conditions
    assert pin.fixed_points and pin.points == 1 and not wall.fixed_points
    assert wall.points == 1024 and few.points == 7


def test_what_the_ansatz_and_the_classical_methods_ask_of_a_condition():
    domain, (d, n) = _build({"d": {"type": "dirichlet", "piece": "x_min", "value": "2*y + 1"},
                             "n": {"type": "neumann", "piece": "x_max", "value": 0}}, SPACE)
    assert d.exact_faces(domain) == ["x_min"]
    with pytest.raises(ConfigError, match="exact conditions are Dirichlet on box faces or initial values, not neumann"):
        n.exact_faces(domain)
    y = next(s for s in d.prescribed().free_symbols)
    assert str(y) == "y" and float(d.prescribed().subs(y, 0.5)) == 2.0
    domain, (ic, rate) = _build({"ic": {"type": "initial", "value": "x^2"},
                                 "rate": {"type": "initial_rate", "value": 3}}, SPACE_TIME)
    assert isinstance(ic, Initial) and isinstance(rate, InitialRate) and ic.exact_faces(domain) == [None]
    assert str(ic.prescribed()) == "x**2" and float(rate.prescribed()) == 3.0
    assert not isinstance(rate, Initial)  # the method of lines tells them apart by class


def test_config_errors_stay_one_line_and_name_their_key():
    cases: List = [
        ({"c": {"type": "dirichlet", "value": 0}}, SPACE, "conditions.c.piece", "a dirichlet condition needs a boundary piece"),
        ({"c": {"type": "robin", "value": 0}}, SPACE, "conditions.c.piece", "a robin condition needs a boundary piece"),
        ({"c": {"type": "initial_rate", "value": 0}}, SPACE, "conditions.c.type", "initial_rate needs a time axis"),
        ({"c": {"type": "residual", "piece": "box"}}, SPACE, "conditions.c.expr", "needs expr"),
        ({"c": {"type": "periodic", "axis": "t"}}, SPACE_TIME, "conditions.c.axis", "'t' is not a space coordinate (x)"),
        ({"c": {"type": "point", "value": 0}}, SPACE, "conditions.c.at", "needs at:"),
        ({"c": {"type": "neumann", "piece": "box"}}, SPACE, "conditions.c.value", "a neumann condition needs a value"),
        ({"c": {"type": "diriclet"}}, SPACE, "conditions.c.type",
         "is not one of dirichlet, neumann, robin, initial, initial_rate, point, periodic, residual"),
        ({"c": {"type": "dirichlet", "piece": "box", "value": 0, "points": 0}}, SPACE, "conditions.c.points", "positive"),
        ({"c": {"type": "dirichlet", "piece": "box", "value": 0, "hard": "yes"}}, SPACE, "conditions.c.hard", "true or false"),
    ]
    for spec, domain_spec, key, words in cases:
        with pytest.raises(ConfigError) as info:
            _build(spec, domain_spec)
        assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_condition_built_in_python_needs_no_config():
    domain, (from_config,) = _build({"w": {"type": "dirichlet", "piece": "y_max", "value": 0}}, SPACE)
    by_hand = Dirichlet("w", "y_max", from_config.residuals, {"u": 0}, weight=2.0, points=16)
    assert (by_hand.name, by_hand.piece, by_hand.weight, by_hand.points, by_hand.unknowns) == ("w", "y_max", 2.0, 16, ["u"])
    x, _, data = _sampled(by_hand, domain, 16)
    assert torch.allclose(by_hand.values(_jet(x), data), _jet(x).value, atol=0, rtol=0)
    assert {Dirichlet, Neumann, Robin, ResidualCondition, Initial, InitialRate, Point, Periodic, Data} == set(TYPES.values())
