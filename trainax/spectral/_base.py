"""The abstract bases and the operations every basis shares, axis by axis."""

from __future__ import annotations

import abc
import functools
import numbers
from typing import Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._checks import positive_int

Modes = Union[int, tuple[int, ...]]


class AbstractBasis(eqx.Module):
    """A spectral basis of scalar fields on the unit box `[0, 1]^d`.

    A basis acts on ONE scalar field: nodal values of shape `basis.shape`
    (one value per node) or coefficients of the same shape. Channels and
    batches are `jax.vmap`ped outside. Every operation is separable and acts
    axis by axis through the 1-D bases in `basis.axes`.

    Concrete bases are [`trainax.spectral.Fourier`][],
    [`trainax.spectral.Chebyshev`][] and [`trainax.spectral.TensorBasis`][].
    They hold only static sizes, so they pass through `jax.jit`, `jax.vmap`
    and `jax.grad` as constants.

    **Attributes:**

    - `axes`: the 1-D bases, one per axis (a 1-D basis is its own only axis).
    - `shape`: the number of modes (= nodes) per axis.
    - `ndim`: the number of axes `d`.

    ```python
    basis = tx.spectral.TensorBasis((tx.spectral.Chebyshev(5), tx.spectral.Fourier(8)))
    basis.shape, basis.ndim          # ((5, 8), 2)
    ```
    """

    @property
    @abc.abstractmethod
    def axes(self) -> tuple[AbstractBasis1D, ...]:
        """The 1-D bases, one per axis."""

    @abc.abstractmethod
    def nodes(self):
        """The interpolation nodes (a 1-D array, or a tuple of them per axis)."""

    @abc.abstractmethod
    def with_modes(self, modes: Modes) -> AbstractBasis:
        """The same kind of basis with `modes` modes (an int, or one per axis)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.num_modes for axis in self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    def grid(self) -> Float[Array, "d *N"]:
        """The node coordinates on the full grid, shape `(d, *basis.shape)`.

        `grid()[i]` holds the `i`-th coordinate of every node (`indexing="ij"`).
        """
        nodes = [np.asarray(axis.nodes()) for axis in self.axes]
        return jnp.asarray(np.stack(np.meshgrid(*nodes, indexing="ij")))

    def transform(self, values: Real[ArrayLike, "*N"]) -> Float[Array, "*N"]:
        """Nodal values -> coefficients (the interpolant's), shape `basis.shape`."""
        return _transform(self, as_field("values", values, self))

    def inverse(self, coeffs: Real[ArrayLike, "*N"]) -> Float[Array, "*N"]:
        """Coefficients -> nodal values, shape `basis.shape`."""
        return _inverse(self, as_field("coeffs", coeffs, self))

    def evaluate(
        self, coeffs: Real[ArrayLike, "*N"], points: Real[ArrayLike, "P *d"]
    ) -> Float[Array, " P"]:
        """The field at arbitrary points of `[0, 1]^d`.

        **Arguments:**

        - `coeffs`: coefficients, shape `basis.shape`.
        - `points`: `(P, d)` coordinates (or `(P,)` for one axis). Concrete
          points outside the domain raise a `ValueError`; traced points
          (inside `jit`) cannot be checked: outside `[0, 1]` a Fourier axis
          repeats periodically and a Chebyshev axis extrapolates its
          polynomial.

        **Returns:** the values at the points, shape `(P,)`.
        """
        coeffs = as_field("coeffs", coeffs, self)
        return _evaluate(self, coeffs, as_points(points, self.ndim))

    def derivative(
        self, coeffs: Real[ArrayLike, "*N"], order: int = 1, axis: int = 0
    ) -> Float[Array, "*N"]:
        """The coefficients of the `order`-th derivative along `axis`.

        **Arguments:**

        - `coeffs`: coefficients, shape `basis.shape`.
        - `order`: a non-negative int; `0` returns `coeffs` unchanged.
        - `axis`: the axis to differentiate along (default 0).

        **Returns:** coefficients in the same basis, shape `basis.shape`.
        """
        coeffs = as_field("coeffs", coeffs, self)
        order = positive_int("order", order, allow_zero=True)
        axis = check_axis("axis", axis, self.ndim)
        if order == 0:
            return coeffs
        return _derivative(self, coeffs, order, axis)

    def integrate(self, coeffs: Real[ArrayLike, "*N"]) -> Float[Array, ""]:
        """The integral of the field over `[0, 1]^d`."""
        return _integrate(self, as_field("coeffs", coeffs, self))

    def l2_norm_squared(self, coeffs: Real[ArrayLike, "*N"]) -> Float[Array, ""]:
        """The squared L2 norm from the coefficients (Parseval), axis by axis.

        Each axis contributes the weights of its own orthogonality relation:
        Fourier the plain `∫_0^1 dx`, Chebyshev the Chebyshev weight (see the
        1-D bases). On a tensor basis the weights multiply.
        """
        return _l2_norm_squared(self, as_field("coeffs", coeffs, self))

    def resize(self, coeffs: Real[ArrayLike, "*N"], modes: Modes) -> Float[Array, "*M"]:
        """Truncate or zero-pad the coefficients to `modes` per axis.

        Every layout here lists the modes from the lowest up, so truncating
        drops the highest modes and padding leaves the function unchanged.

        **Arguments:**

        - `coeffs`: coefficients, shape `basis.shape`.
        - `modes`: the new size, an int for every axis or one per axis.

        **Returns:** coefficients of `basis.with_modes(modes)`.
        """
        coeffs = as_field("coeffs", coeffs, self)
        return _resize(coeffs, self._modes_tuple(modes))

    def multiply(
        self,
        a: Real[ArrayLike, "*Na"],
        b: Real[ArrayLike, "*Nb"],
        *,
        other: Optional[AbstractBasis] = None,
    ) -> Float[Array, "*M"]:
        """The alias-free product of two fields given by their coefficients.

        `a` belongs to this basis and `b` to `other` (default: this basis),
        which must be the same kind of basis axis by axis (sizes may differ).
        Both are zero-padded to `n_a + n_b` modes per axis, multiplied on the
        nodes of that padded basis and transformed back. The product of two
        band-limited fields fits in the padded basis, so no high mode aliases
        onto a low one.

        **Arguments:**

        - `a`: coefficients, shape `self.shape`.
        - `b`: coefficients, shape `other.shape`.
        - `other`: the basis of `b` (default: this basis).

        **Returns:** the product's coefficients, shape
        `m = self.shape + other.shape` elementwise, in `self.with_modes(m)`.
        """
        other = self if other is None else other
        check_same_kind(self, other)
        a, b = as_field("a", a, self), as_field("b", b, other)
        padded = tuple(n_a + n_b for n_a, n_b in zip(self.shape, other.shape))
        return _multiply(self.with_modes(padded), a, b)

    def _modes_tuple(self, modes: Modes) -> tuple[int, ...]:
        """`modes` as one positive int per axis (an int applies to every axis)."""
        if isinstance(modes, numbers.Integral) and not isinstance(modes, bool):
            modes = (modes,) * self.ndim
        if not isinstance(modes, (tuple, list)) or len(modes) != self.ndim:
            raise ValueError(
                f"`modes` must be an int or {self.ndim} ints (one per axis), "
                f"got {modes!r}."
            )
        return tuple(positive_int("modes", m) for m in modes)

    def _label(self) -> str:
        return " x ".join(f"{type(a).__name__}({a.num_modes})" for a in self.axes)


class AbstractBasis1D(AbstractBasis):
    """A basis of one axis: the building block of [`trainax.spectral.TensorBasis`][].

    Subclasses implement the per-axis operations on coefficient arrays of any
    number of axes (acting along `axis`), so that a tensor basis applies
    them one axis at a time. Coefficients are ordered from the lowest mode
    up. For one axis, `nodes()` is a 1-D array and `evaluate` also accepts
    points of shape `(P,)`.

    **Attributes:**

    - `num_modes`: the number of modes, equal to the number of nodes.

    ```python
    basis = tx.spectral.Chebyshev(5)
    isinstance(basis, tx.spectral.AbstractBasis1D), basis.axes == (basis,)  # True, True
    ```
    """

    num_modes: eqx.AbstractVar[int]

    @property
    def axes(self) -> tuple[AbstractBasis1D, ...]:
        return (self,)

    @abc.abstractmethod
    def nodes(self) -> Float[Array, " n"]:
        """The `n` interpolation nodes in `[0, 1]`, increasing."""

    @abc.abstractmethod
    def _transform_along(self, values: Array, axis: int) -> Array:
        """Nodal values -> coefficients along `axis`."""

    @abc.abstractmethod
    def _inverse_along(self, coeffs: Array, axis: int) -> Array:
        """Coefficients -> nodal values along `axis`."""

    @abc.abstractmethod
    def _derivative_along(self, coeffs: Array, order: int, axis: int) -> Array:
        """The coefficients of the `order`-th derivative (`order >= 1`) along `axis`."""

    @abc.abstractmethod
    def _basis_functions(self, x: Array) -> Array:
        """The basis functions at the points `x` `(P,)`, shape `(P, n)`."""

    @abc.abstractmethod
    def _integration_weights(self) -> np.ndarray:
        """`w` with `∫_0^1 f = w @ coeffs`."""

    @abc.abstractmethod
    def _norm_weights(self) -> np.ndarray:
        """`w` with `l2_norm_squared = w @ coeffs**2`."""


# The numerics, compiled once per basis and array shape (the bases are static
# pytrees): run eagerly, every small jnp operation would be compiled alone.


@eqx.filter_jit
def _transform(basis: AbstractBasis, values: Array) -> Array:
    for i, axis in enumerate(basis.axes):
        values = axis._transform_along(values, i)
    return values


@eqx.filter_jit
def _inverse(basis: AbstractBasis, coeffs: Array) -> Array:
    for i, axis in enumerate(basis.axes):
        coeffs = axis._inverse_along(coeffs, i)
    return coeffs


@eqx.filter_jit
def _evaluate(basis: AbstractBasis, coeffs: Array, points: Array) -> Array:
    # Contract one axis at a time: after axis i the partial sums have shape
    # (P, n_{i+1}, ..., n_{d-1}), so no (P, *N) array is formed.
    first = basis.axes[0]._basis_functions(points[:, 0])
    out = jnp.tensordot(first, coeffs, axes=(1, 0))
    for i, axis in enumerate(basis.axes[1:], start=1):
        phi = axis._basis_functions(points[:, i])
        out = jnp.einsum("pk...,pk->p...", out, phi)
    return out


@eqx.filter_jit
def _derivative(basis: AbstractBasis, coeffs: Array, order: int, axis: int) -> Array:
    return basis.axes[axis]._derivative_along(coeffs, order, axis)


def _outer(basis: AbstractBasis, weights_of, dtype) -> Array:
    """The tensor product of per-axis weight vectors, shape `basis.shape`."""
    weights = functools.reduce(np.multiply.outer, [weights_of(a) for a in basis.axes])
    return jnp.asarray(weights, dtype=dtype)


@eqx.filter_jit
def _integrate(basis: AbstractBasis, coeffs: Array) -> Array:
    weights = _outer(basis, lambda axis: axis._integration_weights(), coeffs.dtype)
    return jnp.sum(coeffs * weights)


@eqx.filter_jit
def _l2_norm_squared(basis: AbstractBasis, coeffs: Array) -> Array:
    weights = _outer(basis, lambda axis: axis._norm_weights(), coeffs.dtype)
    return jnp.sum(coeffs**2 * weights)


@eqx.filter_jit
def _resize(coeffs: Array, modes: tuple[int, ...]) -> Array:
    for i, m in enumerate(modes):
        n = coeffs.shape[i]
        if m < n:
            coeffs = jax.lax.slice_in_dim(coeffs, 0, m, axis=i)
        elif m > n:
            widths = [(0, 0)] * coeffs.ndim
            widths[i] = (0, m - n)
            coeffs = jnp.pad(coeffs, widths)
    return coeffs


@eqx.filter_jit
def _multiply(padded: AbstractBasis, a: Array, b: Array) -> Array:
    """The product of `a` and `b` in the basis `padded`, large enough for it."""
    a, b = _resize(a, padded.shape), _resize(b, padded.shape)
    return _transform(padded, _inverse(padded, a) * _inverse(padded, b))


def as_field(name: str, x, basis: AbstractBasis) -> Array:
    """`x` as a floating array of shape `basis.shape`, or an error naming `name`."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    if x.shape != basis.shape:
        raise ValueError(
            f"`{name}` must have shape {basis.shape} (one entry per mode of "
            f"{basis._label()}), got {x.shape}."
        )
    return x


def as_points(points, ndim: int) -> Array:
    """Points as a `(P, d)` floating array inside `[0, 1]^d` (checked when concrete)."""
    points = jnp.asarray(points)
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.result_type(float))
    if ndim == 1 and points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] != ndim:
        raise ValueError(
            f"`points` must have shape (P, {ndim}) for a basis of {ndim} axes, "
            f"got {points.shape}."
        )
    if not isinstance(points, jax.core.Tracer) and points.size:
        low, high = float(np.min(points)), float(np.max(points))
        if low < 0 or high > 1:
            raise ValueError(
                "`points` must lie in the domain [0, 1] on every axis, got "
                f"coordinates from {low} to {high}."
            )
    return points


def check_axis(name: str, axis, ndim: int) -> int:
    """`axis` as an int in `[0, ndim)`, or an error naming `name`."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {axis!r}.")
    if not 0 <= axis < ndim:
        raise ValueError(
            f"`{name}` must be in [0, {ndim}) for a basis of {ndim} axes, got {axis}."
        )
    return int(axis)


def check_same_kind(basis: AbstractBasis, other) -> None:
    """Raise naming `other` unless it has the same 1-D basis types as `basis`."""
    if not isinstance(other, AbstractBasis):
        raise TypeError(f"`other` must be a basis, got {type(other).__name__}.")
    if [type(a) for a in basis.axes] != [type(b) for b in other.axes]:
        raise ValueError(
            f"`other` must be the same kind of basis axis by axis as "
            f"{basis._label()}, got {other._label()}."
        )


def along(vector, axis: int, ndim: int, dtype) -> Array:
    """A per-mode vector shaped to broadcast along `axis` of an `ndim` array."""
    shape = [1] * ndim
    shape[axis] = -1
    return jnp.asarray(np.reshape(vector, shape), dtype=dtype)
