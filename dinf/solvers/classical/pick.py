"""``solver=classical``: the classical baseline of the run's problem, picked by its name from a
mapping in ``conf/solver/classical.yaml`` (``by_pde``), so one sweep entry, ``solver=auto,classical``,
puts each problem of a sweep beside its own classical method. The methods' configs are those of
``solver=mol``, ``fem``, ``fd``, ``spectral`` and ``taylor_hood`` (their experiment blocks apply)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from hydra.utils import instantiate

from dinf.errors import ConfigError
from dinf.solvers.classical.base import ClassicalSolver


class Classical:
    """Builds the method ``by_pde[pde]`` from its config in ``methods`` (an instance of that
    method's class, not of this one)."""

    def __new__(cls, pde: Optional[str], by_pde: Mapping[str, str], methods: Mapping[str, Any]) -> ClassicalSolver:
        name = by_pde.get(pde) if pde is not None else None
        if name is None:
            which = f"pde={pde}" if pde is not None else "a pde without a name (pde.name)"
            raise ConfigError("by_pde", f"names no classical method for {which}; add one to "
                                        f"conf/solver/classical.yaml or write solver={' | '.join(sorted(methods))}")
        if name not in methods:
            raise ConfigError(f"by_pde.{pde}", f"{name!r} is not one of {', '.join(sorted(methods))}")
        try:
            return instantiate(methods[name], _convert_="all")
        except ConfigError as e:
            raise e.prefixed(f"methods.{name}") from None
        except Exception as e:  # hydra wraps the method's own one-line error
            cause = e.__cause__
            if isinstance(cause, ConfigError):
                raise cause.prefixed(f"methods.{name}") from None
            raise
