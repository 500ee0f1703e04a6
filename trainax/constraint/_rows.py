"""The rows of one expert's least-squares problem and the solve of its weights."""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._pde import AbstractPDE
from ._solvers import least_squares


class RowGroup(eqx.Module):
    """Rows of one region: terms of every basis field at its points.

    `terms` `(K, N, R)`, `inputs` `(C, R)`, `coords` `(d, R)` and `mask`
    `(R,)` (zero for padding rows, which then have a zero residual).
    """

    terms: Float[Array, "K N R"]
    inputs: Float[Array, "C R"]
    coords: Float[Array, "d R"]
    mask: Float[Array, " R"]


def group_residual(
    pde: AbstractPDE, region: str, names: tuple[str, ...], group: RowGroup, w
) -> Float[Array, " R"]:
    """The residual of every row of `group` for the weights `w`."""
    values = jnp.einsum("knr,n->kr", group.terms, w)

    def one(v, inputs, coords):
        named = dict(zip(names, v))
        if region == "pde":
            return pde.pde_residual(named, inputs, coords)
        return pde.condition_residual(region, named, inputs, coords)

    r = jax.vmap(one, in_axes=(1, 1, 1))(values, group.inputs, group.coords)
    r = r * group.mask.reshape(-1, *([1] * (r.ndim - 1)))
    return r.reshape(-1)


def combination_weights(w, particular: bool):
    """The weights of every field: `(1, w)` when the first is a particular
    field of fixed weight one, else `w` itself."""
    return jnp.concatenate([jnp.ones(1, w.dtype), w]) if particular else w


class Rows(eqx.Module):
    """All rows of one expert: the PDE points, the condition rows and the ridge rows.

    With `particular`, the first field enters with the fixed weight one and
    `w` weights the others (the ridge rows act on `w` alone).
    """

    pde: AbstractPDE
    regions: tuple[str, ...] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    ridge: float = eqx.field(static=True)
    particular: bool = eqx.field(static=True, default=False)

    def residual(self, w, groups: tuple[RowGroup, ...]) -> Float[Array, " M"]:
        rows = [self.physical(w, groups)]
        if self.ridge > 0:
            rows.append(self.ridge * w)
        return jnp.concatenate(rows)

    def physical(self, w, groups) -> Float[Array, " R"]:
        """The residual without the ridge rows."""
        full = combination_weights(w, self.particular)
        rows = [
            group_residual(self.pde, region, self.names, group, full)
            for region, group in zip(self.regions, groups)
        ]
        return jnp.concatenate(rows)


def sample_points(key, eligible, num_points: int):
    """`num_points` distinct node indices where `eligible`, uniformly at random."""
    scores = jax.random.uniform(key, eligible.shape)
    scores = jnp.where(eligible, scores, 2.0)
    return jnp.argsort(scores)[:num_points]


def gather(terms, inputs, coords, index, mask) -> RowGroup:
    """The rows at flat node indices `index` of `(K, N, G)`, `(C, G)`, `(d, G)` arrays."""
    return RowGroup(terms[:, :, index], inputs[:, index], coords[:, index], mask)


def solve_rows(
    rows: Rows,
    groups: tuple[RowGroup, ...],
    num_basis: int,
    *,
    solver,
    adjoint,
    max_steps: int,
    w0: Optional[Array] = None,
):
    """The weights minimising the rows: `(w, num_steps, converged, residual)`.

    `num_basis` counts the free weights (the particular field has none)."""
    dtype = groups[0].terms.dtype
    w0 = jnp.zeros(num_basis, dtype) if w0 is None else w0
    dynamic, static = eqx.partition(rows, eqx.is_array)

    def residual(w, args):
        dyn, groups = args
        return eqx.combine(dyn, static).residual(w, groups)

    w, steps, converged = least_squares(
        residual, w0, (dynamic, groups), solver=solver, adjoint=adjoint, max_steps=max_steps
    )
    return w, steps, converged, rows.physical(w, groups)
