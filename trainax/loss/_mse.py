"""Mean squared error and its normalized form."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import _MeanError


class _MeanSquaredError(_MeanError):
    def _entry(self, x: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        return jnp.square(x)


class MSELoss(_MeanSquaredError):
    """Mean squared error over all channels and points of one state.

    For one state `(C, *N)`, with `e = prediction - target` (or `e = prediction`
    if `target` is `None`):

    $$\\mathrm{MSE}(p, t) = \\frac{1}{C \\prod N} \\sum_{c, x} e_{c, x}^2.$$

    A batch `(B, C, *N)` gives the mean over `B` of the single-state values.

    **Arguments:** none.

    ```python
    loss = tx.loss.MSELoss()
    loss(jnp.ones((4, 1, 8)), jnp.zeros((4, 1, 8)))  # 1.0
    loss.single_batch(jnp.array([1.0, 2.0, 2.0]))   # 3.0 (a Lorenz state)
    ```
    """

    normalized: ClassVar[bool] = False


class Normalized_MSELoss(_MeanSquaredError):
    """Mean squared error relative to the mean square of the target.

    For one state `(C, *N)`, with `e = prediction - target`:

    $$\\mathrm{nMSE}(p, t) = \\frac{\\sum_{c, x} e_{c, x}^2}{\\sum_{c, x} t_{c, x}^2}.$$

    It is invariant to scaling `prediction` and `target` by the same factor.
    A `target` is required (`ValueError` otherwise); a zero target divides by
    zero. A batch `(B, C, *N)` gives the mean over `B` of the per-state ratios.

    **Arguments:** none.

    ```python
    loss = tx.loss.Normalized_MSELoss()
    loss.single_batch(jnp.array([[1.0, 3.0]]), jnp.array([[2.0, 2.0]]))  # 0.25
    ```
    """

    normalized: ClassVar[bool] = True
