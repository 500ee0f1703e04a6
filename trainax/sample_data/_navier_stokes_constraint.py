"""Navier-Stokes reference data on the grid of a hard constraint (stream-function form)."""

from __future__ import annotations

from typing import Optional

import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import Forcing
from ..constraint import NavierStokes2D
from ..spectral import NavierStokes
from ._validation import check_int, check_key


def navier_stokes_constraint_2d(
    num_samples: int,
    num_points: int,
    num_times: int,
    *,
    nu: float = 1e-3,
    horizon: float = 3.0,
    forcing: Optional[Forcing] = None,
    length_scale: float = 0.2,
    reference_dt: float = 0.01,
    reference_points: int = 64,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "S 1 T N N"], Float[Array, "S 1 T N N"]]:
    """Random 2D Navier-Stokes problems and their reference vorticity on a `(t, x, y)` grid.

    The data of a [`NavierStokes2D`][trainax.constraint.NavierStokes2D]
    hard constraint with the same `nu`, `horizon` and `forcing`. The
    initial vorticity is [`tx.spectral.NavierStokes`][trainax.spectral.NavierStokes]'s
    `sample` on the `N x N` grid (a periodic Gaussian random field of unit
    variance and correlation length `length_scale`, mean removed); the
    trajectories are its `reference` (the pseudo-spectral
    [`NavierStokesStepper`][trainax.spectral.NavierStokesStepper] on a grid of
    at least `reference_points` points per axis, time step at most
    `reference_dt`), sampled at the nodes `x_i = i / N`, `y_j = j / N` and
    the uniform time levels `t_k = k / (T - 1)` (in units of the horizon):
    the grid of the layer's default
    [`FiniteDifference`][trainax.constraint.FiniteDifference] scheme.

    The reference is the vorticity; a constrained model outputs the stream
    function, so compare `jax.vmap(pde.vorticity)(prediction)` with it, for
    instance by [`relative_l2_error`][trainax.sample_data.relative_l2_error]
    (which applies as it does to diffusion-sorption). Its stream function is
    `tx.spectral.stream_function` per time level.

    **Arguments:**

    - `num_samples`: the number of problems `S`.
    - `num_points`: nodes `N` per space axis.
    - `num_times`: time levels `T` (including `t = 0`).
    - `nu`, `horizon`, `forcing`: the PDE (defaults 1e-3, 3, `None`).
    - `length_scale`: the initial vorticity's correlation length (default 0.2).
    - `reference_dt`, `reference_points`: the reference solver's largest
      physical time step and least grid size (defaults 0.01 and 64).
    - `key`: a JAX PRNG key; the same key gives the same data.

    **Returns:** `(inputs, reference)`, both `(S, 1, T, N, N)`: `inputs`
    holds `w_0` on every time level (as
    [`NavierStokes2D.inputs`][trainax.constraint.NavierStokes2D.inputs]),
    `reference` the vorticity `w(t, x, y)`.

    ```python
    inputs, reference = tx.sample_data.navier_stokes_constraint_2d(
        2, 32, 17, nu=1e-3, horizon=1.0, key=jr.PRNGKey(0))
    inputs.shape, reference.shape   # (2, 1, 17, 32, 32), (2, 1, 17, 32, 32)
    ```
    """
    pde = NavierStokes2D(nu=nu, horizon=horizon, forcing=forcing)
    num_samples = check_int("num_samples", num_samples)
    num_points = check_int("num_points", num_points, minimum=2)
    num_times = check_int("num_times", num_times, minimum=2)
    check_key(key)
    problem = NavierStokes(
        pde.nu, horizon=pde.horizon, forcing=pde.forcing, modes=(2, num_points),
        length_scale=length_scale, reference_dt=reference_dt,
        reference_points=reference_points,
    )
    params = problem.sample(key, num_samples)
    w0 = jax.vmap(problem.param_basis.inverse)(params[:, 0])
    grid = (num_times, num_points, num_points)
    reference = jax.vmap(lambda p: problem.reference(p, grid))(params)
    return pde.inputs(w0, num_times), reference
