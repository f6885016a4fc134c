"""Search spaces: a parameter's spec → an Optuna distribution; values ↔ Hydra override text.
Small pure functions, unit-tested; a bad spec is one ``ConfigError`` line naming its key."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping

from omegaconf import OmegaConf

from dinf.errors import ConfigError

SPEC_KEYS = ("low", "high", "log", "step", "choices")
SHAPE = "write {low: a, high: b} (log: true and step: s optional) or {choices: [...]}"


def text(value: Any) -> str:
    """``value`` as Hydra override text: 0.5, 3, true, null, [256,64], tanh."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return _string(value)
    return repr(value) if isinstance(value, float) else str(value)


def _string(s: str) -> str:
    """A string as override text: quoted where Hydra would read another type (nan, 1e-3, true) or
    fail; a list or dict's text (a non-scalar choice, as Optuna holds it) stays as it is."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_override(f"k={s}").value()
    except Exception:  # noqa: BLE001 - not valid unquoted
        value = None
    if (isinstance(value, str) and value == s) or isinstance(value, (list, dict)):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def plain(value: Any) -> Any:
    """An OmegaConf node as plain Python (resolved); anything else unchanged."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def distribution(key: str, spec: Any) -> Any:
    """The Optuna distribution of ``spec``. Ints for ``low``/``high`` (and ``step``) give an integer
    range, floats a real one; a list is short for ``{choices: list}``. Choices that are not scalars
    (a list such as a grid resolution [256, 64]) are offered to Optuna as their override text."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = plain(spec)
    if isinstance(spec, (list, tuple)):
        spec = {"choices": list(spec)}
    if not isinstance(spec, Mapping):
        raise ConfigError(key, f"{SHAPE}, got {spec!r}")
    unknown = [str(k) for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ConfigError(key, f"unknown key {unknown[0]!r} (allowed: {', '.join(SPEC_KEYS)})")
    if "choices" in spec:
        others = [k for k in spec if k != "choices"]
        if others:
            raise ConfigError(key, f"choices cannot be combined with {', '.join(others)}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(key, f"choices must be a non-empty list, got {choices!r}")
        options = [c if _scalar(c) else text(c) for c in choices]
        if len({text(c) for c in options}) != len(options):
            raise ConfigError(key, f"choices repeat a value: {text(choices)}")
        return CategoricalDistribution(options)
    if "low" not in spec or "high" not in spec:
        raise ConfigError(key, f"needs both low and high: {SHAPE}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not (_number(low) and _number(high)):
        raise ConfigError(key, f"low and high must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise ConfigError(key, f"low must be < high, got low={low}, high={high}")
    if not isinstance(log, bool):
        raise ConfigError(key, f"log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(key, f"log: true needs low > 0, got low={low}")
    if step is not None and (not _number(step) or step <= 0):
        raise ConfigError(key, f"step must be a number > 0, got {step!r}")
    if log and step is not None:
        raise ConfigError(key, "log and step cannot be combined")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def space(prefix: str, params: Any) -> Dict[str, Any]:
    """``{key: distribution}`` of a study's ``params``; errors name ``<prefix>.<key>``."""
    params = plain(params)
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError(prefix, f"must map config keys to search ranges, got {params!r}")
    out = {}
    for key, spec in _flat(params).items():
        try:
            out[str(key)] = distribution(str(key), spec)
        except ConfigError as e:
            raise e.prefixed(prefix) from None
    return out


def _flat(params: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested keys as dotted ones: {kernel: {eps: spec}} (as +hydra.sweeper.params.kernel.eps=… makes it)
    is {kernel.eps: spec}; a mapping with none of a spec's keys is a level of keys."""
    out: Dict[str, Any] = {}
    for key, spec in params.items():
        name = f"{prefix}{key}"
        if isinstance(spec, Mapping) and spec and not set(spec) & set(SPEC_KEYS):
            out.update(_flat(spec, name + "."))
        else:
            out[name] = spec
    return out


def default_value(key: str, dist: Any, value: Any) -> Any:
    """The config's own value of ``key`` as a value of ``dist``, for the default trial."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    value = plain(value)
    if isinstance(dist, CategoricalDistribution):
        for c in dist.choices:
            if text(c) == text(value) or (_number(c) and _number(value) and c == value):
                return c
        raise ConfigError(key, f"the default {text(value)} is not among the choices {text(list(dist.choices))}: "
                               f"add it (trial 0 runs the defaults) or set hydra.sweeper.enqueue_defaults=false")
    if not _number(value):
        raise ConfigError(key, f"the default {value!r} is not a number, so it is not in the range")
    if isinstance(dist, IntDistribution):
        if float(value).is_integer():
            return int(value)
        raise ConfigError(key, f"the default {value!r} is not an integer, so it is not in the range")
    return float(value)


def overrides(params: Mapping[str, Any]) -> List[str]:
    """A trial's parameters as Hydra overrides."""
    return [f"{k}={text(v)}" for k, v in params.items()]
