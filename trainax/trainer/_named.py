"""Named trainers: a configuration picked for you, the rest as in GeneralTrainer."""

from __future__ import annotations

from typing import Callable

from ..configuration import (
    DivertedChain,
    DivertedChainBranchOne,
    MixChainPostPhysics,
    Residuum,
    Supervised,
)
from ..loss import BaseLoss, MSELoss
from ._general import GeneralTrainer
from ._sources import AbstractDataSource, Trajectories


def _taxonomy_windows(data_trajectories, configuration, do_sub_stacking, kwargs):
    """Windows of `num_rollout_steps + 1` levels for every named trainer (as the
    rollout taxonomy cuts them), also where the configuration uses one state;
    the mix chain's windows also hold its post-physics levels."""
    if isinstance(data_trajectories, AbstractDataSource):
        return data_trajectories
    return Trajectories(
        data_trajectories,
        window_length=max(configuration.num_rollout_steps + 1, configuration.window_length),
        do_sub_stacking=do_sub_stacking,
        host=kwargs.pop("host_data", None),
    )


class SupervisedTrainer(GeneralTrainer):
    """Supervised rollout training: [`Supervised`][trainax.configuration.Supervised]
    in a [`GeneralTrainer`][trainax.trainer.GeneralTrainer].

    ```python
    data = tx.sample_data.advection_1d_periodic(num_samples=4, key=jr.PRNGKey(0))
    model = tx.nn.LinearConvStepper(1, kernel_size=2, key=jr.PRNGKey(1))
    trainer = tx.trainer.SupervisedTrainer(data, num_rollout_steps=5,
        optimizer=optax.adam(1e-3), num_training_steps=50, batch_size=32,
        progress_bar=False)
    model, loss_history = trainer(model, key=jax.random.PRNGKey(0))
    ```

    Configuration arguments: `num_rollout_steps`, `time_level_loss`,
    `cut_bptt`, `cut_bptt_every`, `time_level_weights`, `remat`; every other
    keyword goes to `GeneralTrainer`.

    The trajectories `data_trajectories` are cut into windows of
    `num_rollout_steps + 1` time levels (for every named trainer, as in the
    rollout taxonomy; the mix chain's windows also hold its post-physics
    levels); `do_sub_stacking=False` takes only the first window of each
    trajectory. A `GeneralTrainer` given a configuration alone cuts the
    windows that configuration needs, so configurations that use one state
    (`DivertedChain`, `Residuum`) start from every state of the data.
    """

    def __init__(
        self,
        data_trajectories,
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
        do_sub_stacking: bool = True,
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
        data = _taxonomy_windows(
            data_trajectories, configuration, do_sub_stacking, trainer_kwargs
        )
        super().__init__(
            data, configuration, optimizer, num_training_steps, batch_size,
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
        data_trajectories,
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
        do_sub_stacking: bool = True,
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
        data = _taxonomy_windows(
            data_trajectories, configuration, do_sub_stacking, trainer_kwargs
        )
        super().__init__(
            data, configuration, optimizer, num_training_steps, batch_size,
            ref_stepper=ref_stepper, **trainer_kwargs,
        )


class DivertedChainBranchOneTrainer(GeneralTrainer):
    """Diverted chain with one-step branches against `ref_stepper`:
    [`DivertedChainBranchOne`][trainax.configuration.DivertedChainBranchOne]
    in a [`GeneralTrainer`][trainax.trainer.GeneralTrainer].

    ```python
    data, stepper = tx.sample_data.advection_1d_periodic(
        num_samples=4, key=jr.PRNGKey(0), return_stepper=True)
    trainer = tx.trainer.DivertedChainBranchOneTrainer(data,
        ref_stepper=stepper, num_rollout_steps=5, optimizer=optax.adam(1e-3),
        num_training_steps=1000, batch_size=32)
    ```

    Configuration arguments: `num_rollout_steps`, `time_level_loss`,
    `cut_bptt`, `cut_bptt_every`, `cut_div_chain`, `time_level_weights`,
    `remat`.
    """

    def __init__(
        self,
        data_trajectories,
        *,
        ref_stepper: Callable,
        optimizer,
        num_training_steps: int,
        batch_size: int,
        num_rollout_steps: int = 1,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights=None,
        remat: bool = False,
        do_sub_stacking: bool = True,
        **trainer_kwargs,
    ):
        if "num_branch_steps" in trainer_kwargs:
            raise TypeError(
                "DivertedChainBranchOneTrainer fixes `num_branch_steps` to 1; use "
                "DivertedChainTrainer for longer branches."
            )
        configuration = DivertedChainBranchOne(
            num_rollout_steps,
            time_level_loss=time_level_loss,
            cut_bptt=cut_bptt,
            cut_bptt_every=cut_bptt_every,
            cut_div_chain=cut_div_chain,
            time_level_weights=time_level_weights,
            remat=remat,
        )
        data = _taxonomy_windows(
            data_trajectories, configuration, do_sub_stacking, trainer_kwargs
        )
        super().__init__(
            data, configuration, optimizer, num_training_steps, batch_size,
            ref_stepper=ref_stepper, **trainer_kwargs,
        )


class MixChainPostPhysicsTrainer(GeneralTrainer):
    """Mix-chain training: [`MixChainPostPhysics`][trainax.configuration.MixChainPostPhysics]
    (the network's steps continued by `ref_stepper`) in a
    [`GeneralTrainer`][trainax.trainer.GeneralTrainer].
    """

    def __init__(
        self,
        data_trajectories,
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
        do_sub_stacking: bool = True,
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
        data = _taxonomy_windows(
            data_trajectories, configuration, do_sub_stacking, trainer_kwargs
        )
        super().__init__(
            data, configuration, optimizer, num_training_steps, batch_size,
            ref_stepper=ref_stepper, **trainer_kwargs,
        )


class ResiduumTrainer(GeneralTrainer):
    """Residuum training: [`Residuum`][trainax.configuration.Residuum] with
    `residuum_fn(u_next, u_prev)` in a [`GeneralTrainer`][trainax.trainer.GeneralTrainer].
    """

    def __init__(
        self,
        data_trajectories,
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
        do_sub_stacking: bool = True,
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
        data = _taxonomy_windows(
            data_trajectories, configuration, do_sub_stacking, trainer_kwargs
        )
        super().__init__(
            data, configuration, optimizer, num_training_steps, batch_size,
            residuum_fn=residuum_fn, **trainer_kwargs,
        )
