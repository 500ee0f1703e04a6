"""Poisson's equation `-Δu = s` on the unit square: periodic and Dirichlet."""

from __future__ import annotations

import functools
import math
from typing import ClassVar, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._checks import positive_int
from ._base import AbstractBasis
from ._chebyshev import Chebyshev
from ._fourier import Fourier, _frequencies
from ._mollifiers import dirichlet_factor, zero_mean_gauge
from ._problems import (
    AbstractSpectralProblem,
    Resolution,
    check_values,
    periodic_second_difference,
    positive_float,
    require_float64,
)
from ._random_fields import gaussian_random_field
from ._tensor import TensorBasis


def _two_modes(modes) -> tuple[int, int]:
    if isinstance(modes, (tuple, list)):
        if len(modes) != 2:
            raise ValueError(f"`modes` must be an int or 2 ints (x, y), got {modes!r}.")
        return tuple(positive_int("modes", m) for m in modes)
    return (positive_int("modes", modes),) * 2


def _laplacian(basis: AbstractBasis, coeffs: Array) -> Array:
    return sum(basis.derivative(coeffs, 2, axis=i) for i in range(basis.ndim))


def _draw(key, basis: AbstractBasis, num: int, kernel: str, length_scale: float):
    num = positive_int("num", num)
    values = gaussian_random_field(
        key, basis, kernel=kernel, length_scale=length_scale, num_samples=num
    )
    return jax.vmap(basis.transform)(values)


class PoissonPeriodic(AbstractSpectralProblem):
    """`-Δu = s` on the periodic unit square, with the zero-mean gauge.

    Solution and source live in the Fourier basis `Fourier(n_x) x Fourier(n_y)`.
    The solution is fixed only up to a constant: `constrain` zeroes its mean
    coefficient ([`trainax.spectral.zero_mean_gauge`][]), and sources are
    drawn with zero mean, so that the problem is solvable.

    - `sample`: sources from a periodic Gaussian random field
      ([`trainax.spectral.gaussian_random_field`][], `kernel="periodic"`,
      unit variance), mean removed.
    - `spectral_residual`: `-Δu - s` on the coefficients, exact (the
      Laplacian is diagonal in the Fourier basis); `residual_basis` is the
      basis itself.
    - `grid_residual`: the five-point Laplacian on the periodic grid
      `(j / N_x, k / N_y)`, with the source evaluated on it.
    - `reference`: the exact solve `u_k = s_k / (4π^2 |k|^2)` (the source is
      band-limited, so is the solution), evaluated on the grid.

    **Arguments:**

    - `modes`: Fourier modes per axis, an int or `(n_x, n_y)` (default 16).
    - `length_scale`: the sources' correlation length (default 0.2, as in
      the neural spectral methods paper).

    ```python
    problem = tx.spectral.PoissonPeriodic(8)
    s = problem.sample(jr.PRNGKey(0), 4)                 # (4, 1, 8, 8) coefficients
    u = problem.solve(s[0])                              # exact solution coefficients
    problem.spectral_loss(s[0], u)                       # ~0
    problem.reference(s[0], 32).shape                    # (1, 32, 32)
    ```
    """

    modes: tuple[int, int] = eqx.field(static=True)
    length_scale: float = eqx.field(static=True)
    in_channels: ClassVar[int] = 1

    def __init__(self, modes: Union[int, tuple[int, int]] = 16, *, length_scale: float = 0.2):
        self.modes = _two_modes(modes)
        self.length_scale = positive_float("length_scale", length_scale)

    @property
    def basis(self) -> TensorBasis:
        return TensorBasis(tuple(Fourier(n) for n in self.modes))

    @property
    def param_basis(self) -> TensorBasis:
        return self.basis

    @property
    def residual_basis(self) -> TensorBasis:
        return self.basis

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "S 1 Nx Ny"]:
        coeffs = _draw(key, self.basis, num, "periodic", self.length_scale)
        return coeffs.at[:, 0, 0].set(0)[:, None]

    @eqx.filter_jit
    def model_input(self, params, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        return self.basis.resize(self._params(params)[0], basis.shape)[None]

    @eqx.filter_jit
    def constrain(self, params, output, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        return zero_mean_gauge(basis, output[0])[None]

    @eqx.filter_jit
    def spectral_residual(self, params, u_coeffs):
        s, u = self._params(params)[0], self._solution(u_coeffs)[0]
        return (-_laplacian(self.basis, u) - s)[None]

    @eqx.filter_jit
    def grid_residual(self, params, u_values):
        u = check_values("u_values", u_values, self.basis, (3, 3))[0]
        s = self.to_grid(self._params(params), u.shape)[0]
        laplacian = sum(
            periodic_second_difference(u, i, 1.0 / n) for i, n in enumerate(u.shape)
        )
        return (-laplacian - s)[None]

    @eqx.filter_jit
    def solve(self, params: Real[ArrayLike, "1 Nx Ny"]) -> Float[Array, "1 Nx Ny"]:
        """The exact zero-mean solution's coefficients, `(1, n_x, n_y)`."""
        s = self._params(params)[0]
        return (s * jnp.asarray(_inverse_laplacian(self.modes), s.dtype))[None]

    @eqx.filter_jit
    def reference(self, params, resolution: Resolution):
        return self.to_grid(self.solve(params), resolution)


@functools.lru_cache(maxsize=None)
def _inverse_laplacian(modes: tuple[int, ...]) -> np.ndarray:
    """`1 / (4π^2 |k|^2)` per real Fourier coefficient, `0` for the mean."""
    k2 = sum(
        np.reshape(_frequencies(n) ** 2, [-1 if i == j else 1 for j in range(len(modes))])
        for i, n in enumerate(modes)
    )
    with np.errstate(divide="ignore"):
        factor = np.where(k2 == 0, 0.0, 1.0 / (4 * math.pi**2 * k2))
    return factor


class PoissonDirichlet(AbstractSpectralProblem):
    """`-Δu = s` on `[0, 1]^2` with `u = 0` on the boundary, in a Chebyshev basis.

    Solution and source live in `Chebyshev(n_x) x Chebyshev(n_y)`.
    `constrain` multiplies the network's nodal output by `sin(πx) sin(πy)`
    ([`trainax.spectral.dirichlet_factor`][]): the Gauss-Lobatto nodes
    include the boundary, so the solution vanishes on it exactly.

    - `sample`: sources from a squared-exponential (RBF) Gaussian random
      field on the Chebyshev nodes, unit variance.
    - `spectral_residual`: `-Δu - s` on the coefficients (exact recurrences);
      its `spectral_loss` is the Chebyshev-weighted Parseval norm.
    - `grid_residual`: the five-point Laplacian at the interior points of
      the uniform grid `(j / (N_x - 1), k / (N_y - 1))`, shape
      `(1, N_x - 2, N_y - 2)`.
    - `reference`: a Chebyshev collocation solve on `reference_modes` nodes
      per axis (fast diagonalisation of the second-derivative matrix); the
      source, a polynomial, is exact on those nodes. It needs float64
      (`jax_enable_x64`): the collocation matrices are ill-conditioned.

    **Arguments:**

    - `modes`: Chebyshev modes per axis, an int or `(n_x, n_y)` (default 16).
    - `length_scale`: the sources' correlation length (default 0.2).
    - `reference_modes`: collocation nodes per axis of the reference
      (default 64).

    ```python
    problem = tx.spectral.PoissonDirichlet(8)
    s = problem.sample(jr.PRNGKey(0), 2)                      # (2, 1, 8, 8)
    u = problem.constrain(s[0], jnp.ones((1, 8, 8)))          # zero on the boundary
    problem.spectral_residual(s[0], u).shape                  # (1, 8, 8)
    ```
    """

    modes: tuple[int, int] = eqx.field(static=True)
    length_scale: float = eqx.field(static=True)
    reference_modes: int = eqx.field(static=True)
    in_channels: ClassVar[int] = 1

    def __init__(
        self,
        modes: Union[int, tuple[int, int]] = 16,
        *,
        length_scale: float = 0.2,
        reference_modes: int = 64,
    ):
        self.modes = _two_modes(modes)
        for n in self.modes:
            Chebyshev(n)  # checks n >= 2
        self.length_scale = positive_float("length_scale", length_scale)
        self.reference_modes = positive_int("reference_modes", reference_modes)
        if self.reference_modes < 3:
            raise ValueError(
                f"`reference_modes` must be at least 3 (an interior node), got "
                f"{self.reference_modes}."
            )

    @property
    def basis(self) -> TensorBasis:
        return TensorBasis(tuple(Chebyshev(n) for n in self.modes))

    @property
    def param_basis(self) -> TensorBasis:
        return self.basis

    @property
    def residual_basis(self) -> TensorBasis:
        return self.basis

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "S 1 Nx Ny"]:
        return _draw(key, self.basis, num, "squared_exponential", self.length_scale)[:, None]

    @eqx.filter_jit
    def model_input(self, params, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        return self.basis.resize(self._params(params)[0], basis.shape)[None]

    @eqx.filter_jit
    def constrain(self, params, output, basis: Optional[AbstractBasis] = None):
        basis = self._basis_or_default(basis)
        # the factor is a constant: built eagerly, also when traced
        with jax.ensure_compile_time_eval():
            factor = np.asarray(dirichlet_factor(basis))
        values = basis.inverse(output[0]) * jnp.asarray(factor, output.dtype)
        return basis.transform(values)[None]

    @eqx.filter_jit
    def spectral_residual(self, params, u_coeffs):
        s, u = self._params(params)[0], self._solution(u_coeffs)[0]
        return (-_laplacian(self.basis, u) - s)[None]

    @eqx.filter_jit
    def grid_residual(self, params, u_values):
        u = check_values("u_values", u_values, self.basis, (3, 3))[0]
        s = self.to_grid(self._params(params), u.shape)[0][1:-1, 1:-1]
        hx, hy = (1.0 / (n - 1) for n in u.shape)
        u_xx = (u[2:, 1:-1] - 2 * u[1:-1, 1:-1] + u[:-2, 1:-1]) / hx**2
        u_yy = (u[1:-1, 2:] - 2 * u[1:-1, 1:-1] + u[1:-1, :-2]) / hy**2
        return (-(u_xx + u_yy) - s)[None]

    @eqx.filter_jit
    def solve(self, params: Real[ArrayLike, "1 Nx Ny"]) -> Float[Array, "1 M M"]:
        """The collocation solution's coefficients in `Chebyshev(M)^2`, `M = reference_modes`.

        Needs float64 (`jax_enable_x64`).
        """
        require_float64("PoissonDirichlet.solve (the reference collocation solve)")
        m = self.reference_modes
        fine = TensorBasis((Chebyshev(m), Chebyshev(m)))
        s = self._params(params)[0].astype(jnp.float64)
        s_nodes = fine.inverse(self.basis.resize(s, (m, m)))[1:-1, 1:-1]
        vectors, inverse, eigenvalues = (jnp.asarray(a) for a in _diagonalised(m))
        # -(A U + U A^T) = S with A = V Λ V^{-1}: divide by -(λ_i + λ_j) in V's frame.
        s_frame = inverse @ s_nodes @ inverse.T
        u_frame = -s_frame / (eigenvalues[:, None] + eigenvalues[None, :])
        interior = vectors @ u_frame @ vectors.T
        return fine.transform(jnp.pad(interior, 1))[None]

    @eqx.filter_jit
    def reference(self, params, resolution: Resolution):
        return self.to_grid(self.solve(params), resolution)


@functools.lru_cache(maxsize=None)
def _diagonalised(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(V, V^{-1}, λ)` of the interior block of `d^2/dx^2` on `m` Lobatto nodes of `[0, 1]`."""
    n = m - 1
    xi = np.cos(np.pi * np.arange(m) / n)  # Trefethen's cheb: decreasing from 1
    c = np.where((np.arange(m) == 0) | (np.arange(m) == n), 2.0, 1.0) * (-1.0) ** np.arange(m)
    dx = xi[:, None] - xi[None, :]
    d = np.outer(c, 1 / c) / (dx + np.eye(m))
    d = d - np.diag(d.sum(axis=1))
    # Our nodes increase in x = (1 + ξ') / 2 with ξ'_j = -cos(πj/n): reverse the
    # order, and d/dx = 2 d/dξ.
    d = 2 * d[::-1, ::-1]
    second = (d @ d)[1:-1, 1:-1]
    eigenvalues, vectors = np.linalg.eig(second)
    order = np.argsort(eigenvalues.real)
    vectors, eigenvalues = vectors[:, order].real, eigenvalues[order].real
    return vectors, np.linalg.inv(vectors), eigenvalues
