"""Operator learning: a model maps each input to its target, sample by sample."""

from __future__ import annotations

import jax
from jaxtyping import Array, Float

from ..loss import BaseLoss, MSELoss
from .._checks import output_of, require_shape
from ._base import BaseConfiguration


class OperatorLearning(BaseConfiguration):
    """Supervised learning of an operator on pairs `(inputs, targets)`.

    loss = mean_b L(model(inputs_b), targets_b)

    The model maps one input `(C_in, *N)` to one output `(C_out, *N)` (its
    channels may differ); `L` is a per-sample [`tx.loss`][trainax.loss] loss:
    [`MSELoss`][trainax.loss.MSELoss] (default) for the squared error,
    [`Normalized_RMSELoss`][trainax.loss.Normalized_RMSELoss] for the
    relative L2 error `||pred - target|| / ||target||`. Train it on
    `tx.trainer.Samples((inputs, targets))`.

    **Arguments:**

    - `loss`: the per-sample loss (default `MSELoss()`).

    ```python
    cfg = tx.configuration.OperatorLearning(loss=tx.loss.Normalized_RMSELoss())
    model = eqx.nn.Conv1d(2, 1, 3, padding=1, key=jr.PRNGKey(0))
    batch = (jnp.ones((4, 2, 16)), jnp.ones((4, 1, 16)))
    cfg(model, batch)   # a scalar
    ```
    """

    loss: BaseLoss

    def __init__(self, loss: BaseLoss = MSELoss()):
        if not isinstance(loss, BaseLoss):
            raise TypeError(
                "`loss` must be a tx.loss loss (e.g. tx.loss.MSELoss()), got "
                f"{type(loss).__name__}."
            )
        self.loss = loss

    @staticmethod
    def _pair(batch):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError(
                "`batch` must be a pair (inputs, targets) of arrays with a leading "
                f"batch axis; got {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
                + ". Train on tx.trainer.Samples((inputs, targets))."
            )
        return batch

    def check_model(self, model, batch) -> None:
        inputs, targets = self._pair(batch)
        one_input = jax.ShapeDtypeStruct(inputs.shape[1:], inputs.dtype)
        out = output_of("model", model, one_input,
                        given=f"one input of shape {tuple(inputs.shape[1:])} (C_in, *N)")
        require_shape("model", out, targets.shape[1:],
                      f"one input {tuple(inputs.shape[1:])} to the shape of one target")

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None
    ) -> Float[Array, ""]:
        inputs, targets = self._pair(data)
        return self.loss(jax.vmap(model)(inputs), targets)
