"""Mean absolute error and its normalized form."""

from typing import Optional

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import BaseLoss, checked_single_batch, difference, require_target


class MAELoss(BaseLoss):
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

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        return jnp.mean(jnp.abs(difference(prediction, target)))


class Normalized_MAELoss(BaseLoss):
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

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        require_target(self, target)
        return jnp.mean(jnp.abs(prediction - target)) / jnp.mean(jnp.abs(target))
