"""Supervised (one-step or unrolled) training against the data."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from jaxtyping import Array, ArrayLike, Float

from ..loss import BaseLoss, MSELoss
from ._base import (
    AbstractRollout,
    check_rollout_options,
    _check_weights,
    time_major,
    weighted_level_losses,
)


class Supervised(AbstractRollout):
    """Roll the network out from the window's first state and compare each
    prediction with the reference state at the same time level.

    loss = sum_{t=1}^{T} w_t * time_level_loss(f^t(u_0), u_t)

    `num_rollout_steps=1` is one-step supervised training; larger values are
    unrolled (autoregressive) training. Windows need `T + 1` time levels.

    **Arguments:**

    - `num_rollout_steps`: `T`, the number of autoregressive network steps.
    - `time_level_loss`: the [`BaseLoss`][trainax.loss.BaseLoss] applied at
        each time level (default MSE).
    - `cut_bptt`: truncated backpropagation through time: the network output
        `u_k` is cut (stop-gradiented) for every later use, so a loss reaches
        only the step that produced its state. In the other rollout
        configurations the cut state is also what a reference branch, the
        post-physics steps or the residuum's `u_prev` start from.
    - `cut_bptt_every`: with `cut_bptt`, cut only the outputs `u_k` with `k` a
        multiple of `cut_bptt_every`, so gradients flow back at most that many
        steps.
    - `time_level_weights`: `T` weights, one per time level (default ones).
    - `remat`: rematerialise each rollout step on the backward pass
        (`jax.checkpoint`), trading compute for memory in long rollouts.

    ```python
    cfg = tx.configuration.Supervised(num_rollout_steps=5)
    model = tx.nn.LinearConvStepper(1, kernel_size=2, key=jr.PRNGKey(0))
    windows = jnp.ones((4, 6, 1, 16))  # (B, T + 1, C, *N)
    loss = cfg(model, windows)
    ```
    """

    num_rollout_steps: int
    time_level_loss: BaseLoss
    cut_bptt: bool
    cut_bptt_every: int
    time_level_weights: Float[Array, " T"]
    remat: bool

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        time_level_weights: Optional[Union[Float[ArrayLike, " T"], Sequence[float]]] = None,
        remat: bool = False,
    ):
        check_rollout_options(num_rollout_steps, cut_bptt_every)
        self.num_rollout_steps = num_rollout_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = cut_bptt_every
        self.time_level_weights = _check_weights(
            "time_level_weights", time_level_weights, num_rollout_steps
        )
        self.remat = bool(remat)

    @property
    def window_length(self) -> int:
        return self.num_rollout_steps + 1

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None, key=None):
        self.check_data(data)
        trajectory = time_major(data)
        predictions = self.rollout(stepper, trajectory[0])
        targets = trajectory[1 : self.num_rollout_steps + 1]
        return weighted_level_losses(
            self.time_level_loss, predictions, targets, self.time_level_weights
        )
