"""The real Fourier basis of periodic fields on `[0, 1)`."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import positive_int
from ._base import AbstractBasis1D, Modes, along


def _frequencies(n: int) -> np.ndarray:
    """The frequency `k` of each real coefficient: `0, 1, 1, 2, 2, ...`."""
    return (np.arange(n) + 1) // 2


def _is_sine(n: int) -> np.ndarray:
    """Which real coefficients multiply a sine (the even slots after the mean)."""
    j = np.arange(n)
    return (j > 0) & (j % 2 == 0)


class Fourier(AbstractBasis1D):
    """The Fourier basis of periodic fields on `[0, 1)`, with real coefficients.

    Nodes `x_j = j / n`, `j = 0, ..., n - 1`. The `n` real coefficients are
    interleaved from the lowest frequency up,
    `c = [a_0, a_1, b_1, a_2, b_2, ...]`, and represent

    `f(x) = a_0 + sum_{1<=k<n/2} (a_k cos 2πkx + b_k sin 2πkx) [+ a_{n/2} cos πnx]`

    where the last term (the Nyquist mode, cosine only) exists for even `n`.
    So `c[0]` is the mean, every layout of `m < n` coefficients is the first
    `m` entries of this one (`resize` truncates or pads the tail), and:

    - derivatives are exact: `(a_k, b_k) -> 2πk (b_k, -a_k)` per order; an
      odd derivative zeroes the Nyquist mode (the derivative of `cos πnx` is
      a multiple of `sin πnx`, which vanishes on every node);
    - `l2_norm_squared` is the exact `∫_0^1 f^2 = a_0^2 + 1/2 sum_{j>=1} c_j^2`
      (the Nyquist cosine included, `∫ cos^2 = 1/2`);
    - `integrate` is `a_0`.

    `evaluate` accepts points in `[0, 1]` (`x = 1` is the same point as `0`).

    **Arguments:**

    - `n`: the number of nodes and of real coefficients (`n >= 1`).

    ```python
    basis = tx.spectral.Fourier(8)
    x = basis.nodes()                                 # (8,): 0, 1/8, ..., 7/8
    c = basis.transform(jnp.sin(2 * jnp.pi * x))      # c[2] = b_1 = 1
    du = basis.inverse(basis.derivative(c))           # 2π cos 2πx at the nodes
    basis.l2_norm_squared(c)                          # ∫ sin^2 = 0.5
    ```
    """

    num_modes: int = eqx.field(static=True)

    def __init__(self, n: int):
        self.num_modes = positive_int("n", n)

    def nodes(self) -> Float[Array, " n"]:
        return jnp.asarray(np.arange(self.num_modes) / self.num_modes)

    def with_modes(self, modes: Modes) -> Fourier:
        return Fourier(self._modes_tuple(modes)[0])

    def _transform_along(self, values: Array, axis: int) -> Array:
        n = self.num_modes
        pairs = (n - 1) // 2
        # c_k = (a_k - i b_k) / 2 with rfft(v) / n = c_k for 0 < k < n/2.
        c = jnp.moveaxis(jnp.fft.rfft(values, axis=axis), axis, -1) / n
        cosines, sines = 2 * c[..., 1 : pairs + 1].real, -2 * c[..., 1 : pairs + 1].imag
        interleaved = jnp.stack([cosines, sines], axis=-1)
        interleaved = interleaved.reshape(*c.shape[:-1], 2 * pairs)
        parts = [c[..., :1].real, interleaved]
        if n % 2 == 0:
            parts.append(c[..., n // 2 :].real)
        return jnp.moveaxis(jnp.concatenate(parts, axis=-1), -1, axis)

    def _inverse_along(self, coeffs: Array, axis: int) -> Array:
        n = self.num_modes
        pairs = (n - 1) // 2
        a = jnp.moveaxis(coeffs, axis, -1)
        cosines, sines = a[..., 1 : 2 * pairs + 1 : 2], a[..., 2 : 2 * pairs + 1 : 2]
        parts = [a[..., :1], (cosines - 1j * sines) / 2]
        if n % 2 == 0:
            parts.append(a[..., n - 1 :])
        complex_dtype = jnp.result_type(a.dtype, jnp.complex64)
        c = jnp.concatenate([p.astype(complex_dtype) for p in parts], axis=-1)
        values = jnp.fft.irfft(n * c, n=n, axis=-1)
        return jnp.moveaxis(values, -1, axis)

    def _derivative_along(self, coeffs: Array, order: int, axis: int) -> Array:
        n = self.num_modes
        j = np.arange(n)
        omega = 2 * math.pi * _frequencies(n)
        # d/dx (a cos ωx + b sin ωx) = ω (b cos ωx - a sin ωx): one order
        # rotates each (a, b) pair by a quarter turn, two orders negate it.
        factor = (-1.0) ** (order // 2) * omega**order
        if order % 2 == 1:
            partner = np.where(j % 2 == 1, j + 1, j - 1)
            partner[0] = 0
            has_partner = partner < n  # the Nyquist cosine has no sine partner
            partner = np.where(has_partner, partner, j)
            factor = factor * np.where(_is_sine(n), -1.0, 1.0) * has_partner
            coeffs = jnp.take(coeffs, partner, axis=axis)
        return coeffs * along(factor, axis, coeffs.ndim, coeffs.dtype)

    def _basis_functions(self, x: Array) -> Array:
        n = self.num_modes
        theta = 2 * jnp.pi * x[:, None] * _frequencies(n)
        return jnp.where(_is_sine(n), jnp.sin(theta), jnp.cos(theta))

    def _integration_weights(self) -> np.ndarray:
        return (np.arange(self.num_modes) == 0).astype(float)

    def _norm_weights(self) -> np.ndarray:
        return np.where(np.arange(self.num_modes) == 0, 1.0, 0.5)
