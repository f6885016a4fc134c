"""What a problem says it is, so a solver can tell whether it applies without probing.

A problem class derives from the capabilities it has: ``LinearProblem`` (its loss is squared
linear rows over the jet's entries: least squares solves it at once), ``ResidualProblem`` (its
loss is squared residuals it can linearise around a jet: Gauss–Newton), ``EnergyProblem`` (it
states an energy density: Newton), ``SeparableProblem`` (per-axis coefficients: least squares
from 1D factors). A config problem is linear or not by its equations: ``linear_reason`` says
which term is not.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Optional, Tuple

from torch import Tensor

from dinf.errors import ConfigError
from dinf.jet import Jet

if TYPE_CHECKING:
    from dinf.linear_system import LinearSystem, SeparableSystem
    from dinf.pdes.base import Batch


class LinearProblem(ABC):
    """A loss ``‖A z − b‖²`` (minus twice a linear term for an energy) in the jet entries."""

    @abstractmethod
    def linear_system(self, batch: "Batch") -> "LinearSystem":
        """The loss at ``batch`` as rows over jet entries (``dinf.linear_system``)."""

    def nonlinear_term(self) -> Optional[str]:
        """None for a linear problem; else where its first nonlinear term is, for the one-line
        refusal (a config problem's linearity depends on its equations)."""
        return None

    def check_linear(self) -> None:
        """Raise a one-line ``ConfigError`` naming the first term that is not linear."""
        where = self.nonlinear_term()
        if where is not None:
            raise ConfigError("solver", f"least squares needs a linear problem; {where} (use solver=gauss_newton "
                              "for a grid, or solver=adam)")


class ResidualProblem(ABC):
    """A loss of squared residuals of the jet that can be linearised around any jet."""

    @abstractmethod
    def linearized_system(self, batch: "Batch", jet: Jet) -> "LinearSystem":
        """The residual rows linearised at ``jet``; their squares at ``jet`` sum to the loss."""


class EnergyProblem(ABC):
    """An energy ``energy_measure · mean(energy_density)`` over the domain (Newton minimises it).
    ``closed_form_derivatives``: ``energy_derivatives`` gives each point's gradient and
    (projected) Hessian in the jet entries; otherwise autograd does."""

    energy_measure: float = 1.0
    closed_form_derivatives = False

    @abstractmethod
    def energy_density(self, jet: Jet, x: Tensor) -> Tensor:
        """The energy per unit measure at ``x`` ``[N]``."""

    def energy_derivatives(self, jet: Jet, x: Tensor, project: bool = False,
                           weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form energy derivatives")


class SeparableProblem(ABC):
    """A linear operator whose coefficients factor per axis (Helmholtz with a PML)."""

    @abstractmethod
    def separable_system(self) -> "SeparableSystem":
        """The operator's per-axis factors (``dinf.linear_system.SeparableSystem``)."""
