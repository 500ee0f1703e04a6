"""Mollifiers: boundary and initial conditions that hold by construction."""

from __future__ import annotations

from typing import Optional, Union

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from ._base import AbstractBasis, along, as_field, check_axis
from ._fourier import Fourier

_FORMS = ("sine", "polynomial")


def _bounded_axes(basis: AbstractBasis, axes) -> tuple[int, ...]:
    if axes is None:
        axes = tuple(i for i, a in enumerate(basis.axes) if not isinstance(a, Fourier))
        if not axes:
            raise ValueError(
                f"`axes` must be given: {basis._label()} has no bounded "
                "(non-Fourier) axis to take as default."
            )
    if not isinstance(axes, (tuple, list)):
        axes = (axes,)
    return tuple(check_axis("axes", i, basis.ndim) for i in axes)


def _bump(x: np.ndarray, form: str) -> np.ndarray:
    if form == "sine":
        # sin(πx) = sin(π(1 - x)); the min makes it exactly 0 at x = 1 too.
        return np.sin(np.pi * np.minimum(x, 1 - x))
    return 4 * x * (1 - x)


def dirichlet_factor(
    basis: AbstractBasis,
    *,
    axes: Optional[Union[int, tuple[int, ...]]] = None,
    form: str = "sine",
) -> Float[Array, "*N"]:
    """The nodal values of a factor that vanishes at `x = 0` and `x = 1` of some axes.

    The factor is the product over the chosen axes of `sin(πx)`
    (`form="sine"`) or `4x(1 - x)` (`form="polynomial"`, a degree-2
    polynomial, so a Chebyshev product stays a polynomial of known degree).
    Both peak at 1 in the middle.

    **Arguments:**

    - `basis`: the basis whose nodes are used.
    - `axes`: the axes with zero boundary values (default: every
      non-Fourier axis).
    - `form`: `"sine"` or `"polynomial"`.

    **Returns:** an array of shape `basis.shape`.

    ```python
    cheb = tx.spectral.Chebyshev(9)
    basis = tx.spectral.TensorBasis((cheb, cheb))
    factor = tx.spectral.dirichlet_factor(basis)     # sin(πx) sin(πy), (9, 9)
    ```
    """
    axes = _bounded_axes(basis, axes)
    if form not in _FORMS:
        raise ValueError(f"`form` must be one of {_FORMS}, got {form!r}.")
    grid = np.asarray(basis.grid())
    factor = np.ones(basis.shape)
    for i in axes:
        factor = factor * _bump(grid[i], form)
    return jnp.asarray(factor, dtype=grid.dtype)


def dirichlet_mollify(
    basis: AbstractBasis,
    values: Real[ArrayLike, "*N"],
    *,
    axes: Optional[Union[int, tuple[int, ...]]] = None,
    form: str = "sine",
) -> Float[Array, "*N"]:
    """Nodal values times [`trainax.spectral.dirichlet_factor`][]: zero on the boundary.

    Applied to a network's nodal output, the field `u = factor * values` is
    zero on the nodes at `x = 0` and `x = 1` of the chosen axes, and so is
    its interpolant (`basis.transform(u)`) on the whole boundary face when
    that axis is Chebyshev (its Gauss-Lobatto nodes include both ends).

    **Arguments:**

    - `basis`: the basis of `values`.
    - `values`: nodal values, shape `basis.shape`.
    - `axes`, `form`: as in [`trainax.spectral.dirichlet_factor`][].

    **Returns:** the mollified nodal values, shape `basis.shape`.

    ```python
    basis = tx.spectral.Chebyshev(8)
    u = tx.spectral.dirichlet_mollify(basis, jnp.ones(8))
    basis.evaluate(basis.transform(u), jnp.array([0.0, 1.0]))   # [0, 0]
    ```
    """
    values = as_field("values", values, basis)
    return values * dirichlet_factor(basis, axes=axes, form=form).astype(values.dtype)


def initial_value_mollify(
    basis: AbstractBasis,
    initial: Real[ArrayLike, "*M"],
    output: Real[ArrayLike, "*N"],
    *,
    time_axis: int = 0,
) -> Float[Array, "*N"]:
    """The initial-value form `u = φ + t * output` on the nodes.

    `u(0, ·) = φ` holds exactly, whatever the network's `output`: the first
    node of the time axis is `t = 0`, so the interpolant takes the values of
    `φ` there.

    **Arguments:**

    - `basis`: the space-time basis.
    - `initial`: `φ` on the nodes of the other axes, shape `basis.shape`
      without the time axis.
    - `output`: the network's nodal output, shape `basis.shape`.
    - `time_axis`: which axis is time (default 0).

    **Returns:** nodal values of `u`, shape `basis.shape`.

    ```python
    basis = tx.spectral.TensorBasis((tx.spectral.Chebyshev(8), tx.spectral.Fourier(16)))
    phi = jnp.sin(2 * jnp.pi * basis.nodes()[1])
    u = tx.spectral.initial_value_mollify(basis, phi, jnp.ones((8, 16)))
    u[0]                                           # = phi (t = 0)
    ```
    """
    output = as_field("output", output, basis)
    time_axis = check_axis("time_axis", time_axis, basis.ndim)
    initial = jnp.asarray(initial, dtype=output.dtype)
    space_shape = basis.shape[:time_axis] + basis.shape[time_axis + 1 :]
    if initial.shape != space_shape:
        raise ValueError(
            f"`initial` must have shape {space_shape} (the basis shape without "
            f"the time axis {time_axis}), got {initial.shape}."
        )
    t = along(basis.axes[time_axis].nodes(), time_axis, basis.ndim, output.dtype)
    return _initial_value_form(initial, t, output, time_axis)


@eqx.filter_jit
def _initial_value_form(
    initial: Array, t: Array, output: Array, time_axis: int
) -> Array:
    return jnp.expand_dims(initial, time_axis) + t * output


def zero_mean_gauge(
    basis: AbstractBasis, coeffs: Real[ArrayLike, "*N"]
) -> Float[Array, "*N"]:
    """Set the Fourier mean coefficient to zero: the gauge of periodic problems.

    A periodic Poisson problem fixes its solution only up to a constant;
    zeroing the mean mode picks the zero-mean one. On a tensor basis with
    bounded axes too, the coefficients with index 0 on every Fourier axis are
    zeroed, so the mean over the periodic axes vanishes at every point of
    the bounded ones.

    **Arguments:**

    - `basis`: a basis with at least one Fourier axis.
    - `coeffs`: coefficients, shape `basis.shape`.

    **Returns:** the gauged coefficients, shape `basis.shape`.

    ```python
    basis = tx.spectral.TensorBasis((tx.spectral.Fourier(8), tx.spectral.Fourier(8)))
    c = tx.spectral.zero_mean_gauge(basis, jnp.ones((8, 8)))
    basis.integrate(c)                                # 0
    ```
    """
    coeffs = as_field("coeffs", coeffs, basis)
    periodic = [isinstance(a, Fourier) for a in basis.axes]
    if not any(periodic):
        raise ValueError(
            "`basis` must have a Fourier axis for a zero-mean gauge, got "
            f"{basis._label()}."
        )
    index = tuple(0 if p else slice(None) for p in periodic)
    return coeffs.at[index].set(0)
