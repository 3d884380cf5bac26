"""synthgrad_core: train dense nets with backprop, DNI, cDNI or feedback alignment, in numpy."""

from .config import ConfigError, TrainConfig
from .data import Dataset, load_dataset
from .factory import make_trainer
from .records import dumps, json_safe
from .trainer import Record, Trainer, without_timing

__all__ = [
    "ConfigError",
    "Dataset",
    "Record",
    "TrainConfig",
    "Trainer",
    "dumps",
    "json_safe",
    "load_dataset",
    "make_trainer",
    "without_timing",
]
__version__ = "0.1.0"
