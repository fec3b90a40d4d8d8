"""The ground floor every domain builds on: device, seeds, config, the train loop, checkpoints, data."""

from core.config import TrainConfig
from core.errors import ShowcaseError, UsageError
from core.loop import FitResult, fit
from core.tensor_data import TensorLoader

__all__ = ["FitResult", "ShowcaseError", "TensorLoader", "TrainConfig", "UsageError", "fit"]
