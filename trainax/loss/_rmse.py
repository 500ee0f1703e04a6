"""Root mean squared error and its normalized form."""

from typing import ClassVar

from jaxtyping import Array, Float

from ._base import safe_sqrt
from ._mse import _MeanSquaredError


class _RootMeanSquaredError(_MeanSquaredError):
    def _finish(self, mean: Float[Array, ""]) -> Float[Array, ""]:
        return safe_sqrt(mean)


class RMSELoss(_RootMeanSquaredError):
    """Root mean squared error over all channels and points of one state.

    For one state `(C, *N)`, with `e = prediction - target` (or `e = prediction`
    if `target` is `None`):

    $$\\mathrm{RMSE}(p, t) = \\sqrt{\\frac{1}{C \\prod N} \\sum_{c, x} e_{c, x}^2}.$$

    A batch `(B, C, *N)` gives the mean over `B` of the single-state values
    (not the root of the batch MSE). The gradient at zero error is taken as 0.

    **Arguments:** none.

    ```python
    loss = tx.loss.RMSELoss()
    loss.single_batch(jnp.array([[3.0, 4.0]]), jnp.zeros((1, 2)))  # sqrt(12.5)
    ```
    """

    normalized: ClassVar[bool] = False


class Normalized_RMSELoss(_RootMeanSquaredError):
    """Root mean squared error relative to the root mean square of the target.

    For one state `(C, *N)`, with `e = prediction - target`:

    $$\\mathrm{nRMSE}(p, t) = \\sqrt{\\frac{\\sum_{c, x} e_{c, x}^2}{\\sum_{c, x} t_{c, x}^2}}
    = \\frac{\\lVert e \\rVert_2}{\\lVert t \\rVert_2}.$$

    Invariant to scaling `prediction` and `target` by the same factor. A
    `target` is required (`ValueError` otherwise). A batch `(B, C, *N)` gives
    the mean over `B` of the per-state values.

    **Arguments:** none.

    ```python
    loss = tx.loss.Normalized_RMSELoss()
    loss.single_batch(jnp.array([[1.0, 3.0]]), jnp.array([[2.0, 2.0]]))  # 0.5
    ```
    """

    normalized: ClassVar[bool] = True
