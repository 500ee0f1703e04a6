"""Tensor products of 1-D bases (e.g. Chebyshev in time times Fourier in space)."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
from jaxtyping import Array, Float

from ._base import AbstractBasis, AbstractBasis1D, Modes


class TensorBasis(AbstractBasis):
    """The tensor product of 1-D bases, one per axis of `[0, 1]^d`.

    Coefficients and nodal values have shape `(n_0, ..., n_{d-1})`, the
    `i`-th index belonging to `bases[i]` (with that basis's own layout), and
    every method acts axis by axis: `transform` and `inverse` apply the 1-D
    transforms along each axis, `derivative(coeffs, order, axis)`
    differentiates along one axis, `integrate` and `l2_norm_squared` multiply
    the 1-D weights, `resize` and `multiply` take one size per axis.
    `nodes()` returns a tuple of the 1-D node arrays; `grid()` the full
    `(d, *shape)` coordinate grid. `evaluate` takes points `(P, d)`.

    **Arguments:**

    - `bases`: a sequence of bases; a tensor basis inside it contributes
      its own axes.

    ```python
    basis = tx.spectral.TensorBasis((tx.spectral.Chebyshev(9), tx.spectral.Fourier(16)))
    t, x = basis.grid()                              # (9, 16) each
    c = basis.transform(t**2 * jnp.sin(2 * jnp.pi * x))
    u_t = basis.inverse(basis.derivative(c, axis=0))  # 2t sin 2πx
    u_xx = basis.inverse(basis.derivative(c, 2, axis=1))
    ```
    """

    bases: tuple[AbstractBasis1D, ...] = eqx.field(static=True)

    def __init__(self, bases: Sequence[AbstractBasis]):
        if isinstance(bases, AbstractBasis) or not isinstance(bases, Sequence):
            raise TypeError(
                f"`bases` must be a tuple of bases, got {type(bases).__name__}."
            )
        for basis in bases:
            if not isinstance(basis, AbstractBasis):
                raise TypeError(
                    f"`bases` must contain bases only, got {type(basis).__name__}."
                )
        if len(bases) == 0:
            raise ValueError("`bases` must contain at least one basis, got none.")
        self.bases = tuple(axis for basis in bases for axis in basis.axes)

    @property
    def axes(self) -> tuple[AbstractBasis1D, ...]:
        return self.bases

    def nodes(self) -> tuple[Float[Array, " _"], ...]:
        return tuple(axis.nodes() for axis in self.bases)

    def with_modes(self, modes: Modes) -> TensorBasis:
        sizes = self._modes_tuple(modes)
        return TensorBasis(tuple(a.with_modes(m) for a, m in zip(self.bases, sizes)))
