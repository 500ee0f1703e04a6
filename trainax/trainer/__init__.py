"""Trainers: one compiled loop over minibatches of a data source."""

from ._curriculum import Curriculum
from ..callback import CallbackContext  # noqa: F401  (its home is tx.callback)
from ._general import GeneralTrainer, NonFiniteLossError, step_keys
from ._mixer import PermutationMixer
from ._named import (
    DivertedChainBranchOneTrainer,
    DivertedChainTrainer,
    MixChainPostPhysicsTrainer,
    ResiduumTrainer,
    SupervisedTrainer,
)
from ._sources import AbstractDataSource, Sampler, Samples, Trajectories
from ._substack import TrajectorySubStacker, substack_trajectories
from ._sweep import (
    best_over_learning_rates,
    cosine_adam,
    data_scaling_sweep,
    plot_sweep,
    read_sweep,
    relative_l2,
    sweep_table,
)
from ._transfer import fine_tune, subsample

__all__ = [
    "AbstractDataSource",
    "Curriculum",
    "DivertedChainBranchOneTrainer",
    "DivertedChainTrainer",
    "GeneralTrainer",
    "MixChainPostPhysicsTrainer",
    "NonFiniteLossError",
    "PermutationMixer",
    "ResiduumTrainer",
    "Sampler",
    "Samples",
    "SupervisedTrainer",
    "Trajectories",
    "TrajectorySubStacker",
    "best_over_learning_rates",
    "cosine_adam",
    "data_scaling_sweep",
    "fine_tune",
    "plot_sweep",
    "read_sweep",
    "relative_l2",
    "step_keys",
    "subsample",
    "substack_trajectories",
    "sweep_table",
]
