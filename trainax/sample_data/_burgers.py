"""Viscous Burgers `u_t + b (u^2 / 2)_x = nu u_xx` on the periodic interval."""

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


_BURGERS = ExponaxProblem(
    ex.stepper.Burgers,
    1,
    coefficients={"diffusivity": NONNEGATIVE, "convection_scale": REAL},
)


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
    return exponax_trajectories(_BURGERS, locals())
