"""Tasks: experiments whose data, model and scoring a [data]/[model] table
cannot describe, each built by one registered function.

A config with a `[task]` table names a builder in `TASKS` (this module's
and those of `_tasks_spectral.py`, `_tasks_constraint.py` and
`_tasks_inr.py`); the table's other keys are the builder's keyword
arguments (typed from its signature, checked like every other key). The
builder returns a `Task`: the data source, the initial model and the
configuration the one trainer trains, a `validate` function (one error per
held-out item: its mean is the validation error of metrics.jsonl) and an
`evaluate` function writing what goes into evaluation.json. [optimizer]
(unless the task brings its own optimizer, `Task.optimizer`), [training],
[evaluation] every and [logging] apply as for any config, and so do the run
folder, its lock, checkpoints, resume and metrics.jsonl.

Adding a task is adding a builder (returning a `_task.Task`) to one of these
modules and its name to that module's `TASKS`. A builder with the attribute
`sweeps = True` runs a resumable sweep in its `evaluate` (`trainax sweep`).
A builder with `needs_x64 = True` runs in float64: the command runs its
whole experiment (build, training, evaluation, resume) under
`jax.enable_x64(True)` and restores the previous setting afterwards.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .. import configuration as cfg
from .. import nn, sample_data
from ..trainer import (
    Samples,
    best_over_learning_rates,
    data_scaling_sweep,
    plot_sweep,
    read_sweep,
    sweep_table,
)
from . import _tasks_constraint, _tasks_inr, _tasks_spectral
from ._errors import CLIError
from ._task import Task, rel_l2_percent, say, write_figure


# -- fno_transfer: pretrain on Poisson, sweep downstream sizes ---------------------

# The common input layout of the families, so one model reads all of them:
# (f, K11, K12, K22, omega). Poisson has omega = 0; Helmholtz is
# -div(K grad u) - omega u = f with K = 0.01 I.
_DOWNSTREAM = ("poisson_e5_10", "helmholtz")


def _poisson(num, num_points, e_range, seed):
    inputs, targets = sample_data.poisson_2d_periodic(
        num_samples=num, num_points=num_points, e_range=e_range, key=jr.PRNGKey(seed)
    )
    return jnp.concatenate([inputs, jnp.zeros_like(inputs[:, :1])], axis=1), targets


def _helmholtz(num, num_points, seed):
    inputs, targets = sample_data.helmholtz_2d_periodic(
        num_samples=num, num_points=num_points, key=jr.PRNGKey(seed)
    )
    f, omega = inputs[:, :1], inputs[:, 1:]
    k = 0.01 * jnp.ones_like(f)
    return jnp.concatenate([f, k, jnp.zeros_like(f), k, omega], axis=1), targets


def _split_normalised(pairs, num_train):
    """First `num_train` pairs to train, the rest to test; inputs normalised
    per channel by the training inputs' statistics."""
    inputs, targets = pairs
    normalize = jax.vmap(sample_data.InputNormalizer.fit(inputs[:num_train]))
    inputs = normalize(inputs)
    return ((inputs[:num_train], targets[:num_train]),
            (inputs[num_train:], targets[num_train:]))


def fno_transfer(
    *,
    num_points: int = 16,
    width: int = 16,
    modes: int = 6,
    num_layers: int = 2,
    num_pretrain: int = 512,
    num_test: int = 64,
    downstream: tuple[str, ...] = _DOWNSTREAM,
    sizes: tuple[int, ...] = (8, 32, 128, 512),
    learning_rates: tuple[float, ...] = (3e-3,),
    sweep_steps: int = 150,
    sweep_batch_size: int = 16,
    key,
) -> Task:
    """Pretrain an FNO on Poisson (e in [1, 5]); evaluate = the data-scaling
    sweep on the downstream tasks (sweep.json, plots/sweep.png)."""
    bad = [d for d in downstream if d not in _DOWNSTREAM]
    if bad or not downstream:
        raise CLIError(f"[task] downstream: expected a non-empty list of "
                       f"{', '.join(_DOWNSTREAM)}; got {list(downstream)!r}.")
    if not sizes or min(sizes) < 1:
        raise CLIError(f"[task] sizes: expected positive downstream sizes, got {list(sizes)!r}.")
    if not learning_rates or min(learning_rates) <= 0:
        raise CLIError(f"[task] learning_rates: expected positive numbers, got "
                       f"{list(learning_rates)!r}.")
    for name, value in (("num_points", num_points), ("width", width), ("modes", modes),
                        ("num_layers", num_layers), ("num_pretrain", num_pretrain),
                        ("num_test", num_test), ("sweep_steps", sweep_steps),
                        ("sweep_batch_size", sweep_batch_size)):
        if value < 1:
            raise CLIError(f"[task] {name}: must be positive, got {value!r}.")
    pretrain, held_out = _split_normalised(
        _poisson(num_pretrain + num_test, num_points, (1.0, 5.0), 0), num_pretrain
    )
    largest = max(sizes)
    makers = {
        "poisson_e5_10": lambda n: _poisson(n, num_points, (5.0, 10.0), 1),
        "helmholtz": lambda n: _helmholtz(n, num_points, 2),
    }
    model_key, sweep_key = jr.split(key)

    def make_model(k):
        return nn.FNO(2, 5, 1, width=width, modes=modes, num_layers=num_layers, key=k)

    def validate(model):
        return rel_l2_percent(model, *held_out)

    def evaluate(model, run_dir: Path, write_file):
        tasks = {name: _split_normalised(makers[name](largest + num_test), largest)
                 for name in downstream}
        path = run_dir / "sweep.json"
        done = len(read_sweep(path))
        if done:
            say(f"trainax: sweep: {done} points already in {path}; running the rest.")

        def show(row):
            rate = "-" if row["learning_rate"] is None else f"{row['learning_rate']:g}"
            say(f"sweep: {row['task']}, {row['num_samples']} samples, {row['init']}, "
                 f"learning rate {rate}: test relative L2 {100 * row['test_rel_l2']:.2f} %")

        rows = data_scaling_sweep(
            tasks, make_model, model, list(sizes), list(learning_rates),
            num_training_steps=sweep_steps, batch_size=sweep_batch_size, key=sweep_key,
            results_path=path, on_row=show,
        )
        write_figure(run_dir / "plots" / "sweep.png", lambda: plot_sweep(rows), write_file)
        best = best_over_learning_rates(rows)
        error = {(r["task"], r["init"], r["num_samples"]): r["test_rel_l2"] for r in best}
        beats = {task: {str(n): bool(error[(task, "pretrained", n)]
                                     < error[(task, "scratch", n)]) for n in sizes}
                 for task in downstream}
        wins = sum(v for per in beats.values() for v in per.values())
        total = sum(len(per) for per in beats.values())
        pretrain_error = float(np.mean(validate(model)))
        return {
            "pretrain_rel_l2_percent": pretrain_error,
            "sweep": "sweep.json",
            "num_points": len(rows),
            "best": best,
            "fine_tuning_beats_scratch": beats,
            "table": sweep_table(rows).splitlines(),
            "summary": (f"pretrained validation relative L2 error {pretrain_error:.2f} %; "
                        f"fine-tuning beats training from scratch at {wins} of {total} "
                        f"downstream sizes ({len(rows)} sweep points in sweep.json)"),
        }

    return Task(
        data=Samples(pretrain),
        model=make_model(model_key),
        configuration=cfg.OperatorLearning(),
        validate=validate,
        evaluate=evaluate,
        validation_label="validation relative L2 error (%)",
        sweep=True,
    )


fno_transfer.sweeps = True  # `trainax sweep` runs or continues it

TASKS = {"fno_transfer": fno_transfer}
for _module in (_tasks_spectral, _tasks_constraint, _tasks_inr):
    TASKS.update(_module.TASKS)
