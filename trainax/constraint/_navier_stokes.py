"""2D incompressible Navier-Stokes in stream-function form as a constraint PDE."""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import Forcing, flow_parameters, positive_int
from ._derivatives import Spectral
from ._pde import AbstractPDE

class NavierStokes2D(AbstractPDE):
    """`w_t / T + v · ∇w = ν Δw + f` on the periodic unit square, in stream-function form.

    The vorticity equation of [`tx.spectral.NavierStokes`][trainax.spectral.NavierStokes],
    with its conventions: `t` in `[0, 1]` is time in units of the horizon
    `T`; `x`, `y` are periodic on `[0, 1)`; the stream function `ψ` gives
    the vorticity `w = -Δψ` and the velocity `v = (ψ_y, -ψ_x)` (see
    [`tx.spectral.velocity_from_vorticity`][trainax.spectral.velocity_from_vorticity]).

    **The constrained field `u` is the stream function `ψ`**, not the
    vorticity. The residual is then pointwise in derivatives of `ψ`, each
    linear in the weights of the basis fields (from the vorticity, the
    velocity would need a Poisson solve), and the velocity `(ψ_y, -ψ_x)` is
    divergence-free by construction. With `w = -(ψ_xx + ψ_yy)`, the PDE
    residual is

    `w_t / T + ψ_y w_x - ψ_x w_y - ν Δw - f(x, y)`,

    written in the terms `u_x`, `u_y`, `u_txx`, `u_tyy`, `u_xxx`, `u_xyy`,
    `u_xxy`, `u_yyy`, `u_xxxx`, `u_xxyy`, `u_yyyy`; the advection is
    quadratic in the weights (`linear=False`). The initial condition reads
    the model input, `-Δψ(0) = w_0` with `w_0` in channel 0 (see `inputs`).
    `ψ` is determined up to a constant (a function of `t` only, in fact),
    which no residual sees: compare vorticities, `vorticity(u)`, not stream
    functions.

    **Arguments:**

    - `nu`: the viscosity `ν >= 0` (default 1e-3).
    - `horizon`: `T > 0`, the physical time span (default 3).
    - `forcing`: `None` (default) or a callable `f(x, y)` of coordinates in
      `[0, 1)`, as for `tx.spectral.NavierStokes` (it is called on scalars
      at the nodes here, so write it with `jnp`).

    ```python
    pde = tx.constraint.NavierStokes2D(nu=0.01, horizon=1.0)
    t, x, y = tx.constraint.grid_coordinates(pde, (4, 8, 8), tx.constraint.Spectral())
    psi = jnp.sin(2 * jnp.pi * x) * jnp.sin(2 * jnp.pi * y) / (8 * jnp.pi**2)
    w = pde.vorticity(psi[None])                    # (1, 4, 8, 8): sin(2πx) sin(2πy)
    inputs = pde.inputs(w[0, 0], 4)                 # (1, 4, 8, 8): w_0 on every level
    ```
    """

    nu: float = eqx.field(static=True)
    horizon: float = eqx.field(static=True)
    forcing: Optional[Forcing] = eqx.field(static=True)

    def __init__(
        self, *, nu: float = 1e-3, horizon: float = 3.0, forcing: Optional[Forcing] = None
    ):
        self.nu, self.horizon, self.forcing = flow_parameters(nu, horizon, forcing)

    @property
    def axes(self) -> tuple[str, ...]:
        return ("t", "x", "y")

    @property
    def extent(self) -> tuple[float, ...]:
        return (1.0, 1.0, 1.0)

    @property
    def periodic(self) -> tuple[bool, ...]:
        return (False, True, True)

    @property
    def terms(self) -> tuple[str, ...]:
        return (
            "u_x", "u_y", "u_xx", "u_yy", "u_txx", "u_tyy", "u_xxx", "u_xyy", "u_xxy",
            "u_yyy", "u_xxxx", "u_xxyy", "u_yyyy",
        )

    @property
    def conditions(self) -> tuple[str, ...]:
        return ("initial",)

    @property
    def linear(self) -> bool:
        return False

    def advection(self, values) -> Float[Array, ""]:
        """`v · ∇w = ψ_y w_x - ψ_x w_y` at one node, from the terms of `ψ` (by name)."""
        w_x = -(values["u_xxx"] + values["u_xyy"])
        w_y = -(values["u_xxy"] + values["u_yyy"])
        return values["u_y"] * w_x - values["u_x"] * w_y

    def pde_residual(self, values, inputs, coords):
        w_t = -(values["u_txx"] + values["u_tyy"])
        laplacian_w = -(values["u_xxxx"] + 2 * values["u_xxyy"] + values["u_yyyy"])
        residual = w_t / self.horizon + self.advection(values) - self.nu * laplacian_w
        if self.forcing is not None:
            residual = residual - self.forcing(coords[1], coords[2])
        return residual

    def condition_residual(self, region, values, inputs, coords):
        if region != "initial":
            raise NotImplementedError(f"NavierStokes2D has no condition on {region!r}.")
        return -(values["u_xx"] + values["u_yy"]) - inputs[0]

    @eqx.filter_jit
    def vorticity(self, psi: Float[ArrayLike, "*shape Nx Ny"]) -> Float[Array, "*shape Nx Ny"]:
        """The vorticity `w = -Δψ` of stream functions on the grid.

        Fourier derivatives along `x` and `y`, exact on the periodic nodes
        `x_i = i / N_x`, `y_j = j / N_y` (the nodes of both derivative
        schemes), so `vorticity` inverts
        [`tx.spectral.stream_function`][trainax.spectral.stream_function]
        on zero-mean fields.

        **Arguments:**

        - `psi`: `(..., N_x, N_y)`, the last two axes `x` and `y`, such as a
          layer's output `(1, T, N_x, N_y)`.

        **Returns:** `w`, the shape of `psi`.
        """
        psi = jnp.asarray(psi)
        if psi.ndim < 2 or min(psi.shape[-2:]) < 2:
            raise ValueError(
                "`psi` must hold stream functions (..., N_x, N_y) with the x and y axes "
                f"last (at least 2 nodes each), got shape {psi.shape}."
            )
        if not jnp.issubdtype(psi.dtype, jnp.floating):
            psi = psi.astype(jnp.result_type(float))
        flat = psi.reshape(-1, *psi.shape[-2:])
        spectral = Spectral()
        laplacian = spectral.derivative(flat, 0, 2, 1.0, True) + spectral.derivative(
            flat, 1, 2, 1.0, True
        )
        return (-laplacian).reshape(psi.shape)

    def inputs(
        self, w0: Float[ArrayLike, "*S Nx Ny"], num_times: int
    ) -> Float[Array, "*S 1 T Nx Ny"]:
        """The model inputs of initial vorticities: `w_0` repeated on `num_times` time levels.

        **Arguments:**

        - `w0`: the initial vorticity at the nodes `(i / N_x, j / N_y)`,
          `(N_x, N_y)`, or a batch `(S, N_x, N_y)`.
        - `num_times`: the time levels `T` of the grid.

        **Returns:** `(1, T, N_x, N_y)` (or `(S, 1, T, N_x, N_y)`): channel 0
        holds `w_0` on every time level, the input the initial condition
        reads at `t = 0`.
        """
        w0 = jnp.asarray(w0)
        if w0.ndim not in (2, 3) or min(w0.shape[-2:]) < 2:
            raise ValueError(
                "`w0` must be one initial vorticity (N_x, N_y) or a batch (S, N_x, N_y), "
                f"at least 2 nodes per axis, got shape {w0.shape}."
            )
        num_times = positive_int("num_times", num_times)
        shape = (*w0.shape[:-2], 1, num_times, *w0.shape[-2:])
        return jnp.broadcast_to(w0[..., None, None, :, :], shape)
