"""The residuals of a field on the whole grid, region by region."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._derivatives import AbstractDerivatives, FiniteDifference
from ._pde import AbstractPDE, parse_term, region_masks


def grid_coordinates(
    pde: AbstractPDE, shape: tuple[int, ...], derivatives: AbstractDerivatives = FiniteDifference()
) -> np.ndarray:
    """The node coordinates of a grid over the PDE's box.

    **Arguments:**

    - `pde`: the PDE (its `extent` and `periodic` axes).
    - `shape`: the number of nodes per axis.
    - `derivatives`: the scheme that places the nodes (default
      [`FiniteDifference`][trainax.constraint.FiniteDifference]: uniform).

    **Returns:** a NumPy array `(d, *shape)`; `[i]` holds coordinate `i` of
    every node (`indexing="ij"`).

    ```python
    pde = tx.constraint.DiffusionSorption()
    t, x = tx.constraint.grid_coordinates(pde, (5, 11))   # t: 0..500, x: 0..1
    ```
    """
    nodes = [
        derivatives.nodes(n, length, periodic)
        for n, length, periodic in zip(shape, pde.extent, pde.periodic)
    ]
    return np.stack(np.meshgrid(*nodes, indexing="ij"))


def residuals(
    pde: AbstractPDE,
    field: Float[Array, "1 *N"],
    inputs: Float[Array, "C *N"],
    *,
    derivatives: AbstractDerivatives = FiniteDifference(),
) -> dict[str, Float[Array, " _"]]:
    """The residuals of one field at every node of the grid, per region.

    The PDE's terms are computed on the whole grid with `derivatives`; each
    region's residual function is evaluated at its nodes (see
    [`AbstractPDE`][trainax.constraint.AbstractPDE] for the regions).

    **Arguments:**

    - `pde`: the PDE with its conditions.
    - `field`: `(1, *N)` (or `(*N)`), one scalar field on the grid.
    - `inputs`: the model inputs `(C, *N)` the conditions read.
    - `derivatives`: the scheme (default [`FiniteDifference`][trainax.constraint.FiniteDifference]).

    **Returns:** a dict from region name (`"pde"` and each condition) to the
    residuals at its nodes, flattened in C order.

    ```python
    pde = tx.constraint.DiffusionSorption()
    ones = jnp.ones((1, 9, 16))
    r = jax.jit(lambda u, inputs: tx.constraint.residuals(pde, u, inputs))(ones, ones)
    float(jnp.max(jnp.abs(r["pde"]))), float(jnp.max(jnp.abs(r["x_low"])))   # 0.0, 0.0
    ```
    """
    field = jnp.asarray(field)
    shape = tuple(inputs.shape[1:])
    if field.shape == shape:
        field = field[None]
    if field.shape != (1, *shape) or len(shape) != len(pde.axes):
        raise ValueError(
            f"`field` must be one field (1, *N) on the grid of `inputs` {shape} with "
            f"{len(pde.axes)} axes {pde.axes}, got shape {tuple(field.shape)}."
        )
    names = tuple(pde.terms)
    orders = tuple(parse_term(n, pde.axes) for n in names)
    terms = derivatives.terms(field, orders, pde.extent, pde.periodic)[:, 0]
    coords = jnp.asarray(grid_coordinates(pde, shape, derivatives), field.dtype)
    masks = region_masks(pde, shape)
    out = {}
    for region in ("pde",) + tuple(pde.conditions):
        index = np.flatnonzero(masks[region])
        values = terms.reshape(len(names), -1)[:, index]
        at_inputs = inputs.reshape(inputs.shape[0], -1)[:, index]
        at_coords = coords.reshape(coords.shape[0], -1)[:, index]

        def one(v, i, c, region=region):
            named = dict(zip(names, v))
            if region == "pde":
                return pde.pde_residual(named, i, c)
            return pde.condition_residual(region, named, i, c)

        out[region] = jax.vmap(one, in_axes=(1, 1, 1))(values, at_inputs, at_coords).reshape(-1)
    return out
