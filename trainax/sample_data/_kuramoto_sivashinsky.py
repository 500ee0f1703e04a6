"""The Kuramoto-Sivashinsky equation on the periodic interval (chaotic)."""

import exponax as ex
from jaxtyping import PRNGKeyArray

from ._generate import ExponaxProblem, Real, TrajectoriesOrPair, exponax_trajectories


# All coefficients are one: the domain length is the only knob.
_KS = ExponaxProblem(ex.stepper.KuramotoSivashinskyConservative, 1)


def kuramoto_sivashinsky_1d_periodic(
    *,
    num_points: int = 64,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Real = 36.0,
    dt: Real = 0.5,
    cutoff: int = 5,
    warmup_steps: int = 100,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Trajectories of the 1D Kuramoto-Sivashinsky (KS) equation, periodic.

    Solves the conservative form `u_t + u u_x + u_xx + u_xxxx = 0` with
    [`exponax.stepper.KuramotoSivashinskyConservative`][] (ETDRK2, 2/3
    dealiasing). All coefficients are one; the domain length `L` is the knob:
    the dynamics turn chaotic from about `L = 22`. Keep the grid spacing
    `L / N` below roughly `0.6` to resolve the attractor in float32.
    The default `warmup_steps=100` (50 time units) moves the smooth initial
    states onto the chaotic attractor before the first kept state.

    **Arguments:**

    - `num_points`: Grid points `N` (left end included, right end excluded).
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T` that are kept; each
        trajectory holds `T + 1` states.
    - `domain_extent`: Length `L` of the domain; larger is more chaotic.
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
    data = tx.sample_data.kuramoto_sivashinsky_1d_periodic(
        num_samples=4, key=jax.random.key(0)
    )
    data.shape  # (4, 51, 1, 64)
    ```
    """
    return exponax_trajectories(_KS, locals())
