"""[task] builders of neural spectral methods: nsm-poisson, nsm-reaction-diffusion and
nsm-navier-stokes.

Each trains a `tx.nn.SpectralOperator` on a `tx.spectral` problem with the
spectral residual alone (`tx.configuration.SpectralResidual`), on fresh
parameter fields at every step (`tx.Sampler(problem.sample)`): no solution
is ever shown to the network. The model is scored against the problem's
`reference` on a uniform grid, as a relative L2 error in percent:

- `validate`: on `num_validation` held-out draws (keys folded from seed 1),
  references computed once when the task is built; its mean is the
  validation error of metrics.jsonl.
- `evaluate`: on `num_test` other held-out draws (from seed 2): `rel_l2_percent`
  and `per_sample` in evaluation.json, against the untrained operator and
  the zero network output (`u = 0`, or `u = u_0` at every time for the
  time-dependent problems), and plots/prediction.png of the held-out draw
  of median error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .. import configuration as cfg
from .. import nn, spectral
from ..trainer import Sampler
from ._errors import CLIError
from ._task import Task, write_figure

VALIDATION_SEED, TEST_SEED = 1, 2
PLOT = "prediction.png"


# -- argument checks -------------------------------------------------------------------


def _at_least(name: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise CLIError(f"[task] {name}: must be at least {minimum}, got {value!r}.")
    return value


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise CLIError(f"[task] {name}: must be a positive number, got {value!r}.")
    return value


def _non_negative(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise CLIError(f"[task] {name}: must be a non-negative number, got {value!r}.")
    return value


def _pair(name: str, value, minimum: tuple[int, int], what: str) -> tuple[int, int]:
    value = tuple(value)
    if len(value) != 2 or any(v < m for v, m in zip(value, minimum)):
        raise CLIError(f"[task] {name}: expected [{what}], at least {list(minimum)}, got "
                       f"{list(value)!r}.")
    return value


def _common(width: int, num_layers: int, num_validation: int, num_test: int) -> None:
    for name, value in (("width", width), ("num_layers", num_layers),
                        ("num_validation", num_validation), ("num_test", num_test)):
        _at_least(name, value)


# -- scoring ---------------------------------------------------------------------------


@eqx.filter_jit
def _on_grid(problem, model, params, grid):
    """One prediction on the uniform grid (compiled once per model structure)."""
    return problem.to_grid(problem.predict(model, params), grid)


def _draws(problem, seed: int, num: int):
    """`num` held-out parameter fields, one key each: the first `k` draws are the
    same whatever `num` (and one compiled draw serves every set)."""
    key = jr.PRNGKey(seed)
    return jnp.concatenate([problem.sample(jr.fold_in(key, i), 1) for i in range(num)])


def _references(problem, params, grid) -> np.ndarray:
    """The reference of each parameter field on the grid, `(S, 1, *grid)`."""
    return np.stack([np.asarray(problem.reference(p, grid)) for p in params])


def _predictions(problem, model, params, grid) -> np.ndarray:
    return np.stack([np.asarray(_on_grid(problem, model, p, grid)) for p in params])


def _errors(problem, model, params, references, grid) -> np.ndarray:
    """Relative L2 error in percent of each prediction, over the whole grid."""
    error = _predictions(problem, model, params, grid) - references
    axes = tuple(range(1, references.ndim))
    return 100 * np.sqrt(np.sum(np.square(error, dtype=np.float64), axis=axes)
                         / np.sum(np.square(references, dtype=np.float64), axis=axes))


def _zero_output(x):
    """The network that outputs zero: `u = 0` (Poisson) or `u = u_0` at every time."""
    return jnp.zeros((1, *x.shape[1:]), x.dtype)


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _spectral_task(problem, *, width: int, num_layers: int, num_validation: int,
                   num_test: int, grid: tuple[int, ...], grid_text: str, what: str,
                   baseline: str, plot: Callable, key) -> Task:
    """The task shared by the problems: data, model, configuration and scoring."""
    model = nn.SpectralOperator(problem.basis, problem.in_channels, 1, width=width,
                                num_layers=num_layers, key=key)
    held_out = _draws(problem, VALIDATION_SEED, num_validation)
    held_out_references = _references(problem, held_out, grid)

    def validate(trained):
        return _errors(problem, trained, held_out, held_out_references, grid)

    def evaluate(trained, run_dir: Path, write_file):
        params = _draws(problem, TEST_SEED, num_test)
        references = _references(problem, params, grid)

        def score(m):
            return _errors(problem, m, params, references, grid)

        errors, untrained, zero = score(trained), score(model), score(_zero_output)
        mean = float(np.mean(errors))
        median = int(np.argsort(errors)[len(errors) // 2])  # a typical draw
        prediction = np.asarray(_on_grid(problem, trained, params[median], grid))
        write_figure(run_dir / "plots" / PLOT, lambda: plot(
            problem, np.asarray(params[median]), prediction[0], references[median, 0],
            median, float(errors[median])), write_file)
        return {
            "metric": "rel_l2_percent",
            "grid": list(grid),
            "num_samples": num_test,
            "rel_l2_percent": _finite(mean),
            "per_sample": [_finite(e) for e in errors],
            "max_rel_l2_percent": _finite(np.max(errors)),
            "untrained_rel_l2_percent": _finite(np.mean(untrained)),
            "baseline": baseline,
            "baseline_rel_l2_percent": _finite(np.mean(zero)),
            "plot": f"plots/{PLOT}",
            "summary": (f"relative L2 error {mean:.3g} % against the reference on {grid_text} "
                        f"(mean over {num_test} held-out {what}; untrained "
                        f"{np.mean(untrained):.3g} %, {baseline} {np.mean(zero):.3g} %)"),
        }

    return Task(
        data=Sampler(problem.sample),  # fresh parameter fields at every step
        model=model,
        configuration=cfg.SpectralResidual(problem),
        validate=validate,
        evaluate=evaluate,
        validation_label="validation relative L2 error (%)",
    )


# -- plots -----------------------------------------------------------------------------


def _panels(fields, title, *, extent, xlabel, ylabel, aspect="equal"):
    """One row of images; the error panel in its own (symmetric) range."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(3.6 * len(fields), 3.5))
    for ax, (name, field) in zip(axes, fields.items()):
        limit = float(np.max(np.abs(field))) or 1.0
        image = ax.imshow(field.T if aspect == "equal" else field, origin="lower",
                          extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit,
                          aspect=aspect, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _plot_poisson(problem, source, prediction, reference, index, error):
    n = prediction.shape[-1]
    fields = {"source s": np.asarray(problem.to_grid(source, n))[0],
              "prediction u": prediction, "reference u": reference,
              "prediction - reference": prediction - reference}
    return _panels(fields, f"Periodic Poisson -Δu = s, held-out source {index}: relative L2 "
                   f"error {error:.3g} % on {n} x {n}", extent=(0, 1, 0, 1), xlabel="x",
                   ylabel="y")


def _plot_reaction_diffusion(problem, u0, prediction, reference, index, error):
    nt, nx = prediction.shape
    fields = {"prediction u(t, x)": prediction, "reference u(t, x)": reference,
              "prediction - reference": prediction - reference}
    return _panels(fields, f"Reaction-diffusion (ν = {problem.nu:g}, ρ = {problem.rho:g}), "
                   f"held-out u_0 {index}: relative L2 error {error:.3g} % on {nt} x {nx}",
                   extent=(0, 1, 0, 1), xlabel="x", ylabel="t", aspect="auto")


def _plot_navier_stokes(problem, w0, prediction, reference, index, error):
    n = prediction.shape[-1]
    horizon = f"{problem.horizon:g}"
    fields = {"initial w_0": reference[0], f"prediction w(T = {horizon})": prediction[-1],
              f"reference w(T = {horizon})": reference[-1],
              "prediction - reference (T)": prediction[-1] - reference[-1]}
    return _panels(fields, f"Navier-Stokes (ν = {problem.nu:g}), held-out w_0 {index}: "
                   f"relative L2 error {error:.3g} % over {prediction.shape[0]} x {n} x {n}",
                   extent=(0, 1, 0, 1), xlabel="x", ylabel="y")


# -- the builders ----------------------------------------------------------------------


def nsm_poisson(
    *,
    modes: int = 16,
    length_scale: float = 0.2,
    width: int = 32,
    num_layers: int = 4,
    num_validation: int = 8,
    num_test: int = 64,
    grid: int = 64,
    key,
) -> Task:
    """Periodic Poisson `-Δu = s` (`tx.spectral.PoissonPeriodic(modes)`), scored on a
    `grid x grid` grid against the exact solution."""
    _common(width, num_layers, num_validation, num_test)
    _at_least("modes", modes)
    _positive("length_scale", length_scale)
    _at_least("grid", grid)
    problem = spectral.PoissonPeriodic(modes, length_scale=length_scale)
    return _spectral_task(
        problem, width=width, num_layers=num_layers, num_validation=num_validation,
        num_test=num_test, grid=(grid, grid), grid_text=f"a {grid} x {grid} grid",
        what="sources", baseline="u = 0", plot=_plot_poisson, key=key)


def nsm_reaction_diffusion(
    *,
    nu: float = 0.01,
    rho: float = 5.0,
    modes: tuple[int, ...] = (8, 32),
    length_scale: float = 0.2,
    width: int = 32,
    num_layers: int = 4,
    num_validation: int = 8,
    num_test: int = 64,
    grid: tuple[int, ...] = (64, 64),
    reference_steps: int = 1000,
    key,
) -> Task:
    """Reaction-diffusion `u_t - ν u_xx = ρ u (1 - u)` (`tx.spectral.ReactionDiffusion`,
    `modes = [time, space]`), scored on the space-time grid `grid = [times, points]`
    against the Strang-splitting reference."""
    _common(width, num_layers, num_validation, num_test)
    _non_negative("nu", nu)
    _non_negative("rho", rho)
    modes = _pair("modes", modes, (2, 1), "time modes, space modes")
    grid = _pair("grid", grid, (2, 1), "time levels, grid points")
    _positive("length_scale", length_scale)
    _at_least("reference_steps", reference_steps)
    problem = spectral.ReactionDiffusion(nu, rho=rho, modes=modes, length_scale=length_scale,
                                         reference_steps=reference_steps)
    return _spectral_task(
        problem, width=width, num_layers=num_layers, num_validation=num_validation,
        num_test=num_test, grid=grid,
        grid_text=f"a {grid[0]} x {grid[1]} space-time grid", what="initial conditions",
        baseline="u = u_0 at every time", plot=_plot_reaction_diffusion, key=key)


def nsm_navier_stokes(
    *,
    nu: float = 1e-3,
    horizon: float = 1.0,
    modes: tuple[int, ...] = (6, 12),
    length_scale: float = 0.2,
    width: int = 16,
    num_layers: int = 3,
    num_validation: int = 8,
    num_test: int = 32,
    grid: tuple[int, ...] = (9, 32),
    key,
) -> Task:
    """2D vorticity Navier-Stokes `w_t / T + v · ∇w = ν Δw` over the horizon `T`
    (`tx.spectral.NavierStokes`, `modes = [time, space]`), scored on the space-time
    grid `grid = [times, points per axis]` against the pseudo-spectral reference."""
    _common(width, num_layers, num_validation, num_test)
    _non_negative("nu", nu)
    _positive("horizon", horizon)
    modes = _pair("modes", modes, (2, 1), "time modes, space modes")
    grid = _pair("grid", grid, (2, 1), "time levels, grid points per axis")
    _positive("length_scale", length_scale)
    problem = spectral.NavierStokes(nu, horizon=horizon, modes=modes,
                                    length_scale=length_scale)
    n = grid[1]
    return _spectral_task(
        problem, width=width, num_layers=num_layers, num_validation=num_validation,
        num_test=num_test, grid=(grid[0], n, n),
        grid_text=f"{grid[0]} times of a {n} x {n} grid", what="initial vorticities",
        baseline="w = w_0 at every time", plot=_plot_navier_stokes, key=key)


TASKS = {
    "nsm_poisson": nsm_poisson,
    "nsm_reaction_diffusion": nsm_reaction_diffusion,
    "nsm_navier_stokes": nsm_navier_stokes,
}
