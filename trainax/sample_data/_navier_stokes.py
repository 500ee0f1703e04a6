"""2D incompressible Navier-Stokes (vorticity form): decaying or Kolmogorov flow."""

import math
from typing import Optional

import exponax as ex
from beartype import beartype
from jaxtyping import PRNGKeyArray, jaxtyped

from ._generate import Real, TrajectoriesOrPair, build_stepper, exponax_data
from ._validation import check_int, check_real, check_rollout_args

# Defaults per kind, used where the caller passes `None`.
_DEFAULTS = {
    "decaying": dict(
        domain_extent=1.0, dt=0.1, diffusivity=1e-3, drag=0.0, warmup_steps=0
    ),
    "kolmogorov": dict(
        domain_extent=2 * math.pi,
        dt=0.05,
        diffusivity=1e-2,
        drag=-0.1,
        warmup_steps=200,
    ),
}


@jaxtyped(typechecker=beartype)
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
    if kind not in _DEFAULTS:
        raise ValueError(
            f"`kind` must be one of {sorted(_DEFAULTS)}, got {kind!r}."
        )
    given = dict(
        domain_extent=domain_extent,
        dt=dt,
        diffusivity=diffusivity,
        drag=drag,
        warmup_steps=warmup_steps,
    )
    p = {k: _DEFAULTS[kind][k] if v is None else v for k, v in given.items()}
    check_rollout_args(
        num_points=num_points,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        domain_extent=p["domain_extent"],
        dt=p["dt"],
        cutoff=cutoff,
        warmup_steps=p["warmup_steps"],
    )
    grid = (2, float(p["domain_extent"]), num_points, float(p["dt"]))
    diffusivity = check_real("diffusivity", p["diffusivity"], nonnegative=True)
    drag = check_real("drag", p["drag"])
    if kind == "decaying":
        stepper = build_stepper(
            ex.stepper.NavierStokesVorticity,
            *grid, diffusivity=diffusivity, drag=drag
        )
    else:
        stepper = build_stepper(
            ex.stepper.KolmogorovFlowVorticity,
            *grid,
            diffusivity=diffusivity,
            drag=drag,
            injection_mode=check_int("injection_mode", injection_mode),
            injection_scale=check_real("injection_scale", injection_scale),
        )
    return exponax_data(
        stepper,
        num_spatial_dims=2,
        num_points=num_points,
        cutoff=cutoff,
        num_samples=num_samples,
        temporal_horizon=temporal_horizon,
        warmup_steps=p["warmup_steps"],
        key=key,
        return_stepper=return_stepper,
    )
