"""Gaussian random fields: white Fourier noise weighted by a spectral density."""

from __future__ import annotations

import functools
import math
import numbers
from typing import Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import scipy.special
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._base import AbstractBasis, AbstractBasis1D
from ._fourier import Fourier, _frequencies
from ._tensor import TensorBasis

_KERNELS = ("squared_exponential", "periodic")


def _as_basis(basis_or_shape) -> AbstractBasis:
    if isinstance(basis_or_shape, AbstractBasis):
        return basis_or_shape
    shape = basis_or_shape
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(
            "`basis_or_shape` must be a basis, an int or a tuple of ints, got "
            f"{basis_or_shape!r}."
        )
    sizes = [positive_int("basis_or_shape", n) for n in shape]
    return TensorBasis(tuple(Fourier(n) for n in sizes))


def _positive(name: str, value) -> None:
    if isinstance(value, numbers.Real) and not value > 0:
        raise ValueError(f"`{name}` must be positive, got {value}.")


def _axis_plan(axis: AbstractBasis1D, kernel: str) -> tuple[float, int]:
    """The period and number of real Fourier modes an axis is sampled with."""
    if isinstance(axis, Fourier):
        return 1.0, axis.num_modes
    # A bounded axis: twice the modes, so the node density matches a Fourier
    # axis of the same size; the squared-exponential field lives on a circle
    # of length 2, on which two points of [0, 1] are as far apart as on the line.
    return (1.0 if kernel == "periodic" else 2.0), 2 * axis.num_modes


def _axis_power(
    kernel: str, length_scale: float, period: float, modes: int
) -> np.ndarray:
    """The variance of each real coefficient of one axis, summing to 1 per point."""
    k = np.arange((modes - 1) // 2 + 1)  # distinct frequencies; no Nyquist mode
    if kernel == "squared_exponential":
        density = np.exp(-0.5 * (length_scale * 2 * math.pi * k / period) ** 2)
    else:
        # exp(z cos 2πr) = I_0(z) + 2 sum_k I_k(z) cos 2πkr, z = 1 / (2πℓ)^2.
        density = scipy.special.ive(k, 1.0 / (2 * math.pi * length_scale) ** 2)
    # A frequency k > 0 stands for ±k: its cosine and sine each carry 2 S_k,
    # and the pair adds 2 S_k cos(2πk(x - y)/P) to the covariance.
    power = density * np.where(k == 0, 1.0, 2.0)
    power = power / power.sum()
    per_coefficient = np.zeros(modes)
    j = np.arange(2 * len(k) - 1)  # every coefficient but an even n's Nyquist
    per_coefficient[j] = power[_frequencies(modes)[j]]
    return per_coefficient


def _synthesize(axis: AbstractBasis1D, coeffs: Array, i: int, plan) -> Array:
    """Real Fourier coefficients along axis `i` -> the field at the axis's nodes."""
    if isinstance(axis, Fourier):
        return axis._inverse_along(coeffs, i)
    period, modes = plan
    phi = Fourier(modes)._basis_functions(axis.nodes().astype(coeffs.dtype) / period)
    return jnp.moveaxis(jnp.tensordot(phi, coeffs, axes=(1, i)), 0, i)


def gaussian_random_field(
    key: PRNGKeyArray,
    basis_or_shape: Union[AbstractBasis, int, tuple[int, ...]],
    *,
    kernel: str = "squared_exponential",
    length_scale: float = 0.2,
    variance: Union[float, Float[Array, ""]] = 1.0,
    num_samples: Optional[int] = None,
) -> Float[Array, "*S"]:
    """Sample a stationary Gaussian random field on the nodes of a basis.

    The field is a real Fourier series whose coefficients are independent
    normal draws scaled by the square root of the kernel's spectral density
    (no covariance matrix is formed). The kernels, with `r = x - y` and
    `σ^2 = variance`, `ℓ = length_scale`:

    - `"squared_exponential"`: `σ^2 exp(-|r|^2 / (2ℓ^2))`;
    - `"periodic"`: `σ^2 exp(-sum_i sin^2(π r_i) / (2π^2 ℓ^2))`, period 1 on
      every axis. Near `r = 0` it equals the squared exponential of the same
      `ℓ` (in the `exp(-2 sin^2(πr) / L^2)` convention, `L = 2πℓ`).

    Per axis: a Fourier axis of `n` nodes is sampled with its own `n` modes
    (period 1; the Nyquist mode is left out), so the field is exactly a
    function of the basis. Any other (bounded) axis of `n` nodes, e.g.
    Chebyshev, is sampled with `2n` modes on a periodic extension of period 2
    and restricted to `[0, 1]`, so nothing forces its values at 0 and 1 to
    agree (the wrap-around images are at distance at least 1); with the
    periodic kernel it uses period 1 instead. The truncated spectrum is
    rescaled so that the variance at every point is exactly `variance`.

    **Arguments:**

    - `key`: a JAX PRNG key; the same key gives the same field.
    - `basis_or_shape`: a basis, or a grid shape (an int or a tuple of ints)
      meaning a periodic Fourier grid with nodes `j / n` per axis. For a
      domain of extent `L`, pass `length_scale / L`.
    - `kernel`: `"squared_exponential"` (default) or `"periodic"`.
    - `length_scale`: `ℓ`, in units of the unit box (default 0.2).
    - `variance`: the pointwise variance `σ^2` (default 1).
    - `num_samples`: draw this many independent fields (default: one field,
      no sample axis).

    **Returns:** nodal values, shape `basis.shape` (or `(num_samples,
    *basis.shape)`); `basis.transform` gives their coefficients.

    ```python
    basis = tx.spectral.TensorBasis((tx.spectral.Fourier(16), tx.spectral.Fourier(16)))
    f = tx.spectral.gaussian_random_field(jr.PRNGKey(0), basis, kernel="periodic")
    fs = tx.spectral.gaussian_random_field(jr.PRNGKey(1), (32,), num_samples=4)
    f.shape, fs.shape                                  # (16, 16), (4, 32)
    ```
    """
    basis = _as_basis(basis_or_shape)
    if kernel not in _KERNELS:
        raise ValueError(f"`kernel` must be one of {_KERNELS}, got {kernel!r}.")
    _positive("length_scale", length_scale)
    _positive("variance", variance)
    if num_samples is not None:
        num_samples = positive_int("num_samples", num_samples)
    plans = tuple(_axis_plan(axis, kernel) for axis in basis.axes)
    powers = [_axis_power(kernel, float(length_scale), *plan) for plan in plans]
    dtype = jnp.result_type(float)
    std = jnp.asarray(np.sqrt(functools.reduce(np.multiply.outer, powers)), dtype)
    variance = jnp.asarray(variance, dtype)
    return _sample(key, std, variance, basis, plans, num_samples)


@eqx.filter_jit
def _sample(key, std, variance, basis, plans, num_samples):
    """White noise times `std`, synthesised axis by axis; compiled once per shape."""
    std = std * jnp.sqrt(variance)

    def one(one_key):
        field = jr.normal(one_key, std.shape, std.dtype) * std
        for i, (axis, plan) in enumerate(zip(basis.axes, plans)):
            field = _synthesize(axis, field, i, plan)
        return field

    if num_samples is None:
        return one(key)
    return jax.vmap(one)(jr.split(key, num_samples))
