"""Reference data: trajectories, pairs and observed fields, all from our own solvers.

- Rollout trajectories `(S, T + 1, C, *N)` from exponax PDEs on periodic
  domains, and the rollout taxonomy's exact advection and Lorenz-63 data
  (`(S, T, 1, N)`, `(S, T, 3)`, the initial state first); with
  `return_stepper=True` they also return the stepper that made them.
- Crank-Nicolson residua of the linear PDEs, for residuum training.
- Parametric elliptic families (Poisson, advection-diffusion, Helmholtz) as
  pairs `(inputs, targets)`, solved exactly by FFT, for operator learning.
- Heat and wave fields on point sets `(S, T, P, C)` with observation masks,
  for continuous-space forecasting.

Every data function needs an explicit `key`: the same key gives the same data.
"""

from ._advection_diffusion import advection_diffusion_1d_periodic
from ._burgers import burgers_1d_periodic
from ._diffusion import diffusion_1d_periodic, diffusion_2d_periodic
from ._diffusion_sorption import (
    ConstraintExperiment,
    diffusion_sorption_1d,
    diffusion_sorption_experiment,
    random_initial_states,
    relative_l2_error,
    solve_diffusion_sorption,
)
from ._elliptic import (
    advection_diffusion_2d_periodic,
    helmholtz_2d_periodic,
    poisson_2d_periodic,
)
from ._elliptic_solvers import (
    solve_advection_diffusion,
    solve_anisotropic_poisson,
    solve_helmholtz,
)
from ._korteweg_de_vries import kdv_1d_periodic
from ._kuramoto_sivashinsky import kuramoto_sivashinsky_1d_periodic
from ._heat_wave import (
    heat_2d_periodic,
    navier_stokes_2d_points,
    random_observation_mask,
    split_horizon,
    wave_2d_periodic,
)
from ._lorenz import LorenzStepper
from ._navier_stokes import navier_stokes_2d_periodic
from ._navier_stokes_constraint import navier_stokes_constraint_2d
from ._normalizer import InputNormalizer
from ._registry import PROBLEMS
from ._taxonomy import (
    FourierShiftStepper,
    advection_1d_periodic,
    lorenz_rk4,
    make_lorenz_stepper_rk4,
)
from ._residuum import (
    CrankNicolsonResiduum,
    advection_diffusion_residuum,
    advection_residuum,
    diffusion_residuum,
)

__all__ = [
    "PROBLEMS",
    "ConstraintExperiment",
    "CrankNicolsonResiduum",
    "FourierShiftStepper",
    "InputNormalizer",
    "LorenzStepper",
    "advection_1d_periodic",
    "advection_diffusion_1d_periodic",
    "advection_diffusion_2d_periodic",
    "advection_diffusion_residuum",
    "advection_residuum",
    "burgers_1d_periodic",
    "diffusion_sorption_1d",
    "diffusion_sorption_experiment",
    "diffusion_1d_periodic",
    "diffusion_2d_periodic",
    "diffusion_residuum",
    "heat_2d_periodic",
    "helmholtz_2d_periodic",
    "kdv_1d_periodic",
    "kuramoto_sivashinsky_1d_periodic",
    "lorenz_rk4",
    "make_lorenz_stepper_rk4",
    "navier_stokes_2d_periodic",
    "navier_stokes_constraint_2d",
    "random_initial_states",
    "random_observation_mask",
    "relative_l2_error",
    "solve_diffusion_sorption",
    "split_horizon",
    "navier_stokes_2d_points",
    "wave_2d_periodic",
    "poisson_2d_periodic",
    "solve_advection_diffusion",
    "solve_anisotropic_poisson",
    "solve_helmholtz",
]
