"""Implicit neural representations: FourierNet decoders and latent ODE dynamics.

The DINo method: a state is a field that a [`FourierNet`][trainax.inr.FourierNet]
decodes from one latent code per channel at any point of the domain; a
[`LatentODE`][trainax.inr.LatentODE] moves the codes in time. New observations
get their codes by [`fit_codes`][trainax.inr.fit_codes] (auto-decoding), and
[`forecast`][trainax.inr.forecast] chains the three.
"""

from ._auto_decode import fit_codes, forecast, masked_mse
from ._fourier_net import FourierNet
from ._latent_ode import LatentODE, Swish, SwishMLP
from ._rk4 import RK4

__all__ = [
    "FourierNet",
    "LatentODE",
    "RK4",
    "Swish",
    "SwishMLP",
    "fit_codes",
    "forecast",
    "masked_mse",
]
