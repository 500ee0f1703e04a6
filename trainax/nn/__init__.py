"""Network models: periodic convolutions, MLPs and the Fourier neural operator.

Every model acts on **one** state, channels first (`(C, *N)`, or `(C,)` for
states without space such as Lorenz-63), and returns a state on the same
grid; the steppers keep the channels, `ConvNet` and `FNO` may change them.
Batch with `jax.vmap` at the call site, as with exponax steppers.
"""

from ._conv import ConvNet, LinearConvStepper
from ._fno import FNO, SpectralConv
from ._mlp import MLPStepper
from ._spectral_operator import SpectralOperator

__all__ = [
    "FNO", "ConvNet", "LinearConvStepper", "MLPStepper", "SpectralConv", "SpectralOperator",
]
