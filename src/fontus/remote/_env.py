"""Settings read from the environment (``FONTUS_EVENT_LOOP``, ``FONTUS_VALUE_TREES``)."""

from __future__ import annotations

import os

from ..core.errors import ConfigError

__all__ = ["env_choice"]


def env_choice(name: str, choices: tuple[str, ...], unset_means: str) -> str:
    """The value of ``name`` (case and spaces ignored; unset or empty: ``choices[0]``).

    Anything else is refused naming the variable, the choices and what unsetting it does.
    """
    raw = os.environ.get(name)
    choice = (raw or "").strip().lower() or choices[0]
    if choice not in choices:
        raise ConfigError(
            f"{name}={raw!r} is not one of {', '.join(choices)} (unset it to {unset_means})"
        )
    return choice
