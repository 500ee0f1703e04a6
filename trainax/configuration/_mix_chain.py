"""Mix chain: the reference solver continues after the network's steps."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import positive_int
from ..loss import BaseLoss, MSELoss
from ._base import (
    AbstractRollout,
    check_rollout_options,
    _check_weights,
    reference_rollout,
    time_major,
    weighted_level_losses,
)


class MixChainPostPhysics(AbstractRollout):
    """The network steps `T` times, then the reference stepper continues `P`
    steps from the network's last state; every level is compared with the data.

    loss = sum_{t=1}^{T+P} w_t * L(c_t, data_t),
    c_t = f^t(u_0) for t <= T,  c_{T+p} = P^p(f^T(u_0))

    Gradients reach the network through the (differentiable) reference steps,
    so the network learns states that the physics carries forward well. Set
    the first `T` weights to zero to supervise only the post-physics levels.
    Windows need `T + P + 1` time levels.

    **Arguments:**

    - `num_rollout_steps`: `T`, the network's steps.
    - `num_post_physics_steps`: `P`, the reference steps after them.
    - `time_level_loss`, `cut_bptt`, `cut_bptt_every`, `remat`: as in
        [`Supervised`][trainax.configuration.Supervised].
    - `time_level_weights`: `T + P` weights (default ones).

    Needs `ref_stepper` at call time.
    """

    num_rollout_steps: int
    num_post_physics_steps: int
    time_level_loss: BaseLoss
    cut_bptt: bool
    cut_bptt_every: int
    time_level_weights: Float[Array, " L"]
    remat: bool

    needs_ref_stepper = True

    def __init__(
        self,
        num_rollout_steps: int = 1,
        num_post_physics_steps: int = 1,
        *,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights: Optional[Union[Float[ArrayLike, " L"], Sequence[float]]] = None,
        remat: bool = False,
    ):
        check_rollout_options(num_rollout_steps, cut_bptt_every)
        positive_int("num_post_physics_steps", num_post_physics_steps)
        self.num_rollout_steps = num_rollout_steps
        self.num_post_physics_steps = num_post_physics_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = cut_bptt_every
        self.time_level_weights = _check_weights(
            "time_level_weights",
            time_level_weights,
            num_rollout_steps + num_post_physics_steps,
        )
        self.remat = bool(remat)

    @property
    def window_length(self) -> int:
        return self.num_rollout_steps + self.num_post_physics_steps + 1

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None, key=None):
        self.check_data(data)
        self.check_dependencies(ref_stepper, residuum_fn)
        trajectory = time_major(data)
        network = self.rollout(stepper, trajectory[0])
        last = self.cut(network[-1:], self.num_rollout_steps)[0]
        physics = reference_rollout(ref_stepper, last, self.num_post_physics_steps)
        chain = jnp.concatenate([network, physics], axis=0)
        targets = trajectory[1 : self.window_length]
        return weighted_level_losses(
            self.time_level_loss, chain, targets, self.time_level_weights
        )
