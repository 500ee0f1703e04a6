"""The Korteweg-de Vries equation on the periodic interval."""

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


_KDV = ExponaxProblem(
    ex.stepper.KortewegDeVries,
    1,
    coefficients={
        "convection_scale": REAL,
        "dispersivity": REAL,
        "hyper_diffusivity": NONNEGATIVE,
    },
)


def kdv_1d_periodic(
    *,
    convection_scale: Real = -6.0,
    dispersivity: Real = 1.0,
    hyper_diffusivity: Real = 0.01,
    num_points: int = 64,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Real = 20.0,
    dt: Real = 0.01,
    cutoff: int = 5,
    warmup_steps: int = 0,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 1D Korteweg-de Vries (KdV) equation, periodic.

    Solves `u_t + b (u^2 / 2)_x + a u_xxx = -zeta u_xxxx` with
    [`exponax.stepper.KortewegDeVries`][] (ETDRK2, 2/3 dealiasing). With the
    classic `b = -6`, initial bumps break into solitons that travel at a speed
    set by their height; the small hyper-diffusion `zeta` damps the finest
    scales. Initial states are random truncated Fourier series, zero mean,
    scaled so that `max |u| = 1`.

    **Arguments:**

    - `convection_scale`: The convection coefficient `b`.
    - `dispersivity`: The dispersion coefficient `a`.
    - `hyper_diffusivity`: The hyper-diffusivity `zeta >= 0`.
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
    data = tx.sample_data.kdv_1d_periodic(key=jax.random.key(0))
    data.shape  # (20, 51, 1, 64)
    ```
    """
    return exponax_trajectories(_KDV, locals())
