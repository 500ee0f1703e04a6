"""Time-level losses: compare one state `(C, *N)` with a reference (or zero).

Every loss is an Equinox module with `single_batch(prediction, target=None)`
on one state and `__call__`/`multi_batch` on a batch `(B, C, *N)` (mean over
the batch). Losses compose: `MSELoss() + 0.1 * SobolevLoss(orders=(1,))`.
"""

from ._base import BaseLoss, ScaledLoss, SumLoss
from ._channel_weighted import ChannelWeightedLoss
from ._mae import MAELoss, Normalized_MAELoss
from ._mse import MSELoss, Normalized_MSELoss
from ._rmse import Normalized_RMSELoss, RMSELoss
from ._sobolev import SobolevLoss

__all__ = [
    "BaseLoss",
    "ChannelWeightedLoss",
    "MAELoss",
    "MSELoss",
    "Normalized_MAELoss",
    "Normalized_MSELoss",
    "Normalized_RMSELoss",
    "RMSELoss",
    "ScaledLoss",
    "SobolevLoss",
    "SumLoss",
]
