"""Diverted chains: a reference solver branches off the network's own states."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import positive_int
from ..loss import BaseLoss, MSELoss
from ._base import (
    AbstractRollout,
    check_rollout_options,
    _check_weights,
    reference_rollout,
    time_major,
)


class DivertedChain(AbstractRollout):
    """The reference stepper branches off the network's main chain.

    The network rolls out `T` steps from the data's initial state, giving
    `u_0 = data[0], u_1, ..., u_T`. From each main-chain state `u_s`,
    `s = 0..T-B`, the reference stepper `P` runs a branch of `B` steps and
    the network's states are compared with it:

    loss = sum_{s=0}^{T-B} sum_{j=1}^{B} w_s * v_j * L(u_{s+j}, P^j(u_s))

    With `B = 1` (see [`DivertedChainBranchOne`][trainax.configuration.DivertedChainBranchOne])
    each network step is compared with one reference step from the same
    input. With `B = T` there is one branch, from the data's initial state:
    when the data were made by `P`, this is exactly
    [`Supervised`][trainax.configuration.Supervised]. Only the windows' first
    state is used (`window_length == 1`).

    **Arguments:**

    - `num_rollout_steps`: `T`, the length of the network's main chain.
    - `num_branch_steps`: `B`, the length of each reference branch (`1..T`).
    - `time_level_loss`: the loss at each level (default MSE), called as
        `L(network_state, reference_state)`.
    - `cut_bptt`, `cut_bptt_every`: truncate backpropagation through the
        network's main chain (as in `Supervised`); a branch starts from the
        cut state, and the network's steps along a branch from `u_s` are cut
        at the same indices `s + j` as the main chain.
    - `cut_div_chain`: stop the gradient through the reference branches
        (the branch starts `u_s` are stop-gradiented), so no gradient flows
        through the differentiable solver.
    - `time_level_weights`: `T - B + 1` weights `w_s`, one per branch start;
        an array of `T` weights (as in the other configurations) is accepted
        too, and its first `T - B + 1` entries weight the branches.
    - `branch_level_weights`: `B` weights `v_j`, one per step within a branch.
    - `remat`: rematerialise each network step on the backward pass.

    Needs `ref_stepper` at call time.
    """

    num_rollout_steps: int
    num_branch_steps: int
    time_level_loss: BaseLoss
    cut_bptt: bool
    cut_bptt_every: int
    cut_div_chain: bool
    time_level_weights: Float[Array, " S"]
    branch_level_weights: Float[Array, " B"]
    remat: bool

    needs_ref_stepper = True

    def __init__(
        self,
        num_rollout_steps: int = 1,
        num_branch_steps: int = 1,
        *,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights: Optional[Union[Float[ArrayLike, " S"], Sequence[float]]] = None,
        branch_level_weights: Optional[Union[Float[ArrayLike, " B"], Sequence[float]]] = None,
        remat: bool = False,
    ):
        check_rollout_options(num_rollout_steps, cut_bptt_every)
        positive_int("num_branch_steps", num_branch_steps)
        if num_branch_steps > num_rollout_steps:
            raise ValueError(
                "`num_branch_steps` must be at most `num_rollout_steps` "
                f"({num_rollout_steps}), got {num_branch_steps}."
            )
        self.num_rollout_steps = num_rollout_steps
        self.num_branch_steps = num_branch_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = cut_bptt_every
        self.cut_div_chain = bool(cut_div_chain)
        num_branches = num_rollout_steps - num_branch_steps + 1
        if time_level_weights is not None:
            given = np.shape(time_level_weights)
            if given == (num_rollout_steps,):
                time_level_weights = np.asarray(time_level_weights)[:num_branches]
            elif given != (num_branches,):
                raise ValueError(
                    "`time_level_weights` must hold one weight per branch start "
                    f"(shape ({num_branches},)) or one per rollout step (shape "
                    f"({num_rollout_steps},), the first {num_branches} used); got "
                    f"shape {given}."
                )
        self.time_level_weights = _check_weights(
            "time_level_weights", time_level_weights, num_branches
        )
        self.branch_level_weights = _check_weights(
            "branch_level_weights", branch_level_weights, num_branch_steps
        )
        self.remat = bool(remat)

    @property
    def window_length(self) -> int:
        return 1

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None, key=None):
        self.check_data(data)
        self.check_dependencies(ref_stepper, residuum_fn)
        T, B = self.num_rollout_steps, self.num_branch_steps
        num_branches = T - B + 1
        initial = time_major(data)[0]
        predictions = self.rollout(stepper, initial)
        chain = jnp.concatenate([initial[None], predictions], axis=0)  # u_0..u_T
        starts = self.cut(chain[:num_branches], 0)
        if self.cut_div_chain:
            starts = jax.lax.stop_gradient(starts)
        # branches[s, j-1] = P^j(u_s)
        branches = jax.vmap(lambda u: reference_rollout(ref_stepper, u, B))(starts)
        # network[s, j-1] = u_{s+j}
        index = jnp.arange(num_branches)[:, None] + jnp.arange(B)[None, :]
        network = predictions[index]
        per_level = jax.vmap(jax.vmap(self.time_level_loss))(network, branches)
        weights = self.time_level_weights[:, None] * self.branch_level_weights[None, :]
        return jnp.sum(weights * per_level)


class DivertedChainBranchOne(AbstractRollout):
    """The diverted chain with branches of one step.

    Each network step `u_{t+1} = f(u_t)` is compared with one reference step
    from the same input, `P(u_t)`:

    loss = sum_{t=0}^{T-1} w_t * L(u_{t+1}, P(u_t))

    Equal in value (losses and gradients) to `DivertedChain(T, 1, ...)`, and
    a class of its own so that it prints, and `isinstance` checks, under its
    own name. `time_level_weights` holds `T` weights.

    ```python
    cfg = tx.configuration.DivertedChainBranchOne(num_rollout_steps=5)
    ref = lambda u: 0.9 * u
    model = lambda u: 0.8 * u
    cfg(model, jnp.ones((4, 1, 1, 8)), ref_stepper=ref)
    ```
    """

    num_rollout_steps: int
    time_level_loss: BaseLoss
    cut_bptt: bool
    cut_bptt_every: int
    cut_div_chain: bool
    time_level_weights: Float[Array, " T"]
    remat: bool

    needs_ref_stepper = True

    def __init__(
        self,
        num_rollout_steps: int = 1,
        *,
        time_level_loss: BaseLoss = MSELoss(),
        cut_bptt: bool = False,
        cut_bptt_every: int = 1,
        cut_div_chain: bool = False,
        time_level_weights: Optional[Union[Float[ArrayLike, " T"], Sequence[float]]] = None,
        remat: bool = False,
    ):
        check_rollout_options(num_rollout_steps, cut_bptt_every)
        self.num_rollout_steps = num_rollout_steps
        self.time_level_loss = time_level_loss
        self.cut_bptt = bool(cut_bptt)
        self.cut_bptt_every = cut_bptt_every
        self.cut_div_chain = bool(cut_div_chain)
        self.time_level_weights = _check_weights(
            "time_level_weights", time_level_weights, num_rollout_steps
        )
        self.remat = bool(remat)

    @property
    def window_length(self) -> int:
        return 1

    def as_diverted_chain(self) -> DivertedChain:
        """The same configuration as a `DivertedChain(T, 1, ...)`."""
        return DivertedChain(
            self.num_rollout_steps,
            1,
            time_level_loss=self.time_level_loss,
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            cut_div_chain=self.cut_div_chain,
            time_level_weights=self.time_level_weights,
            remat=self.remat,
        )

    def __call__(self, stepper, data, *, ref_stepper=None, residuum_fn=None, key=None):
        return self.as_diverted_chain()(
            stepper, data, ref_stepper=ref_stepper, residuum_fn=residuum_fn, key=key
        )
