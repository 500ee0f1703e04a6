"""Named trainers: a configuration picked for you, the rest as in GeneralTrainer."""

from __future__ import annotations

from typing import Callable

from ..configuration import (
    DivertedChain,
    MixChainPostPhysics,
    Residuum,
    Supervised,
)
from ..loss import BaseLoss, MSELoss
from ._general import GeneralTrainer


class SupervisedTrainer(GeneralTrainer):
    """Supervised rollout training: [`Supervised`][trainax.configuration.Supervised]
    in a [`GeneralTrainer`][trainax.trainer.GeneralTrainer].

    ```python
    trainer = tx.trainer.SupervisedTrainer(data, num_rollout_steps=5,
        optimizer=optax.adam(1e-3), num_training_steps=1000, batch_size=32)
    model, loss_history = trainer(model, key=jax.random.PRNGKey(0))
    ```

    Configuration arguments: `num_rollout_steps`, `time_level_loss`,
    `cut_bptt`, `cut_bptt_every`, `time_level_weights`, `remat`; every other
    keyword goes to `GeneralTrainer`.
    """

    def __init__(
        self,
        trajectories,
        *,
        optimizer,
        num_training_steps: int,
        batch_size: int,
        num_rollout_steps: int = 1,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
        remat: bool = False,
        **trainer_kwargs,
    ):
        configuration = Supervised(
            num_rollout_steps,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            time_level_weights=time_level_weights,
            remat=remat,
        )
        super().__init__(
            trajectories, configuration, optimizer, num_training_steps, batch_size,
            **trainer_kwargs,
        )


class DivertedChainTrainer(GeneralTrainer):
    """Diverted-chain training against `ref_stepper`:
    [`DivertedChain`][trainax.configuration.DivertedChain] in a
    [`GeneralTrainer`][trainax.trainer.GeneralTrainer].

    Configuration arguments: `num_rollout_steps`, `num_branch_steps`,
    `time_level_loss`, `cut_bptt`, `cut_bptt_every`, `cut_div_chain`,
    `time_level_weights`, `branch_level_weights`, `remat`.
    """

    def __init__(
        self,
        trajectories,
        *,
        ref_stepper: Callable,
        optimizer,
        num_training_steps: int,
        batch_size: int,
        num_rollout_steps: int = 1,
        num_branch_steps: int = 1,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights=None,
        branch_level_weights=None,
        remat: bool = False,
        **trainer_kwargs,
    ):
        configuration = DivertedChain(
            num_rollout_steps,
            num_branch_steps,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            cut_div_chain=cut_div_chain,
            time_level_weights=time_level_weights,
            branch_level_weights=branch_level_weights,
            remat=remat,
        )
        super().__init__(
            trajectories, configuration, optimizer, num_training_steps, batch_size,
            ref_stepper=ref_stepper, **trainer_kwargs,
        )


class DivertedChainBranchOneTrainer(DivertedChainTrainer):
    """Diverted chain with one-step branches (`num_branch_steps=1`) against
    `ref_stepper`; the other arguments as in
    [`DivertedChainTrainer`][trainax.trainer.DivertedChainTrainer].

    ```python
    trainer = tx.trainer.DivertedChainBranchOneTrainer(data,
        ref_stepper=stepper, num_rollout_steps=5, optimizer=optax.adam(1e-3),
        num_training_steps=1000, batch_size=32)
    ```
    """

    def __init__(self, trajectories, **kwargs):
        if "num_branch_steps" in kwargs:
            raise TypeError(
                "DivertedChainBranchOneTrainer fixes `num_branch_steps` to 1; use "
                "DivertedChainTrainer for longer branches."
            )
        super().__init__(trajectories, num_branch_steps=1, **kwargs)


class MixChainPostPhysicsTrainer(GeneralTrainer):
    """Mix-chain training: [`MixChainPostPhysics`][trainax.configuration.MixChainPostPhysics]
    (the network's steps continued by `ref_stepper`) in a
    [`GeneralTrainer`][trainax.trainer.GeneralTrainer].
    """

    def __init__(
        self,
        trajectories,
        *,
        ref_stepper: Callable,
        optimizer,
        num_training_steps: int,
        batch_size: int,
        num_rollout_steps: int = 1,
        num_post_physics_steps: int = 1,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights=None,
        remat: bool = False,
        **trainer_kwargs,
    ):
        configuration = MixChainPostPhysics(
            num_rollout_steps,
            num_post_physics_steps,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            time_level_weights=time_level_weights,
            remat=remat,
        )
        super().__init__(
            trajectories, configuration, optimizer, num_training_steps, batch_size,
            ref_stepper=ref_stepper, **trainer_kwargs,
        )


class ResiduumTrainer(GeneralTrainer):
    """Residuum training: [`Residuum`][trainax.configuration.Residuum] with
    `residuum_fn(u_next, u_prev)` in a [`GeneralTrainer`][trainax.trainer.GeneralTrainer].
    """

    def __init__(
        self,
        trajectories,
        *,
        residuum_fn: Callable,
        optimizer,
        num_training_steps: int,
        batch_size: int,
        num_rollout_steps: int = 1,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_prev: bool = False,
        cut_next: bool = False,
        time_level_weights=None,
        remat: bool = False,
        **trainer_kwargs,
    ):
        configuration = Residuum(
            num_rollout_steps,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            cut_prev=cut_prev,
            cut_next=cut_next,
            time_level_weights=time_level_weights,
            remat=remat,
        )
        super().__init__(
            trajectories, configuration, optimizer, num_training_steps, batch_size,
            residuum_fn=residuum_fn, **trainer_kwargs,
        )
