"""Advection-diffusion `u_t + c u_x = nu u_xx` on the periodic interval."""

import exponax as ex
from jaxtyping import PRNGKeyArray

from ._generate import (
    NONNEGATIVE,
    REAL,
    ExponaxProblem,
    Real,
    TrajectoriesOrPair,
    exponax_trajectories,
)


_ADVECTION_DIFFUSION = ExponaxProblem(
    ex.stepper.AdvectionDiffusion,
    1,
    coefficients={"velocity": REAL, "diffusivity": NONNEGATIVE},
)


def advection_diffusion_1d_periodic(
    *,
    velocity: Real = 1.0,
    diffusivity: Real = 0.01,
    num_points: int = 64,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Real = 1.0,
    dt: Real = 0.01,
    cutoff: int = 5,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 1D advection-diffusion equation `u_t + c u_x = nu u_xx`.

    Periodic domain `(0, L)`; each step is exact in Fourier space
    ([`exponax.stepper.AdvectionDiffusion`][]). With the defaults the CFL
    number is `c dt / dx = 0.64` and the diffusion number
    `nu dt / dx^2 = 0.41`. Initial states are random truncated Fourier series,
    zero mean, scaled so that `max |u| = 1`.

    **Arguments:**

    - `velocity`: The advection speed `c` (positive moves to the right).
    - `diffusivity`: The diffusivity `nu >= 0`.
    - `num_points`: Grid points `N` (left end included, right end excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T`; each trajectory holds
        `T + 1` states.
    - `domain_extent`: Length `L` of the domain.
    - `dt`: Time step.
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
    data = tx.sample_data.advection_diffusion_1d_periodic(
        velocity=-0.5, diffusivity=0.005, key=jax.random.key(0)
    )
    data.shape  # (20, 51, 1, 64)
    ```
    """
    return exponax_trajectories(_ADVECTION_DIFFUSION, locals())
