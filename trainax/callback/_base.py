"""The abstract callback and the composite of several."""

from __future__ import annotations

import math
from typing import Any, Sequence

import equinox as eqx

from .._checks import positive_int
from ._context import CallbackContext


class BaseCallback(eqx.Module):
    """Runs every `every` training steps, between compiled chunks.

    Inside a [`GeneralTrainer`][trainax.trainer.GeneralTrainer] a callback is
    called as `callback(step, model, context)` at steps `0, every, 2 * every,
    ...` and once after the last step (when that step is a multiple of
    `every`), where `context` is a
    [`CallbackContext`][trainax.callback.CallbackContext]. What it returns
    (unless `None`) is appended, as `(step, output)`, to the callback history
    that the trainer returns.

    The built-in callbacks also follow the rollout taxonomy's protocol:
    called as `callback(update_i, stepper, data)` with `data` a minibatch
    (not a context), they return `{name: value}`, the value `None` off their
    schedule. A subclass implements `compute(step, model, context)`; one
    that overrides `__call__` itself takes the trainer's context only.
    """

    every: int = eqx.field(static=True)

    def __check_init__(self):
        positive_int("every", self.every)

    @property
    def name(self) -> str:
        """The key of this callback's output inside a composite."""
        return type(self).__name__

    def compute(self, step: int, model, context: CallbackContext) -> Any:
        """The callback's value at `step` (implemented by subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} implements no `compute`.")

    def _context_for(self, data) -> CallbackContext:
        """A context for the taxonomy's protocol: the data, and a loss of the
        callback's own configuration where it has one."""
        loss_fn = getattr(self, "_own_loss_fn", lambda: None)()
        return CallbackContext(
            batch=data, loss_fn=loss_fn, configuration=None, opt_state=None,
            loss_history=None,
        )

    def __call__(self, step: int, model, context) -> Any:
        if isinstance(context, CallbackContext):
            return self.compute(step, model, context)
        value = None
        if step % self.every == 0:
            value = self.compute(step, model, self._context_for(context))
        return {self.name: value}


class CompositeCallback(BaseCallback):
    """Several callbacks, each on its own schedule; outputs in one dict.

    In a trainer, at a step where some of them are due, it returns
    `{name: output}` for those (names are the callbacks' `name`, numbered
    when repeated). Called with the taxonomy's protocol `(update_i, stepper,
    data)` it merges the parts' dicts, `None` for those off schedule.

    ```python
    callback = tx.callback.CompositeCallback(
        [tx.callback.Loss(every=100), tx.callback.GradNorm(every=50)]
    )
    ```
    """

    callbacks: tuple[BaseCallback, ...]
    names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, callbacks: Sequence[BaseCallback]):
        callbacks = tuple(callbacks)
        if not callbacks or not all(isinstance(c, BaseCallback) for c in callbacks):
            raise TypeError(
                "`callbacks` must be a non-empty sequence of tx.callback callbacks, "
                f"got {callbacks!r}."
            )
        self.callbacks = callbacks
        self.every = math.gcd(*(c.every for c in callbacks))
        names, seen = [], {}
        for c in callbacks:
            base = c.name
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
        self.names = tuple(names)

    def __call__(self, step, model, context):
        if not isinstance(context, CallbackContext):
            # the parts' values under the composite's (numbered) names, as in a trainer
            return {
                name: next(iter(callback(step, model, context).values()))
                for name, callback in zip(self.names, self.callbacks)
            }
        outputs = {}
        for name, callback in zip(self.names, self.callbacks):
            if step % callback.every == 0:
                out = callback(step, model, context)
                if out is not None:
                    outputs[name] = out
        return outputs or None
