"""Parametric elliptic families on the periodic unit square, solved exactly.

Poisson with a rotated anisotropic diffusion tensor, advection-diffusion and
Helmholtz: random sources (sums of periodic Gaussian bumps) and random
coefficients, returned as operator-learning pairs `(inputs, targets)` whose
inputs carry the coefficients as constant channels.
"""

import functools
import math
import numbers
from typing import Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._elliptic_solvers import (
    DIFFUSIVITY,
    off_mean,
    off_nyquist,
    solve_advection_diffusion,
    solve_anisotropic_poisson,
    solve_helmholtz,
)
from ._validation import check_int, check_real

Scalar = Union[int, float]
Inputs = Float[Array, "samples in_channels N N"]
Targets = Float[Array, "samples 1 N N"]


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _check_range(name: str, value, *, integer=False, positive=False, nonneg=False):
    """A pair `(low, high)` with `low <= high`; a single value is `(a, a)`."""
    kind = numbers.Integral if integer else numbers.Real
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(b, bool) or not isinstance(b, kind) for b in value)
    ):
        what = "integers" if integer else "real numbers"
        raise TypeError(
            f"`{name}` must be a pair (low, high) of {what}, got {value!r}."
        )
    low, high = (int(b) if integer else float(b) for b in value)
    if not all(math.isfinite(b) for b in (low, high)) or low > high:
        raise ValueError(
            f"`{name}` must be a finite pair (low, high) with low <= high, "
            f"got {value!r}."
        )
    if positive and low <= 0:
        raise ValueError(f"`{name}` must be positive (low > 0), got {value!r}.")
    if nonneg and low < 0:
        raise ValueError(f"`{name}` must be non-negative (low >= 0), got {value!r}.")
    return low, high


def _check_sizes(num_samples, num_points, num_bumps, bump_width):
    check_int("num_samples", num_samples)
    check_int("num_points", num_points, minimum=4)
    check_int("num_bumps", num_bumps)
    check_real("bump_width", bump_width, positive=True)


def _float_dtype():
    # float32 by default, float64 when x64 is enabled.
    return jnp.result_type(float)


def _as_array(value):
    return jnp.asarray(value, _float_dtype())


# --------------------------------------------------------------------------
# Random draws, one sample each, from uniform numbers in [0, 1)
# --------------------------------------------------------------------------
# All random numbers of a batch come from one `jr.uniform` call: every random
# call inlines a threefry kernel, and those dominate the compile time on CPU.


def _source(uniform, num_points: int, width) -> Float[Array, "N N"]:
    """A sum of periodic Gaussian bumps, zero mean, Nyquist modes removed.

    `uniform` holds `3 B` numbers: the centres' x, the centres' y and the
    amplitudes of `B` bumps.
    """
    cx, cy, a = jnp.split(uniform, 3)
    x = jnp.arange(num_points, dtype=uniform.dtype) / num_points

    def profile(centres):  # (B, N): the bump along one axis
        d = x[None, :] - centres[:, None]
        d = d - jnp.round(d)  # wrapped distance to the nearest image
        return jnp.exp(-(d**2) / (2 * width**2))

    # The bump is separable: sum_b a_b gx_b(x) gy_b(y), one matrix product.
    f = profile(cx).T @ ((2 * a - 1)[:, None] * profile(cy))
    shape = (num_points, num_points)
    f_hat = jnp.fft.rfft2(f) * (off_mean(shape) & off_nyquist(shape))
    return jnp.fft.irfft2(f_hat, s=shape).astype(uniform.dtype)


def _between(uniform, bounds):
    return bounds[0] + uniform * (bounds[1] - bounds[0])


def _diffusion_tensor(uniform, e_range):
    """`0.01 R^T diag(1, e) R`, rotation angle uniform in `[0, pi)`; and `e`."""
    angle = math.pi * uniform[0]
    e = _between(uniform[1], e_range)
    c, s = jnp.cos(angle), jnp.sin(angle)
    # Written with (e - 1) so that e = 1 gives 0.01 I exactly (constant
    # channels without rounding noise across samples).
    k11 = 1 + (e - 1) * s**2
    k12 = (e - 1) * s * c
    k22 = 1 + (e - 1) * c**2
    return DIFFUSIVITY * jnp.array([[k11, k12], [k12, k22]]), e


def _velocity(uniform, e, ratio_range) -> Float[Array, "2"]:
    """Random direction; `|v| = ratio * 2 pi * lambda_min(K)`."""
    angle = 2 * math.pi * uniform[0]
    ratio = _between(uniform[1], ratio_range)
    speed = ratio * 2 * math.pi * DIFFUSIVITY * jnp.minimum(1, e)
    return speed * jnp.stack([jnp.cos(angle), jnp.sin(angle)])


def _pair(f, coefficients, u):
    """Stack the source and constant coefficient channels; add the channel axis."""
    constant = jnp.broadcast_to(
        coefficients[:, None, None], (coefficients.size,) + f.shape
    )
    return jnp.concatenate([f[None], constant.astype(f.dtype)]), u[None]


def _tensor_entries(K):
    return jnp.stack([K[0, 0], K[0, 1], K[1, 1]])


# --------------------------------------------------------------------------
# Compiled generators (sizes static, ranges traced)
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _poisson_data(key, num_samples, num_points, num_bumps, width, e_range):
    def one(uniform):
        f = _source(uniform[2:], num_points, width)
        K, _ = _diffusion_tensor(uniform[:2], e_range)
        return _pair(f, _tensor_entries(K), solve_anisotropic_poisson(f, K))

    shape = (num_samples, 2 + 3 * num_bumps)
    return jax.vmap(one)(jr.uniform(key, shape, width.dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _advection_diffusion_data(
    key, num_samples, num_points, num_bumps, width, e_range, ratio_range
):
    def one(uniform):
        f = _source(uniform[4:], num_points, width)
        K, e = _diffusion_tensor(uniform[:2], e_range)
        v = _velocity(uniform[2:4], e, ratio_range)
        coefficients = jnp.concatenate([_tensor_entries(K), v])
        return _pair(f, coefficients, solve_advection_diffusion(f, K, v))

    shape = (num_samples, 4 + 3 * num_bumps)
    return jax.vmap(one)(jr.uniform(key, shape, width.dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _helmholtz_data(
    key, num_samples, num_points, num_bumps, width, omega_range, bound, max_redraws
):
    low, high = omega_range[0], omega_range[1]

    def one(uniform):
        f = _source(uniform[1:], num_points, width)
        # An integer uniform in [low, high]; the clip guards rounding at 1.
        omega = jnp.minimum(low + jnp.floor(uniform[0] * (high - low + 1)), high)
        return f, omega, solve_helmholtz(f, omega)

    def rejected(u):
        # Written so that NaN or inf are rejected too.
        return ~(jnp.max(jnp.abs(u), axis=(1, 2)) <= bound)

    def cond(carry):
        attempt, *_, failed = carry
        return jnp.any(failed) & (attempt < max_redraws)

    def body(carry):
        # Every sample is redrawn in lock step (as a vmapped loop would), but
        # only the rejected ones take the new draw.
        attempt, *old, failed = carry
        attempt = attempt + 1
        uniform = jr.uniform(
            jr.fold_in(key, attempt), (num_samples, 1 + 3 * num_bumps), width.dtype
        )
        new = jax.vmap(one)(uniform)
        f, omega, u = (
            jnp.where(failed.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
            for n, o in zip(new, old)
        )
        return attempt, f, omega, u, rejected(u)

    # Start from "everything rejected" at attempt -1, so the first draw is
    # the loop body too (one random kernel to compile, not two).
    dtype = width.dtype
    grid = jnp.zeros((num_samples, num_points, num_points), dtype)
    init = (-1, grid, jnp.zeros(num_samples, dtype), grid, jnp.ones(num_samples, bool))
    _, f, omega, u, failed = jax.lax.while_loop(cond, body, init)
    inputs, targets = jax.vmap(_pair)(f, omega[:, None], u)
    targets = eqx.error_if(
        targets,
        jnp.any(failed),
        "helmholtz_2d_periodic: a sample still had max |u| > max_abs_solution "
        "after max_redraws redraws; raise `max_redraws` or `max_abs_solution`, "
        "or change `omega_range`.",
    )
    return inputs, targets


# --------------------------------------------------------------------------
# Public data functions
# --------------------------------------------------------------------------


def poisson_2d_periodic(
    *,
    num_samples: int = 20,
    num_points: int = 32,
    num_bumps: int = 5,
    bump_width: Scalar = 0.1,
    e_range: tuple[Scalar, Scalar] = (1.0, 5.0),
    key: PRNGKeyArray,
) -> tuple[Inputs, Targets]:
    """Pairs (source and tensor, solution) of anisotropic Poisson, periodic.

    Solves `-div(K grad u) = f` exactly by FFT on the periodic unit square
    `[0, 1)^2` (grid nodes `j / N`; see
    [`trainax.sample_data.solve_anisotropic_poisson`][]) with, per sample:

    - `K = 0.01 R^T diag(1, e) R`, `R` the rotation by an angle uniform in
        `[0, pi)`, the eigenvalue ratio `e` uniform in `e_range`;
    - `f` a sum of `num_bumps` Gaussian bumps
        `a exp(-d^2 / (2 bump_width^2))`, centres uniform on the square,
        amplitudes `a` uniform in `[-1, 1]`, `d` the periodic (wrapped)
        distance, then made zero-mean. On even grids the Nyquist row and
        column of its spectrum are removed (the cross term of `K` has no real
        representation there), so `(f, u)` satisfy the discrete equation
        exactly. Widths well below 0.5 keep the wrap seam invisible.

    The solution has zero mean (the gauge of the periodic problem).

    **Arguments:**

    - `num_samples`: Number of pairs `S`.
    - `num_points`: Grid points `N` per axis (at least 4).
    - `num_bumps`: Number of Gaussian bumps in each source.
    - `bump_width`: Standard deviation of each bump (the square has side 1).
    - `e_range`: `(low, high)`, positive, the range of the eigenvalue ratio
        `e`; `low == high` fixes it. Pretraining default `(1, 5)`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.

    **Returns:**

    `(inputs, targets)`: inputs `(S, 4, N, N)` with channels `f`, `K11`,
    `K12`, `K22` (the tensor's entries as constant channels: they determine
    the operator, and unlike `(e, angle)` they do not jump where the angle
    wraps), and targets `(S, 1, N, N)`, the solution `u`. float32 unless x64
    is enabled.

    **Example:**

    ```python
    inputs, targets = tx.sample_data.poisson_2d_periodic(
        num_samples=8, num_points=16, key=jax.random.key(0)
    )
    inputs.shape, targets.shape  # (8, 4, 16, 16), (8, 1, 16, 16)
    ```
    """
    _check_sizes(num_samples, num_points, num_bumps, bump_width)
    e_range = _check_range("e_range", e_range, positive=True)
    return _poisson_data(
        key, num_samples, num_points, num_bumps,
        _as_array(bump_width), _as_array(e_range),
    )


def advection_diffusion_2d_periodic(
    *,
    num_samples: int = 20,
    num_points: int = 32,
    num_bumps: int = 5,
    bump_width: Scalar = 0.1,
    e_range: tuple[Scalar, Scalar] = (1.0, 5.0),
    ratio_range: tuple[Scalar, Scalar] = (0.2, 1.0),
    key: PRNGKeyArray,
) -> tuple[Inputs, Targets]:
    """Pairs (source and coefficients, solution) of advection-diffusion, periodic.

    Solves `-div(K grad u) + v . grad u = f` exactly by FFT on the periodic
    unit square (see [`trainax.sample_data.solve_advection_diffusion`][]),
    with `K` and the source `f` drawn as in
    [`trainax.sample_data.poisson_2d_periodic`][] (the default `e_range` is
    the same `(1, 5)`, so the two families differ by the advection only), and
    a velocity `v` of uniformly random direction and magnitude

    `|v| = ratio * 2 pi * lambda_min(K)`,

    with the advection-to-diffusion ratio `ratio` uniform in `ratio_range`
    and `lambda_min(K) = 0.01 min(1, e)`. The ratio bounds the advection
    symbol by the diffusion symbol: for every nonzero integer mode `k`,
    `(2 pi k)^T K (2 pi k) >= lambda_min |2 pi k|^2 >= 2 pi lambda_min |2 pi k|`,
    so `|v . 2 pi k| <= ratio * (2 pi k)^T K (2 pi k)`. With `ratio <= 1`
    advection never dominates diffusion at any mode, and at `ratio` near 1
    the two are of the same size at the slowest modes `|k| = 1`. With the
    defaults, the advection changes the solution by about 25% (median
    relative L2 difference to the same sample without it; 5% to 60%).

    **Arguments:**

    - `num_samples`: Number of pairs `S`.
    - `num_points`: Grid points `N` per axis (at least 4).
    - `num_bumps`: Number of Gaussian bumps in each source.
    - `bump_width`: Standard deviation of each bump (the square has side 1).
    - `e_range`: `(low, high)`, positive: the eigenvalue ratio of `K`.
    - `ratio_range`: `(low, high)`, non-negative: the advection-to-diffusion
        ratio. Pretraining default `(0.2, 1)`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.

    **Returns:**

    `(inputs, targets)`: inputs `(S, 6, N, N)` with channels `f`, `K11`,
    `K12`, `K22`, `v_x`, `v_y` (constant channels), and targets
    `(S, 1, N, N)`, the zero-mean solution `u`. float32 unless x64 is
    enabled.

    **Example:**

    ```python
    inputs, targets = tx.sample_data.advection_diffusion_2d_periodic(
        num_samples=8, num_points=16, key=jax.random.key(0)
    )
    inputs.shape, targets.shape  # (8, 6, 16, 16), (8, 1, 16, 16)
    ```
    """
    _check_sizes(num_samples, num_points, num_bumps, bump_width)
    e_range = _check_range("e_range", e_range, positive=True)
    ratio_range = _check_range("ratio_range", ratio_range, nonneg=True)
    return _advection_diffusion_data(
        key, num_samples, num_points, num_bumps,
        _as_array(bump_width), _as_array(e_range), _as_array(ratio_range),
    )


def helmholtz_2d_periodic(
    *,
    num_samples: int = 20,
    num_points: int = 32,
    num_bumps: int = 5,
    bump_width: Scalar = 0.1,
    omega_range: tuple[int, int] = (1, 10),
    max_abs_solution: Scalar = 2.0,
    max_redraws: int = 100,
    key: PRNGKeyArray,
) -> tuple[Inputs, Targets]:
    """Pairs (source and omega, solution) of Helmholtz, periodic.

    Solves `-0.01 Laplace(u) - omega u = f` exactly by FFT on the periodic
    unit square (see [`trainax.sample_data.solve_helmholtz`][]), with the
    source `f` drawn as in [`trainax.sample_data.poisson_2d_periodic`][]
    (zero mean, so the mean of `u` is zero too) and an integer `omega`
    uniform in `omega_range` (both ends included).

    Near a resonance `0.01 |2 pi k|^2 = omega` the solution is huge, so a
    sample with `max |u| > max_abs_solution` is redrawn (source and `omega`
    together, inside the compiled program by a bounded `lax.while_loop`).
    This tilts the distribution of `omega` away from near-resonant values:
    with the default sources and bound, `omega = 2` (next to
    `0.01 (2 pi)^2 5 = 1.97`, the modes `|k|^2 = 5`) is rejected almost
    always and so practically never appears, `omega = 4` (next to 3.95,
    `|k|^2 = 10`) about a quarter of the time, `omega = 1` one time in twelve.
    If a sample is still rejected after `max_redraws` redraws, the call
    raises a runtime error (`eqx.error_if`) instead of returning it.

    **Arguments:**

    - `num_samples`: Number of pairs `S`.
    - `num_points`: Grid points `N` per axis (at least 4).
    - `num_bumps`: Number of Gaussian bumps in each source.
    - `bump_width`: Standard deviation of each bump (the square has side 1).
    - `omega_range`: `(low, high)`, integers: the range of `omega`.
        Pretraining default `(1, 10)`.
    - `max_abs_solution`: Samples with `max |u|` above it are redrawn.
    - `max_redraws`: The most redraws per sample (each sample is drawn at
        most `1 + max_redraws` times).
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.

    **Returns:**

    `(inputs, targets)`: inputs `(S, 2, N, N)` with channels `f` and `omega`
    (constant channel), and targets `(S, 1, N, N)`, the solution `u`, with
    `max |u| <= max_abs_solution`. float32 unless x64 is enabled.

    **Example:**

    ```python
    inputs, targets = tx.sample_data.helmholtz_2d_periodic(
        num_samples=8, num_points=16, key=jax.random.key(0)
    )
    inputs.shape, targets.shape  # (8, 2, 16, 16), (8, 1, 16, 16)
    ```
    """
    _check_sizes(num_samples, num_points, num_bumps, bump_width)
    omega_range = _check_range("omega_range", omega_range, integer=True)
    bound = check_real("max_abs_solution", max_abs_solution, positive=True)
    check_int("max_redraws", max_redraws, minimum=0)
    return _helmholtz_data(
        key, num_samples, num_points, num_bumps,
        _as_array(bump_width), _as_array(omega_range), _as_array(bound),
        jnp.asarray(max_redraws),
    )
