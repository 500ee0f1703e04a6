"""Reference trajectories for training: exponax PDEs on periodic domains,
the Lorenz-63 system, and Crank-Nicolson residua of the linear PDEs.

Every data function takes keyword arguments only, needs an explicit `key`,
and returns trajectories `(S, T + 1, C, *N)` (Lorenz: `(S, T + 1, 3)`);
with `return_stepper=True` it also returns the stepper that made them.
"""

from ._advection import advection_1d_periodic
from ._advection_diffusion import advection_diffusion_1d_periodic
from ._burgers import burgers_1d_periodic
from ._diffusion import diffusion_1d_periodic, diffusion_2d_periodic
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
from ._lorenz import LorenzStepper, lorenz_rk4
from ._navier_stokes import navier_stokes_2d_periodic
from ._normalizer import InputNormalizer
from ._registry import PROBLEMS
from ._residuum import (
    CrankNicolsonResiduum,
    advection_diffusion_residuum,
    advection_residuum,
    diffusion_residuum,
)

__all__ = [
    "PROBLEMS",
    "CrankNicolsonResiduum",
    "InputNormalizer",
    "LorenzStepper",
    "advection_1d_periodic",
    "advection_diffusion_1d_periodic",
    "advection_diffusion_2d_periodic",
    "advection_diffusion_residuum",
    "advection_residuum",
    "burgers_1d_periodic",
    "diffusion_1d_periodic",
    "diffusion_2d_periodic",
    "diffusion_residuum",
    "helmholtz_2d_periodic",
    "kdv_1d_periodic",
    "kuramoto_sivashinsky_1d_periodic",
    "lorenz_rk4",
    "navier_stokes_2d_periodic",
    "poisson_2d_periodic",
    "solve_advection_diffusion",
    "solve_anisotropic_poisson",
    "solve_helmholtz",
]
