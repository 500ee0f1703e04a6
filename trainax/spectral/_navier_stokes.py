"""2D incompressible Navier-Stokes in vorticity form on the periodic square.

The library's one implementation of its pieces: the stream function and the
velocity of a vorticity field, the advection `v · ∇w`, a pseudo-spectral
reference stepper, and the space-time problem with spectral and grid
residuals. Conventions (those of the FNO and neural spectral methods
papers): axis 0 is `x`, axis 1 is `y`; the stream function solves
`-Δψ = w` with zero mean; the velocity is `v = (∂ψ/∂y, -∂ψ/∂x)`, so that
`w = ∂v_y/∂x - ∂v_x/∂y` is its curl. (exponax's `NavierStokesVorticity`
uses the opposite sign of `w`: its solution from `-w_0` is `-w`.)
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, PRNGKeyArray, Real

from .._checks import Forcing, flow_parameters, positive_int
from ._base import AbstractBasis
from ._chebyshev import Chebyshev
from ._fourier import Fourier, _frequencies
from ._mollifiers import initial_value_mollify, zero_mean_gauge
from ._problems import (
    AbstractSpectralProblem,
    Resolution,
    check_values,
    constant_in_time,
    node_grid,
    periodic_first_difference,
    periodic_second_difference,
    positive_float,
    subsample,
    time_coordinate,
    time_difference,
)
from ._random_fields import gaussian_random_field
from ._reaction_diffusion import fine_grid, space_time_modes
from ._tensor import TensorBasis


# -- the grid pieces: nodal values on the uniform periodic grid ------------------------


def _check_vorticity(w) -> Array:
    w = jnp.asarray(w)
    if w.ndim != 2 or min(w.shape) < 2:
        raise ValueError(
            "`w` must be one vorticity field (N_x, N_y) on the uniform periodic grid "
            f"(no channel axis), got shape {w.shape}."
        )
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.result_type(float))
    return w


def _wavenumbers(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Integer wavenumbers of the `rfft2` grid: `(N_x, 1)` and `(1, N_y // 2 + 1)`."""
    nx, ny = shape
    kx = np.fft.fftfreq(nx, 1.0 / nx)[:, None]
    ky = np.fft.rfftfreq(ny, 1.0 / ny)[None, :]
    return kx, ky


def _symbols(shape: tuple[int, int], length: float):
    """`∂_x`, `∂_y` (Nyquist modes zeroed) and `1 / (-Δ)` (zero mean) on the `rfft2` grid."""
    nx, ny = shape
    kx, ky = _wavenumbers(shape)
    scale = 2 * math.pi / length
    dx = 1j * scale * kx * (np.abs(kx) != nx / 2)
    dy = 1j * scale * ky * (ky != ny / 2)
    k2 = scale**2 * (kx**2 + ky**2)
    with np.errstate(divide="ignore"):
        inverse = np.where(k2 == 0, 0.0, 1.0 / k2)
    return dx, dy, inverse, k2


def _dealias_mask(shape: tuple[int, int]) -> np.ndarray:
    """Orszag's 2/3 rule: keep `|k| <= (N - 1) // 3` per axis, so products alias
    only onto removed modes."""
    kx, ky = _wavenumbers(shape)
    return (np.abs(kx) <= (shape[0] - 1) // 3) & (ky <= (shape[1] - 1) // 3)


def _irfft2(u_hat, shape):
    return jnp.fft.irfft2(u_hat, s=shape)


def _advection_hat(w_hat, shape, length, dealias: bool):
    """`rfft2(v · ∇w)` of the vorticity `w_hat`, pseudo-spectrally."""
    dx, dy, inverse, _ = _symbols(shape, length)
    mask = _dealias_mask(shape) if dealias else np.ones(w_hat.shape, bool)
    w_hat = w_hat * mask
    psi_hat = w_hat * inverse
    v_x, v_y = _irfft2(dy * psi_hat, shape), _irfft2(-dx * psi_hat, shape)
    w_x, w_y = _irfft2(dx * w_hat, shape), _irfft2(dy * w_hat, shape)
    return jnp.fft.rfft2(v_x * w_x + v_y * w_y) * mask


def stream_function(
    w: Real[ArrayLike, "Nx Ny"], *, domain_extent: float = 1.0
) -> Float[Array, "Nx Ny"]:
    """The zero-mean stream function `ψ` with `-Δψ = w` on the periodic square.

    Exact in Fourier space: `ψ_k = w_k / |k|^2` (`k` in radians per unit
    length), and the mean of `w` is ignored.

    **Arguments:**

    - `w`: the vorticity on the uniform grid `x_j = j L / N_x`,
      `y_k = k L / N_y`, shape `(N_x, N_y)` (one field, no channel axis).
    - `domain_extent`: the side `L` of the square (default 1).

    **Returns:** `ψ`, shape `(N_x, N_y)`.

    ```python
    x = jnp.arange(16) / 16
    w = jnp.outer(jnp.sin(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x))
    psi = tx.spectral.stream_function(w)          # w / (8 π^2)
    ```
    """
    w = _check_vorticity(w)
    length = positive_float("domain_extent", domain_extent)
    _, _, inverse, _ = _symbols(w.shape, length)
    return _irfft2(jnp.fft.rfft2(w) * inverse, w.shape)


def velocity_from_vorticity(
    w: Real[ArrayLike, "Nx Ny"], *, domain_extent: float = 1.0
) -> Float[Array, "2 Nx Ny"]:
    """The divergence-free velocity `v = (∂ψ/∂y, -∂ψ/∂x)` of a vorticity field.

    Computed exactly in Fourier space through the stream function
    ([`trainax.spectral.stream_function`][]); its curl is `w` minus its mean.

    **Arguments:**

    - `w`: the vorticity on the uniform periodic grid, `(N_x, N_y)`.
    - `domain_extent`: the side `L` of the square (default 1).

    **Returns:** `(v_x, v_y)`, shape `(2, N_x, N_y)`.

    ```python
    x = jnp.arange(16) / 16
    w = jnp.outer(jnp.sin(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x))
    v = tx.spectral.velocity_from_vorticity(w)    # (2, 16, 16)
    ```
    """
    w = _check_vorticity(w)
    length = positive_float("domain_extent", domain_extent)
    dx, dy, inverse, _ = _symbols(w.shape, length)
    psi_hat = jnp.fft.rfft2(w) * inverse
    return jnp.stack([_irfft2(dy * psi_hat, w.shape), _irfft2(-dx * psi_hat, w.shape)])


def vorticity_advection(
    w: Real[ArrayLike, "Nx Ny"], *, domain_extent: float = 1.0, dealias: bool = True
) -> Float[Array, "Nx Ny"]:
    """The advection `v · ∇w` of the vorticity by its own velocity, pseudo-spectrally.

    Velocity and gradient are exact in Fourier space; their product is
    formed on the grid. With `dealias` (default), Orszag's 2/3 rule removes
    the modes `|k| > (N - 1) // 3` per axis from `w` and from the product,
    so no aliased mode survives.

    **Arguments:**

    - `w`: the vorticity on the uniform periodic grid, `(N_x, N_y)`.
    - `domain_extent`: the side `L` of the square (default 1).
    - `dealias`: apply the 2/3 rule (default `True`).

    **Returns:** `v · ∇w`, shape `(N_x, N_y)`.

    ```python
    x = jnp.arange(16) / 16
    taylor_green = jnp.outer(jnp.sin(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x))
    tx.spectral.vorticity_advection(taylor_green)   # zero: a steady Euler flow
    ```
    """
    w = _check_vorticity(w)
    length = positive_float("domain_extent", domain_extent)
    if not isinstance(dealias, bool):
        raise TypeError(f"`dealias` must be a bool, got {dealias!r}.")
    return _irfft2(_advection_hat(jnp.fft.rfft2(w), w.shape, length, dealias), w.shape)


# -- the reference stepper ---------------------------------------------------------------


class NavierStokesStepper(eqx.Module):
    """A pseudo-spectral stepper of `w_t + v · ∇w = ν Δw + f` on the periodic square.

    Integrating-factor Runge-Kutta 4: the diffusion is integrated exactly
    (`exp(-ν |k|^2 dt)` per mode, so a decaying mode keeps its exact rate),
    the advection and forcing by the classical fourth-order stages; the
    advection is evaluated pseudo-spectrally with 2/3 dealiasing
    ([`trainax.spectral.vorticity_advection`][]). Every factor is a decay,
    so the scheme is stable for any `ν dt`; the advection's step limit is
    the usual CFL one, `dt max|v| k_max ≲ 2.8`.

    It acts on one state `(1, N, N)`, channels first, as exponax steppers
    do, so it is a valid `ref_stepper`; batch with `jax.vmap`.

    **Arguments:**

    - `num_points`: grid points `N` per axis (`x_j = j L / N`).
    - `dt`: the time step of one stage sequence.
    - `diffusivity`: the viscosity `ν >= 0` (default 1e-3).
    - `forcing`: `None`, an array `(N, N)` on the grid, or a callable
      `f(x, y)` evaluated on the grid coordinates (arrays `(N, N)`).
    - `domain_extent`: the side `L` (default 1).
    - `substeps`: steps of `dt` per call (default 1), so one call advances
      `substeps * dt`.

    **Call:** `w` `(1, N, N)` -> `(1, N, N)`. `rollout(w, num_steps)` returns
    the `num_steps + 1` states of repeated calls, `(num_steps + 1, 1, N, N)`.

    ```python
    stepper = tx.spectral.NavierStokesStepper(16, 0.01, diffusivity=0.01)
    x = jnp.arange(16) / 16
    w = jnp.outer(jnp.sin(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x))[None]
    stepper.rollout(w, 3).shape                  # (4, 1, 16, 16)
    ```
    """

    forcing_hat: Optional[Complex[Array, "N K"]]
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    diffusivity: float = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    def __init__(
        self,
        num_points: int,
        dt: float,
        *,
        diffusivity: float = 1e-3,
        forcing: Optional[Union[Real[ArrayLike, "N N"], Forcing]] = None,
        domain_extent: float = 1.0,
        substeps: int = 1,
    ):
        self.num_points = positive_int("num_points", num_points)
        if self.num_points < 2:
            raise ValueError(f"`num_points` must be at least 2, got {self.num_points}.")
        self.dt = positive_float("dt", dt)
        self.diffusivity = positive_float("diffusivity", diffusivity, allow_zero=True)
        self.domain_extent = positive_float("domain_extent", domain_extent)
        self.substeps = positive_int("substeps", substeps)
        self.forcing_hat = self._forcing_hat(forcing)

    def _forcing_hat(self, forcing):
        if forcing is None:
            return None
        n, length = self.num_points, self.domain_extent
        if callable(forcing):
            x = jnp.arange(n, dtype=jnp.result_type(float)) * (length / n)
            forcing = forcing(*jnp.meshgrid(x, x, indexing="ij"))
        forcing = jnp.asarray(forcing)
        if forcing.shape != (n, n) or not jnp.issubdtype(forcing.dtype, jnp.floating):
            raise ValueError(
                f"`forcing` must be a floating array ({n}, {n}) on the grid, or a "
                f"callable f(x, y) returning one, got shape {forcing.shape} and dtype "
                f"{forcing.dtype}."
            )
        return jnp.fft.rfft2(forcing)

    def __call__(self, w: Real[ArrayLike, "1 N N"]) -> Float[Array, "1 N N"]:
        return _step(self, self._check_state(w))

    def _check_state(self, w) -> Array:
        n = self.num_points
        shape = getattr(w, "shape", None)
        if shape != (1, n, n):
            raise ValueError(
                f"`w` must be one state (1, {n}, {n}) (channels first; batch with "
                f"jax.vmap), got shape {shape}."
            )
        if not jnp.issubdtype(w.dtype, jnp.floating):
            raise TypeError(f"`w` must be floating point, got dtype {w.dtype}.")
        return w

    @eqx.filter_jit
    def rollout(self, w: Real[ArrayLike, "1 N N"], num_steps: int) -> Float[Array, "T 1 N N"]:
        """The states `w, stepper(w), ...`: `(num_steps + 1, 1, N, N)`."""
        num_steps = positive_int("num_steps", num_steps, allow_zero=True)
        w = self._check_state(w)

        def step(u, _):
            u = _step(self, u)
            return u, u

        _, later = jax.lax.scan(step, w, None, length=num_steps)
        return jnp.concatenate([w[None], later])


@eqx.filter_jit
def _step(stepper: NavierStokesStepper, w: Array) -> Array:
    shape, length, h = (stepper.num_points,) * 2, stepper.domain_extent, stepper.dt
    _, _, _, k2 = _symbols(shape, length)
    decay = jnp.asarray(np.exp(-stepper.diffusivity * k2 * h), w.dtype)
    half = jnp.asarray(np.exp(-stepper.diffusivity * k2 * h / 2), w.dtype)
    forcing = 0.0 if stepper.forcing_hat is None else stepper.forcing_hat

    def rate(u_hat):
        return forcing - _advection_hat(u_hat, shape, length, dealias=True)

    def one(_, u):
        a = h * rate(u)
        b = h * rate(half * (u + a / 2))
        c = h * rate(half * u + b / 2)
        d = h * rate(decay * u + half * c)
        return decay * u + (decay * a + 2 * half * (b + c) + d) / 6

    w_hat = jax.lax.fori_loop(0, stepper.substeps, one, jnp.fft.rfft2(w[0]))
    return _irfft2(w_hat, shape)[None].astype(w.dtype)


# -- the space-time problem ------------------------------------------------------------


def _inverse_laplacian_2d(n: int) -> np.ndarray:
    """`1 / (4π^2 |k|^2)` per real coefficient of `Fourier(n)^2`, zero for the mean."""
    k = _frequencies(n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    with np.errstate(divide="ignore"):
        return np.where(k2 == 0, 0.0, 1.0 / (4 * math.pi**2 * k2))


class NavierStokes(AbstractSpectralProblem):
    """`w_t / T + v · ∇w = ν Δw + f` on the periodic unit square, `t` in `[0, 1]`.

    The vorticity `w(t, x, y)` lives in `Chebyshev(n_t) x Fourier(n) x
    Fourier(n)` (time first): `t` is time in units of the horizon `T`, so the
    flow is followed for a physical time `T`. The velocity comes from the
    stream function (see the module's conventions). `constrain` applies the
    initial-value form `w = w_0 + t * output` on the nodes
    ([`trainax.spectral.initial_value_mollify`][]) and zeroes the spatial
    mean at every time ([`trainax.spectral.zero_mean_gauge`][]; the mean of
    a periodic vorticity is zero). The network's input has two channels:
    `w_0` (constant in time) and `t`.

    - `sample`: initial vorticity from a periodic Gaussian random field
      (unit variance), mean removed.
    - `spectral_residual`: `w_t / T + v · ∇w - ν Δw - f` with alias-free
      products in `Chebyshev(2 n_t) x Fourier(2 n)^2` (`residual_basis`);
      `velocity` and `advection` are its pieces.
    - `grid_residual`: central differences in `t`, `x`, `y` on the uniform
      grid, the stream function from the five-point Laplacian (inverted by
      FFT), at the interior time levels: `(1, N_t - 2, N, N)`.
    - `reference`: [`trainax.spectral.NavierStokesStepper`][] (exact
      diffusion, RK4 advection with 2/3 dealiasing) on a grid of at least
      `reference_points` points per axis, time step at most `reference_dt`.

    **Arguments:**

    - `nu`: the viscosity `ν >= 0` (default 1e-3).
    - `horizon`: `T`, the physical time span (default 3).
    - `forcing`: `None` (default) or a callable `f(x, y)` of coordinates in
      `[0, 1)` with zero mean, e.g. the paper's forced case
      `lambda x, y: 0.1 * (jnp.sin(2 * jnp.pi * (x + y)) + jnp.cos(2 * jnp.pi * (x + y)))`.
    - `modes`: `(n_t, n)` or one int for both (default `(8, 16)`).
    - `length_scale`: the initial vorticity's correlation length (default 0.2).
    - `reference_dt`: the largest physical time step of the reference
      (default 0.01).
    - `reference_points`: the least number of grid points per axis of the
      reference (default 64).

    ```python
    problem = tx.spectral.NavierStokes(1e-3, modes=(4, 8))
    w0 = problem.sample(jr.PRNGKey(0), 2)               # (2, 1, 8, 8)
    w = problem.constrain(w0[0], jnp.zeros((1, 4, 8, 8)))
    problem.spectral_residual(w0[0], w).shape           # (1, 8, 16, 16)
    ```
    """

    nu: float = eqx.field(static=True)
    horizon: float = eqx.field(static=True)
    forcing: Optional[Forcing] = eqx.field(static=True)
    modes: tuple[int, int] = eqx.field(static=True)
    length_scale: float = eqx.field(static=True)
    reference_dt: float = eqx.field(static=True)
    reference_points: int = eqx.field(static=True)
    in_channels: ClassVar[int] = 2

    def __init__(
        self,
        nu: float = 1e-3,
        *,
        horizon: float = 3.0,
        forcing: Optional[Forcing] = None,
        modes: Union[int, tuple[int, int]] = (8, 16),
        length_scale: float = 0.2,
        reference_dt: float = 0.01,
        reference_points: int = 64,
    ):
        self.nu, self.horizon, self.forcing = flow_parameters(nu, horizon, forcing)
        self.modes = space_time_modes(modes)
        self.length_scale = positive_float("length_scale", length_scale)
        self.reference_dt = positive_float("reference_dt", reference_dt)
        self.reference_points = positive_int("reference_points", reference_points)

    @property
    def basis(self) -> TensorBasis:
        nt, n = self.modes
        return TensorBasis((Chebyshev(nt), Fourier(n), Fourier(n)))

    @property
    def param_basis(self) -> TensorBasis:
        n = self.modes[1]
        return TensorBasis((Fourier(n), Fourier(n)))

    @property
    def residual_basis(self) -> TensorBasis:
        nt, n = self.modes
        return self.basis.with_modes((2 * nt, 2 * n, 2 * n))

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "S 1 N N"]:
        num = positive_int("num", num)
        basis = self.param_basis
        values = gaussian_random_field(
            key, basis, kernel="periodic", length_scale=self.length_scale, num_samples=num
        )
        return jax.vmap(basis.transform)(values).at[:, 0, 0].set(0)[:, None]

    def _initial(self, params, n: int) -> Array:
        return self.param_basis.resize(self._params(params)[0], (n, n))

    @eqx.filter_jit
    def model_input(self, params, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        nt, n, _ = basis.shape
        w0 = self._initial(params, n)
        return jnp.stack([constant_in_time(w0, nt), time_coordinate(basis, w0.dtype)])

    @eqx.filter_jit
    def constrain(self, params, output, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        _, n, _ = basis.shape
        w0 = TensorBasis((Fourier(n), Fourier(n))).inverse(self._initial(params, n))
        values = initial_value_mollify(basis, w0, basis.inverse(output[0]))
        return zero_mean_gauge(basis, basis.transform(values))[None]

    @eqx.filter_jit
    def velocity(self, w_coeffs: Real[ArrayLike, "1 Nt N N"]) -> Float[Array, "2 Nt N N"]:
        """The coefficients of `(v_x, v_y)` in the problem's basis, `(2, n_t, n, n)`."""
        basis, w = self.basis, self._solution(w_coeffs)[0]
        psi = w * jnp.asarray(_inverse_laplacian_2d(self.modes[1]), w.dtype)
        return jnp.stack([basis.derivative(psi, axis=2), -basis.derivative(psi, axis=1)])

    @eqx.filter_jit
    def advection(self, w_coeffs: Real[ArrayLike, "1 Nt N N"]) -> Float[Array, "1 Rt R R"]:
        """The coefficients of `v · ∇w` in `residual_basis`, alias-free."""
        basis = self.basis
        v_x, v_y = self.velocity(w_coeffs)
        w = w_coeffs[0]
        terms = basis.multiply(v_x, basis.derivative(w, axis=1))
        return (terms + basis.multiply(v_y, basis.derivative(w, axis=2)))[None]

    def _forcing_coeffs(self, basis: TensorBasis, dtype) -> Array:
        """The forcing in the space-time `basis`, constant in time."""
        nt, n, _ = basis.shape
        if self.forcing is None:
            return jnp.zeros(basis.shape, dtype)
        space = TensorBasis((Fourier(n), Fourier(n)))
        x, y = (jnp.asarray(a, dtype) for a in node_grid(space))
        return constant_in_time(space.transform(jnp.asarray(self.forcing(x, y), dtype)), nt)

    @eqx.filter_jit
    def spectral_residual(self, params, u_coeffs):
        self._params(params)
        w = self._solution(u_coeffs)[0]
        basis, padded = self.basis, self.residual_basis
        w_t = basis.resize(basis.derivative(w, axis=0), padded.shape)
        laplacian = basis.derivative(w, 2, axis=1) + basis.derivative(w, 2, axis=2)
        diffusion = self.nu * basis.resize(laplacian, padded.shape)
        forcing = self._forcing_coeffs(padded, w.dtype)
        return (w_t / self.horizon + self.advection(u_coeffs)[0] - diffusion - forcing)[None]

    @eqx.filter_jit
    def grid_residual(self, params, u_values):
        w = check_values("u_values", u_values, self.basis, (3, 3, 3))[0]
        nt, nx, ny = w.shape
        hx, hy = 1.0 / nx, 1.0 / ny
        w_t = time_difference(w, 1.0 / (nt - 1))
        w = w[1:-1]
        kx, ky = _wavenumbers((nx, ny))
        symbol = (4 / hx**2) * np.sin(np.pi * kx / nx) ** 2
        symbol = symbol + (4 / hy**2) * np.sin(np.pi * ky / ny) ** 2
        with np.errstate(divide="ignore"):
            inverse = jnp.asarray(np.where(symbol == 0, 0.0, 1.0 / symbol))
        psi = jnp.fft.irfft2(jnp.fft.rfft2(w) * inverse, s=(nx, ny))
        v_x = periodic_first_difference(psi, 2, hy)
        v_y = -periodic_first_difference(psi, 1, hx)
        advection = v_x * periodic_first_difference(w, 1, hx)
        advection = advection + v_y * periodic_first_difference(w, 2, hy)
        laplacian = periodic_second_difference(w, 1, hx) + periodic_second_difference(w, 2, hy)
        forcing = 0.0
        if self.forcing is not None:
            x, y = (a.astype(w.dtype) for a in self.grid((nt, nx, ny))[1:, 0])
            forcing = self.forcing(x, y)
        return (w_t / self.horizon + advection - self.nu * laplacian - forcing)[None]

    @eqx.filter_jit
    def reference(self, params, resolution: Resolution):
        nt, nx, ny = self.grid_shape(resolution)
        if nx != ny:
            raise ValueError(
                "`resolution` must have the same number of points on both space axes "
                f"for the reference solver, got {(nt, nx, ny)}."
            )
        m, factor = fine_grid(nx, max(self.reference_points, self.modes[1]))
        w0 = TensorBasis((Fourier(m), Fourier(m))).inverse(self._initial(params, m))
        per_level = math.ceil(self.horizon / ((nt - 1) * self.reference_dt) - 1e-9)
        stepper = NavierStokesStepper(
            m,
            self.horizon / ((nt - 1) * per_level),
            diffusivity=self.nu,
            forcing=self.forcing,
            substeps=per_level,
        )
        states = stepper.rollout(w0[None], nt - 1)[:, 0]
        return subsample(states, (1, factor, factor))[None]
