"""Concrete callbacks: networks, losses, norms, validation rollouts, the best model."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..configuration import BaseConfiguration, network_rollout
from ..loss import BaseLoss, MSELoss, Normalized_RMSELoss
from ._base import BaseCallback


class SaveNetwork(BaseCallback):
    """Saves the model with `equinox.tree_serialise_leaves` every `every` steps.

    **Arguments:**

    - `every`: the period in steps.
    - `path`: a file name template with a `{step}` field, e.g.
        `"runs/model_{step}.eqx"`. Load with
        `eqx.tree_deserialise_leaves(path, like_model)`.
    - `name`: the key of its output (default `"network_saved"`).

    Returns the path it wrote.
    """

    every: int = eqx.field(static=True)
    path: str = eqx.field(static=True, default="network_{step}.eqx")
    name: str = eqx.field(static=True, default="network_saved")

    def __check_init__(self):
        super().__check_init__()
        if "{step}" not in self.path:
            raise ValueError(
                f"`path` must contain a '{{step}}' field, got {self.path!r}."
            )

    def compute(self, step, model, context):
        path = self.path.format(step=step)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        eqx.tree_serialise_leaves(path, model)
        return path


class GetNetwork(BaseCallback):
    """Returns the model itself every `every` steps (e.g. to plot its evolution).

    **Arguments:** `every`; `name` (default `"network"`).
    """

    every: int = eqx.field(static=True)
    name: str = eqx.field(static=True, default="network")

    def compute(self, step, model, context):
        return model


class _LossOfConfiguration(eqx.Module):
    configuration: BaseConfiguration
    ref_stepper: Optional[Callable]
    residuum_fn: Optional[Callable]

    def __call__(self, model, batch):
        return self.configuration(
            model, batch, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
        )


class _WithConfiguration(BaseCallback):
    """A callback that evaluates a loss: the trainer's, or its own configuration's."""

    loss_configuration: eqx.AbstractVar[Optional[BaseConfiguration]]
    ref_stepper: eqx.AbstractVar[Optional[Callable]]
    residuum_fn: eqx.AbstractVar[Optional[Callable]]

    def _own_loss_fn(self):
        if self.loss_configuration is None:
            return None
        return _LossOfConfiguration(self.loss_configuration, self.ref_stepper, self.residuum_fn)

    def _loss_fn(self, context):
        loss_fn = self._own_loss_fn() or context.loss_fn
        if loss_fn is None:
            raise ValueError(
                f"{type(self).__name__} called outside a trainer needs a "
                "`loss_configuration` to evaluate."
            )
        return loss_fn


class Loss(_WithConfiguration):
    """A configuration's loss every `every` steps.

    **Arguments:**

    - `every`: the period in steps.
    - `data`: a minibatch to evaluate on (e.g. windows `(B, W, C, *N)`);
        default the minibatch the trainer draws at that step (or, in the
        taxonomy's protocol, the `data` it is called with).
    - `loss_configuration`: the configuration whose loss to evaluate
        (default the trainer's), with `ref_stepper` and `residuum_fn` for it.
    - `with_grad`: return `(loss, gradient)` instead of the loss.
    - `name`: the key of its output (default `"loss"`).
    """

    every: int = eqx.field(static=True)
    data: Optional[Any] = None
    loss_configuration: Optional[BaseConfiguration] = None
    ref_stepper: Optional[Callable] = None
    residuum_fn: Optional[Callable] = None
    with_grad: bool = eqx.field(static=True, default=False)
    name: str = eqx.field(static=True, default="loss")

    def compute(self, step, model, context):
        data = context.batch if self.data is None else self.data
        loss_fn = self._loss_fn(context)
        if self.with_grad:
            loss, grad = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))(model, data)
            return float(loss), grad
        return float(eqx.filter_jit(loss_fn)(model, data))


def _global_norm(tree, squared: bool = False) -> float:
    # by hand: optax.global_norm is deprecated (a DeprecationWarning on every
    # call) and its successor optax.tree.norm is missing from optax < 0.2.5
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    total = sum(jnp.sum(jnp.abs(x) ** 2) for x in leaves)
    return float(total if squared else jnp.sqrt(total))


class WeightNorm(BaseCallback):
    """The global L2 norm of the model's floating-point parameters.

    **Arguments:** `every`; `squared` (the squared norm, default False);
    `name` (default `"weight_norm"`).
    """

    every: int = eqx.field(static=True)
    squared: bool = eqx.field(static=True, default=False)
    name: str = eqx.field(static=True, default="weight_norm")

    def compute(self, step, model, context):
        return _global_norm(model, self.squared)


class GradNorm(_WithConfiguration):
    """The global L2 norm of the loss gradient on the step's minibatch.

    **Arguments:** `every`; `squared` (default False); `loss_configuration`,
    `ref_stepper`, `residuum_fn` as in [`Loss`][trainax.callback.Loss];
    `name` (default `"grad_norm"`).
    """

    every: int = eqx.field(static=True)
    squared: bool = eqx.field(static=True, default=False)
    loss_configuration: Optional[BaseConfiguration] = None
    ref_stepper: Optional[Callable] = None
    residuum_fn: Optional[Callable] = None
    name: str = eqx.field(static=True, default="grad_norm")

    def compute(self, step, model, context):
        grads = eqx.filter_jit(eqx.filter_grad(self._loss_fn(context)))(model, context.batch)
        return _global_norm(grads, self.squared)


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
    - `name`: the key of its output (default `"validation_rollout"`).
    """

    every: int = eqx.field(static=True)
    trajectories: jax.Array
    num_rollout_steps: Optional[int] = eqx.field(static=True, default=None)
    metric: BaseLoss = MSELoss()
    name: str = eqx.field(static=True, default="validation_rollout")

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

    def compute(self, step, model, context):
        return np.asarray(_rollout_error(model, self.trajectories, self._steps(), self.metric))

    def _steps(self) -> int:
        return self.num_rollout_steps or self.trajectories.shape[1] - 1


@eqx.filter_jit
def _rollout_error(model, trajectories, num_steps, metric):
    predictions = network_rollout(model, trajectories[:, 0], num_steps)
    references = jnp.moveaxis(trajectories[:, 1 : num_steps + 1], 1, 0)
    return jax.vmap(metric)(predictions, references)


class _Best:
    """The mutable record a `BestModel` keeps (outside the callback's fields,
    which are immutable)."""

    def __init__(self):
        self.step, self.value, self.model = None, None, None


class BestModel(BaseCallback):
    """Keeps the model of the step with the best held-out metric.

    Every `every` steps (and after the last step) it scores the model on a
    held-out set and, when the score beats every earlier one, keeps a copy of
    the model. After training, `best_model`, `best_step` and `best_value` are
    the model, step and score of the best step seen, not of the last one
    (step 0, the initial model, competes too). Its output in the callback
    history is the score at each call.

    **Arguments:**

    - `every`: the period in steps.
    - `data`: the held-out set: pairs `(inputs, targets)` with a leading
        sample axis, or whatever `metric` takes.
    - `metric`: a [`tx.loss`][trainax.loss] loss, applied as
        `metric(vmap(model)(inputs), targets)` (default
        [`Normalized_RMSELoss`][trainax.loss.Normalized_RMSELoss], the mean
        relative L2 error), or any function `metric(model, data) -> scalar`.
    - `mode`: `"min"` (default: lower is better) or `"max"`.
    - `name`: the key of its output (default `"best_model"`).

    A NaN score never counts as best. `reset()` forgets the record (to reuse
    the callback for another training).

    ```python
    inputs = jr.normal(jr.PRNGKey(0), (8, 2, 16))
    pairs = (inputs, inputs[:, :1])
    best = tx.callback.BestModel(every=5, data=pairs)
    model = eqx.nn.Conv1d(2, 1, 3, padding=1, key=jr.PRNGKey(1))
    trainer = tx.GeneralTrainer(tx.Samples(pairs), tx.configuration.OperatorLearning(),
                                optax.adam(1e-2), 20, 4, callback_fn=best,
                                progress_bar=False)
    model, losses, history = trainer(model, jr.PRNGKey(2))
    best.best_step, best.best_value   # the best of steps 0, 5, 10, 15, 20
    ```
    """

    every: int = eqx.field(static=True)
    data: Any
    metric: Any = Normalized_RMSELoss()
    mode: str = eqx.field(static=True, default="min")
    name: str = eqx.field(static=True, default="best_model")
    record: _Best = eqx.field(default_factory=_Best)

    def __check_init__(self):
        super().__check_init__()
        if self.mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max', got {self.mode!r}.")
        if not callable(self.metric):
            raise TypeError(
                "`metric` must be a tx.loss loss or a function metric(model, data) -> "
                f"scalar, got {type(self.metric).__name__}."
            )
        if isinstance(self.metric, BaseLoss) and not (
            isinstance(self.data, (tuple, list)) and len(self.data) == 2
        ):
            raise ValueError(
                "`data` must be a pair (inputs, targets) when `metric` is a tx.loss loss, "
                f"got {type(self.data).__name__}."
            )

    def compute(self, step, model, context):
        if isinstance(self.metric, BaseLoss):
            value = float(_pair_metric(model, self.data[0], self.data[1], self.metric))
        else:
            value = float(self.metric(model, self.data))
        best = self.record.value
        better = best is None or (value < best if self.mode == "min" else value > best)
        if np.isfinite(value) and better:
            # a copy: the caller may donate or reuse the model's buffers
            self.record.step, self.record.value = int(step), value
            self.record.model = jax.tree_util.tree_map(
                lambda x: jnp.copy(x) if eqx.is_array(x) else x, model
            )
        return value

    @property
    def best_model(self):
        """The model of the best step (`None` before the first call)."""
        return self.record.model

    @property
    def best_step(self) -> Optional[int]:
        """The step of the best score (`None` before the first call)."""
        return self.record.step

    @property
    def best_value(self) -> Optional[float]:
        """The best score (`None` before the first call)."""
        return self.record.value

    def reset(self) -> None:
        """Forget the kept model and score."""
        self.record.step, self.record.value, self.record.model = None, None, None


@eqx.filter_jit
def _pair_metric(model, inputs, targets, metric):
    return metric(jax.vmap(model)(inputs), targets)
