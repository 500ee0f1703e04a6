"""2D incompressible Navier-Stokes (vorticity form): decaying or Kolmogorov flow."""

import math
from typing import Optional

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
from ._validation import check_int

# Per kind: the stepper and the defaults used where the caller passes `None`.
_PROBLEMS = {
    "decaying": ExponaxProblem(
        ex.stepper.NavierStokesVorticity,
        2,
        coefficients={"diffusivity": NONNEGATIVE, "drag": REAL},
        defaults=dict(
            domain_extent=1.0, dt=0.1, diffusivity=1e-3, drag=0.0, warmup_steps=0
        ),
    ),
    "kolmogorov": ExponaxProblem(
        ex.stepper.KolmogorovFlowVorticity,
        2,
        coefficients={
            "diffusivity": NONNEGATIVE,
            "drag": REAL,
            "injection_mode": check_int,
            "injection_scale": REAL,
        },
        defaults=dict(
            domain_extent=2 * math.pi,
            dt=0.05,
            diffusivity=1e-2,
            drag=-0.1,
            warmup_steps=200,
        ),
    ),
}


def _problem(kind) -> ExponaxProblem:
    if not isinstance(kind, str):
        raise TypeError(f"`kind` must be a string, got {kind!r}.")
    if kind not in _PROBLEMS:
        raise ValueError(f"`kind` must be one of {sorted(_PROBLEMS)}, got {kind!r}.")
    return _PROBLEMS[kind]


def navier_stokes_2d_periodic(
    *,
    kind: str = "decaying",
    num_points: int = 32,
    num_samples: int = 20,
    temporal_horizon: int = 50,
    domain_extent: Optional[Real] = None,
    dt: Optional[Real] = None,
    diffusivity: Optional[Real] = None,
    drag: Optional[Real] = None,
    injection_mode: int = 4,
    injection_scale: Real = 1.0,
    cutoff: int = 5,
    warmup_steps: Optional[int] = None,
    key: PRNGKeyArray,
    return_stepper: bool = False,
) -> TrajectoriesOrPair:
    """Vorticity trajectories of 2D incompressible Navier-Stokes, periodic.

    Solves `w_t + (v . grad) w = nu Laplace(w) + lambda w + f` for the scalar
    vorticity `w` on the square `(0, L)^2` (velocity `v` from the stream
    function), with exponax's ETDRK2 steppers and 2/3 dealiasing.

    - `kind="decaying"` ([`exponax.stepper.NavierStokesVorticity`][]): no
        forcing, the flow decays. Defaults: `L = 1`, `dt = 0.1`,
        `nu = 1e-3`, `lambda = 0`, no warm-up.
    - `kind="kolmogorov"` ([`exponax.stepper.KolmogorovFlowVorticity`][]):
        shear forcing `f` at wavenumber `injection_mode` keeps the flow
        turbulent. Defaults: `L = 2 pi`, `dt = 0.05`, `nu = 0.01`
        (Reynolds number 100), `lambda = -0.1`, 200 warm-up steps so that the
        kept states lie on the statistically steady regime.

    Initial vorticity fields are random truncated Fourier series, zero mean,
    scaled so that `max |w| = 1`.

    **Arguments:**

    - `kind`: `"decaying"` or `"kolmogorov"`.
    - `num_points`: Grid points `N` per axis.
    - `num_samples`: Number of trajectories `S`.
    - `temporal_horizon`: Number of time steps `T` that are kept; each
        trajectory holds `T + 1` states.
    - `domain_extent`: Side length `L`; `None` picks the default of `kind`.
    - `dt`: Time step; `None` picks the default of `kind`.
    - `diffusivity`: Kinematic viscosity `nu >= 0`; `None` picks the default
        of `kind`.
    - `drag`: Linear drag `lambda` (negative damps); `None` picks the default
        of `kind`.
    - `injection_mode`: Forcing wavenumber (Kolmogorov only).
    - `injection_scale`: Forcing amplitude (Kolmogorov only).
    - `cutoff`: Highest wavenumber (per axis) in the initial states; must
        satisfy `2 * cutoff < num_points`.
    - `warmup_steps`: Steps taken (and dropped) before the first kept state;
        `None` picks the default of `kind`.
    - `key`: A JAX PRNG key. The same key gives the same data, bit for bit.
    - `return_stepper`: Also return the exponax stepper that produced the data.

    **Returns:**

    Trajectories of shape `(S, T + 1, 1, N, N)` (float32 unless x64 is
    enabled), or `(trajectories, stepper)` if `return_stepper=True`, where
    `trajectories[:, t + 1] == jax.vmap(stepper)(trajectories[:, t])`.

    **Example:**

    ```python
    data = tx.sample_data.navier_stokes_2d_periodic(
        kind="kolmogorov", num_samples=4, key=jax.random.key(0)
    )
    data.shape  # (4, 51, 1, 32, 32)
    ```
    """
    return exponax_trajectories(_problem(kind), locals())
