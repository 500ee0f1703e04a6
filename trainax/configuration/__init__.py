"""Configurations: how the model, the data, a reference stepper and a residuum interplay.

Each is a callable PyTree `config(model, batch, *, ref_stepper=None,
residuum_fn=None, key=None) -> scalar loss`. Trajectory configurations take a
minibatch of windows `(B, W, C, *N)`; sample configurations the minibatch of a
`Samples` or `Sampler` source, such as pairs `(inputs, targets)`.
"""

from ._auto_decode import AutoDecoding
from ._base import (
    AbstractRollout,
    BaseConfiguration,
    Composite,
    cut_states,
    exponential_time_level_weights,
    network_rollout,
)
from ._diverted_chain import DivertedChain, DivertedChainBranchOne
from ._mix_chain import MixChainPostPhysics
from ._operator import OperatorLearning
from ._physics_informed import PhysicsInformed
from ._residuum import Residuum
from ._spectral import GridResidual, SpectralResidual
from ._supervised import Supervised

__all__ = [
    "AbstractRollout",
    "AutoDecoding",
    "BaseConfiguration",
    "Composite",
    "DivertedChain",
    "DivertedChainBranchOne",
    "GridResidual",
    "MixChainPostPhysics",
    "OperatorLearning",
    "PhysicsInformed",
    "Residuum",
    "SpectralResidual",
    "Supervised",
    "cut_states",
    "exponential_time_level_weights",
    "network_rollout",
]
