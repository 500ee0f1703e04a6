"""Heat, wave and Navier-Stokes fields on the periodic unit square, sampled on grid points.

The layout is the one of continuous-space (INR) methods: values at points
rather than on a grid, `(S, T, P, C)` with `P = N * N` points whose
coordinates `(P, 2)` come alongside.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..spectral import NavierStokesStepper, gaussian_random_field
from ._validation import check_cutoff, check_int, check_real

Real = float | int


def heat_2d_periodic(
    *,
    num_samples: int = 4,
    num_points: int = 32,
    num_frames: int = 20,
    dt: Real = 0.05,
    nu: Real = 2e-3,
    cutoff: int = 4,
    length_scale: Real = 0.15,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "S T P 1"], Float[Array, "P 2"], Float[Array, " T"]]:
    """Exact solutions of the heat equation `u_t = nu (u_xx + u_yy)` on the periodic unit square.

    Fourier mode `k` of the initial state decays by `exp(-nu (2 pi |k|)^2 t)`,
    so every frame is exact (no time stepping). Initial states are random
    smooth fields: periodic Gaussian random fields
    ([`tx.spectral.gaussian_random_field`][trainax.spectral.gaussian_random_field],
    `kernel="periodic"`) of length scale `length_scale`, band-limited to the
    modes with `max(|k_x|, |k_y|) <= cutoff`, with zero mean, scaled so that
    `max |u| = 1`. The field depends on `num_points`: the same key on another
    grid draws another field (subsample a fine grid for several resolutions).

    **Arguments:**

    - `num_samples`: number of trajectories `S`.
    - `num_points`: grid points `N` per axis; the points are `(i / N, j / N)`.
    - `num_frames`: frames `T` per trajectory, at times `0, dt, ..., (T - 1) dt`.
    - `dt`: time between frames.
    - `nu`: the diffusivity `nu >= 0`.
    - `cutoff`: highest wavenumber per axis of the initial states
        (`2 * cutoff < num_points`).
    - `length_scale`: the initial states' correlation length, in units of
        the unit square (default 0.15).
    - `key`: a JAX PRNG key. The same key gives the same data.

    **Returns:**

    `(values, coords, times)`: `values` `(S, T, P, 1)` with `P = N * N`, point
    `p = i * N + j` at `coords[p] = (i / N, j / N)` (so `values[s, t, :, 0]
    .reshape(N, N)` is the grid, `x` along the first axis), and `times` `(T,)`.
    float32 unless x64 is enabled.

    ```python
    values, coords, times = tx.sample_data.heat_2d_periodic(
        num_samples=2, num_points=16, num_frames=5, key=jr.key(0))
    values.shape, coords.shape, times.shape   # (2, 5, 256, 1), (256, 2), (5,)
    ```
    """
    setup = _setup(num_samples, num_points, num_frames, dt, cutoff, length_scale)
    return _heat(key, *setup, check_real("nu", nu, nonnegative=True))


def wave_2d_periodic(
    *,
    num_samples: int = 4,
    num_points: int = 32,
    num_frames: int = 20,
    dt: Real = 0.05,
    c: Real = 0.25,
    cutoff: int = 4,
    length_scale: Real = 0.15,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "S T P 2"], Float[Array, "P 2"], Float[Array, " T"]]:
    """Exact solutions of the wave equation `u_tt = c^2 (u_xx + u_yy)` on the periodic unit square.

    The initial velocity is zero, so Fourier mode `k` of the initial state
    oscillates as `cos(omega t)` with `omega = c 2 pi |k|`. The state has two
    channels, the displacement `u` and the velocity `u_t` (whose mode `k` is
    `-omega sin(omega t)` times the initial one), which makes it a first-order
    system in time. Initial states as in
    `heat_2d_periodic`.

    **Arguments:**

    - `num_samples`: number of trajectories `S`.
    - `num_points`: grid points `N` per axis; the points are `(i / N, j / N)`.
    - `num_frames`: frames `T` per trajectory, at times `0, dt, ..., (T - 1) dt`.
    - `dt`: time between frames.
    - `c`: the wave speed `c >= 0`.
    - `cutoff`: highest wavenumber per axis of the initial states
        (`2 * cutoff < num_points`).
    - `length_scale`: the initial states' correlation length, in units of
        the unit square (default 0.15).
    - `key`: a JAX PRNG key. The same key gives the same data.

    **Returns:**

    `(values, coords, times)`: `values` `(S, T, P, 2)` with channels `(u, u_t)`,
    the points laid out as in `heat_2d_periodic`, `coords` `(P, 2)` and
    `times` `(T,)`.

    ```python
    values, coords, times = tx.sample_data.wave_2d_periodic(
        num_samples=2, num_points=16, num_frames=5, key=jr.key(0))
    values.shape   # (2, 5, 256, 2)
    ```
    """
    setup = _setup(num_samples, num_points, num_frames, dt, cutoff, length_scale)
    return _wave(key, *setup, check_real("c", c, nonnegative=True))


def navier_stokes_2d_points(
    *,
    num_samples: int = 4,
    num_points: int = 64,
    num_frames: int = 20,
    dt: Real = 1.0,
    nu: Real = 1e-3,
    forcing_amplitude: Real = 0.1,
    length_scale: Real = 0.1,
    max_step: Real = 0.01,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "S T P 1"], Float[Array, "P 2"], Float[Array, " T"]]:
    """Forced 2D Navier-Stokes vorticity on the periodic unit square, sampled on grid points.

    `w_t + v . grad w = nu Laplace w + f` with DINo's forcing
    `f = a (sin(2 pi (x + y)) + cos(2 pi (x + y)))`, `a = forcing_amplitude`
    (0 for decaying flow). Initial vorticities are periodic Gaussian random
    fields ([`tx.spectral.gaussian_random_field`][trainax.spectral.gaussian_random_field],
    unit variance) with the mean removed, integrated by
    [`tx.spectral.NavierStokesStepper`][trainax.spectral.NavierStokesStepper]
    (exact diffusion, RK4 advection with 2/3 dealiasing) in steps of at most
    `max_step` (mind the CFL limit `step * max|v| * 2 pi N / 3 < 2.8`).

    **Arguments:**

    - `num_samples`: number of trajectories `S`.
    - `num_points`: grid points `N` per axis; the points are `(i / N, j / N)`.
    - `num_frames`: frames `T` per trajectory, at times `0, dt, ..., (T - 1) dt`.
    - `dt`: time between frames.
    - `nu`: the viscosity `nu >= 0` (DINo: 1e-3).
    - `forcing_amplitude`: `a` (DINo: 0.1).
    - `length_scale`: the initial vorticities' correlation length (default 0.1).
    - `max_step`: the largest step of the solver (default 0.01).
    - `key`: a JAX PRNG key. The same key gives the same data.

    **Returns:**

    `(values, coords, times)`: the vorticity `(S, T, P, 1)` with `P = N * N`,
    laid out as in `heat_2d_periodic`, `coords` `(P, 2)` and `times` `(T,)`.

    ```python
    values, coords, times = tx.sample_data.navier_stokes_2d_points(
        num_samples=1, num_points=16, num_frames=3, dt=0.1, max_step=0.05, key=jr.key(0))
    values.shape   # (1, 3, 256, 1)
    ```
    """
    num_samples = check_int("num_samples", num_samples)
    num_points = check_int("num_points", num_points, minimum=4)
    num_frames = check_int("num_frames", num_frames)
    dt = check_real("dt", dt, positive=True)
    substeps = math.ceil(dt / check_real("max_step", max_step, positive=True) - 1e-9)
    stepper = NavierStokesStepper(
        num_points,
        dt / substeps,
        diffusivity=check_real("nu", nu, nonnegative=True),
        forcing=_dino_forcing(check_real("forcing_amplitude", forcing_amplitude)),
        substeps=substeps,
    )
    length_scale = check_real("length_scale", length_scale, positive=True)
    initial = gaussian_random_field(
        key,
        (num_points, num_points),
        kernel="periodic",
        length_scale=length_scale,
        num_samples=num_samples,
    )
    initial = initial - jnp.mean(initial, axis=(1, 2), keepdims=True)
    times = dt * jnp.arange(num_frames, dtype=initial.dtype)
    return _evolve(stepper, initial, num_frames), _grid_points(num_points), times


def _dino_forcing(amplitude):
    def forcing(x, y):
        phase = 2 * math.pi * (x + y)
        return amplitude * (jnp.sin(phase) + jnp.cos(phase))

    return forcing


@eqx.filter_jit
def _evolve(stepper, initial, num_frames):
    """Vorticities `(S, N, N)` -> their frames at the flattened points `(S, T, P, 1)`."""
    frames = jax.vmap(lambda w: stepper.rollout(w[None], num_frames - 1)[:, 0])(initial)
    return frames.reshape(*frames.shape[:2], -1, 1)


def random_observation_mask(
    key: PRNGKeyArray, num_points: int, keep_fraction: Real
) -> Bool[Array, " P"]:
    """A random set of observed points: each kept with probability `keep_fraction`.

    One mask serves every frame of a trajectory (the sensors do not move),
    so apply the same `(P,)` mask to all frames. The number kept is
    binomial; it may be zero for tiny fractions.

    **Arguments:**

    - `key`: a JAX PRNG key. The same key gives the same mask.
    - `num_points`: the number of points `P`.
    - `keep_fraction`: the probability of keeping a point, in `(0, 1]`
        (for example 0.5 or 0.05).

    **Returns:**

    A boolean mask `(P,)`, True at the observed points.

    ```python
    mask = tx.sample_data.random_observation_mask(jr.key(0), 1024, 0.05)
    mask.shape   # (1024,); about 51 points are True
    ```
    """
    num_points = check_int("num_points", num_points)
    keep_fraction = check_real("keep_fraction", keep_fraction)
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"`keep_fraction` must lie in (0, 1], got {keep_fraction}.")
    return jr.bernoulli(key, keep_fraction, (num_points,))


def split_horizon(
    values: Float[Array, "S T P C"], seen_frames: int
) -> tuple[Float[Array, "S T1 P C"], Float[Array, "S T2 P C"]]:
    """Split trajectories into the frames seen in training and those beyond the horizon.

    **Arguments:**

    - `values`: trajectories `(S, T, P, C)`.
    - `seen_frames`: frames inside the training horizon, `0 < seen_frames < T`
        (DINo: 10 of 20).

    **Returns:**

    `(seen, beyond)`: `values[:, :seen_frames]` and `values[:, seen_frames:]`.

    ```python
    seen, beyond = tx.sample_data.split_horizon(jnp.zeros((2, 20, 64, 1)), 10)
    seen.shape, beyond.shape   # (2, 10, 64, 1), (2, 10, 64, 1)
    ```
    """
    shape = getattr(values, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"`values` must have shape (S, T, P, C), got shape {shape}.")
    seen_frames = check_int("seen_frames", seen_frames)
    if seen_frames >= shape[1]:
        raise ValueError(
            f"`seen_frames` must be below the number of frames {shape[1]}, got {seen_frames}."
        )
    return values[:, :seen_frames], values[:, seen_frames:]


# Python scalars are static under `eqx.filter_jit`: one compiled program per
# configuration instead of a compilation per eager operation.
@eqx.filter_jit
def _heat(key, num_samples, num_points, num_frames, dt, cutoff, length_scale, nu):
    coefficients, wavenumber, times = _draw(
        key, num_samples, num_points, num_frames, dt, cutoff, length_scale
    )
    decay = jnp.exp(-nu * (2 * math.pi * wavenumber) ** 2 * times[:, None, None])
    values = _to_points(coefficients[:, None] * decay)
    return values[..., None], _grid_points(num_points), times


@eqx.filter_jit
def _wave(key, num_samples, num_points, num_frames, dt, cutoff, length_scale, c):
    coefficients, wavenumber, times = _draw(
        key, num_samples, num_points, num_frames, dt, cutoff, length_scale
    )
    omega = c * 2 * math.pi * wavenumber
    phase = omega * times[:, None, None]
    displacement = _to_points(coefficients[:, None] * jnp.cos(phase))
    velocity = _to_points(coefficients[:, None] * (-omega * jnp.sin(phase)))
    return jnp.stack([displacement, velocity], axis=-1), _grid_points(num_points), times


def _setup(num_samples, num_points, num_frames, dt, cutoff, length_scale):
    num_samples = check_int("num_samples", num_samples)
    num_points = check_int("num_points", num_points, minimum=2)
    num_frames = check_int("num_frames", num_frames)
    dt = check_real("dt", dt, positive=True)
    cutoff = check_cutoff(cutoff, num_points)
    length_scale = check_real("length_scale", length_scale, positive=True)
    return num_samples, num_points, num_frames, dt, cutoff, length_scale


def _draw(key, num_samples, num_points, num_frames, dt, cutoff, length_scale):
    """Initial Fourier coefficients `(S, N, N)`, `|k|` `(N, N)` and the times `(T,)`."""
    k = jnp.fft.fftfreq(num_points, 1.0 / num_points)
    kx, ky = jnp.meshgrid(k, k, indexing="ij")
    coefficients = jnp.fft.fft2(
        _initial_fields(key, num_samples, num_points, cutoff, length_scale)
    )
    times = dt * jnp.arange(num_frames, dtype=coefficients.real.dtype)
    return coefficients, jnp.sqrt(kx**2 + ky**2), times


def _initial_fields(key, num_samples, num_points, cutoff, length_scale):
    """Smooth zero-mean random fields `(S, N, N)` with `max |u| = 1`.

    Periodic Gaussian random fields, band-limited to `cutoff` (well below
    the grid's Nyquist mode, so the exact solutions are resolved) and with
    the mean removed.
    """
    fields = gaussian_random_field(
        key,
        (num_points, num_points),
        kernel="periodic",
        length_scale=length_scale,
        num_samples=num_samples,
    )
    k = jnp.fft.fftfreq(num_points, 1.0 / num_points)
    kx, ky = jnp.meshgrid(k, k, indexing="ij")
    kept = (jnp.maximum(jnp.abs(kx), jnp.abs(ky)) <= cutoff) & ((kx != 0) | (ky != 0))
    fields = jnp.fft.ifft2(jnp.fft.fft2(fields) * kept).real
    return fields / jnp.max(jnp.abs(fields), axis=(1, 2), keepdims=True)


def _to_points(coefficients):
    """Fourier coefficients `(..., N, N)` -> values at the flattened grid points `(..., N * N)`."""
    fields = jnp.fft.ifft2(coefficients).real
    return fields.reshape(*fields.shape[:-2], -1)


def _grid_points(num_points):
    x = jnp.arange(num_points) / num_points
    gx, gy = jnp.meshgrid(x, x, indexing="ij")
    return jnp.stack([gx.ravel(), gy.ravel()], axis=-1)
