"""Diffusion-sorption reference data: a finite-volume method of lines, stiffly integrated."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .. import constraint as _constraint
from ..configuration import PhysicsInformed
from ..constraint import DiffusionSorption
from ..nn import FNO
from ..trainer import Sampler
from ._validation import check_bool, check_int, check_real


def _check_pde(pde) -> DiffusionSorption:
    if pde is None:
        return DiffusionSorption()
    if not isinstance(pde, DiffusionSorption):
        raise TypeError(f"`pde` must be a tx.constraint.DiffusionSorption, got {type(pde).__name__}.")
    return pde


def _right_face(pde: DiffusionSorption, last: Array, h: float) -> Array:
    # u_f = D (u_f - u_last) / (h / 2) at x = 1, solved for u_f
    ratio = 2 * pde.diffusivity / h
    return -ratio * last / (1 - ratio)


def _rhs(pde: DiffusionSorption, h: float):
    def rhs(t, u, args):
        ghost_left = 2.0 - u[:1]
        ghost_right = 2 * _right_face(pde, u[-1:], h) - u[-1:]
        padded = jnp.concatenate([ghost_left, u, ghost_right])
        laplacian = (padded[2:] - 2 * u + padded[:-2]) / h**2
        return pde.diffusivity / pde.retardation(u) * laplacian

    return rhs


@eqx.filter_jit
def _integrate(pde, cells, times, rtol, atol):
    def one(y0):
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(_rhs(pde, 1.0 / y0.shape[0])),
            diffrax.Kvaerno5(),
            t0=0.0,
            t1=times[-1],
            dt0=1e-3,
            y0=y0,
            saveat=diffrax.SaveAt(ts=times),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.3, icoeff=0.4),
            max_steps=100_000,
        )
        return solution.ys

    return one(cells) if cells.ndim == 1 else jax.vmap(one)(cells)


def solve_diffusion_sorption(
    initial: Float[ArrayLike, "*S X"],
    times: Float[ArrayLike, " T"],
    *,
    refinement: int = 4,
    pde: Optional[DiffusionSorption] = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> Float[Array, "*S T X"]:
    """The reference solution of diffusion-sorption from initial states on nodes.

    A finite-volume method of lines: `M = refinement * (X - 1)` cells of
    width `h = 1 / M`, so the nodes `x_i = i / (X - 1)` are cell faces. Each
    cell obeys `du/dt = D / R(u) (u_{i+1} - 2 u_i + u_{i-1}) / h^2`, with
    ghost cells for `u(0, t) = 1` (the face value) and `u(1, t) = D u_x(1, t)`
    (the face value `u_f` with `u_f = D (u_f - u_{M-1}) / (h / 2)`). The
    initial cells sample the piecewise linear interpolant of `initial`.
    The stiff system is integrated by `diffrax.Kvaerno5` (implicit, order 5)
    with a PID step-size controller, so the error is the spatial one, of
    second order in `h`. Values at interior nodes are the means of the two
    cells that meet there; at `t = 0` the result is `initial` itself. A
    batch of initial states is solved at once (`jax.vmap`).

    Runs in the precision JAX runs in; use float64 for test-grade references.

    **Arguments:**

    - `initial`: `u_0` at the nodes, `(X,)` or a batch `(S, X)`.
    - `times`: increasing output times from `0`, `(T,)`.
    - `refinement`: cells per node interval (default 4).
    - `pde`: the constants, a [`tx.constraint.DiffusionSorption`][trainax.constraint.DiffusionSorption]
      (default PDEBench's).
    - `rtol`, `atol`: the step-size controller's tolerances (defaults `1e-6`, `1e-8`).

    **Returns:** `u` at the nodes and times, `(T, X)` (or `(S, T, X)`).

    ```python
    times = jnp.linspace(0.0, 500.0, 3)
    u = tx.sample_data.solve_diffusion_sorption(jnp.full(9, 0.1), times, refinement=2)
    u.shape   # (3, 9); u[1:, 0] == 1 (the left boundary)
    ```
    """
    pde = _check_pde(pde)
    initial = jnp.asarray(initial)
    raw_times, times = times, jnp.asarray(times, initial.dtype)
    if initial.ndim not in (1, 2) or initial.shape[-1] < 2:
        raise ValueError(
            f"`initial` must be a state (X,) or a batch (S, X) with X >= 2 nodes, got shape "
            f"{initial.shape}."
        )
    if times.ndim != 1 or times.shape[0] < 1:
        raise ValueError(f"`times` must be a 1-D array of output times, got shape {times.shape}.")
    given = np.asarray(raw_times) if not isinstance(raw_times, jax.core.Tracer) else None
    if given is not None and (not np.all(np.diff(given) > 0) or given[0] < 0):  # traced: unchecked
        raise ValueError("`times` must be increasing and start at or after 0.")
    refinement = check_int("refinement", refinement)
    cells = refinement * (initial.shape[-1] - 1)
    if abs(2 * pde.diffusivity * cells - 1) < 1e-12:
        raise ValueError("`refinement`: h = 2 D makes the right boundary singular; change it.")
    nodes = jnp.linspace(0.0, 1.0, initial.shape[-1], dtype=initial.dtype)
    centers = (jnp.arange(cells, dtype=initial.dtype) + 0.5) / cells
    start = jnp.vectorize(lambda u0: jnp.interp(centers, nodes, u0), signature="(x)->(c)")(initial)
    u = _integrate(
        pde, start, times,
        check_real("rtol", rtol, positive=True), check_real("atol", atol, positive=True),
    )
    faces = 0.5 * (u[..., refinement - 1 : -1 : refinement] + u[..., refinement::refinement])
    right = _right_face(pde, u[..., -1:], 1.0 / cells)
    out = jnp.concatenate([jnp.ones_like(right), faces, right], axis=-1)
    return jnp.where((times == 0)[:, None], initial[..., None, :], out)


def diffusion_sorption_1d(
    *,
    num_samples: int = 8,
    num_points: int = 32,
    num_times: int = 17,
    refinement: int = 4,
    pde: Optional[DiffusionSorption] = None,
    key: PRNGKeyArray,
) -> tuple[Float[Array, "S 1 T X"], Float[Array, "S 1 T X"]]:
    """Random diffusion-sorption problems and their reference solutions on a `(t, x)` grid.

    The initial state holds one value per node, uniform in `(0, 0.2)`
    (PDEBench draws one per cell), linear in between; the grid has
    `num_times` levels `t_j = j T / (num_times - 1)` and `num_points` nodes
    `x_i = i / (num_points - 1)`. References come from
    [`solve_diffusion_sorption`][trainax.sample_data.solve_diffusion_sorption].

    **Arguments:**

    - `num_samples`: the number of problems `S`.
    - `num_points`: nodes `X` along `x`.
    - `num_times`: time levels `T` (including `t = 0`).
    - `refinement`: the reference solver's cells per node interval.
    - `pde`: the constants (default PDEBench's).
    - `key`: a JAX PRNG key; the same key gives the same data.

    **Returns:** `(inputs, reference)`, both `(S, 1, T, X)`: `inputs` holds
    `u_0` on every time level (as [`DiffusionSorption.inputs`][trainax.constraint.DiffusionSorption.inputs]),
    the input of a model of the whole trajectory; `reference` the solution.

    ```python
    inputs, reference = tx.sample_data.diffusion_sorption_1d(
        num_samples=3, num_points=9, num_times=3, refinement=2, key=jr.PRNGKey(0))
    inputs.shape, reference.shape   # (3, 1, 3, 9), (3, 1, 3, 9)
    ```
    """
    pde = _check_pde(pde)
    num_samples = check_int("num_samples", num_samples)
    num_points = check_int("num_points", num_points, minimum=2)
    num_times = check_int("num_times", num_times, minimum=2)
    initial = random_initial_states(key, num_samples, num_points)
    times = jnp.linspace(0.0, pde.final_time, num_times, dtype=initial.dtype)
    reference = solve_diffusion_sorption(initial, times, refinement=refinement, pde=pde)
    return pde.inputs(initial, num_times), reference[:, None]


def random_initial_states(key: PRNGKeyArray, num_samples: int, num_points: int) -> Float[Array, "S X"]:
    """Initial states uniform in `(0, 0.2)`, one value per node.

    **Arguments:**

    - `key`: a JAX PRNG key; the same key gives the same states.
    - `num_samples`: the number of states `S`.
    - `num_points`: the nodes `X` per state.

    **Returns:** `(S, X)`.

    ```python
    u0 = tx.sample_data.random_initial_states(jr.PRNGKey(0), 4, 16)   # (4, 16)
    ```
    """
    num_samples = check_int("num_samples", num_samples)
    num_points = check_int("num_points", num_points, minimum=2)
    return jr.uniform(key, (num_samples, num_points), minval=0.0, maxval=0.2)


def relative_l2_error(
    prediction: Float[ArrayLike, "S *N"], reference: Float[ArrayLike, "S *N"]
) -> Float[Array, " S"]:
    """The relative L2 error of each sample, `|prediction - reference| / |reference|`.

    **Arguments:**

    - `prediction`, `reference`: `(S, *N)`, the same shape.

    **Returns:** `(S,)`: the norms run over every axis but the first
    (samples). Multiply by 100 for percent.

    ```python
    reference = jnp.ones((2, 1, 4, 8))
    tx.sample_data.relative_l2_error(1.1 * reference, reference)   # [0.1, 0.1]
    ```
    """
    prediction, reference = jnp.asarray(prediction), jnp.asarray(reference)
    if prediction.shape != reference.shape or prediction.ndim < 2:
        raise ValueError(
            "`prediction` and `reference` must have the same shape (S, *N), got "
            f"{prediction.shape} and {reference.shape}."
        )
    axes = tuple(range(1, reference.ndim))
    error = jnp.sqrt(jnp.sum((prediction - reference) ** 2, axis=axes))
    return error / jnp.sqrt(jnp.sum(reference**2, axis=axes))


_KINDS = ("soft", "hard", "moe")


class ConstraintExperiment(NamedTuple):
    """The pieces of a diffusion-sorption experiment, ready for a trainer.

    **Attributes:**

    - `model`: the untrained model, `(1, T, X) -> (1, T, X)`.
    - `configuration`: its [`PhysicsInformed`][trainax.configuration.PhysicsInformed] loss.
    - `source`: a [`Sampler`][trainax.trainer.Sampler] of fresh random initial states.
    - `evaluate`: `evaluate(model) -> {"rel_l2_percent": ..., "rel_l2_percent_max": ...}`,
      the mean and largest relative L2 error, in percent, against the reference
      solution on held-out initial states.

    ```python
    tx.sample_data.ConstraintExperiment._fields
    # ('model', 'configuration', 'source', 'evaluate')
    ```
    """

    model: Callable
    configuration: PhysicsInformed
    source: Sampler
    evaluate: Callable


def diffusion_sorption_experiment(
    kind: str,
    *,
    num_times: int = 9,
    num_points: int = 16,
    num_basis: int = 8,
    num_experts: int = 4,
    collocation_points: Optional[int] = None,
    width: int = 16,
    modes: tuple[int, int] = (4, 6),
    num_layers: int = 3,
    max_steps: int = 30,
    num_test: int = 4,
    refinement: int = 2,
    initial_value_form: bool = True,
    coupling: str = "none",
    key: PRNGKeyArray,
) -> ConstraintExperiment:
    """A soft, hard or mixture-of-experts model of diffusion-sorption, with its training pieces.

    Data-free, physics-informed training of the solution operator
    `u_0 -> u(t, x)` on a `(num_times, num_points)` grid over `[0, 500] x [0, 1]`
    ([`DiffusionSorption`][trainax.constraint.DiffusionSorption], PDEBench's
    constants). The backbone is a [`FNO`][trainax.nn.FNO] with coordinate
    channels; the three kinds differ only in what follows it:

    - `"soft"`: the FNO outputs the field (the PDE enters the loss only);
    - `"hard"`: it outputs `num_basis` fields, combined by a
      [`HardConstraint`][trainax.constraint.HardConstraint] with
      `collocation_points` points (Gauss-Newton, implicit gradients), in
      initial-value form by default
      ([`InitialValueBasis`][trainax.constraint.InitialValueBasis]:
      `u = u_0 + sum w phi`, the basis zero at `t = 0`, so the initial
      condition holds exactly);
    - `"moe"`: the same, solved by a [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts]
      of `num_experts` strips along `x`, each with `collocation_points / num_experts` points.

    Train with `tx.GeneralTrainer(source, configuration, optimizer, steps, batch_size)`.
    Everything runs in float64 (the constraint layers need it, and the
    reference is test-grade): enable it first with
    `jax.config.update("jax_enable_x64", True)`.

    **Arguments:**

    - `kind`: `"soft"`, `"hard"` or `"moe"`.
    - `num_times`, `num_points`: the grid (defaults 9 and 16).
    - `num_basis`: basis fields of the hard kinds (default 8).
    - `num_experts`: strips along `x` of `"moe"` (default 4; divides `num_points`).
    - `collocation_points`: PDE points of the global solve, split evenly among
      the experts (default a quarter of the grid's nodes).
    - `width`, `modes`, `num_layers`: the FNO (defaults 16, `(4, 6)`, 3).
    - `max_steps`: Gauss-Newton iterations per solve (default 30); solves
      that do not converge are recorded, not warned about, during training.
    - `num_test`: held-out initial states of `evaluate` (default 4).
    - `refinement`: cells per node interval of the reference solver (default 2).
    - `initial_value_form`: whether the hard kinds combine their basis in
      initial-value form (default `True`); `False` combines the backbone's
      fields alone and fits the initial condition by least squares too.
    - `coupling`: the experts' coupling of `"moe"` (default `"none"`, independent
      solves; `"interface"` ties the strips together at their interfaces and
      solves their weights jointly, see
      [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts]).
    - `key`: a JAX PRNG key for the backbone's weights and the held-out states.

    **Returns:** a [`ConstraintExperiment`][trainax.sample_data.ConstraintExperiment]
    `(model, configuration, source, evaluate)`.

    ```python
    with jax.enable_x64(True):
        model, cfg, source, evaluate = tx.sample_data.diffusion_sorption_experiment(
            "soft", num_times=5, num_points=8, width=4, modes=(2, 2), num_layers=1,
            num_test=1, key=jr.PRNGKey(0))
        evaluate(model)["rel_l2_percent"] > 0                   # True (untrained)
    ```
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}, got {kind!r}.")
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "diffusion_sorption_experiment runs in float64, but JAX runs in float32: enable "
            "it at startup with jax.config.update('jax_enable_x64', True)."
        )
    num_times = check_int("num_times", num_times, minimum=4)
    num_points = check_int("num_points", num_points, minimum=4)
    num_basis = check_int("num_basis", num_basis)
    num_experts = check_int("num_experts", num_experts) if kind == "moe" else 1
    if num_points % num_experts or num_points // num_experts < 4:
        raise ValueError(
            f"`num_experts` ({num_experts}) must divide `num_points` ({num_points}) into "
            "strips of at least 4 nodes."
        )
    # PDE nodes of the smallest block: no initial level, no boundary column (and,
    # for coupled experts, no interface column)
    if coupling not in ("none", "interface"):
        raise ValueError(f"`coupling` must be 'none' or 'interface', got {coupling!r}.")
    edges = 2 if num_experts == 1 or coupling == "interface" else 1
    eligible = (num_times - 1) * (num_points // num_experts - edges)
    if collocation_points is None:
        collocation_points = num_times * num_points // 4
    collocation_points = check_int("collocation_points", collocation_points, minimum=num_experts)
    per_solve = collocation_points // num_experts
    if kind != "soft" and per_solve > eligible:
        raise ValueError(
            f"`collocation_points` ({collocation_points}) is more than the grid holds: at most "
            f"{eligible} per solve, {num_experts} solve(s)."
        )
    if not (isinstance(modes, (tuple, list)) and len(modes) == 2):
        raise TypeError(f"`modes` must be a pair (modes along t, modes along x), got {modes!r}.")
    model_key, test_key = jr.split(key)
    pde = DiffusionSorption()
    backbone = FNO(
        2, 1, 1 if kind == "soft" else num_basis, width=check_int("width", width),
        modes=tuple(modes), num_layers=check_int("num_layers", num_layers),
        coordinate_channels=True, key=model_key,
    )
    initial_value_form = check_bool("initial_value_form", initial_value_form)
    if kind == "soft":
        model = backbone
    else:
        layer = _constraint.HardConstraint(
            _constraint.InitialValueBasis(backbone) if initial_value_form else backbone, pde,
            num_points=per_solve, solver=_constraint.GaussNewton(), max_steps=max_steps,
            on_failure="ignore", particular=initial_value_form,
        )
        if kind == "moe":
            layer = _constraint.MixtureOfExperts(layer, (1, num_experts), coupling=coupling)
        model = _constraint.Constrained(layer)

    def draw(key, batch_size):
        return pde.inputs(random_initial_states(key, batch_size, num_points), num_times)

    test_inputs, reference = diffusion_sorption_1d(
        num_samples=check_int("num_test", num_test), num_points=num_points,
        num_times=num_times, refinement=refinement, pde=pde, key=test_key,
    )

    def evaluate(model) -> dict[str, float]:
        prediction = eqx.filter_jit(eqx.filter_vmap(model))(test_inputs)
        error = 100 * relative_l2_error(prediction, reference)
        return {"rel_l2_percent": float(jnp.mean(error)),
                "rel_l2_percent_max": float(jnp.max(error))}

    return ConstraintExperiment(model, PhysicsInformed(pde), Sampler(draw), evaluate)
