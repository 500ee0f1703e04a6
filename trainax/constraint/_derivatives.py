"""Derivative schemes: the terms of many fields on a grid at once."""

from __future__ import annotations

import abc
from typing import ClassVar, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..spectral import Chebyshev, Fourier


class AbstractDerivatives(eqx.Module):
    """How the terms of a PDE are computed from fields on a grid.

    A scheme places the nodes of each axis and differentiates fields given
    on them. It acts on many fields at once (the `N` basis fields of a hard
    constraint, or the one output of a physics-informed model), so each
    term is computed once for all of them. See
    [`FiniteDifference`][trainax.constraint.FiniteDifference] and
    [`Spectral`][trainax.constraint.Spectral].

    **Attributes:**

    - `supports_blocks`: whether the scheme differentiates on a block of a
      grid (a [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts]
      needs it along the axes it splits).

    ```python
    fd = tx.constraint.FiniteDifference()
    terms = fd.terms(jnp.ones((3, 8, 16)), [(0, 0), (1, 0), (0, 2)], (1.0, 1.0), (False, True))
    terms.shape, fd.supports_blocks       # (3, 3, 8, 16): u, u_t, u_xx of 3 fields; True
    ```
    """

    supports_blocks: ClassVar[bool] = False

    @abc.abstractmethod
    def nodes(self, num: int, extent: float, periodic: bool) -> np.ndarray:
        """The `num` node coordinates of an axis of length `extent`, increasing."""

    @abc.abstractmethod
    def derivative(
        self, fields: Float[Array, "B *N"], axis: int, order: int, extent: float, periodic: bool
    ) -> Float[Array, "B *N"]:
        """The `order`-th derivative along spatial `axis` (0-based, after `B`)."""

    def min_nodes(self, order: int) -> int:
        """The fewest nodes an axis needs for a derivative of `order`."""
        return 1 if order == 0 else 2

    def terms(
        self,
        fields: Float[Array, "B *N"],
        orders: Sequence[tuple[int, ...]],
        extent: Sequence[float],
        periodic: Sequence[bool],
    ) -> Float[Array, "K B *N"]:
        """Every term (derivative orders per axis) of every field, stacked."""
        out = []
        for order in orders:
            term = fields
            for axis, k in enumerate(order):
                if k:
                    term = self.derivative(term, axis, k, extent[axis], periodic[axis])
            out.append(term)
        return jnp.stack(out)


def _along_last(fn, u, axis):
    return jnp.moveaxis(fn(jnp.moveaxis(u, axis, -1)), -1, axis)


def _first(u, h):
    interior = (u[..., 2:] - u[..., :-2]) / (2 * h)
    low = (-3 * u[..., 0] + 4 * u[..., 1] - u[..., 2]) / (2 * h)
    high = (3 * u[..., -1] - 4 * u[..., -2] + u[..., -3]) / (2 * h)
    return jnp.concatenate([low[..., None], interior, high[..., None]], axis=-1)


def _second(u, h):
    interior = (u[..., 2:] - 2 * u[..., 1:-1] + u[..., :-2]) / h**2
    low = (2 * u[..., 0] - 5 * u[..., 1] + 4 * u[..., 2] - u[..., 3]) / h**2
    high = (2 * u[..., -1] - 5 * u[..., -2] + 4 * u[..., -3] - u[..., -4]) / h**2
    return jnp.concatenate([low[..., None], interior, high[..., None]], axis=-1)


class FiniteDifference(AbstractDerivatives):
    """Second-order finite differences on uniform nodes.

    A bounded axis of length `L` with `n` nodes has nodes `i L / (n - 1)`
    (both ends included); a periodic one `i L / n`. First and second
    derivatives are central in the interior and one-sided (still second
    order) at the ends of a bounded axis; periodic axes wrap around. Higher
    orders compose them (`3 = 1 + 2`, `4 = 2 + 2`). Because the stencils
    only reach neighbours, the scheme also differentiates on a block of a
    grid (one-sided at the block's edges), as a mixture of experts needs.

    ```python
    fd = tx.constraint.FiniteDifference()
    x = fd.nodes(11, 1.0, False)                      # 0, 0.1, ..., 1
    u = jnp.asarray(x**2)[None]                       # one field, (1, 11)
    fd.derivative(u, 0, 2, 1.0, False)                # 2 everywhere (exact for quadratics)
    ```
    """

    supports_blocks: ClassVar[bool] = True

    def nodes(self, num: int, extent: float, periodic: bool) -> np.ndarray:
        if periodic:
            return np.arange(num) * (extent / num)
        return np.linspace(0.0, extent, num)

    def min_nodes(self, order: int) -> int:
        return {0: 1, 1: 3}.get(order, 4)

    def derivative(self, fields, axis, order, extent, periodic):
        axis = axis + 1
        n = fields.shape[axis]
        h = extent / n if periodic else extent / (n - 1)
        if order > 2:
            inner = self.derivative(fields, axis - 1, order - 2, extent, periodic)
            return self.derivative(inner, axis - 1, 2, extent, periodic)
        if periodic:
            up, down = jnp.roll(fields, -1, axis), jnp.roll(fields, 1, axis)
            if order == 1:
                return (up - down) / (2 * h)
            return (up - 2 * fields + down) / h**2
        stencil = _first if order == 1 else _second
        return _along_last(lambda u: stencil(u, h), fields, axis)


class Spectral(AbstractDerivatives):
    """Spectral derivatives: Fourier on periodic axes, Chebyshev on bounded ones.

    Periodic axes have uniform nodes `i L / n` and use
    [`tx.spectral.Fourier`][trainax.spectral.Fourier]; bounded axes have
    the Chebyshev-Gauss-Lobatto nodes scaled to `[0, L]` and use
    [`tx.spectral.Chebyshev`][trainax.spectral.Chebyshev]. Derivatives are
    exact for fields in the span of the basis (to round-off), which makes
    the scheme the reference for smooth fields. It needs whole axes, so a
    mixture of experts cannot split an axis it differentiates.

    ```python
    spectral = tx.constraint.Spectral()
    x = spectral.nodes(16, 1.0, True)                 # 0, 1/16, ..., 15/16
    u = jnp.sin(2 * jnp.pi * jnp.asarray(x))[None]
    u_x = spectral.derivative(u, 0, 1, 1.0, True)     # 2 pi cos(2 pi x), to round-off
    ```
    """

    def nodes(self, num: int, extent: float, periodic: bool) -> np.ndarray:
        basis = Fourier(num) if periodic else Chebyshev(num)
        with jax.ensure_compile_time_eval():  # static nodes, also when called under jit
            return extent * np.asarray(basis.nodes())

    def derivative(self, fields, axis, order, extent, periodic):
        axis = axis + 1
        n = fields.shape[axis]
        basis = Fourier(n) if periodic else Chebyshev(n)

        def one(u):
            return basis.inverse(basis.derivative(basis.transform(u), order))

        def along(u):
            flat = u.reshape(-1, n)
            return jax.vmap(one)(flat).reshape(u.shape)

        return _along_last(along, fields, axis) / extent**order
