"""Small network steppers: periodic convolutions and MLPs.

Every model acts on **one** state, channels first (`(C, *N)`, or `(C,)` for
states without space such as Lorenz-63), and maps it to the next state of
the same shape. Batch with `jax.vmap` at the call site, as with exponax
steppers.
"""

from ._conv import ConvNet, LinearConvStepper
from ._mlp import MLPStepper

__all__ = ["ConvNet", "LinearConvStepper", "MLPStepper"]
