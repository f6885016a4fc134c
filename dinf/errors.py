"""Errors raised for bad user input, before any training starts."""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterable, Optional


class ConfigError(ValueError):
    """A config value that cannot work. ``key`` names the option (e.g. ``kernel``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.detail = message
        super().__init__(f"{key}: {message}")

    def __reduce__(self):  # picklable, so a sweep's worker process can report it
        return (ConfigError, (self.key, self.detail))

    def prefixed(self, prefix: str) -> "ConfigError":
        """The same error with its key placed under a config group (``model.kernel``)."""
        return ConfigError(f"{prefix}.{self.key}", self.detail)


class NonFiniteLossError(FloatingPointError):
    """Raised when a loss term is NaN or infinite; training stops."""


def check_choice(key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


def check_int(key: str, value: Any, minimum: int) -> int:
    """An integer (not a bool) of at least ``minimum``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    check(ok, key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def suggest(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate closest to ``word`` (a typo's likely intent), or None."""
    candidates = [str(c) for c in candidates]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if close:
        return close[0]
    # A prefix ("kern" for "kernel") is a likely intent too.
    starts = [c for c in candidates if c.startswith(word) or word.startswith(c)]
    return starts[0] if len(starts) == 1 else None


def require(module: str, key: str, what: str, install: str) -> None:
    """Raise a one-line ``ConfigError`` under ``key`` naming ``install`` when ``module`` cannot
    be imported (missing, or its shared libraries are: gmsh needs libGLU on Linux)."""
    try:
        importlib.import_module(module)
    except (ImportError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(key, f"{what} needs the {module} package, which cannot be imported here ({reason}); "
                          f"{install}") from None
