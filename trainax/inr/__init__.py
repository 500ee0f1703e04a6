"""Implicit neural representations: FourierNet decoders and latent ODE dynamics.

The DINo method: a state is a field that a [`FourierNet`][trainax.inr.FourierNet]
decodes from one latent code per channel at any point of the domain; a
[`LatentODE`][trainax.inr.LatentODE] moves the codes in time. New observations
get their codes by [`fit_codes`][trainax.inr.fit_codes] (auto-decoding), and
[`forecast`][trainax.inr.forecast] chains the three. Training is the trainer's:
an [`AutoDecoder`][trainax.inr.AutoDecoder] holds the table of codes, the
decoder and the dynamics, `tx.configuration.AutoDecoding` is the loss, and
[`auto_decoder_optimizer`][trainax.inr.auto_decoder_optimizer] gives each part
its optimizer.
"""

from ._auto_decode import fit_codes, forecast, masked_mse
from ._auto_decoder import AutoDecoder, auto_decoder_optimizer, step_counter
from ._fourier_net import FourierNet
from ._latent_ode import LatentODE, Swish, SwishMLP
from ._rk4 import RK4

__all__ = [
    "AutoDecoder",
    "FourierNet",
    "LatentODE",
    "RK4",
    "Swish",
    "SwishMLP",
    "auto_decoder_optimizer",
    "fit_codes",
    "forecast",
    "masked_mse",
    "step_counter",
]
