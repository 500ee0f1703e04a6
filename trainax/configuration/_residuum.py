"""Residuum training: no resolved reference, only a residual of the network's states."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..loss import BaseLoss, MSELoss
from ._base import (
    AbstractRollout,
    check_rollout_options,
    _check_weights,
    time_major,
)


class Residuum(AbstractRollout):
    """Penalise a residuum of consecutive network states, with no reference.

    The network rolls out `T` steps from the window's first state,
    `u_0 = data[0], u_1, ..., u_T`, and

    loss = sum_{t=0}^{T-1} w_t * L(residuum_fn(u_{t+1}, u_t))

    where `L` compares with zero and `residuum_fn(u_next, u_prev)` acts on
    batched states `(B, C, *N)` (for example a Crank-Nicolson residual of the
    PDE, see `tx.sample_data`). Only the windows' first state is used.

    **Arguments:**

    - `num_rollout_steps`: `T`.
    - `time_level_loss`: applied to each residual against zero (default MSE).
    - `cut_bptt`, `cut_bptt_every`, `remat`: as in
        [`Supervised`][trainax.configuration.Supervised].
    - `cut_prev`: stop the gradient through the residuum's `u_prev` input.
    - `cut_next`: stop the gradient through the residuum's `u_next` input.
    - `time_level_weights`: `T` weights (default ones).

    Needs `residuum_fn` at call time.
    """

    num_rollout_steps: int
    time_level_loss: BaseLoss
    cut_bptt: bool
    cut_bptt_every: int
    cut_prev: bool
    cut_next: bool
    time_level_weights: Float[Array, " T"]
    remat: bool

    needs_residuum_fn = True

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_prev: bool = False,
        cut_next: bool = False,
        time_level_weights: Optional[Union[Float[ArrayLike, " T"], Sequence[float]]] = None,
        remat: bool = False,
    ):
        check_rollout_options(num_rollout_steps, cut_bptt_every)
        self.num_rollout_steps = num_rollout_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = cut_bptt_every
        self.cut_prev = bool(cut_prev)
        self.cut_next = bool(cut_next)
        self.time_level_weights = _check_weights(
            "time_level_weights", time_level_weights, num_rollout_steps
        )
        self.remat = bool(remat)

    @property
    def window_length(self) -> int:
        return 1

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None, key=None):
        self.check_data(data)
        self.check_dependencies(ref_stepper, residuum_fn)
        initial = time_major(data)[0]
        predictions = self.rollout(stepper, initial)
        prev = self.cut(jnp.concatenate([initial[None], predictions[:-1]], axis=0), 0)
        nxt = predictions
        if self.cut_prev:
            prev = jax.lax.stop_gradient(prev)
        if self.cut_next:
            nxt = jax.lax.stop_gradient(nxt)
        per_level = jax.vmap(
            lambda n, p: self.time_level_loss(residuum_fn(n, p))
        )(nxt, prev)
        return jnp.sum(self.time_level_weights * per_level)
