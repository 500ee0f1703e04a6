"""The Lorenz-63 system, stepped with the classic fourth-order Runge-Kutta method."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validation import check_floating


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

    def __call__(self, u: Float[Array, "3"]) -> Float[Array, "3"]:
        """Advance the state `u` of shape `(3,)` by one RK4 step of size `dt`."""
        if getattr(u, "shape", None) != (3,):
            raise ValueError(
                "LorenzStepper acts on one state (3,), unbatched (use jax.vmap for "
                f"batches); got shape {getattr(u, 'shape', None)}."
            )
        check_floating("u", u)
        f, h = self.vector_field, self.dt
        k1 = f(u)
        k2 = f(u + (h / 2) * k1)
        k3 = f(u + (h / 2) * k2)
        k4 = f(u + h * k3)
        return u + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
