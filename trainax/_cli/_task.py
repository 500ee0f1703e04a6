"""What a `[task]` builder returns, and helpers the builders share."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class Task:
    """What a task builder returns.

    - `data`: the trainer's data source (`Samples`, `Sampler`, ...).
    - `model`, `configuration`: the initial model and its configuration.
    - `validate(model) -> (M,)`: errors on held-out items, lower is better.
    - `evaluate(model, run_dir, write_file) -> dict`: the task's part of
      evaluation.json, with a one-line `summary`; it may write files into the
      run folder with `write_file(path, content)` (atomic).
    - `validation_label`: the validation error's name, for the loss plot.
    - `sweep`: whether `evaluate` runs a resumable sweep (`trainax sweep`).
    - `optimizer`: the task's own optimizer (e.g. one per part of the model,
      with its learning rates in [task]); `None` (default): the [optimizer]
      table's.
    """

    data: Any
    model: Any
    configuration: Any
    validate: Callable
    evaluate: Callable
    validation_label: str = "validation error"
    sweep: bool = False
    optimizer: Any = None


def rel_l2_percent(model, inputs, targets) -> np.ndarray:
    """Per-sample relative L2 error in percent."""
    return np.asarray(_rel_l2(model, inputs, targets), np.float64)


@eqx.filter_jit
def _rel_l2(model, inputs, targets):
    error = jax.vmap(model)(inputs) - targets
    axes = tuple(range(1, targets.ndim))
    return 100 * jnp.sqrt(jnp.sum(error**2, axis=axes) / jnp.sum(targets**2, axis=axes))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_figure(path: Path, make_figure: Callable, write_file) -> None:
    """Write the matplotlib figure `make_figure()` as a PNG at `path` (atomic),
    or say that matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("trainax: matplotlib is not installed; skipping plots (pip install matplotlib).")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = make_figure()
    try:
        write_file(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)
