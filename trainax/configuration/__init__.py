"""Configurations: how the network, a reference stepper and a residuum interplay.

Each is a callable PyTree `config(stepper, data, *, ref_stepper=None,
residuum_fn=None) -> scalar loss`, with `data` one minibatch of trajectory
windows `(B, W, C, *N)`.
"""

from ._base import BaseConfiguration, Composite, exponential_time_level_weights
from ._diverted_chain import DivertedChain, DivertedChainBranchOne
from ._mix_chain import MixChainPostPhysics
from ._residuum import Residuum
from ._supervised import Supervised

__all__ = [
    "BaseConfiguration",
    "Composite",
    "DivertedChain",
    "DivertedChainBranchOne",
    "MixChainPostPhysics",
    "Residuum",
    "Supervised",
    "exponential_time_level_weights",
]
