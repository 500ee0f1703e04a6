"""Hard physics constraints as a layer, and their mixture of experts.

A backbone outputs `N` basis fields on a space-time grid; a
[`HardConstraint`][trainax.constraint.HardConstraint] combines them, per
sample, with the weights that make a PDE's residual (and its initial and
boundary conditions) vanish at sampled points in the least-squares sense,
with gradients by the implicit function theorem.
[`MixtureOfExperts`][trainax.constraint.MixtureOfExperts] solves the same
problem independently on the blocks of a regular partition of the grid.
PDEs are written pointwise in their terms
([`AbstractPDE`][trainax.constraint.AbstractPDE]); derivative schemes compute
the terms of many fields at once.
"""

from ._derivatives import AbstractDerivatives, FiniteDifference, Spectral
from ._diffusion_sorption import DiffusionSorption
from ._forms import InitialValueBasis
from ._layer import (
    Constrained,
    ConstraintInfo,
    HardConstraint,
    MixtureOfExperts,
    draws_points,
)
from ._navier_stokes import NavierStokes2D
from ._partition import partition, stitch
from ._pde import PDE, AbstractPDE
from ._residuals import grid_coordinates, residuals
from ._solvers import GaussNewton

__all__ = [
    "PDE",
    "AbstractDerivatives",
    "AbstractPDE",
    "Constrained",
    "ConstraintInfo",
    "DiffusionSorption",
    "FiniteDifference",
    "GaussNewton",
    "HardConstraint",
    "InitialValueBasis",
    "MixtureOfExperts",
    "NavierStokes2D",
    "Spectral",
    "draws_points",
    "grid_coordinates",
    "partition",
    "residuals",
    "stitch",
]
