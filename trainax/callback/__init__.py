"""Callbacks: run every k steps between compiled chunks of training."""

from ._base import BaseCallback, CompositeCallback
from ._context import CallbackContext
from ._callbacks import (
    BestModel,
    GetNetwork,
    GradNorm,
    Loss,
    SaveNetwork,
    ValidationRollout,
    WeightNorm,
)

__all__ = [
    "BaseCallback",
    "BestModel",
    "CallbackContext",
    "CompositeCallback",
    "GetNetwork",
    "GradNorm",
    "Loss",
    "SaveNetwork",
    "ValidationRollout",
    "WeightNorm",
]
