"""Physics-informed training: the PDE residual of the model's output, without data."""

from __future__ import annotations

import numbers
from typing import Mapping, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float

from ..constraint import AbstractDerivatives, AbstractPDE, FiniteDifference, draws_points, residuals
from .._checks import output_of, require_shape
from ._base import BaseConfiguration


class PhysicsInformed(BaseConfiguration):
    """The PDE residual of the model's output on the grid, plus its conditions.

    loss = mean_b [ mean(r_pde^2) + sum_c weight_c mean(r_c^2) ]

    For each sample the model maps its inputs `(C, *N)` on a space-time
    grid (such as the initial state on every time level,
    [`DiffusionSorption.inputs`][trainax.constraint.DiffusionSorption.inputs])
    to one field `(1, *N)`; [`tx.constraint.residuals`][trainax.constraint.residuals]
    evaluates the PDE's residual at every node where the PDE holds and each
    condition's residual on its region, with the terms from `derivatives`.
    No reference data: the minibatch is the inputs alone, from
    [`Samples`][trainax.trainer.Samples] or a [`Sampler`][trainax.trainer.Sampler]
    of fresh initial states.

    The soft-constraint baseline is a plain network with one output
    channel. A hard-constrained model (a PyTree holding a
    [`HardConstraint`][trainax.constraint.HardConstraint] or
    [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts], see
    [`draws_points`][trainax.constraint.draws_points]) is called as
    `model(inputs, key=k)` with a key per sample split from the step's key,
    so it draws new collocation points at every step; wrap a layer in
    [`Constrained`][trainax.constraint.Constrained] to get such a model.

    **Arguments:**

    - `pde`: the [`AbstractPDE`][trainax.constraint.AbstractPDE] with its conditions.
    - `derivatives`: the derivative scheme (default
      [`FiniteDifference`][trainax.constraint.FiniteDifference]).
    - `condition_weight`: the weight of every condition term (default 1), or
      a dict from condition region to weight.

    ```python
    pde = tx.constraint.DiffusionSorption()
    cfg = tx.configuration.PhysicsInformed(pde)
    model = tx.nn.FNO(2, 1, 1, width=4, modes=2, num_layers=1, key=jr.PRNGKey(0))
    eqx.filter_jit(cfg)(model, pde.inputs(jnp.full((2, 16), 0.1), 9))   # a scalar
    ```
    """

    pde: AbstractPDE
    derivatives: AbstractDerivatives
    condition_weights: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        pde: AbstractPDE,
        *,
        derivatives: AbstractDerivatives = FiniteDifference(),
        condition_weight: Union[float, Mapping[str, float]] = 1.0,
    ):
        if not isinstance(pde, AbstractPDE):
            raise TypeError(
                f"`pde` must be a tx.constraint.AbstractPDE (such as DiffusionSorption()), got "
                f"{type(pde).__name__}."
            )
        if not isinstance(derivatives, AbstractDerivatives):
            raise TypeError(
                "`derivatives` must be a tx.constraint derivative scheme, got "
                f"{type(derivatives).__name__}."
            )
        self.pde, self.derivatives = pde, derivatives
        self.condition_weights = _weights(condition_weight, pde.conditions)

    def check_model(self, model, batch) -> None:
        shape = getattr(batch, "shape", None)
        if shape is None or len(shape) != len(self.pde.axes) + 2:
            raise ValueError(
                f"`batch` must be model inputs (B, C, *N) on a grid with {len(self.pde.axes)} "
                f"axes {self.pde.axes}, got shape {shape}."
            )
        one = jax.ShapeDtypeStruct(tuple(shape[1:]), batch.dtype)
        call = (lambda x: model(x, key=jr.PRNGKey(0))) if draws_points(model) else model
        out = output_of("model", call, one, given=f"one input of shape {tuple(shape[1:])}")
        require_shape("model", out, (1, *shape[2:]), f"one input {tuple(shape[1:])} to one field")

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None
    ) -> Float[Array, ""]:
        inputs = jnp.asarray(data)
        if draws_points(model):
            key = jr.PRNGKey(0) if key is None else key
            keys = jr.split(key, inputs.shape[0])
            fields = jax.vmap(lambda x, k: model(x, key=k))(inputs, keys)
        else:
            fields = jax.vmap(model)(inputs)
        return jnp.mean(jax.vmap(self._sample_loss)(fields, inputs))

    def _sample_loss(self, field, inputs) -> Float[Array, ""]:
        r = residuals(self.pde, field, inputs, derivatives=self.derivatives)
        loss = jnp.mean(r["pde"] ** 2)
        for region, weight in zip(self.pde.conditions, self.condition_weights):
            loss = loss + weight * jnp.mean(r[region] ** 2)
        return loss


def _weights(weight, regions) -> tuple[float, ...]:
    if isinstance(weight, Mapping):
        unknown = set(weight) - set(regions)
        if unknown:
            raise ValueError(
                f"`condition_weight` names regions {sorted(unknown)} the PDE does not have; "
                f"its conditions are {tuple(regions)}."
            )
        values = [weight.get(r, 1.0) for r in regions]
    else:
        values = [weight] * len(regions)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(f"`condition_weight` must be non-negative floats, got {weight!r}.")
    return tuple(float(v) for v in values)
