"""Physics losses of a spectral problem: the residual on coefficients or on a grid."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import output_of, require_shape
from ..spectral import AbstractSpectralProblem
from ._base import BaseConfiguration


def _check_problem(problem) -> AbstractSpectralProblem:
    if not isinstance(problem, AbstractSpectralProblem):
        raise TypeError(
            "`problem` must be a tx.spectral problem (e.g. "
            f"tx.spectral.PoissonPeriodic()), got {type(problem).__name__}."
        )
    return problem


def _check_batch(problem: AbstractSpectralProblem, data) -> None:
    expected = (1, *problem.param_basis.shape)
    shape = getattr(data, "shape", None)
    if shape is None or tuple(shape[1:]) != expected or len(shape) != len(expected) + 1:
        raise ValueError(
            f"`data` must be a batch of parameter coefficients (B, "
            f"{', '.join(map(str, expected))}) for {type(problem).__name__} (as "
            f"problem.sample draws them), got shape {shape}."
        )


def _check_prediction(problem, model, batch, basis, where: str) -> None:
    _check_batch(problem, batch)
    params = jax.ShapeDtypeStruct(tuple(batch.shape[1:]), batch.dtype)
    expected = (1, *basis.shape)
    out = output_of(
        "model", lambda m, p: m(problem.model_input(p, basis)), model, params,
        given=(f"the problem's input of shape ({problem.in_channels}, "
               f"{', '.join(map(str, basis.shape))}) {where}"))
    require_shape("model", out, expected, f"the problem's input {where} to solution coefficients")


class SpectralResidual(BaseConfiguration):
    """The neural spectral method's loss: the residual's Parseval norm, on coefficients.

    For a batch of parameter coefficients `p_b` (sources or initial
    conditions, as `problem.sample` draws them),

    `loss = mean_b  problem.residual_basis.l2_norm_squared(R(p_b, u_b))`,
    `u_b = problem.predict(model, p_b)`,

    where `R` is `problem.spectral_residual`. The model maps the problem's
    input (`problem.model_input`, coefficients in `problem.basis`) to the
    solution's coefficients `(1, *problem.basis.shape)`, e.g. a
    [`trainax.nn.SpectralOperator`][]. Boundary and initial conditions are
    exact by construction, inside the problem: `predict` passes the model's
    output through `problem.constrain` (a mollifier or a gauge). No grid and
    no solution data are involved; train on `tx.Sampler(problem.sample)`
    (a fresh draw every step) or on `tx.Samples(params)`.

    **Arguments:**

    - `problem`: a [`trainax.spectral.AbstractSpectralProblem`][].

    ```python
    problem = tx.spectral.PoissonPeriodic(8)
    cfg = tx.configuration.SpectralResidual(problem)
    model = tx.nn.SpectralOperator(problem.basis, 1, 1, width=8, num_layers=2,
                                   key=jr.PRNGKey(0))
    cfg(model, problem.sample(jr.PRNGKey(1), 4))     # a scalar
    ```
    """

    problem: AbstractSpectralProblem

    def __init__(self, problem: AbstractSpectralProblem):
        self.problem = _check_problem(problem)

    def check_model(self, model, batch) -> None:
        _check_prediction(self.problem, model, batch, self.problem.basis, "")

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None
    ) -> Float[Array, ""]:
        problem = self.problem
        _check_batch(problem, data)

        def one(params):
            return problem.spectral_loss(params, problem.predict(model, params))

        return jnp.mean(jax.vmap(one)(data))


class GridResidual(BaseConfiguration):
    """The physics-informed grid baseline: a finite-difference residual, mean squared.

    For a batch of parameter coefficients `p_b`,

    `loss = mean_b mean(problem.grid_residual(p_b, v_b)^2)`,

    where `v_b` is the model's solution on the uniform grid of `resolution`
    points per axis. The model runs on that grid: it is applied in the basis
    of the problem's kind with as many modes as grid points
    (`problem.basis.with_modes(resolution)`; a
    [`trainax.nn.SpectralOperator`][] runs in any such basis), so its
    nonlinearity acts on the grid's points, as a network trained with a
    finite-difference loss does, and its output is evaluated on the grid
    (`problem.to_grid`; on a periodic axis the basis's nodes are the grid).
    Boundary and initial conditions hold by construction as in
    [`trainax.configuration.SpectralResidual`][], so the same model and
    sources serve both losses side by side.

    **Arguments:**

    - `problem`: a [`trainax.spectral.AbstractSpectralProblem`][].
    - `resolution`: grid points, an int for every axis or one per axis.

    ```python
    problem = tx.spectral.PoissonPeriodic(8)
    cfg = tx.configuration.GridResidual(problem, 16)
    model = tx.nn.SpectralOperator(problem.basis, 1, 1, width=8, num_layers=2,
                                   key=jr.PRNGKey(0))
    cfg(model, problem.sample(jr.PRNGKey(1), 4))     # a scalar
    ```
    """

    problem: AbstractSpectralProblem
    resolution: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, problem: AbstractSpectralProblem, resolution):
        self.problem = _check_problem(problem)
        self.resolution = problem.grid_shape(resolution)

    def check_model(self, model, batch) -> None:
        basis = self.problem.basis.with_modes(self.resolution)
        where = f"on the grid's basis (GridResidual runs the model with {self.resolution} modes)"
        _check_prediction(self.problem, model, batch, basis, where)

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None
    ) -> Float[Array, ""]:
        problem = self.problem
        _check_batch(problem, data)
        basis = problem.basis.with_modes(self.resolution)

        def one(params):
            values = problem.to_grid(problem.predict(model, params, basis), self.resolution)
            return jnp.mean(problem.grid_residual(params, values) ** 2)

        return jnp.mean(jax.vmap(one)(data))
