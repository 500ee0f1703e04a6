"""Crank-Nicolson residua of linear PDEs on periodic domains (Fourier space)."""

import equinox as eqx
import exponax as ex
import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from ._generate import Real
from ._validation import check_floating, check_int, check_real

_Batch = Float[Array, "batch channels *space"]


class CrankNicolsonResiduum(eqx.Module):
    """The Crank-Nicolson residual of a linear PDE `u_t = L u`, periodic.

    For two consecutive batched states it returns

    ```
        r = (u_next - u_prev) - dt * L((u_next + u_prev) / 2)
    ```

    with the linear operator `L` applied exactly in Fourier space. The
    residual is **not** divided by `dt`: it has the units of `u` and measures
    the defect of one step. It is zero (up to rounding) exactly when `u_next`
    is the Crank-Nicolson update of `u_prev`, i.e. when each Fourier mode is
    multiplied by `(1 + dt lam / 2) / (1 - dt lam / 2)` with `lam` the symbol
    of `L`. For the exact solution step (`exp(dt lam)`, what the exponax linear
    steppers do), the residual of mode `lam` is about `-(dt lam)^3 / 12` times
    its amplitude, so it shrinks like `dt^3` per step.

    Use it as the `residuum_fn` of residuum-based training, or build one with
    [`trainax.sample_data.advection_residuum`][],
    [`trainax.sample_data.diffusion_residuum`][] or
    [`trainax.sample_data.advection_diffusion_residuum`][].

    **Arguments:**

    - `linear_operator`: The Fourier symbol `lam` of `L` on the `rfftn` grid,
        shape `(C or 1, N, ..., N, N // 2 + 1)` (one `N` per spatial axis, the
        last one halved), e.g. `-c * 1j * k` for advection with speed `c`.
    - `dt`: The time step between `u_prev` and `u_next`.
    - `num_spatial_dims`: Number of spatial axes `d`.
    - `num_points`: Grid points `N` per axis.

    **Example:**

    ```python
    residuum = tx.sample_data.advection_residuum(cfl=-0.75, num_points=30)
    data = tx.sample_data.advection_1d_periodic(key=jax.random.key(0))
    r = residuum(data[:, 1], data[:, 0])  # (50, 1, 30), small but not zero
    ```
    """

    linear_operator: Complex[Array, "channels *wavenumbers"]
    # An array leaf, so one compiled residual serves every time step size.
    dt: Float[Array, ""] = eqx.field(converter=jnp.asarray)
    num_spatial_dims: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)

    def __check_init__(self):
        d, n = self.num_spatial_dims, self.num_points
        expected = (n,) * (d - 1) + (n // 2 + 1,)
        if self.linear_operator.shape[1:] != expected:
            raise ValueError(
                f"`linear_operator` must have shape (C, *{expected}) for "
                f"num_spatial_dims={d} and num_points={n}, got "
                f"{self.linear_operator.shape}."
            )

    def __call__(self, u_next: _Batch, u_prev: _Batch) -> _Batch:
        """The residual of the step `u_prev -> u_next`, both `(B, C, *N)`."""
        d, n = self.num_spatial_dims, self.num_points
        if u_next.shape[2:] != (n,) * d:
            raise ValueError(
                f"`u_next` and `u_prev` must be batched states (B, C, "
                f"{', '.join([str(n)] * d)}), got shape {u_next.shape}."
            )
        if u_prev.shape != u_next.shape:
            # TypeError, not ValueError: the error type this mismatch has always had.
            raise TypeError(
                f"`u_prev` must have the shape of `u_next`: expected {u_next.shape}, "
                f"got {u_prev.shape}."
            )
        check_floating("u_next", u_next)
        check_floating("u_prev", u_prev)
        return _residual(self, u_next, u_prev)


@eqx.filter_jit
def _residual(residuum: CrankNicolsonResiduum, u_next, u_prev):
    d, n = residuum.num_spatial_dims, residuum.num_points
    axes = tuple(range(-d, 0))
    midpoint = 0.5 * (u_next + u_prev)
    midpoint_hat = jnp.fft.rfftn(midpoint, axes=axes)
    l_midpoint = jnp.fft.irfftn(
        residuum.linear_operator * midpoint_hat, s=(n,) * d, axes=axes
    )
    residual = (u_next - u_prev) - residuum.dt * l_midpoint
    return residual.astype(u_next.dtype)


def _ik(num_spatial_dims: int, domain_extent: float, num_points: int):
    # i * wavenumber per axis, the same grid exponax steppers use.
    return ex.spectral.build_derivative_operator(
        num_spatial_dims, domain_extent, num_points
    )


def _checked_grid(num_points, domain_extent, dt):
    return (
        check_int("num_points", num_points, minimum=2),
        check_real("domain_extent", domain_extent, positive=True),
        check_real("dt", dt, positive=True),
    )


def advection_residuum(
    *,
    cfl: Real = -0.75,
    num_points: int = 30,
    domain_extent: Real = 1.0,
    dt: Real = 0.1,
) -> CrankNicolsonResiduum:
    """Crank-Nicolson residuum of 1D advection `u_t + c u_x = 0`.

    Matches [`trainax.sample_data.advection_1d_periodic`][]: the same
    arguments give the same velocity `c = cfl * (domain_extent / num_points) /
    dt`, and the symbol is `lam = -c i k`.

    **Arguments:**

    - `cfl`: Courant number `c dt / dx`.
    - `num_points`: Grid points `N`.
    - `domain_extent`: Length `L` of the domain.
    - `dt`: Time step.

    **Returns:**

    A [`trainax.sample_data.CrankNicolsonResiduum`][] for states `(B, 1, N)`.

    **Example:**

    ```python
    residuum = tx.sample_data.advection_residuum(cfl=-0.75, num_points=30)
    ```
    """
    num_points, domain_extent, dt = _checked_grid(num_points, domain_extent, dt)
    velocity = check_real("cfl", cfl) * (domain_extent / num_points) / dt
    symbol = -velocity * _ik(1, domain_extent, num_points)
    return CrankNicolsonResiduum(symbol, dt, 1, num_points)


def diffusion_residuum(
    *,
    diffusivity: Real = 0.01,
    num_points: int = 64,
    domain_extent: Real = 1.0,
    dt: Real = 0.01,
    num_spatial_dims: int = 1,
) -> CrankNicolsonResiduum:
    """Crank-Nicolson residuum of diffusion `u_t = nu Laplace(u)`.

    Matches [`trainax.sample_data.diffusion_1d_periodic`][] (and, with
    `num_spatial_dims=2, num_points=32`,
    [`trainax.sample_data.diffusion_2d_periodic`][]); the symbol is
    `lam = -nu |k|^2`.

    **Arguments:**

    - `diffusivity`: The diffusivity `nu >= 0`.
    - `num_points`: Grid points `N` per axis.
    - `domain_extent`: Side length `L` of the domain.
    - `dt`: Time step.
    - `num_spatial_dims`: Number of spatial axes `d` (1, 2 or 3).

    **Returns:**

    A [`trainax.sample_data.CrankNicolsonResiduum`][] for states
    `(B, 1, N, ..., N)`.

    **Example:**

    ```python
    residuum = tx.sample_data.diffusion_residuum(diffusivity=0.01)
    ```
    """
    num_points, domain_extent, dt = _checked_grid(num_points, domain_extent, dt)
    nu = check_real("diffusivity", diffusivity, nonnegative=True)
    d = check_int("num_spatial_dims", num_spatial_dims)
    if d > 3:
        raise ValueError(f"`num_spatial_dims` must be 1, 2 or 3, got {d}.")
    ik = _ik(d, domain_extent, num_points)
    symbol = nu * jnp.sum(ik**2, axis=0, keepdims=True)
    return CrankNicolsonResiduum(symbol, dt, d, num_points)


def advection_diffusion_residuum(
    *,
    velocity: Real = 1.0,
    diffusivity: Real = 0.01,
    num_points: int = 64,
    domain_extent: Real = 1.0,
    dt: Real = 0.01,
) -> CrankNicolsonResiduum:
    """Crank-Nicolson residuum of 1D advection-diffusion `u_t + c u_x = nu u_xx`.

    Matches [`trainax.sample_data.advection_diffusion_1d_periodic`][]; the
    symbol is `lam = -c i k - nu k^2`.

    **Arguments:**

    - `velocity`: The advection speed `c`.
    - `diffusivity`: The diffusivity `nu >= 0`.
    - `num_points`: Grid points `N`.
    - `domain_extent`: Length `L` of the domain.
    - `dt`: Time step.

    **Returns:**

    A [`trainax.sample_data.CrankNicolsonResiduum`][] for states `(B, 1, N)`.

    **Example:**

    ```python
    residuum = tx.sample_data.advection_diffusion_residuum(velocity=0.5)
    ```
    """
    num_points, domain_extent, dt = _checked_grid(num_points, domain_extent, dt)
    c = check_real("velocity", velocity)
    nu = check_real("diffusivity", diffusivity, nonnegative=True)
    ik = _ik(1, domain_extent, num_points)
    symbol = -c * ik + nu * ik**2
    return CrankNicolsonResiduum(symbol, dt, 1, num_points)
