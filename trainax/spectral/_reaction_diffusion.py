"""Reaction-diffusion `u_t - ν u_xx = ρ u (1 - u)`: Chebyshev in time, Fourier in space."""

from __future__ import annotations

import math
from typing import ClassVar, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._base import AbstractBasis
from ._chebyshev import Chebyshev
from ._fourier import Fourier
from ._mollifiers import initial_value_mollify
from ._problems import (
    AbstractSpectralProblem,
    Resolution,
    check_values,
    constant_in_time,
    periodic_second_difference,
    positive_float,
    subsample,
    time_coordinate,
    time_difference,
)
from ._random_fields import gaussian_random_field
from ._tensor import TensorBasis


def space_time_modes(modes) -> tuple[int, int]:
    """`(time modes, space modes)` from an int or a pair."""
    if isinstance(modes, (tuple, list)):
        if len(modes) != 2:
            raise ValueError(
                f"`modes` must be an int or 2 ints (time, space), got {modes!r}."
            )
        nt, nx = (positive_int("modes", m) for m in modes)
    else:
        nt = nx = positive_int("modes", modes)
    Chebyshev(nt)  # checks nt >= 2
    return nt, nx


def fine_grid(points: int, minimum: int) -> tuple[int, int]:
    """A grid of at least `minimum` points that `points` divides: `(size, factor)`."""
    factor = max(1, -(-minimum // points))
    return points * factor, factor


class ReactionDiffusion(AbstractSpectralProblem):
    """`u_t - ν u_xx = ρ u (1 - u)`, `x` periodic in `[0, 1)`, `t` in `[0, 1]`.

    The solution lives in `Chebyshev(n_t) x Fourier(n_x)` (time first), the
    initial condition `u_0` in `Fourier(n_x)`. `constrain` applies the
    initial-value form `u = u_0 + t * output` on the nodes
    ([`trainax.spectral.initial_value_mollify`][]), exact at `t = 0`. The
    network's input has two channels: `u_0` (constant in time) and the
    coordinate `t`.

    - `sample`: a periodic Gaussian random field, scaled to `[0, 1]` on the
      nodes (min to 0, max to 1).
    - `spectral_residual`: `u_t - ν u_xx - ρ u (1 - u)`, the product formed
      alias-free on the nodes of the padded basis `Chebyshev(2 n_t) x
      Fourier(2 n_x)` (`residual_basis`).
    - `grid_residual`: central differences in `t` and `x` on the uniform
      grid `(j / (N_t - 1), k / N_x)` at the interior time levels, shape
      `(1, N_t - 2, N_x)`.
    - `reference`: Strang splitting of the exact logistic step
      `u e^{ρh} / (1 - u + u e^{ρh})` and the exact Fourier diffusion step,
      `reference_steps` steps over `[0, 1]` (second order in the step) on a
      periodic grid of at least `reference_points` points.

    **Arguments:**

    - `nu`: the diffusivity `ν >= 0` (the paper uses 0.005 to 0.1).
    - `rho`: the reaction rate `ρ` (default 5).
    - `modes`: `(n_t, n_x)` or one int for both (default `(16, 32)`).
    - `length_scale`: the initial conditions' correlation length (default 0.2).
    - `reference_steps`: time steps of the reference over `[0, 1]`
      (default 1000; rounded up to a multiple of the output intervals).
    - `reference_points`: the least number of grid points of the reference
      (default 256).

    ```python
    problem = tx.spectral.ReactionDiffusion(0.01, modes=(8, 16))
    u0 = problem.sample(jr.PRNGKey(0), 2)                 # (2, 1, 16)
    u = problem.constrain(u0[0], jnp.zeros((1, 8, 16)))  # u = u_0 for all t
    problem.spectral_residual(u0[0], u).shape            # (1, 16, 32)
    ```
    """

    nu: float = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    modes: tuple[int, int] = eqx.field(static=True)
    length_scale: float = eqx.field(static=True)
    reference_steps: int = eqx.field(static=True)
    reference_points: int = eqx.field(static=True)
    in_channels: ClassVar[int] = 2

    def __init__(
        self,
        nu: float = 0.01,
        *,
        rho: float = 5.0,
        modes: Union[int, tuple[int, int]] = (16, 32),
        length_scale: float = 0.2,
        reference_steps: int = 1000,
        reference_points: int = 256,
    ):
        self.nu = positive_float("nu", nu, allow_zero=True)
        self.rho = positive_float("rho", rho, allow_zero=True)
        self.modes = space_time_modes(modes)
        self.length_scale = positive_float("length_scale", length_scale)
        self.reference_steps = positive_int("reference_steps", reference_steps)
        self.reference_points = positive_int("reference_points", reference_points)

    @property
    def basis(self) -> TensorBasis:
        nt, nx = self.modes
        return TensorBasis((Chebyshev(nt), Fourier(nx)))

    @property
    def param_basis(self) -> Fourier:
        return Fourier(self.modes[1])

    @property
    def residual_basis(self) -> TensorBasis:
        return self.basis.with_modes(tuple(2 * n for n in self.modes))

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "S 1 Nx"]:
        num = positive_int("num", num)
        basis = self.param_basis
        g = gaussian_random_field(
            key, basis, kernel="periodic", length_scale=self.length_scale, num_samples=num
        )
        low, high = g.min(axis=1, keepdims=True), g.max(axis=1, keepdims=True)
        return jax.vmap(basis.transform)((g - low) / (high - low))[:, None]

    @eqx.filter_jit
    def model_input(self, params, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        nt, nx = basis.shape
        u0 = self.param_basis.resize(self._params(params)[0], nx)
        return jnp.stack([constant_in_time(u0, nt), time_coordinate(basis, u0.dtype)])

    @eqx.filter_jit
    def constrain(self, params, output, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        nx = basis.shape[1]
        u0 = Fourier(nx).inverse(self.param_basis.resize(self._params(params)[0], nx))
        values = initial_value_mollify(basis, u0, basis.inverse(output[0]))
        return basis.transform(values)[None]

    @eqx.filter_jit
    def spectral_residual(self, params, u_coeffs):
        self._params(params)
        basis, padded = self.basis, self.residual_basis
        u = self._solution(u_coeffs)[0]
        u_t = basis.resize(basis.derivative(u, axis=0), padded.shape)
        u_xx = basis.resize(basis.derivative(u, 2, axis=1), padded.shape)
        # u (1 - u) is quadratic: on the nodes of the padded basis it is alias-free,
        # and the fixed points u = 0 and u = 1 give exactly zero.
        values = padded.inverse(basis.resize(u, padded.shape))
        reaction = padded.transform(values * (1 - values))
        return (u_t - self.nu * u_xx - self.rho * reaction)[None]

    @eqx.filter_jit
    def grid_residual(self, params, u_values):
        u = check_values("u_values", u_values, self.basis, (3, 3))[0]
        nt, nx = u.shape
        u_t = time_difference(u, 1.0 / (nt - 1))
        u_xx = periodic_second_difference(u, 1, 1.0 / nx)[1:-1]
        interior = u[1:-1]
        return (u_t - self.nu * u_xx - self.rho * interior * (1 - interior))[None]

    @eqx.filter_jit
    def reference(self, params, resolution: Resolution):
        nt, nx = self.grid_shape(resolution)
        u0 = self._params(params)[0]
        m, factor = fine_grid(nx, max(self.reference_points, self.modes[1]))
        u = Fourier(m).inverse(self.param_basis.resize(u0, m))
        per_level = -(-self.reference_steps // (nt - 1))
        h = 1.0 / ((nt - 1) * per_level)
        levels = _strang(u, self.nu, self.rho, h, per_level, nt - 1)
        return subsample(levels, (1, factor))[None]


@eqx.filter_jit
def _strang(u, nu, rho, h, per_level, num_levels):
    """`num_levels` levels of `per_level` Strang steps each, from `u` (kept first)."""
    m = u.shape[0]
    k = jnp.fft.rfftfreq(m, 1.0 / m)
    half_diffusion = jnp.exp(-nu * (2 * math.pi * k) ** 2 * h / 2).astype(u.dtype)
    growth = math.exp(rho * h)

    def diffuse(v):
        return jnp.fft.irfft(jnp.fft.rfft(v) * half_diffusion, n=m)

    def step(_, v):
        v = diffuse(v)
        v = v * growth / (1 - v + v * growth)  # the logistic ODE's exact flow
        return diffuse(v)

    def level(v, _):
        v = jax.lax.fori_loop(0, per_level, step, v)
        return v, v

    _, later = jax.lax.scan(level, u, None, length=num_levels)
    return jnp.concatenate([u[None], later])
