"""Mean absolute error and its normalized form."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import _MeanError


class _MeanAbsoluteError(_MeanError):
    def _entry(self, x: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        return jnp.abs(x)


class MAELoss(_MeanAbsoluteError):
    """Mean absolute error over all channels and points of one state.

    For one state `(C, *N)`, with `e = prediction - target` (or `e = prediction`
    if `target` is `None`):

    $$\\mathrm{MAE}(p, t) = \\frac{1}{C \\prod N} \\sum_{c, x} |e_{c, x}|.$$

    A batch `(B, C, *N)` gives the mean over `B` of the single-state values.

    **Arguments:** none.

    ```python
    loss = tx.loss.MAELoss()
    loss.single_batch(jnp.array([[1.0, -3.0]]))  # 2.0
    ```
    """

    normalized: ClassVar[bool] = False


class Normalized_MAELoss(_MeanAbsoluteError):
    """Mean absolute error relative to the mean absolute value of the target.

    For one state `(C, *N)`, with `e = prediction - target`:

    $$\\mathrm{nMAE}(p, t) = \\frac{\\sum_{c, x} |e_{c, x}|}{\\sum_{c, x} |t_{c, x}|}.$$

    Invariant to scaling `prediction` and `target` by the same factor. A
    `target` is required (`ValueError` otherwise). A batch `(B, C, *N)` gives
    the mean over `B` of the per-state ratios.

    **Arguments:** none.

    ```python
    loss = tx.loss.Normalized_MAELoss()
    loss.single_batch(jnp.array([[1.0, 3.0]]), jnp.array([[2.0, 2.0]]))  # 0.5
    ```
    """

    normalized: ClassVar[bool] = True
