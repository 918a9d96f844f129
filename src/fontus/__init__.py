"""Fontus: real-time streaming pipelines whose nodes run in-process or on another machine."""

from .core import *  # noqa: F403 - the facade re-exports the core's public names
from .core import __all__ as _core_all

__version__ = "0.1.0"

__all__ = [*_core_all, "__version__"]
