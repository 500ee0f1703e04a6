"""Backbones in a form that satisfies known data by construction."""

from __future__ import annotations

from typing import Callable, Optional

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


def _first_channel_first_level(inputs):
    return inputs[0, 0]


class InitialValueBasis(eqx.Module):
    """A backbone in initial-value form, for `HardConstraint(..., particular=True)`.

    Returns `N_b + 1` fields on a grid whose first axis is time: a
    particular field `phi_0` that holds the initial state on every time
    level, then the backbone's `N_b` fields, set to zero on the first level.
    Every combination `u = u_0 + sum w_n phi_n` equals the initial state on
    the first level, whatever the weights, so the initial condition holds
    exactly and the least-squares rows fit the PDE and the boundary
    conditions alone; the basis only carries the change from `u_0`, which is
    smoother than `u` itself for diffusive problems with rough initial data.
    (Derivatives across the first level, such as a finite-difference `u_t`
    on the second, see the exact initial state.)

    **Arguments:**

    - `net`: the backbone, `(C, T, *X) -> (N_b, T, *X)`.
    - `initial`: `inputs -> u_0 (*X)`, the initial state read from the
      inputs (default: channel 0 on the first level, as
      [`DiffusionSorption.inputs`][trainax.constraint.DiffusionSorption.inputs]
      lays it out).

    ```python
    with jax.enable_x64(True):
        pde = tx.constraint.DiffusionSorption()
        net = tx.nn.FNO(2, 1, 4, width=8, modes=(2, 4), num_layers=1,
                        coordinate_channels=True, key=jr.PRNGKey(0))
        layer = tx.constraint.HardConstraint(
            tx.constraint.InitialValueBasis(net), pde, num_points=16, particular=True,
            solver=tx.constraint.GaussNewton())
        inputs = pde.inputs(jnp.linspace(0.0, 0.2, 16), 8)     # (1, 8, 16)
        u, info = eqx.filter_jit(layer)(inputs)
        bool(jnp.all(u[0, 0] == inputs[0, 0])), info.weights.shape   # True, (4,)
    ```
    """

    net: Callable
    initial: Callable = eqx.field(static=True)

    def __init__(self, net: Callable, initial: Optional[Callable] = None):
        if not callable(net):
            raise TypeError(f"`net` must be callable (a backbone network), got {net!r}.")
        if initial is not None and not callable(initial):
            raise TypeError(f"`initial` must be None or a function inputs -> u_0, got {initial!r}.")
        self.net = net
        self.initial = _first_channel_first_level if initial is None else initial

    def __call__(self, inputs: Float[Array, "C T *X"]) -> Float[Array, "B T *X"]:
        fields = jnp.asarray(self.net(inputs))
        if fields.ndim < 2 or fields.shape[1:] != inputs.shape[1:]:
            raise ValueError(
                f"`net` must map inputs {tuple(inputs.shape)} to fields (N_b, "
                f"{', '.join(map(str, inputs.shape[1:]))}), got shape {tuple(fields.shape)}."
            )
        u0 = jnp.asarray(self.initial(inputs), fields.dtype)
        if u0.shape != fields.shape[2:]:
            raise ValueError(
                f"`initial` must return the initial state of shape {tuple(fields.shape[2:])}, "
                f"got shape {tuple(u0.shape)}."
            )
        first = (jnp.arange(fields.shape[1]) == 0).reshape(-1, *([1] * u0.ndim))
        particular = jnp.broadcast_to(u0, fields.shape[1:])
        return jnp.concatenate([particular[None], jnp.where(first, 0.0, fields)])
