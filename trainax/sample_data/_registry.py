"""Name -> data function, for command-line tools and configuration files."""

from ._advection_diffusion import advection_diffusion_1d_periodic
from ._burgers import burgers_1d_periodic
from ._diffusion import diffusion_1d_periodic, diffusion_2d_periodic
from ._korteweg_de_vries import kdv_1d_periodic
from ._kuramoto_sivashinsky import kuramoto_sivashinsky_1d_periodic
from ._navier_stokes import navier_stokes_2d_periodic
from ._taxonomy import advection_1d_periodic, lorenz_rk4

# Keyed by the function's own name, so a config file names what the docs show.
PROBLEMS = {
    f.__name__: f
    for f in (
        advection_1d_periodic,
        diffusion_1d_periodic,
        advection_diffusion_1d_periodic,
        burgers_1d_periodic,
        kdv_1d_periodic,
        kuramoto_sivashinsky_1d_periodic,
        diffusion_2d_periodic,
        navier_stokes_2d_periodic,
        lorenz_rk4,
    )
}
