"""The command line's error handling: a mistake in the config ends in one line, not a traceback.

Light on purpose: ``train.py`` imports this before Hydra reads the arguments, so nothing here
may import torch, Lightning, W&B or scipy (``tests/test_cli.py`` checks it). The full Hydra
output stays available with ``HYDRA_FULL_ERROR=1``.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, Callable, Iterable, List, Optional

from omegaconf import DictConfig

from dinf.errors import ConfigError, suggest

FULL_ERROR = "HYDRA_FULL_ERROR"


def unknown_key(full_key: str, valid: Iterable[str], parent: str = "", can_add: bool = True) -> str:
    """``full_key: no such key; did you mean <parent>.<nearest>?`` (or the valid keys, and how to
    add a key the config lacks when ``can_add``)."""
    name = full_key.rsplit(".", 1)[-1]
    valid = sorted(str(v) for v in valid if not str(v).startswith("_") and str(v) != "hydra")
    near = suggest(name, valid)
    prefix = f"{parent}." if parent else ""
    if near is not None:
        return f"{full_key}: no such key; did you mean {prefix}{near}?"
    where = f" under {parent}" if parent else ""
    add = f"; add a new one with +{full_key}=…" if can_add else ""
    return f"{full_key}: no such key{where} (valid: {', '.join(valid)}){add}"


def unknown_option(group: str, option: str, options: List[str]) -> str:
    """``group=option: no such option of group; did you mean …? (options: …)``."""
    near = suggest(option, options)
    hint = f"did you mean {group}={near}? " if near else ""
    return f"{group}={option}: no such option of {group}; {hint}(options: {', '.join(options)})"


def describe(error: BaseException) -> Optional[str]:
    """One line for a user's mistake Hydra or the run reports, or None for a real failure."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(error, ConfigError):
        return str(error)
    if isinstance(error, MissingConfigException):
        missing = getattr(error, "missing_cfg_file", "") or ""
        if "/" in missing and error.options is not None:
            group, option = missing.rsplit("/", 1)
            return unknown_option(group.replace("/", "."), option, list(error.options))
        return str(error).splitlines()[0]
    if isinstance(error, ConfigCompositionException):
        cause = error.__cause__
        full_key = getattr(cause, "full_key", None)
        parent = getattr(cause, "parent_node", None)
        if full_key and isinstance(parent, DictConfig) and "not in struct" in str(cause):
            # The cause names the first missing key of the path (pde.params for pde.params.nu).
            typed = _typed_key(str(error)) or full_key
            parent_key = full_key.rsplit(".", 1)[0] if "." in full_key else ""
            message = unknown_key(full_key, parent.keys(), parent_key)
            if typed == full_key:
                return message
            return f"{typed}: no such key, because {message}"
        return " ".join(str(error).split("\n")[:1])
    if isinstance(error, OverrideParseException):
        return f"cannot read the command line: {str(error).splitlines()[0]}"
    if isinstance(error, ValueError) and _raised_in_hydra(error):  # e.g. two of --cfg, -m, --info
        return f"cannot read the command line: {str(error).splitlines()[0]}"
    return None


def _raised_in_hydra(error: BaseException) -> bool:
    """Whether Hydra itself raised ``error`` (its argument handling), not the run."""
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and os.sep + "hydra" + os.sep in last


def _typed_key(message: str) -> Optional[str]:
    """The key in Hydra's "Could not override 'a.b'." message."""
    m = re.search(r"Could not override '([^']+)'", message)
    return m.group(1) if m else None


# Spellings of earlier versions and what to write instead (issue 27 replaced the optimizer group
# by the solver group, moved the classical methods there and folded the presets into the pde files).
SOLVER_NAMES = {"lsq": "least_squares"}  # the one optimizer whose solver has another name
CLASSICAL = ("fem", "fd", "mol")
PRESETS = {"pinnacle_burgers1d_gn": "burgers1d", "pinnacle_poisson2d_c": "poisson2d_c",
           "pinnacle_poisson2d_cg": "poisson2d_cg", "pinnacle_heat2d_ms": "heat2d_ms",
           "pinnacle_wave1d": "wave1d", "pinnacle_ns2d_c_gn": "ns2d_c", "helmholtz_lsq": "helmholtz"}
ADAM_PRESETS = ("pinnacle_burgers1d", "pinnacle_ns2d_c")  # still experiments: Adam on 4 levels


def renamed(arg: str) -> Optional[str]:
    """What to write instead of an earlier version's spelling ``arg`` (None: not one)."""
    key, _, value = arg.lstrip("+~").partition("=")
    values = value.split(",")
    if key == "optimizer":
        new = ",".join(SOLVER_NAMES.get(v, v) for v in values)
        return f"{arg}: the optimizer group is now the solver group; write solver={new}"
    if key.startswith("optimizer."):
        rest = key.split(".", 2)
        if rest[1] in ("lsq", "gauss_newton", "newton") and len(rest) == 3:
            return f"{arg}: write solver.{rest[2]}={value} (with solver={SOLVER_NAMES.get(rest[1], rest[1])})"
        if rest[1] == "optim" and rest[-1] == "lr":
            return f"{arg}: Adam's learning rate is the model's; write model.lr={value}"
        return f"{arg}: the optimizer group is now the solver group; write solver.{key.split('.', 1)[1]}={value}"
    if key == "lr":
        return f"{arg}: Adam's learning rate is the model's; write model.lr={value}"
    classical = next((v for v in values if v in CLASSICAL), None)
    if key == "model" and classical:
        return (f"{arg}: the classical methods are solvers now; write solver={classical} "
                f"(a sweep: solver=auto,{classical})")
    if key.split(".")[0] in CLASSICAL and "." in key:
        return f"{arg}: write solver.{key.split('.', 1)[1]}={value} with solver={key.split('.')[0]}"
    if key == "preset" and any(v in ADAM_PRESETS for v in values):
        return (f"{arg}: a pde file now carries its best settings (pde=<name>); the Adam presets are "
                f"experiment={','.join(values)}")
    if key == "preset" or (key == "experiment" and any(v in PRESETS for v in values)):
        new = ",".join(PRESETS.get(v, v.replace("pinnacle_", "")) for v in values)
        return f"{arg}: a pde file now carries its best settings; write pde={new}"
    return None


def run(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; a config mistake exits with ``error: <one line>``.

    Hydra prints its own multi-line report unless ``HYDRA_FULL_ERROR`` is set; setting it here
    hands the exception to us. A user who set it gets Hydra's full traceback as before.
    """
    for arg in sys.argv[1:]:
        line = renamed(arg)
        if line is not None:
            sys.exit(f"error: {line}")
    full = os.environ.get(FULL_ERROR) == "1"
    os.environ[FULL_ERROR] = "1"
    try:
        main()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit("interrupted")
    except Exception as e:  # noqa: BLE001 - everything not a user's mistake is re-raised
        line = None if full else describe(e)
        if line is None:
            raise
        sys.exit(f"error: {line}")
    finally:
        if not full:
            os.environ.pop(FULL_ERROR, None)


def source_key(cfg: DictConfig, key: str) -> str:
    """The key whose value ``key`` shows: ``model.eps`` → ``kernel.eps`` when the model's eps is
    ``${kernel.eps}``, so an error names the option the user sets, not an interpolated copy."""
    seen = {key}
    while True:
        node = _raw(cfg, key)
        m = re.fullmatch(r"\$\{([A-Za-z_][\w.]*)\}", node) if isinstance(node, str) else None
        if m is None or m.group(1) in seen:
            return key
        key = m.group(1)
        seen.add(key)


def from_best(cfg: DictConfig, key: str) -> bool:
    """Whether ``key`` holds its file's default read off the problem's ``best:`` block (the
    unresolved ``${oc.select:pde.best.…}``), not a value the user wrote."""
    raw = _raw(cfg, key)
    return isinstance(raw, str) and raw.startswith("${oc.select:pde.best.")


def _raw(cfg: DictConfig, key: str) -> Any:
    """The unresolved value at a dotted key (None if absent)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node._get_node(part)
    return node._value() if not isinstance(node, DictConfig) else None


_NUMBER = (int, float)


def mistyped(value: Any, annotation: Any) -> Optional[str]:
    """What is wrong with ``value`` for a parameter annotated ``annotation`` (None if nothing, or
    if the annotation is not a plain bool/int/float/str or an Optional/Union of them)."""
    import types
    import typing

    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    args = typing.get_args(annotation) if union else (annotation,)
    # A tensor-valued option (torch's lr) takes numbers from a config: check it as one.
    args = tuple(float if getattr(a, "__name__", "") == "Tensor" else a for a in args)
    allowed = [a for a in args if a is not type(None)]
    if value is None:
        return None if type(None) in args or not allowed else "must not be null"
    if not allowed or any(a not in (bool, int, float, str) for a in allowed):
        return None  # a type this check does not know: the class checks it
    ok = any(
        (a is bool and isinstance(value, bool))
        or (a is int and isinstance(value, int) and not isinstance(value, bool))
        or (a is float and isinstance(value, _NUMBER) and not isinstance(value, bool))
        or (a is str and isinstance(value, str))
        for a in allowed
    )
    if ok:
        return None
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    wanted = list(dict.fromkeys(names[a] for a in allowed))
    return f"must be {' or '.join(wanted)}, got {value!r}"


def check_types(target: Callable[..., Any], values: dict, path: str) -> Optional[ConfigError]:
    """The first value of ``values`` (a config node's items) whose type contradicts ``target``'s
    signature, as a ``ConfigError`` under ``path``; None if all fit."""
    import inspect

    try:
        params = inspect.signature(target, eval_str=True).parameters
    except Exception:  # noqa: BLE001 - unresolvable hints: leave the check to the class
        return None
    for name, value in values.items():
        param = params.get(name)
        if param is None or param.annotation is inspect.Parameter.empty:
            continue
        problem = mistyped(value, param.annotation)
        if problem is not None:
            return ConfigError(f"{path}.{name}", problem)
    return None


def check_run_config(cfg: DictConfig) -> None:
    """Values checked before anything heavy is imported: the seed and the trainer's step counts."""
    seed = cfg.get("seed")
    if not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise ConfigError("seed", f"must be an integer, got {seed!r}")
    trainer = cfg.get("trainer") or {}
    steps = trainer.get("max_steps", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise ConfigError("trainer.max_steps", f"must be a positive integer, got {steps!r}")
    every = trainer.get("val_check_interval", 1)
    ok = (isinstance(every, int) and not isinstance(every, bool) and every >= 1) or (
        isinstance(every, float) and 0.0 < every <= 1.0)
    if not ok:
        raise ConfigError("trainer.val_check_interval",
                          f"must be a number of steps >= 1 (or a fraction in (0, 1]), got {every!r}")
    for key in ("log_every_n_steps",):
        value = trainer.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"trainer.{key}", f"must be a positive integer, got {value!r}")


def announce(info: dict) -> None:
    """The run's first line, before the seconds of importing torch and Lightning."""
    from hydra.core.hydra_config import HydraConfig

    choices = info.get("choices", {})
    what = " ".join(f"{k}={choices[k]}" for k in ("pde", "model", "solver", "experiment") if choices.get(k))
    where = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else os.getcwd()
    logging.getLogger("train").info("%s → %s", what or "run", os.path.relpath(where))


class ConsoleFormatter(logging.Formatter):
    """``[12:03:41] message`` on the console; warnings and errors keep their level in front.
    (The run folder's log file keeps Hydra's full format.)"""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno >= logging.WARNING:
            stamp, _, rest = line.partition("] ")
            line = f"{stamp}] {record.levelname}: {rest}"
        return line
