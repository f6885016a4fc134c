"""Errors raised for bad user input, before any training starts."""
from __future__ import annotations

from typing import Any, Iterable


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
