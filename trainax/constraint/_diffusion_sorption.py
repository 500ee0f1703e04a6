"""The 1D diffusion-sorption equation (PDEBench form) as a constraint PDE."""

from __future__ import annotations

import numbers

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._pde import AbstractPDE


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be a positive float, got {value!r}.")
    return float(value)


class DiffusionSorption(AbstractPDE):
    """Diffusion with sorption: `u_t = D / R(u) u_xx` on `x` in `(0, 1)`, `t` in `(0, T]`.

    The retardation factor of a Freundlich isotherm is
    `R(u) = 1 + (1 - phi) / phi * rho_s * k * n_f * u^(n_f - 1)`. The
    boundary conditions are `u(0, t) = 1` and `u(1, t) = D u_x(1, t)`; the
    initial state `u(x, 0)` is the model's input channel 0 (see `inputs`).
    `u^(n_f - 1)` is singular at `u = 0` and undefined below: `R` reads
    `max(u, 0) + epsilon` (`epsilon = 1e-6`, the offset PDEBench adds), so
    a combination of basis fields that dips below zero keeps a finite
    residual.

    The PDE residual is scaled by the final time, `T (u_t - D / R(u) u_xx)`,
    the residual in the time `t / T` of the unit interval, so that its rows
    weigh about as much as the condition rows `u - u_0`, `u - 1` and
    `u - D u_x`.

    **Arguments:** (the defaults are PDEBench's)

    - `diffusivity`: `D = 5e-4`.
    - `porosity`: `phi = 0.29`.
    - `density`: the bulk density `rho_s = 2880`.
    - `sorption`: the Freundlich parameter `k = 3.5e-4`.
    - `exponent`: the Freundlich exponent `n_f = 0.874`.
    - `final_time`: `T = 500`.
    - `epsilon`: the offset of `u` in `R` (default `1e-6`).

    ```python
    pde = tx.constraint.DiffusionSorption()
    pde.retardation(jnp.array([0.05, 0.1, 1.0]))     # [4.146017, 3.882915, 3.156911]
    inputs = pde.inputs(jnp.full(16, 0.1), 9)        # (1, 9, 16): u_0 on every time level
    ```
    """

    diffusivity: float = eqx.field(static=True)
    porosity: float = eqx.field(static=True)
    density: float = eqx.field(static=True)
    sorption: float = eqx.field(static=True)
    exponent: float = eqx.field(static=True)
    final_time: float = eqx.field(static=True)
    epsilon: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        diffusivity: float = 5e-4,
        porosity: float = 0.29,
        density: float = 2880.0,
        sorption: float = 3.5e-4,
        exponent: float = 0.874,
        final_time: float = 500.0,
        epsilon: float = 1e-6,
    ):
        self.diffusivity = _positive("diffusivity", diffusivity)
        self.porosity = _positive("porosity", porosity)
        if self.porosity >= 1:
            raise ValueError(f"`porosity` must lie in (0, 1), got {porosity!r}.")
        self.density = _positive("density", density)
        self.sorption = _positive("sorption", sorption)
        self.exponent = _positive("exponent", exponent)
        self.final_time = _positive("final_time", final_time)
        self.epsilon = _positive("epsilon", epsilon)

    @property
    def axes(self) -> tuple[str, ...]:
        return ("t", "x")

    @property
    def extent(self) -> tuple[float, ...]:
        return (self.final_time, 1.0)

    @property
    def periodic(self) -> tuple[bool, ...]:
        return (False, False)

    @property
    def terms(self) -> tuple[str, ...]:
        return ("u", "u_t", "u_x", "u_xx")

    @property
    def conditions(self) -> tuple[str, ...]:
        return ("initial", "x_low", "x_high")

    @property
    def linear(self) -> bool:
        return False

    def retardation(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """`R(u) = 1 + (1 - phi) / phi * rho_s * k * n_f * (max(u, 0) + epsilon)^(n_f - 1)`."""
        scale = (1 - self.porosity) / self.porosity * self.density * self.sorption * self.exponent
        u = jnp.maximum(jnp.asarray(u), 0.0) + self.epsilon
        return 1 + scale * u ** (self.exponent - 1)

    def pde_residual(self, values, inputs, coords):
        u, u_t, u_xx = values["u"], values["u_t"], values["u_xx"]
        return self.final_time * (u_t - self.diffusivity / self.retardation(u) * u_xx)

    def condition_residual(self, region, values, inputs, coords):
        u = values["u"]
        if region == "initial":
            return u - inputs[0]
        if region == "x_low":
            return u - 1.0
        return u - self.diffusivity * values["u_x"]

    def inputs(
        self, initial: Float[ArrayLike, "*S X"], num_times: int
    ) -> Float[Array, "*S 1 T X"]:
        """The model inputs of initial states: `u_0` repeated on `num_times` time levels.

        **Arguments:**

        - `initial`: `u_0` at the `X` nodes `x_i = i / (X - 1)`, `(X,)`, or
          a batch `(S, X)`.
        - `num_times`: the time levels `T` of the grid (`t_j = j T / (T - 1)`).

        **Returns:** `(1, T, X)` (or `(S, 1, T, X)`): channel 0 holds `u_0`
        on every time level, the input the initial condition reads at `t = 0`.
        """
        initial = jnp.asarray(initial)
        shape = (*initial.shape[:-1], 1, int(num_times), initial.shape[-1])
        return jnp.broadcast_to(initial[..., None, None, :], shape)
