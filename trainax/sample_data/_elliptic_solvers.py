"""Exact FFT solvers of constant-coefficient elliptic equations on the
periodic unit square `[0, 1)^2`.

Every solver divides the source's Fourier coefficients by the symbol of its
operator, so the result satisfies the discrete (spectral) equation up to
rounding. A field `f[i, j]` holds the value at `(x, y) = (i / Nx, j / Ny)`.
"""

import math
from typing import Union

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Real

# The diffusivity of Helmholtz's `-0.01 Laplace(u)`, and the scale of `K`.
DIFFUSIVITY = 0.01

Omega = Union[int, float, Real[ArrayLike, ""]]


def _check_field(f) -> Float[Array, "Nx Ny"]:
    f = jnp.asarray(f)
    if f.ndim != 2:
        raise ValueError(
            f"`f` must be one 2D field of shape (N, N) (vmap for batches), "
            f"got shape {f.shape}."
        )
    return f


def _check_shape(name: str, value, shape: tuple) -> Array:
    value = jnp.asarray(value)
    if value.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}, got {value.shape}.")
    return value


def _float_dtype(*values):
    # Python scalars are weakly typed: float32 fields stay float32 under x64.
    return jnp.result_type(*values, 0.0)


def wavenumbers(shape: tuple, dtype) -> tuple[Array, Array]:
    """Angular wavenumbers `2 pi k` of an `rfft2` spectrum, broadcastable."""
    nx, ny = shape
    kx = 2 * math.pi * jnp.fft.fftfreq(nx, 1 / nx).astype(dtype)
    ky = 2 * math.pi * jnp.fft.rfftfreq(ny, 1 / ny).astype(dtype)
    return kx[:, None], ky[None, :]


def off_nyquist(shape: tuple) -> Bool[Array, "Nx Ky"]:
    """True off the Nyquist row and column (which only even axes have)."""
    nx, ny = shape
    rows = jnp.arange(nx) != (nx // 2 if nx % 2 == 0 else -1)
    cols = jnp.arange(ny // 2 + 1) != (ny // 2 if ny % 2 == 0 else -1)
    return rows[:, None] & cols[None, :]


def off_mean(shape: tuple) -> Bool[Array, "Nx Ky"]:
    nx, ny = shape
    return jnp.ones((nx, ny // 2 + 1), bool).at[0, 0].set(False)


def divide_by_symbol(
    f: Float[Array, "Nx Ny"],
    symbol: Union[Float[Array, "Nx Ky"], Complex[Array, "Nx Ky"]],
    keep: Bool[Array, "Nx Ky"],
) -> Float[Array, "Nx Ny"]:
    """Solve `symbol * u_hat = f_hat` on the kept modes, zero elsewhere.

    Modes where the symbol vanishes are set to zero too, rather than to inf.
    """
    keep = keep & (symbol != 0)
    f_hat = jnp.fft.rfft2(f)
    u_hat = jnp.where(keep, f_hat / jnp.where(keep, symbol, 1), 0)
    return jnp.fft.irfft2(u_hat, s=f.shape).astype(f.dtype)


def diffusion_symbol(shape: tuple, K: Array, dtype) -> Float[Array, "Nx Ky"]:
    """`(2 pi k)^T K (2 pi k)`: the symbol of `-div(K grad u)`."""
    kx, ky = wavenumbers(shape, dtype)
    # Only the symmetric part of `K` enters a second-order operator.
    cross = K[0, 1] + K[1, 0]
    return K[0, 0] * kx**2 + cross * kx * ky + K[1, 1] * ky**2


def solve_anisotropic_poisson(
    f: Float[ArrayLike, "Nx Ny"], K: Float[ArrayLike, "2 2"]
) -> Float[Array, "Nx Ny"]:
    """Solve `-div(K grad u) = f` exactly on the periodic unit square.

    `K` is a constant symmetric positive definite `2 x 2` tensor. Mode `k` of
    the solution is `f_hat(k) / ((2 pi k)^T K (2 pi k))`. Two modes are not
    solved for:

    - the mean (`k = 0`): `u` has zero mean (the gauge), and the mean of `f`
        is dropped (a periodic solution needs a zero-mean source);
    - the Nyquist row and column of an even axis: the cross term
        `K12 k_x k_y` cannot be represented by a real field there, so `u`
        solves the equation with the source Nyquist-filtered (these modes of
        `f` dropped). Odd axes have no Nyquist mode.

    **Arguments:**

    - `f`: The source, shape `(Nx, Ny)`; `f[i, j]` is the value at
        `(i / Nx, j / Ny)`.
    - `K`: The diffusion tensor, shape `(2, 2)` (its symmetric part is used).

    **Returns:**

    The zero-mean solution `u`, shape `(Nx, Ny)`, in the dtype of `f` and `K`.

    **Example:**

    ```python
    x = jnp.arange(16) / 16
    f = jnp.sin(2 * jnp.pi * x)[:, None] * jnp.ones(16)
    K = jnp.array([[0.02, 0.0], [0.0, 0.01]])
    u = tx.sample_data.solve_anisotropic_poisson(f, K)
    # -0.02 u_xx = f with u = a sin(2 pi x): a = 1 / (0.02 (2 pi)^2)
    np.testing.assert_allclose(u, f / (0.02 * (2 * np.pi) ** 2), atol=1e-5)
    ```
    """
    return _poisson(_check_field(f), _check_shape("K", K, (2, 2)))


def solve_advection_diffusion(
    f: Float[ArrayLike, "Nx Ny"],
    K: Float[ArrayLike, "2 2"],
    v: Float[ArrayLike, "2"],
) -> Float[Array, "Nx Ny"]:
    """Solve `-div(K grad u) + v . grad u = f` exactly on the periodic unit square.

    `K` is a constant symmetric positive definite tensor and `v` a constant
    velocity. Mode `k` of the solution is
    `f_hat(k) / ((2 pi k)^T K (2 pi k) + i v . (2 pi k))`. As in
    [`trainax.sample_data.solve_anisotropic_poisson`][], `u` has zero mean
    (the mean of `f` is dropped) and the Nyquist row and column of even axes
    are filtered out of the source: the advection term is odd in `k` and has
    no real representation there.

    **Arguments:**

    - `f`: The source, shape `(Nx, Ny)`; `f[i, j]` is the value at
        `(i / Nx, j / Ny)`.
    - `K`: The diffusion tensor, shape `(2, 2)` (its symmetric part is used).
    - `v`: The velocity `(v_x, v_y)`, shape `(2,)`.

    **Returns:**

    The zero-mean solution `u`, shape `(Nx, Ny)`, in the dtype of the inputs.

    **Example:**

    ```python
    x = jnp.arange(16) / 16
    f = jnp.cos(2 * jnp.pi * x)[:, None] * jnp.ones(16)
    K = 0.01 * jnp.eye(2)
    u = tx.sample_data.solve_advection_diffusion(f, K, jnp.array([0.05, 0.0]))
    u.shape  # (16, 16)
    ```
    """
    f = _check_field(f)
    return _advection_diffusion(
        f, _check_shape("K", K, (2, 2)), _check_shape("v", v, (2,))
    )


def solve_helmholtz(
    f: Float[ArrayLike, "Nx Ny"], omega: Omega
) -> Float[Array, "Nx Ny"]:
    """Solve `-0.01 Laplace(u) - omega u = f` exactly on the periodic unit square.

    Mode `k` of the solution is `f_hat(k) / (0.01 |2 pi k|^2 - omega)`. The
    symbol is even and real, so every mode (the Nyquist modes too) is solved
    and nothing is filtered; the mean of `u` is `-mean(f) / omega`. Near a
    resonance `0.01 |2 pi k|^2 = omega` the solution grows without bound; a
    mode whose symbol is exactly zero (the mean when `omega = 0`) is set to
    zero.

    **Arguments:**

    - `f`: The source, shape `(Nx, Ny)`; `f[i, j]` is the value at
        `(i / Nx, j / Ny)`.
    - `omega`: The (real) coefficient `omega`, a scalar; it may be traced.

    **Returns:**

    The solution `u`, shape `(Nx, Ny)`, in the dtype of `f`.

    **Example:**

    ```python
    x = jnp.arange(16) / 16
    f = jnp.sin(2 * jnp.pi * x)[:, None] * jnp.ones(16)
    u = tx.sample_data.solve_helmholtz(f, 3)
    a = 1 / (0.01 * (2 * np.pi) ** 2 - 3)
    np.testing.assert_allclose(u, a * f, atol=1e-5)
    ```
    """
    return _helmholtz(_check_field(f), _check_shape("omega", omega, ()))


# One compiled program per shape and dtype: called eagerly, the dozens of
# small operations would otherwise each be dispatched (and compiled) alone.


@jax.jit
def _poisson(f, K):
    dtype = _float_dtype(f, K)
    f, K = f.astype(dtype), K.astype(dtype)
    symbol = diffusion_symbol(f.shape, K, dtype)
    keep = off_mean(f.shape) & off_nyquist(f.shape)
    return divide_by_symbol(f, symbol, keep)


@jax.jit
def _advection_diffusion(f, K, v):
    dtype = _float_dtype(f, K, v)
    f, K, v = f.astype(dtype), K.astype(dtype), v.astype(dtype)
    kx, ky = wavenumbers(f.shape, dtype)
    symbol = diffusion_symbol(f.shape, K, dtype) + 1j * (v[0] * kx + v[1] * ky)
    keep = off_mean(f.shape) & off_nyquist(f.shape)
    return divide_by_symbol(f, symbol, keep)


@jax.jit
def _helmholtz(f, omega):
    dtype = _float_dtype(f, omega)
    f, omega = f.astype(dtype), omega.astype(dtype)
    kx, ky = wavenumbers(f.shape, dtype)
    symbol = DIFFUSIVITY * (kx**2 + ky**2) - omega
    return divide_by_symbol(f, symbol, jnp.ones(symbol.shape, bool))
