"""Errors raised for bad user input, before any training starts."""
from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """A config value that cannot work. ``key`` names the option (e.g. ``kernel``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.detail = message
        super().__init__(f"{key}: {message}")

    def prefixed(self, prefix: str) -> "ConfigError":
        """The same error with its key placed under a config group (``model.kernel``)."""
        return ConfigError(f"{prefix}.{self.key}", self.detail)


def check_choice(key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)
