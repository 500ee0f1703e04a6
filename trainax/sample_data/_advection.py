"""Linear advection on the periodic unit interval, parametrised by the CFL number."""

import exponax as ex
from beartype import beartype
from jaxtyping import PRNGKeyArray, jaxtyped

from ._generate import Real, TrajectoriesOrPair, build_stepper, exponax_data
from ._validation import check_real, check_rollout_args


@jaxtyped(typechecker=beartype)
def advection_1d_periodic(
    *,
    cfl: Real = -0.75,
    num_points: int = 30,
    num_samples: int = 50,
    temporal_horizon: int = 50,
    domain_extent: Real = 1.0,
    dt: Real = 0.1,
    cutoff: int = 5,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 1D advection equation `u_t + c u_x = 0`, periodic.

    The velocity is set by the CFL number, `c = cfl * dx / dt` with
    `dx = domain_extent / num_points`, so one step moves the solution by `cfl`
    cells (to the right for `cfl > 0`). Each step is the exact Fourier-space
    solution ([`exponax.stepper.Advection`][]); an integer `cfl` is an exact
    shift by that many cells. For `-1 <= cfl < 0` a two-point stencil on
    `(u[i], u[i+1])` reproduces the first-order upwind scheme with weights
    `[1 + cfl, -cfl]`, which is what a one-layer, two-point convolution learns
    from this data.

    Initial states are random truncated Fourier series (wavenumbers up to
    `cutoff`), zero mean, scaled so that `max |u| = 1`.

    **Arguments:**

    - `cfl`: Courant number `c dt / dx`; its sign is the direction. Default
        `-0.75`.
    - `num_points`: Grid points `N` (left end included, right end excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T`; each trajectory holds
        `T + 1` states.
    - `domain_extent`: Length `L` of the domain.
    - `dt`: Time step. Only `cfl` shapes the data; `dt` fixes the velocity.
    - `cutoff`: Highest wavenumber in the initial states; must satisfy
        `2 * cutoff < num_points`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the exponax stepper that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 1, N)` (float32 unless x64 is enabled),
    or `(trajectories, stepper)` if `return_stepper=True`, where
    `trajectories[:, t + 1] == jax.vmap(stepper)(trajectories[:, t])`.

    **Example:**

    ```python
    import jax
    import trainax as tx

    data = tx.sample_data.advection_1d_periodic(key=jax.random.key(0))
    data.shape  # (20, 51, 1, 30)
    ```
    """
    check_rollout_args(
        num_points=num_points,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        domain_extent=domain_extent,
        dt=dt,
        cutoff=cutoff,
    )
    cfl = check_real("cfl", cfl)
    velocity = cfl * (domain_extent / num_points) / dt
    stepper = build_stepper(
        ex.stepper.Advection,
        1, float(domain_extent), num_points, float(dt), velocity=float(velocity)
    )
    return exponax_data(
        stepper,
        num_spatial_dims=1,
        num_points=num_points,
        cutoff=cutoff,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        warmup_steps=0,
        key=key,
        return_stepper=return_stepper,
    )
