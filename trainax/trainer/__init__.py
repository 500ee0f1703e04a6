"""Trainers: minibatching over substacked trajectory windows, one compiled loop."""

from ._curriculum import Curriculum
from ._general import CallbackContext, GeneralTrainer, NonFiniteLossError
from ._mixer import PermutationMixer
from ._named import (
    DivertedChainBranchOneTrainer,
    DivertedChainTrainer,
    MixChainPostPhysicsTrainer,
    ResiduumTrainer,
    SupervisedTrainer,
)
from ._substack import TrajectorySubStacker, substack_trajectories

__all__ = [
    "CallbackContext",
    "Curriculum",
    "DivertedChainBranchOneTrainer",
    "DivertedChainTrainer",
    "GeneralTrainer",
    "MixChainPostPhysicsTrainer",
    "NonFiniteLossError",
    "PermutationMixer",
    "ResiduumTrainer",
    "SupervisedTrainer",
    "TrajectorySubStacker",
    "substack_trajectories",
]
