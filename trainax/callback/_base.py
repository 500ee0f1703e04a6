"""The abstract callback and the composite of several."""

from __future__ import annotations

import abc
import math
from typing import Any, Sequence

import equinox as eqx

from .._checks import positive_int


class BaseCallback(eqx.Module):
    """Runs every `every` training steps, between compiled chunks.

    A callback is called as `callback(step, model, context)` at steps
    `0, every, 2 * every, ...` and once after the last step (when that step
    is a multiple of `every`), where `context` is a
    [`CallbackContext`][trainax.callback.CallbackContext]. What it returns
    (unless `None`) is appended, as `(step, output)`, to the callback history
    that the trainer returns.
    """

    every: int = eqx.field(static=True)

    def __check_init__(self):
        positive_int("every", self.every)

    @property
    def name(self) -> str:
        """The key of this callback's output inside a composite."""
        return type(self).__name__

    @abc.abstractmethod
    def __call__(self, step: int, model, context) -> Any:
        ...


class CompositeCallback(BaseCallback):
    """Several callbacks, each on its own schedule; outputs in one dict.

    At a step where some of them are due, returns `{name: output}` for
    those (names are the callbacks' `name`, numbered when repeated).

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
        outputs = {}
        for name, callback in zip(self.names, self.callbacks):
            if step % callback.every == 0:
                out = callback(step, model, context)
                if out is not None:
                    outputs[name] = out
        return outputs or None
