"""An MLP stepper for states without a spatial axis (e.g. Lorenz-63)."""

from __future__ import annotations

import math
from typing import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._padding import check_activation, check_floating


class MLPStepper(eqx.Module):
    """A multilayer perceptron on one state vector `(state_size,)`.

    Returns `u + scale * mlp(u / scale)` with `residual=True` (default),
    `scale * mlp(u / scale)` otherwise. `scale` is a fixed (not trained)
    magnitude of the states: dividing by it keeps the MLP's inputs of order
    one (for Lorenz-63 the attractor spans about 20).

    **Arguments:**

    - `state_size`: length of the state vector (3 for Lorenz-63).
    - `width`: units per hidden layer (default 64).
    - `depth`: number of hidden layers (default 2).
    - `residual`: add the input to the output (default `True`).
    - `activation`: the nonlinearity (default `jax.nn.tanh`).
    - `scale`: the states' typical magnitude (default 1.0).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one state `(state_size,)` -> the next state `(state_size,)`.

    ```python
    stepper = tx.nn.MLPStepper(3, width=64, depth=2, scale=20.0,
                               key=jax.random.PRNGKey(0))
    stepper(jnp.ones(3)).shape                 # (3,)
    jax.vmap(stepper)(jnp.ones((8, 3))).shape  # (8, 3)
    ```
    """

    mlp: eqx.nn.MLP
    state_size: int = eqx.field(static=True)
    residual: bool = eqx.field(static=True)
    scale: float = eqx.field(static=True)

    def __init__(
        self,
        state_size: int,
        width: int = 64,
        depth: int = 2,
        residual: bool = True,
        *,
        activation: Callable = jax.nn.tanh,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        state_size = positive_int("state_size", state_size)
        width = positive_int("width", width)
        depth = positive_int("depth", depth, allow_zero=True)
        if not isinstance(residual, bool):
            raise TypeError(f"`residual` must be a bool, got {residual!r}.")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"`scale` must be a positive number, got {scale!r}.")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"`scale` must be a positive number, got {scale}.")
        self.mlp = eqx.nn.MLP(
            state_size,
            state_size,
            width_size=width,
            depth=depth,
            activation=check_activation(activation),
            key=key,
        )
        self.state_size = state_size
        self.residual = residual
        self.scale = float(scale)

    def __call__(self, u: Float[Array, " state"]) -> Float[Array, " state"]:
        if getattr(u, "shape", None) != (self.state_size,):
            raise ValueError(
                f"MLPStepper acts on one state ({self.state_size},), unbatched (use "
                f"jax.vmap for batches); got shape {getattr(u, 'shape', None)}."
            )
        check_floating(u, "MLPStepper")
        out = self.scale * self.mlp(u / self.scale)
        return u + out if self.residual else out
