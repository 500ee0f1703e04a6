"""[task] builders of hard constraints on diffusion-sorption (constraint-ds-soft, -hard, -moe)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import equinox as eqx
import jax
import jax.random as jr
import numpy as np

from .. import constraint, sample_data
from ._errors import CLIError
from ._task import Task, write_figure

_KINDS = ("soft", "hard", "moe")
_NAMES = {"soft": "soft constraint", "hard": "hard constraint",
          "moe": "mixture of experts"}


@eqx.filter_jit
def _solve(model, inputs):
    """The predictions `(S, 1, T, X)` and, for a constrained model, whether
    each solve converged (`(S,)`, or `(S, E)` for E independent experts; else
    `None`). Coupled experts share one solve per sample."""
    if isinstance(model, constraint.Constrained):
        field, info = jax.vmap(lambda x: model.layer(x))(inputs)
        if getattr(model.layer, "coupling", "none") == "interface":
            return field, info.converged[:, 0]
        return field, info.converged
    return jax.vmap(model)(inputs), None


def _library_error(error: Exception, options: tuple[str, ...]) -> CLIError:
    """The library's argument error, named after the [task] key it comes from."""
    text = " ".join(str(error).split())
    named = re.match(r"`(\w+)`", text)
    if named and named.group(1) in options:
        return CLIError(f"[task] {named.group(1)}: {text}")
    return CLIError(f"[task]: {text}")


def _plot(prediction, reference, error_percent: float, final_time: float):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    extent = (0.0, 1.0, 0.0, final_time)
    low, high = float(min(reference.min(), prediction.min())), float(
        max(reference.max(), prediction.max()))
    panels = ((prediction, "prediction", "viridis", (low, high)),
              (reference, "reference", "viridis", (low, high)),
              (np.abs(prediction - reference), "|prediction - reference|", "magma", None))
    for ax, (field, title, cmap, limits) in zip(axes, panels):
        vmin, vmax = limits if limits else (None, None)
        image = ax.imshow(field, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                          vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("x")
        fig.colorbar(image, ax=ax)
    axes[0].set_ylabel("t")
    fig.suptitle(f"held-out initial state 0: relative L2 error {error_percent:.2f} %")
    fig.tight_layout()
    return fig


def diffusion_sorption(
    *,
    kind: str = "hard",
    num_times: int = 9,
    num_points: int = 16,
    num_basis: int = 8,
    num_experts: int = 4,
    collocation_points: Optional[int] = None,
    width: int = 16,
    modes: tuple[int, ...] = (4, 6),
    num_layers: int = 3,
    max_steps: int = 30,
    num_test: int = 4,
    refinement: int = 2,
    initial_value_form: bool = True,
    coupling: str = "none",
    key,
) -> Task:
    """Physics-informed training of the diffusion-sorption solution operator
    `u_0 -> u(t, x)` (no solution data) with a soft constraint, a hard
    constraint layer or a mixture of `num_experts` experts along x: the
    experiment of `tx.sample_data.diffusion_sorption_experiment`, in float64.
    `initial_value_form` (hard kinds): combine the basis as `u0 + sum w phi`,
    the initial condition exact. `coupling` (moe): "none" (independent
    strips) or "interface" (strips tied at their interfaces, solved jointly).
    Validation and evaluation: the relative L2 error (percent) against the
    reference solver on `num_test` held-out initial states."""
    if kind not in _KINDS:
        raise CLIError(f"[task] kind: expected one of {', '.join(_KINDS)}; got {kind!r}.")
    minimum = {"num_times": 4, "num_points": 4}
    for name, value in (("num_times", num_times), ("num_points", num_points),
                        ("num_basis", num_basis), ("num_experts", num_experts),
                        ("width", width), ("num_layers", num_layers),
                        ("max_steps", max_steps), ("num_test", num_test),
                        ("refinement", refinement), ("collocation_points", collocation_points)):
        least = minimum.get(name, 1)
        if value is not None and value < least:
            what = "must be positive" if least == 1 else f"must be at least {least}"
            raise CLIError(f"[task] {name}: {what}, got {value!r}.")
    if coupling not in ("none", "interface"):
        raise CLIError(f"[task] coupling: expected one of none, interface; got {coupling!r}.")
    if len(modes) != 2 or min(modes) < 1:
        raise CLIError(f"[task] modes: expected two positive integers [along t, along x], "
                       f"got {list(modes)!r}.")
    options = {"num_times": num_times, "num_points": num_points, "num_basis": num_basis,
               "num_experts": num_experts, "collocation_points": collocation_points,
               "width": width, "modes": tuple(modes), "num_layers": num_layers,
               "max_steps": max_steps, "num_test": num_test, "refinement": refinement,
               "initial_value_form": initial_value_form, "coupling": coupling}
    try:
        experiment = sample_data.diffusion_sorption_experiment(kind, key=key, **options)
        # the held-out states of the experiment's own evaluation (the same key)
        test_inputs, reference = sample_data.diffusion_sorption_1d(
            num_samples=num_test, num_points=num_points, num_times=num_times,
            refinement=refinement, key=jr.split(key)[1],
        )
        # the backbone's grid checks run on the first call: fail here, not in training
        eqx.filter_eval_shape(experiment.model, test_inputs[0])
    except (ValueError, TypeError) as error:
        raise _library_error(error, tuple(options)) from None
    final_time = constraint.DiffusionSorption().final_time

    def errors_of(model):
        prediction, converged = _solve(model, test_inputs)
        errors = 100 * sample_data.relative_l2_error(prediction, reference)
        return np.asarray(errors, np.float64), prediction, converged

    def validate(model):
        return errors_of(model)[0]

    def evaluate(model, run_dir: Path, write_file):
        errors, prediction, converged = errors_of(model)
        mean, largest = float(np.mean(errors)), float(np.max(errors))
        result = {
            "model": kind,
            "rel_l2_percent": mean,
            "rel_l2_percent_max": largest,
            "per_sample": [float(e) for e in errors],
            "num_test": num_test,
            "grid": [num_times, num_points],
        }
        summary = (f"{_NAMES[kind]}: relative L2 error against the reference {mean:.2f} % "
                   f"(max {largest:.2f} %) over {num_test} held-out initial states")
        if converged is not None:
            converged = np.asarray(converged)
            result["solves_converged"] = int(converged.sum())
            result["num_solves"] = int(converged.size)
            summary += (f"; {result['solves_converged']} of {result['num_solves']} "
                        "solves converged")
        write_figure(
            run_dir / "plots" / "solution.png",
            lambda: _plot(np.asarray(prediction[0, 0]), np.asarray(reference[0, 0]),
                          float(errors[0]), final_time),
            write_file,
        )
        return {**result, "summary": summary}

    return Task(
        data=experiment.source,
        model=experiment.model,
        configuration=experiment.configuration,
        validate=validate,
        evaluate=evaluate,
        validation_label="validation relative L2 error (%)",
    )


diffusion_sorption.needs_x64 = True  # the command runs it under jax.enable_x64(True)

TASKS = {"diffusion_sorption": diffusion_sorption}
