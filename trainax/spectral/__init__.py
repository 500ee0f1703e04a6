"""Spectral bases (Fourier, Chebyshev, tensor products), mollifiers, random fields,
and PDE problems with spectral residuals.

A basis acts on ONE scalar field on the unit box `[0, 1]^d`: nodal values or
coefficients of shape `basis.shape`. Channels and batches are `jax.vmap`ped
outside. Fourier axes are periodic, Chebyshev axes bounded (space or time).
A problem (`PoissonPeriodic`, `PoissonDirichlet`, `ReactionDiffusion`,
`NavierStokes`) gives the residual of a PDE on coefficients and on a grid,
random parameter fields and a reference solution.
"""

from ._base import AbstractBasis, AbstractBasis1D
from ._chebyshev import Chebyshev
from ._fourier import Fourier
from ._mollifiers import (
    dirichlet_factor,
    dirichlet_mollify,
    initial_value_mollify,
    zero_mean_gauge,
)
from ._navier_stokes import (
    NavierStokes,
    NavierStokesStepper,
    stream_function,
    velocity_from_vorticity,
    vorticity_advection,
)
from ._poisson import PoissonDirichlet, PoissonPeriodic
from ._problems import AbstractSpectralProblem, SpectralCrankNicolsonResiduum
from ._random_fields import gaussian_random_field
from ._reaction_diffusion import ReactionDiffusion
from ._tensor import TensorBasis

__all__ = [
    "AbstractBasis",
    "AbstractBasis1D",
    "AbstractSpectralProblem",
    "Chebyshev",
    "Fourier",
    "NavierStokes",
    "NavierStokesStepper",
    "PoissonDirichlet",
    "PoissonPeriodic",
    "ReactionDiffusion",
    "SpectralCrankNicolsonResiduum",
    "TensorBasis",
    "dirichlet_factor",
    "dirichlet_mollify",
    "gaussian_random_field",
    "initial_value_mollify",
    "stream_function",
    "velocity_from_vorticity",
    "vorticity_advection",
    "zero_mean_gauge",
]
