"""Built-in processing nodes."""

from .delay import Delay
from .energy_vad import EnergyVad
from .fail_every import FailEvery
from .gain import Gain
from .grayscale import Grayscale
from .identity import Identity
from .repeat import Repeat
from .running_sum import RunningSum

__all__ = [
    "Delay",
    "EnergyVad",
    "FailEvery",
    "Gain",
    "Grayscale",
    "Identity",
    "Repeat",
    "RunningSum",
]
