"""The Chebyshev basis of fields on the bounded interval `[0, 1]`."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import positive_int
from ._base import AbstractBasis1D, Modes, along


def _dct1(x: Array) -> Array:
    """`D(x)_k = x_0 + (-1)^k x_N + 2 sum_{0<j<N} x_j cos(πjk/N)` along axis 0.

    The DCT-I as the FFT of the even extension `[x_0, ..., x_N, x_{N-1}, ..., x_1]`
    of length `2N` (its FFT is real; the rfft returns exactly `k = 0..N`).
    """
    extended = jnp.concatenate([x, x[-2:0:-1]], axis=0)
    return jnp.fft.rfft(extended, axis=0).real


class Chebyshev(AbstractBasis1D):
    """The Chebyshev basis of fields on `[0, 1]`: `T_k(2x - 1)`, `k = 0, ..., n - 1`.

    Nodes: the `n` Chebyshev-Gauss-Lobatto points, ordered increasing in `x`,
    `x_j = (1 - cos(πj / (n - 1))) / 2` (so `x_0 = 0` and `x_{n-1} = 1`).
    Coefficients `a_k` represent `f(x) = sum_k a_k T_k(2x - 1)`, the
    interpolant of the nodal values; `transform` and `inverse` are a DCT-I
    computed with `jnp.fft`.

    - `derivative`: the standard recurrence `b_{k-1} = b_{k+1} + 2k a_k`
      (with `b_0` halved) for `d/dξ`, `ξ = 2x - 1`, times 2 per order for
      `d/dx`. The result keeps `n` coefficients (the top ones become zero).
    - `integrate`: `∫_0^1 f dx = sum_{k even} a_k / (1 - k^2)`.
    - `l2_norm_squared`: the Chebyshev-weighted norm in `ξ`,
      `∫_{-1}^{1} f^2 / sqrt(1 - ξ^2) dξ = π a_0^2 + π/2 sum_{k>=1} a_k^2`
      (not the plain `∫_0^1 f^2`; use `integrate(multiply(a, a))` for that).

    `evaluate` accepts points in `[0, 1]`.

    **Arguments:**

    - `n`: the number of nodes and of coefficients (`n >= 2`: the
      Gauss-Lobatto nodes include both ends).

    ```python
    basis = tx.spectral.Chebyshev(6)
    x = basis.nodes()                               # (6,): 0, ..., 1, increasing
    c = basis.transform(x**3)                       # exact for degree < 6
    basis.evaluate(basis.derivative(c), jnp.array([0.5]))   # 3 x^2 at 0.5: 0.75
    basis.integrate(c)                              # ∫ x^3 = 0.25
    ```
    """

    num_modes: int = eqx.field(static=True)

    def __init__(self, n: int):
        n = positive_int("n", n)
        if n < 2:
            raise ValueError(
                "`n` must be at least 2 for a Chebyshev basis (the Gauss-Lobatto "
                f"nodes include both ends), got {n}."
            )
        self.num_modes = n

    def nodes(self) -> Float[Array, " n"]:
        # sin^2(θ/2) = (1 - cos θ)/2 without the cancellation near x = 0,
        # and exactly 0 and 1 at the ends.
        theta = math.pi * np.arange(self.num_modes) / (self.num_modes - 1)
        return jnp.asarray(np.sin(theta / 2) ** 2)

    def with_modes(self, modes: Modes) -> Chebyshev:
        return Chebyshev(self._modes_tuple(modes)[0])

    def _signs_and_halves(self):
        n = self.num_modes
        # The nodes run from ξ = -1 up: ξ_j = -cos(πj/N). Since
        # T_k(-ξ) = (-1)^k T_k(ξ), the DCT of the values gives (-1)^k a_k.
        signs = (-1.0) ** np.arange(n)
        ends = np.ones(n)
        ends[[0, -1]] = 0.5
        return signs, ends

    def _transform_along(self, values: Array, axis: int) -> Array:
        signs, ends = self._signs_and_halves()
        v = jnp.moveaxis(values, axis, 0)
        scale = along(signs * ends / (self.num_modes - 1), 0, v.ndim, v.dtype)
        return jnp.moveaxis(_dct1(v) * scale, 0, axis)

    def _inverse_along(self, coeffs: Array, axis: int) -> Array:
        signs, ends = self._signs_and_halves()
        a = jnp.moveaxis(coeffs, axis, 0)
        # D counts the interior terms twice and the end terms once.
        scale = along(signs * np.where(ends == 1.0, 0.5, 1.0), 0, a.ndim, a.dtype)
        return jnp.moveaxis(_dct1(a * scale), 0, axis)

    def _derivative_along(self, coeffs: Array, order: int, axis: int) -> Array:
        a = jnp.moveaxis(coeffs, axis, 0)
        for _ in range(order):
            a = _derivative_once(a)
        return jnp.moveaxis(a, 0, axis)

    def _basis_functions(self, x: Array) -> Array:
        xi = 2 * x - 1

        # The three-term recurrence T_{k+1} = 2ξ T_k - T_{k-1}: accurate at the
        # ends (where cos(k arccos ξ) loses digits) and differentiable there.
        def step(carry, _):
            previous, current = carry
            return (current, 2 * xi * current - previous), previous

        init = (jnp.ones_like(xi), xi)
        _, table = jax.lax.scan(step, init, None, length=self.num_modes)
        return table.T

    def _integration_weights(self) -> np.ndarray:
        weights = np.zeros(self.num_modes)
        even = np.arange(0, self.num_modes, 2)
        weights[::2] = 1.0 / (1.0 - even**2)  # odd T_k integrate to zero
        return weights

    def _norm_weights(self) -> np.ndarray:
        return np.where(np.arange(self.num_modes) == 0, math.pi, math.pi / 2)


def _derivative_once(a: Array) -> Array:
    """Coefficients of `d/dx` along axis 0 for the Chebyshev layout."""
    n = a.shape[0]
    k = along(np.arange(n), 0, a.ndim, a.dtype)
    # Unrolled, the recurrence reads b_k = (1/c_k) sum_{p > k, p - k odd} 2p a_p
    # (c_0 = 2, c_k = 1): a reverse cumulative sum within each parity class,
    # starting one index up.
    shifted = jnp.concatenate([2 * k[1:] * a[1:], jnp.zeros_like(a[:1])], axis=0)
    b = jnp.zeros_like(a)
    for parity in (0, 1):
        tail_sums = jax.lax.cumsum(shifted[parity::2], axis=0, reverse=True)
        b = b.at[parity::2].set(tail_sums)
    b = b.at[0].multiply(0.5)
    return 2 * b  # d/dx = 2 d/dξ for ξ = 2x - 1
