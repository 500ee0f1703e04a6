"""The Lorenz-63 system, stepped with the classic fourth-order Runge-Kutta method."""

from typing import Union

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from beartype import beartype
from jaxtyping import Array, Float, PRNGKeyArray, jaxtyped

from ._generate import Real, finish, sample_trajectories
from ._validation import check_int, check_real

# Initial states are uniform in this box, which encloses the classic attractor.
_BOX_LOW = (-20.0, -25.0, 0.0)
_BOX_HIGH = (20.0, 25.0, 50.0)


class LorenzStepper(eqx.Module):
    """One classic RK4 step of the Lorenz-63 system.

    ```
        x' = sigma (y - x)
        y' = x (rho - z) - y
        z' = x y - beta z
    ```

    Called on one state `(3,)` it returns the state `dt` later; batch with
    `jax.vmap`. Like an exponax stepper, it works with `exponax.rollout`.

    **Arguments:**

    - `dt`: The time step. Default `0.01`.
    - `sigma`, `rho`, `beta`: The Lorenz parameters; default the chaotic
        `10, 28, 8/3`.

    **Example:**

    ```python
    stepper = tx.sample_data.LorenzStepper(dt=0.01)
    stepper(jnp.array([1.0, 1.0, 1.0]))  # shape (3,)
    ```
    """

    dt: float = 0.01
    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    def __check_init__(self):
        # Only concrete numbers can be checked; traced fields pass through.
        if isinstance(self.dt, (int, float)) and not self.dt > 0:
            raise ValueError(f"`dt` must be positive (> 0), got {self.dt}.")

    def vector_field(self, u: Float[Array, "3"]) -> Float[Array, "3"]:
        """The right-hand side `du/dt` at the state `u = (x, y, z)`."""
        x, y, z = u[0], u[1], u[2]
        return jnp.stack(
            [
                self.sigma * (y - x),
                x * (self.rho - z) - y,
                x * y - self.beta * z,
            ]
        )

    @jaxtyped(typechecker=beartype)
    def __call__(self, u: Float[Array, "3"]) -> Float[Array, "3"]:
        """Advance the state `u` of shape `(3,)` by one RK4 step of size `dt`."""
        f, h = self.vector_field, self.dt
        k1 = f(u)
        k2 = f(u + (h / 2) * k1)
        k3 = f(u + (h / 2) * k2)
        k4 = f(u + h * k3)
        return u + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


LorenzTrajectories = Float[Array, "samples time 3"]


class _UniformBox(eqx.Module):
    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def __call__(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "s 3"]:
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        return jr.uniform(key, (num_samples, 3), minval=low, maxval=high)


@jaxtyped(typechecker=beartype)
def lorenz_rk4(
    *,
    num_samples: int = 20,
    temporal_horizon: int = 200,
    dt: Real = 0.01,
    sigma: Real = 10.0,
    rho: Real = 28.0,
    beta: Real = 8.0 / 3.0,
    warmup_steps: int = 0,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> Union[LorenzTrajectories, tuple[LorenzTrajectories, LorenzStepper]]:
    """Trajectories of the Lorenz-63 system, integrated with RK4.

    Initial states are uniform in the box `[-20, 20] x [-25, 25] x [0, 50]`,
    which encloses the attractor of the classic parameters; use
    `warmup_steps` to start on the attractor. Each step is one
    [`trainax.sample_data.LorenzStepper`][] step. States have no channel or
    spatial axis: one state is `(3,)`.

    **Arguments:**

    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T` that are kept; each
        trajectory holds `T + 1` states.
    - `dt`: Time step of the RK4 integrator.
    - `sigma`, `rho`, `beta`: The Lorenz parameters (default `10, 28, 8/3`).
    - `warmup_steps`: Steps taken (and dropped) before the first kept state.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the `LorenzStepper` that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 3)` (float32 unless x64 is enabled), or
    `(trajectories, stepper)` if `return_stepper=True`, where
    `trajectories[:, t + 1] == jax.vmap(stepper)(trajectories[:, t])`.

    **Example:**

    ```python
    data = tx.sample_data.lorenz_rk4(num_samples=8, key=jax.random.key(0))
    data.shape  # (8, 201, 3)
    ```
    """
    num_samples = check_int("num_samples", num_samples)
    temporal_horizon = check_int("temporal_horizon", temporal_horizon)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    stepper = LorenzStepper(
        dt=check_real("dt", dt, positive=True),
        sigma=check_real("sigma", sigma),
        rho=check_real("rho", rho),
        beta=check_real("beta", beta),
    )
    trajectories = sample_trajectories(
        stepper,
        _UniformBox(_BOX_LOW, _BOX_HIGH),
        key,
        num_samples,
        temporal_horizon,
        warmup_steps,
    )
    return finish(trajectories, stepper, return_stepper)
