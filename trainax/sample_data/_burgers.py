"""Viscous Burgers `u_t + b (u^2 / 2)_x = nu u_xx` on the periodic interval."""

import exponax as ex
from beartype import beartype
from jaxtyping import PRNGKeyArray, jaxtyped

from ._generate import Real, TrajectoriesOrPair, build_stepper, exponax_data
from ._validation import check_real, check_rollout_args


@jaxtyped(typechecker=beartype)
def burgers_1d_periodic(
    *,
    diffusivity: Real = 0.02,
    convection_scale: Real = 1.0,
    num_points: int = 64,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Real = 1.0,
    dt: Real = 0.01,
    cutoff: int = 5,
    warmup_steps: int = 0,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 1D viscous Burgers equation, periodic.

    Solves `u_t + b (u^2 / 2)_x = nu u_xx` with [`exponax.stepper.Burgers`][]
    (ETDRK2, 2/3 dealiasing). Initial states are random truncated Fourier
    series, zero mean, scaled so that `max |u| = 1`; they steepen into shocks
    of width about `nu`, which the default 64 points resolve for
    `nu >= 0.02`.

    **Arguments:**

    - `diffusivity`: The viscosity `nu >= 0`; smaller values give sharper
        shocks and need more points.
    - `convection_scale`: The convection coefficient `b`.
    - `num_points`: Grid points `N` (left end included, right end excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T` that are kept; each
        trajectory holds `T + 1` states.
    - `domain_extent`: Length `L` of the domain.
    - `dt`: Time step.
    - `cutoff`: Highest wavenumber in the initial states; must satisfy
        `2 * cutoff < num_points`.
    - `warmup_steps`: Steps taken (and dropped) before the first kept state.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the exponax stepper that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 1, N)` (float32 unless x64 is enabled),
    or `(trajectories, stepper)` if `return_stepper=True`, where
    `trajectories[:, t + 1] == jax.vmap(stepper)(trajectories[:, t])`.

    **Example:**

    ```python
    data = tx.sample_data.burgers_1d_periodic(key=jax.random.key(0))
    data.shape  # (20, 51, 1, 64)
    ```
    """
    check_rollout_args(
        num_points=num_points,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        domain_extent=domain_extent,
        dt=dt,
        cutoff=cutoff,
        warmup_steps=warmup_steps,
    )
    stepper = build_stepper(
        ex.stepper.Burgers,
        1,
        float(domain_extent),
        num_points,
        float(dt),
        diffusivity=check_real("diffusivity", diffusivity, nonnegative=True),
        convection_scale=check_real("convection_scale", convection_scale),
    )
    return exponax_data(
        stepper,
        num_spatial_dims=1,
        num_points=num_points,
        cutoff=cutoff,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        warmup_steps=warmup_steps,
        key=key,
        return_stepper=return_stepper,
    )
