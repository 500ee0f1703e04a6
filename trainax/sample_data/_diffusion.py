"""The heat equation `u_t = nu Laplace(u)` on periodic 1D and 2D domains."""

import exponax as ex
from jaxtyping import PRNGKeyArray

from ._generate import (
    NONNEGATIVE,
    ExponaxProblem,
    Real,
    TrajectoriesOrPair,
    exponax_trajectories,
)


_COEFFICIENTS = {"diffusivity": NONNEGATIVE}
_DIFFUSION_1D = ExponaxProblem(ex.stepper.Diffusion, 1, _COEFFICIENTS)
_DIFFUSION_2D = ExponaxProblem(ex.stepper.Diffusion, 2, _COEFFICIENTS)


def diffusion_1d_periodic(
    *,
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
    """Trajectories of the 1D heat equation `u_t = nu u_xx`, periodic.

    Each step is exact in Fourier space ([`exponax.stepper.Diffusion`][]):
    mode `k` decays by `exp(-nu (2 pi k / L)^2 dt)`. Initial states are random
    truncated Fourier series, zero mean, scaled so that `max |u| = 1`.

    **Arguments:**

    - `diffusivity`: The diffusivity `nu >= 0`.
    - `num_points`: Grid points `N` per axis (left end included, right end
        excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T`; each trajectory holds
        `T + 1` states.
    - `domain_extent`: Side length `L` of the periodic domain.
    - `dt`: Time step. The dynamics depend on `nu dt / L^2` only.
    - `cutoff`: Highest wavenumber (per axis) in the initial states; must
        satisfy `2 * cutoff < num_points`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the exponax stepper that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 1, N)` (float32 unless x64 is enabled),
    or `(trajectories, stepper)` if `return_stepper=True`, where
    `trajectories[:, t + 1] == jax.vmap(stepper)(trajectories[:, t])`.

    **Example:**

    ```python
    data = tx.sample_data.diffusion_1d_periodic(key=jax.random.key(0))
    data.shape  # (20, 51, 1, 64)
    ```
    """
    return exponax_trajectories(_DIFFUSION_1D, locals())


def diffusion_2d_periodic(
    *,
    diffusivity: Real = 0.01,
    num_points: int = 32,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Real = 1.0,
    dt: Real = 0.01,
    cutoff: int = 5,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 2D heat equation `u_t = nu (u_xx + u_yy)`, periodic.

    The domain is the periodic square `(0, L)^2`; each step is exact in
    Fourier space ([`exponax.stepper.Diffusion`][]). Initial states are random
    truncated Fourier series, zero mean, scaled so that `max |u| = 1`.

    **Arguments:**

    - `diffusivity`: The diffusivity `nu >= 0`.
    - `num_points`: Grid points `N` per axis (left end included, right end
        excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T`; each trajectory holds
        `T + 1` states.
    - `domain_extent`: Side length `L` of the periodic domain.
    - `dt`: Time step. The dynamics depend on `nu dt / L^2` only.
    - `cutoff`: Highest wavenumber (per axis) in the initial states; must
        satisfy `2 * cutoff < num_points`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the exponax stepper that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 1, N, N)` (float32 unless x64 is
    enabled), or `(trajectories, stepper)` if `return_stepper=True`.

    **Example:**

    ```python
    data = tx.sample_data.diffusion_2d_periodic(key=jax.random.key(0))
    data.shape  # (20, 51, 1, 32, 32)
    ```
    """
    return exponax_trajectories(_DIFFUSION_2D, locals())
