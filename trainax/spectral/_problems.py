"""PDE problems with spectral residuals: the shared base and grid helpers.

A problem fixes a PDE on the unit box, the spectral basis of its solution
and how a network's output becomes a solution that meets the boundary or
initial conditions exactly. It offers the residual twice: on coefficients
(the neural spectral method's loss) and by finite differences on a uniform
grid (the physics-informed grid baseline), plus a trustworthy reference.
"""

from __future__ import annotations

import abc
import functools
import numbers
from typing import Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._checks import positive_float, positive_int
from ._base import AbstractBasis, AbstractBasis1D, along
from ._fourier import Fourier, _frequencies, _is_sine

Resolution = Union[int, tuple[int, ...]]


class AbstractSpectralProblem(eqx.Module):
    """A PDE on `[0, 1]^d` with a spectral residual, a grid residual and a reference.

    Every field is a single channel: parameters `params` have shape
    `(1, *param_basis.shape)` (the coefficients of a source or an initial
    condition), solutions `(1, *basis.shape)` (coefficients of the solution).
    Batches are `jax.vmap`ped outside.

    The pieces a training configuration uses:

    - `sample(key, num)`: `num` parameter fields, deterministic per key; it
      has the signature of a [`Sampler`][trainax.trainer.Sampler] function.
    - `model_input(params)`: the network's input, `(in_channels,
      *basis.shape)` coefficients in the solution basis.
    - `constrain(params, output)`: the network's output made a solution that
      meets the boundary or initial conditions by construction (a mollifier
      or a gauge, said by each problem). `predict(model, params)` is
      `constrain(params, model(model_input(params)))`.
    - `spectral_residual(params, u_coeffs)` and `spectral_loss`: the residual
      coefficients in `residual_basis` and their Parseval norm.
    - `grid_residual(params, u_values)`: the finite-difference residual on a
      uniform grid (`grid(resolution)`, `to_grid(u_coeffs, resolution)`).
    - `reference(params, resolution)`: the solution from a trustworthy solver
      on the same uniform grid.

    Uniform grids: a periodic (Fourier) axis of `n` points holds `j / n`, a
    bounded axis (Chebyshev, space or time) `j / (n - 1)`, both ends
    included. A `resolution` is an int for every axis or one int per axis.

    ```python
    problem = tx.spectral.PoissonPeriodic(8)
    s = problem.sample(jr.PRNGKey(0), 1)[0]                # (1, 8, 8) source
    u = problem.predict(lambda x: jnp.zeros_like(x), s)    # a trivial "network"
    problem.spectral_loss(s, u)                            # ||s||^2
    ```
    """

    in_channels: eqx.AbstractClassVar[int]

    @property
    @abc.abstractmethod
    def basis(self) -> AbstractBasis:
        """The basis of the solution."""

    @property
    @abc.abstractmethod
    def param_basis(self) -> AbstractBasis:
        """The basis of the parameter field (source or initial condition)."""

    @property
    @abc.abstractmethod
    def residual_basis(self) -> AbstractBasis:
        """The basis the spectral residual lives in (padded for products)."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "S 1 *M"]:
        """`num` parameter fields as coefficients, `(num, 1, *param_basis.shape)`."""

    @abc.abstractmethod
    def model_input(
        self, params: Real[ArrayLike, "1 *M"], basis: Optional[AbstractBasis] = None
    ) -> Float[Array, "C *N"]:
        """The network's input in `basis` (default: the problem's basis)."""

    @abc.abstractmethod
    def constrain(
        self,
        params: Real[ArrayLike, "1 *M"],
        output: Real[ArrayLike, "1 *N"],
        basis: Optional[AbstractBasis] = None,
    ) -> Float[Array, "1 *N"]:
        """The network's output coefficients made an admissible solution."""

    @abc.abstractmethod
    def spectral_residual(
        self, params: Real[ArrayLike, "1 *M"], u_coeffs: Real[ArrayLike, "1 *N"]
    ) -> Float[Array, "1 *R"]:
        """The residual's coefficients in `residual_basis`."""

    @abc.abstractmethod
    def grid_residual(
        self, params: Real[ArrayLike, "1 *M"], u_values: Real[ArrayLike, "1 *G"]
    ) -> Float[Array, "1 *I"]:
        """The finite-difference residual of grid values."""

    @abc.abstractmethod
    def reference(
        self, params: Real[ArrayLike, "1 *M"], resolution: Resolution
    ) -> Float[Array, "1 *G"]:
        """The reference solution on the uniform grid of `resolution`."""

    def predict(
        self, model: Callable, params: Real[ArrayLike, "1 *M"],
        basis: Optional[AbstractBasis] = None,
    ) -> Float[Array, "1 *N"]:
        """`constrain(params, model(model_input(params, basis)), basis)`.

        The model runs in `basis` (default: the problem's basis); a
        [`trainax.nn.SpectralOperator`][] runs in any basis of the same kind.
        """
        return self.constrain(params, model(self.model_input(params, basis)), basis)

    @eqx.filter_jit
    def spectral_loss(
        self, params: Real[ArrayLike, "1 *M"], u_coeffs: Real[ArrayLike, "1 *N"]
    ) -> Float[Array, ""]:
        """`residual_basis.l2_norm_squared` of the spectral residual (Parseval)."""
        residual = self.spectral_residual(params, u_coeffs)
        return self.residual_basis.l2_norm_squared(residual[0])

    def grid_shape(self, resolution: Resolution) -> tuple[int, ...]:
        """`resolution` as one size per axis, checked (bounded axes need 2 points)."""
        return grid_shape(self.basis, resolution)

    def grid(self, resolution: Resolution) -> Float[Array, "d *G"]:
        """The coordinates of the uniform grid, `(d, *grid_shape(resolution))`."""
        shape = self.grid_shape(resolution)
        nodes = [uniform_nodes(a, n) for a, n in zip(self.basis.axes, shape)]
        return jnp.asarray(np.stack(np.meshgrid(*nodes, indexing="ij")))

    @eqx.filter_jit
    def to_grid(
        self, u_coeffs: Real[ArrayLike, "1 *N"], resolution: Resolution
    ) -> Float[Array, "1 *G"]:
        """Coefficients (of any size of the problem's kind of basis) on the uniform grid."""
        shape = self.grid_shape(resolution)
        u_coeffs = as_channel("u_coeffs", u_coeffs, None, self.basis)
        basis = self.basis.with_modes(u_coeffs.shape[1:])
        return evaluate_on_grid(basis, u_coeffs[0], shape)[None]

    def _basis_or_default(self, basis: Optional[AbstractBasis]) -> AbstractBasis:
        if basis is None:
            return self.basis
        if [type(a) for a in basis.axes] != [type(a) for a in self.basis.axes]:
            raise ValueError(
                f"`basis` must be the same kind of basis as the problem's "
                f"{self.basis._label()}, got {basis._label()}."
            )
        return basis

    def _params(self, params) -> Array:
        return as_channel("params", params, self.param_basis.shape, self.param_basis)

    def _solution(self, u_coeffs) -> Array:
        return as_channel("u_coeffs", u_coeffs, self.basis.shape, self.basis)


# -- argument checks -----------------------------------------------------------


def as_channel(name: str, x, shape, basis: AbstractBasis) -> Array:
    """`x` as a floating `(1, *shape)` array (any sizes when `shape` is None)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    ok = x.ndim == basis.ndim + 1 and x.shape[0] == 1
    if ok and shape is not None:
        ok = x.shape[1:] == tuple(shape)
    if not ok:
        what = "1, N_1, ..., N_d" if shape is None else ", ".join(map(str, (1, *shape)))
        raise ValueError(
            f"`{name}` must have shape ({what}) (one channel, then the coefficients "
            f"of {basis._label()}), got {x.shape}."
        )
    return x


def grid_shape(basis: AbstractBasis, resolution) -> tuple[int, ...]:
    """`resolution` as one size per axis of `basis`, each a valid grid size."""
    if isinstance(resolution, numbers.Integral) and not isinstance(resolution, bool):
        resolution = (resolution,) * basis.ndim
    if not isinstance(resolution, (tuple, list)) or len(resolution) != basis.ndim:
        raise ValueError(
            f"`resolution` must be an int or {basis.ndim} ints (one per axis of "
            f"{basis._label()}), got {resolution!r}."
        )
    shape = tuple(positive_int("resolution", n) for n in resolution)
    for axis, n in zip(basis.axes, shape):
        if not isinstance(axis, Fourier) and n < 2:
            raise ValueError(
                "`resolution` must be at least 2 on a bounded axis (the grid holds "
                f"both ends), got {n}."
            )
    return shape


def require_float64(what: str) -> None:
    """Raise unless float64 is enabled: `what` is a test-grade solve that needs it."""
    if not jax.config.jax_enable_x64:
        raise TypeError(
            f"{what} needs float64, but jax_enable_x64 is off (float32): enable it "
            "with jax.config.update('jax_enable_x64', True) before creating arrays."
        )


# -- uniform grids --------------------------------------------------------------


def node_grid(basis: AbstractBasis) -> np.ndarray:
    """`basis.grid()` as a NumPy constant, also while tracing (under `jit`)."""
    with jax.ensure_compile_time_eval():
        return np.asarray(basis.grid())



def uniform_nodes(axis: AbstractBasis1D, n: int) -> np.ndarray:
    """`n` uniform points: `j / n` on a periodic axis, `j / (n - 1)` on a bounded one."""
    if isinstance(axis, Fourier):
        return np.arange(n) / n
    return np.linspace(0.0, 1.0, n)


@functools.lru_cache(maxsize=None)
def _grid_matrix(kind: type, num_modes: int, n: int) -> np.ndarray:
    """The `(n, num_modes)` values of the basis functions on the uniform grid."""
    x = np.arange(n) / n if kind is Fourier else np.linspace(0.0, 1.0, n)
    if kind is Fourier:
        theta = 2 * np.pi * x[:, None] * _frequencies(num_modes)
        return np.where(_is_sine(num_modes), np.sin(theta), np.cos(theta))
    xi = 2 * x - 1
    table = np.empty((n, num_modes))
    table[:, 0] = 1.0
    if num_modes > 1:
        table[:, 1] = xi
    for k in range(2, num_modes):  # the recurrence: accurate at the ends
        table[:, k] = 2 * xi * table[:, k - 1] - table[:, k - 2]
    return table


def evaluate_on_grid(basis: AbstractBasis, coeffs: Array, shape: tuple[int, ...]) -> Array:
    """Coefficients `basis.shape` -> values on the uniform grid `shape`, axis by axis."""
    for i, (axis, n) in enumerate(zip(basis.axes, shape)):
        if isinstance(axis, Fourier) and axis.num_modes == n:
            coeffs = axis._inverse_along(coeffs, i)  # the grid is the basis's nodes
        else:
            phi = jnp.asarray(_grid_matrix(type(axis), axis.num_modes, n), coeffs.dtype)
            coeffs = jnp.moveaxis(jnp.tensordot(phi, coeffs, axes=(1, i)), 0, i)
    return coeffs


def periodic_second_difference(u: Array, axis: int, h: float) -> Array:
    """`(u_{j+1} - 2 u_j + u_{j-1}) / h^2` along a periodic axis."""
    return (jnp.roll(u, -1, axis) - 2 * u + jnp.roll(u, 1, axis)) / h**2


def periodic_first_difference(u: Array, axis: int, h: float) -> Array:
    """`(u_{j+1} - u_{j-1}) / (2 h)` along a periodic axis."""
    return (jnp.roll(u, -1, axis) - jnp.roll(u, 1, axis)) / (2 * h)


def time_difference(u: Array, dt: float) -> Array:
    """The central difference in time (axis 0) at the interior levels."""
    return (u[2:] - u[:-2]) / (2 * dt)


def check_values(name: str, values, basis: AbstractBasis, minimum: tuple[int, ...]) -> Array:
    """Grid values `(1, *G)` with at least `minimum` points per axis."""
    values = as_channel(name, values, None, basis)
    for n, low in zip(values.shape[1:], minimum):
        if n < low:
            raise ValueError(
                f"`{name}` must hold at least {minimum} grid points per axis for the "
                f"finite differences, got shape {values.shape}."
            )
    return values


def constant_in_time(space_coeffs: Array, time_modes: int) -> Array:
    """Spatial coefficients as a space-time field constant in time (the `T_0` mode)."""
    zeros = jnp.zeros((time_modes - 1, *space_coeffs.shape), space_coeffs.dtype)
    return jnp.concatenate([space_coeffs[None], zeros])


def time_coordinate(basis: AbstractBasis, dtype) -> Array:
    """The coefficients of `t` (axis 0, Chebyshev): `t = (T_0 + T_1) / 2`."""
    coeffs = jnp.zeros(basis.shape, dtype)
    origin = (0,) * (basis.ndim - 1)
    return coeffs.at[(0, *origin)].set(0.5).at[(1, *origin)].set(0.5)


def subsample(values: Array, factors: tuple[int, ...]) -> Array:
    """Every `factor`-th point along each axis (from a finer grid of the same kind)."""
    return values[tuple(slice(None, None, f) for f in factors)]


# -- one time step, evaluated spectrally --------------------------------------------


class SpectralCrankNicolsonResiduum(eqx.Module):
    """The Crank-Nicolson residual of one step of 1D advection-diffusion, spectrally.

    For the periodic PDE `u_t = ν u_xx - c u_x` on `[0, L)` and two
    consecutive batched states on the uniform grid `x_j = j L / N` (the
    Fourier nodes), it computes the coefficients of

    `r = (u_next - u_prev) - dt (ν ∂_xx - c ∂_x) (u_next + u_prev) / 2`

    in [`trainax.spectral.Fourier`][]`(N)`, with exact spectral derivatives,
    and returns them scaled by `sqrt(N w_j)` (`w_j` the Parseval weights), so
    that the mean of their squares over the grid, which is what
    [`trainax.loss.MSELoss`][] takes, is the squared L2 norm of the residual
    function, `(1/L) ∫ r^2 dx`. It is zero (to round-off) exactly when
    `u_next` is the Crank-Nicolson step of `u_prev`.

    Use it as the `residuum_fn(u_next, u_prev)` of
    [`trainax.configuration.Residuum`][] (or `ResiduumTrainer`).

    **Arguments:**

    - `num_points`: grid points `N`.
    - `dt`: the time step.
    - `diffusivity`: `ν >= 0` (default 0).
    - `velocity`: `c` (default 0).
    - `domain_extent`: `L` (default 1).

    **Call:** `(u_next, u_prev)`, both `(B, C, N)`, returns `(B, C, N)`.

    ```python
    residuum = tx.spectral.SpectralCrankNicolsonResiduum(32, 0.01, velocity=1.0)
    u = jnp.sin(2 * jnp.pi * jnp.arange(32) / 32)[None, None]
    r = residuum(u, u)                     # (1, 1, 32): the step did not advect
    ```
    """

    basis: Fourier
    dt: float = eqx.field(static=True)
    diffusivity: float = eqx.field(static=True)
    velocity: float = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)

    def __init__(
        self,
        num_points: int,
        dt: float,
        *,
        diffusivity: float = 0.0,
        velocity: float = 0.0,
        domain_extent: float = 1.0,
    ):
        self.basis = Fourier(positive_int("num_points", num_points))
        self.dt = positive_float("dt", dt)
        self.diffusivity = positive_float("diffusivity", diffusivity, allow_zero=True)
        if isinstance(velocity, bool) or not isinstance(velocity, numbers.Real):
            raise TypeError(f"`velocity` must be a real number, got {velocity!r}.")
        self.velocity = float(velocity)
        self.domain_extent = positive_float("domain_extent", domain_extent)

    def __call__(
        self, u_next: Real[ArrayLike, "B C N"], u_prev: Real[ArrayLike, "_B _C _N"]
    ) -> Float[Array, "B C N"]:
        n = self.basis.num_modes
        for name, u in (("u_next", u_next), ("u_prev", u_prev)):
            shape = getattr(u, "shape", None)
            if shape is None or len(shape) != 3 or shape[2] != n:
                raise ValueError(
                    f"`{name}` must be batched states (B, C, {n}), got shape {shape}."
                )
        if u_next.shape != u_prev.shape:
            raise ValueError(
                f"`u_prev` must have the shape of `u_next` {u_next.shape}, got "
                f"{u_prev.shape}."
            )
        return _crank_nicolson(self, u_next, u_prev)


@eqx.filter_jit
def _crank_nicolson(residuum: SpectralCrankNicolsonResiduum, u_next, u_prev):
    basis, length = residuum.basis, residuum.domain_extent
    transform = lambda u: basis._transform_along(u, 2)  # noqa: E731
    a_next, a_prev = transform(u_next), transform(u_prev)
    mid = (a_next + a_prev) / 2
    operator = residuum.diffusivity * basis._derivative_along(mid, 2, 2) / length**2
    operator = operator - residuum.velocity * basis._derivative_along(mid, 1, 2) / length
    residual = (a_next - a_prev) - residuum.dt * operator
    weights = np.sqrt(basis.num_modes * basis._norm_weights())
    return residual * along(weights, 2, 3, residual.dtype)
