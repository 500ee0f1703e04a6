"""Concrete callbacks: networks, losses, norms and validation rollouts."""

from __future__ import annotations

import os
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..loss import BaseLoss, MSELoss
from ._base import BaseCallback


class SaveNetwork(BaseCallback):
    """Saves the model with `equinox.tree_serialise_leaves` every `every` steps.

    **Arguments:**

    - `every`: the period in steps.
    - `path`: a file name template with a `{step}` field, e.g.
        `"runs/model_{step}.eqx"`. Load with
        `eqx.tree_deserialise_leaves(path, like_model)`.

    Returns the path it wrote.
    """

    every: int = eqx.field(static=True)
    path: str = eqx.field(static=True, default="network_{step}.eqx")

    def __check_init__(self):
        super().__check_init__()
        if "{step}" not in self.path:
            raise ValueError(
                f"`path` must contain a '{{step}}' field, got {self.path!r}."
            )

    def __call__(self, step, model, context):
        path = self.path.format(step=step)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        eqx.tree_serialise_leaves(path, model)
        return path


class GetNetwork(BaseCallback):
    """Returns the model itself every `every` steps (e.g. to plot its evolution)."""

    every: int = eqx.field(static=True)

    def __call__(self, step, model, context):
        return model


class Loss(BaseCallback):
    """The training configuration's loss every `every` steps.

    **Arguments:**

    - `every`: the period in steps.
    - `data`: windows `(B, W, C, *N)` to evaluate on; default the minibatch
        the trainer draws at that step.
    """

    every: int = eqx.field(static=True)
    data: Optional[jax.Array] = None

    @property
    def name(self) -> str:
        return "loss"

    def __call__(self, step, model, context):
        data = context.batch if self.data is None else self.data
        return float(eqx.filter_jit(context.loss_fn)(model, data))


def _global_norm(tree) -> float:
    # by hand: optax.global_norm is deprecated (a DeprecationWarning on every
    # call) and its successor optax.tree.norm is missing from optax < 0.2.5
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return float(jnp.sqrt(sum(jnp.sum(jnp.abs(x) ** 2) for x in leaves)))


class WeightNorm(BaseCallback):
    """The global L2 norm of the model's floating-point parameters."""

    every: int = eqx.field(static=True)

    @property
    def name(self) -> str:
        return "weight_norm"

    def __call__(self, step, model, context):
        return _global_norm(model)


class GradNorm(BaseCallback):
    """The global L2 norm of the loss gradient on the step's minibatch."""

    every: int = eqx.field(static=True)

    @property
    def name(self) -> str:
        return "grad_norm"

    def __call__(self, step, model, context):
        grads = eqx.filter_jit(eqx.filter_grad(context.loss_fn))(model, context.batch)
        return _global_norm(grads)


class ValidationRollout(BaseCallback):
    """The rollout error on held-out trajectories, per time level.

    Rolls the model out from each trajectory's first state for
    `num_rollout_steps` steps and returns a NumPy array `(num_rollout_steps,)`
    of `metric(prediction_t, reference_t)` (mean over trajectories).

    **Arguments:**

    - `every`: the period in steps.
    - `trajectories`: held-out trajectories `(S, T+1, C, *N)`.
    - `num_rollout_steps`: how far to roll out (default `T`).
    - `metric`: a [`BaseLoss`][trainax.loss.BaseLoss] (default MSE).
    """

    every: int = eqx.field(static=True)
    trajectories: jax.Array
    num_rollout_steps: Optional[int] = eqx.field(static=True, default=None)
    metric: BaseLoss = MSELoss()

    def __check_init__(self):
        super().__check_init__()
        shape = self.trajectories.shape
        if len(shape) < 3:
            raise ValueError(
                f"`trajectories` must have shape (S, T+1, C, *N), got {shape}."
            )
        if self.num_rollout_steps is not None and not (
            1 <= self.num_rollout_steps <= shape[1] - 1
        ):
            raise ValueError(
                f"`num_rollout_steps` must be between 1 and {shape[1] - 1} (the "
                f"trajectories' steps), got {self.num_rollout_steps}."
            )

    @property
    def name(self) -> str:
        return "validation_rollout"

    def __call__(self, step, model, context):
        return np.asarray(_rollout_error(model, self.trajectories, self._steps(), self.metric))

    def _steps(self) -> int:
        return self.num_rollout_steps or self.trajectories.shape[1] - 1


@eqx.filter_jit
def _rollout_error(model, trajectories, num_steps, metric):
    from ..configuration import network_rollout

    predictions = network_rollout(model, trajectories[:, 0], num_steps)
    references = jnp.moveaxis(trajectories[:, 1 : num_steps + 1], 1, 0)
    return jax.vmap(metric)(predictions, references)
