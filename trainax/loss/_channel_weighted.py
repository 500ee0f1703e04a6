"""Apply a loss channel by channel and combine with per-channel weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import BaseLoss, checked_single_batch


class ChannelWeightedLoss(BaseLoss):
    """A loss evaluated on each channel separately, then weighted and summed.

    For one state `(C, *N)`, with `p_c = prediction[c:c+1]` and
    `t_c = target[c:c+1]` (each of shape `(1, *N)`, a single-channel state):

    $$\\mathcal{L}(p, t) = \\sum_{c=0}^{C-1} w_c \\, \\mathrm{loss}(p_c, t_c).$$

    With uniform weights `1/C` and a loss that is a mean over channels (MSE,
    MAE) this equals the loss on the full state. A batch `(B, C, *N)` gives the
    mean over `B` of the single-state values.

    **Arguments:**

    - `loss`: the [`trainax.loss.BaseLoss`][] applied to each channel.
    - `weights`: one weight per channel, shape `(C,)`. A state with another
        number of channels raises a `ValueError`.

    ```python
    loss = tx.loss.ChannelWeightedLoss(tx.loss.MSELoss(), weights=(1.0, 0.1))
    prediction, target = jnp.ones((4, 2, 16)), jnp.zeros((4, 2, 16))  # (B, 2, *N)
    loss(prediction, target)
    ```
    """

    loss: BaseLoss
    weights: Float[Array, " C"] = eqx.field(converter=jnp.asarray)

    def __init__(self, loss: BaseLoss, weights: Union[Sequence[float], Array]):
        self.loss = loss
        self.weights = weights

    def __check_init__(self):
        if not isinstance(self.loss, BaseLoss):
            raise TypeError(
                f"`loss` must be a BaseLoss; got {type(self.loss).__name__}."
            )
        if self.weights.ndim != 1:
            raise ValueError(
                "`weights` must be one-dimensional (one weight per channel); "
                f"got shape {self.weights.shape}."
            )

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        n_channels = prediction.shape[0]
        if self.weights.shape[0] != n_channels:
            raise ValueError(
                "`weights` must have one entry per channel of `prediction`: "
                f"expected {n_channels}, got {self.weights.shape[0]}."
            )
        # Keep a channel axis of size 1 so each slice is a valid state.
        prediction = prediction[:, None]
        if target is None:
            per_channel = jax.vmap(lambda p: self.loss.single_batch(p, None))(
                prediction
            )
        else:
            per_channel = jax.vmap(self.loss.single_batch)(prediction, target[:, None])
        return jnp.sum(self.weights * per_channel)
