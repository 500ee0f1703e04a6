"""The rollout taxonomy's reference data: exact advection and Lorenz-63 by RK4.

Both follow the taxonomy's definitions exactly (same key, same numbers), so
notebooks written for it reproduce their figures.
"""

from __future__ import annotations

from typing import Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._lorenz import LorenzStepper
from ._validation import check_bool, check_int, check_key, check_real

Real = Union[int, float]


class FourierShiftStepper(eqx.Module):
    """The exact step of periodic 1D advection: a shift by `cfl` grid cells.

    Each real-FFT coefficient of integer wavenumber `k` is multiplied by
    `exp(-2 pi i k cfl / N)`. A positive `cfl` moves the state towards larger
    indices. Called on one state `(1, N)`.

    ```python
    stepper = tx.sample_data.FourierShiftStepper(num_points=8, cfl=1.0)
    stepper(jnp.eye(8)[None, 0])   # the unit pulse moves one cell: index 1
    ```
    """

    num_points: int = eqx.field(static=True)
    cfl: float

    def __call__(self, u: Float[Array, "1 N"]) -> Float[Array, "1 N"]:
        if getattr(u, "shape", None) is None or u.shape[-1] != self.num_points:
            raise ValueError(
                f"FourierShiftStepper acts on states (1, {self.num_points}), got shape "
                f"{getattr(u, 'shape', None)}."
            )
        k = jnp.arange(self.num_points // 2 + 1)
        shift = jnp.exp(-2j * jnp.pi * k * self.cfl / self.num_points)
        return jnp.fft.irfft(jnp.fft.rfft(u, axis=-1) * shift, n=self.num_points, axis=-1)


def _initial_state(key, num_points: int, highest_init_mode: int):
    # the taxonomy's draw: sine, cosine (and an unused offset) keys per sample
    key_sin, key_cos, _ = jr.split(key, 3)
    a = jr.uniform(key_sin, (highest_init_mode,), minval=-1.0, maxval=1.0)
    b = jr.uniform(key_cos, (highest_init_mode,), minval=-1.0, maxval=1.0)
    x = 2 * jnp.pi * jnp.arange(num_points) / num_points
    modes = jnp.arange(1, highest_init_mode + 1)[:, None]
    return (a[:, None] * jnp.sin(modes * x) + b[:, None] * jnp.cos(modes * x)).sum(0)[None]


@eqx.filter_jit
def _advection(key, num_points, num_samples, cfl, highest_init_mode, temporal_horizon):
    keys = jr.split(key, num_samples)
    initial = jax.vmap(lambda k: _initial_state(k, num_points, highest_init_mode))(keys)
    stepper = jax.vmap(FourierShiftStepper(num_points, cfl))

    def step(u, _):
        u_next = stepper(u)
        return u_next, u_next

    _, later = jax.lax.scan(step, initial, None, length=temporal_horizon - 1)
    return jnp.concatenate([initial[:, None], jnp.moveaxis(later, 0, 1)], axis=1)


def advection_1d_periodic(
    num_points: int = 30,
    num_samples: int = 20,
    *,
    cfl: Real = 0.75,
    highest_init_mode: int = 5,
    temporal_horizon: int = 100,
    key: PRNGKeyArray,
    return_stepper: bool = False,
):
    """Trajectories of periodic 1D advection, stepped exactly in Fourier space.

    Initial states: `key` is split into `num_samples` keys, each into three
    (sine, cosine, offset); the amplitudes `a_i, b_i` are uniform in `[-1, 1]`,
    `highest_init_mode` of each, no offset, and

    `u_0(x) = sum_{i=1}^{M} a_i sin(i x) + b_i cos(i x)` on `x_j = 2 pi j / N`.

    Each step is the exact shift by `cfl` grid cells (a
    [`FourierShiftStepper`][trainax.sample_data.FourierShiftStepper]). A
    negative `cfl` moves the state towards smaller indices: a two-point
    stencil on `u[i], u[i+1]` then has the first-order upwind weights
    `[1 + cfl, -cfl]`.

    **Arguments:**

    - `num_points`: grid points `N` (default 30).
    - `num_samples`: trajectories `S` (default 20).
    - `cfl`: the shift per step in grid cells (default 0.75).
    - `highest_init_mode`: `M`, the number of sine and cosine modes.
    - `temporal_horizon`: states per trajectory, the initial one included.
    - `key`: a JAX PRNG key.
    - `return_stepper`: also return the stepper.

    **Returns:** `(num_samples, temporal_horizon, 1, num_points)`, the first
    state being the initial one (and the stepper if asked).

    ```python
    data = tx.sample_data.advection_1d_periodic(key=jax.random.PRNGKey(0))
    data.shape   # (20, 100, 1, 30)
    ```
    """
    check_key(key)
    num_points = check_int("num_points", num_points)
    num_samples = check_int("num_samples", num_samples)
    highest_init_mode = check_int("highest_init_mode", highest_init_mode)
    temporal_horizon = check_int("temporal_horizon", temporal_horizon)
    cfl = check_real("cfl", cfl)
    return_stepper = check_bool("return_stepper", return_stepper)
    data = _advection(key, num_points, num_samples, cfl, highest_init_mode, temporal_horizon)
    if return_stepper:
        return data, FourierShiftStepper(num_points, cfl)
    return data


def make_lorenz_stepper_rk4(
    dt: Real = 0.01, *, sigma: Real = 10.0, rho: Real = 28.0, beta: Real = 8.0 / 3.0
) -> LorenzStepper:
    """The classic RK4 stepper of the Lorenz-63 system (a
    [`LorenzStepper`][trainax.sample_data.LorenzStepper]).

    ```python
    stepper = tx.sample_data.make_lorenz_stepper_rk4(0.01)
    stepper(jnp.ones(3)).shape   # (3,)
    ```
    """
    return LorenzStepper(
        dt=check_real("dt", dt, positive=True),
        sigma=check_real("sigma", sigma),
        rho=check_real("rho", rho),
        beta=check_real("beta", beta),
    )


@eqx.filter_jit
def _lorenz(stepper, initial, num_warmup_steps, temporal_horizon):
    step = jax.vmap(stepper)

    def advance(u, _):
        u_next = step(u)
        return u_next, u_next

    _, states = jax.lax.scan(advance, initial, None, length=num_warmup_steps + temporal_horizon - 1)
    trajectory = jnp.concatenate([initial[None], states], axis=0)
    return jnp.moveaxis(trajectory[num_warmup_steps:], 0, 1)


def lorenz_rk4(
    num_samples: int = 20,
    *,
    temporal_horizon: int = 1000,
    dt: Real = 0.01,
    num_warmup_steps: int = 500,
    sigma: Real = 10.0,
    rho: Real = 28.0,
    beta: Real = 8.0 / 3.0,
    init_std: Real = 1.0,
    key: PRNGKeyArray,
    return_stepper: bool = False,
):
    """Trajectories of the Lorenz-63 system, integrated with the classic RK4.

    Initial states `init_std * normal(key, (num_samples, 3))`; the first
    `num_warmup_steps` states are dropped (the trajectory settles on the
    attractor), then `temporal_horizon` states are kept.

    **Arguments:**

    - `num_samples`: trajectories `S` (default 20).
    - `temporal_horizon`: states kept per trajectory (default 1000).
    - `dt`: the RK4 step (default 0.01).
    - `num_warmup_steps`: states dropped first (default 500).
    - `sigma`, `rho`, `beta`: the Lorenz parameters (default `10, 28, 8/3`).
    - `init_std`: the standard deviation of the initial states.
    - `key`: a JAX PRNG key.
    - `return_stepper`: also return the stepper.

    **Returns:** `(num_samples, temporal_horizon, 3)` (and the stepper if asked).

    ```python
    data = tx.sample_data.lorenz_rk4(4, temporal_horizon=50, key=jax.random.PRNGKey(0))
    data.shape   # (4, 50, 3)
    ```
    """
    check_key(key)
    num_samples = check_int("num_samples", num_samples)
    temporal_horizon = check_int("temporal_horizon", temporal_horizon)
    num_warmup_steps = check_int("num_warmup_steps", num_warmup_steps, minimum=0)
    init_std = check_real("init_std", init_std, positive=True)
    return_stepper = check_bool("return_stepper", return_stepper)
    stepper = make_lorenz_stepper_rk4(dt, sigma=sigma, rho=rho, beta=beta)
    initial = init_std * jr.normal(key, (num_samples, 3))
    data = _lorenz(stepper, initial, num_warmup_steps, temporal_horizon)
    return (data, stepper) if return_stepper else data
