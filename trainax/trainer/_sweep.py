"""The data-scaling sweep: test error against downstream dataset size, with
and without pretraining, resumable through a JSON file of rows."""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax

from .._atomic import atomic_write
from .._checks import positive_int
from ..configuration import BaseConfiguration, OperatorLearning
from ._sources import Samples, _leading_axes
from ._transfer import fine_tune, subsample

INITS = ("scratch", "pretrained", "zero-shot")
ROW_KEYS = ("task", "num_samples", "init", "learning_rate", "test_rel_l2")


def relative_l2(model, inputs, targets) -> float:
    """The mean over samples of `||model(x) - y|| / ||y||` (a fraction, not percent).

    ```python
    x = jnp.ones((3, 1, 8))
    tx.trainer.relative_l2(lambda u: 0.5 * u, x, x)   # 0.5
    ```
    """
    return float(_relative_l2(model, jnp.asarray(inputs), jnp.asarray(targets)))


@eqx.filter_jit
def _relative_l2(model, inputs, targets):
    predictions = jax.vmap(model)(inputs)
    axes = tuple(range(1, targets.ndim))
    error = jnp.sqrt(jnp.sum((predictions - targets) ** 2, axis=axes))
    return jnp.mean(error / jnp.sqrt(jnp.sum(targets**2, axis=axes)))


def cosine_adam(learning_rate: float, num_training_steps: int) -> optax.GradientTransformation:
    """Adam with the learning rate decayed to zero by a cosine over the run
    (the sweep's default optimizer)."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, num_training_steps))


def _point_id(row: Mapping) -> tuple:
    rate = row["learning_rate"]
    return (str(row["task"]), int(row["num_samples"]), str(row["init"]),
            None if rate is None else float(rate))


def read_sweep(path: Union[str, os.PathLike]) -> list[dict]:
    """The rows of a sweep results file (`[]` if it does not exist).

    A file that is not a JSON list of rows with the keys
    `task, num_samples, init, learning_rate, test_rel_l2` is an error naming
    the file (it is never silently replaced).
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and set(ROW_KEYS) <= set(r) for r in rows
        ):
            raise ValueError("not a list of sweep rows")
    except ValueError as error:
        raise ValueError(
            f"`results_path` {path} is not a sweep results file (a JSON list of rows "
            f"with keys {', '.join(ROW_KEYS)}): {error}. Move it away or name another file."
        ) from None
    return rows


def _write_rows(path: Path, rows: list[dict]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write(json.dumps(rows, indent=1, allow_nan=False) + "\n")


def _check_tasks(tasks) -> dict:
    if not isinstance(tasks, Mapping) or not tasks:
        raise TypeError(
            "`tasks` must be a non-empty mapping {name: ((train_inputs, train_targets), "
            f"(test_inputs, test_targets))}}, got {type(tasks).__name__}."
        )
    out = {}
    for name, value in tasks.items():
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(part, (tuple, list)) and len(part) == 2 for part in value
        )
        if not ok:
            raise TypeError(
                f"`tasks[{name!r}]` must be ((train_inputs, train_targets), (test_inputs, "
                "test_targets))."
            )
        (train, test) = value
        _leading_axes(tuple(train), f"tasks[{name!r}] training pairs")
        _leading_axes(tuple(test), f"tasks[{name!r}] test pairs")
        out[str(name)] = (tuple(train), tuple(test))
    return out


def _check_numbers(name: str, values, kind) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"`{name}` must be a non-empty sequence, got {values!r}.")
    out = []
    for v in values:
        if kind is int:
            out.append(positive_int(f"{name} entry", v))
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                math.isfinite(v) and v > 0
            ):
                raise ValueError(f"`{name}` entries must be positive numbers, got {v!r}.")
            out.append(float(v))
    return out


def _seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def data_scaling_sweep(
    tasks: Mapping[str, Any],
    make_model: Callable,
    pretrained,
    num_samples: Sequence[int],
    learning_rates: Sequence[float],
    *,
    num_training_steps: int,
    batch_size: int,
    key,
    inits: Sequence[str] = INITS,
    configuration: Optional[BaseConfiguration] = None,
    make_optimizer: Callable = cosine_adam,
    results_path: Optional[Union[str, os.PathLike]] = None,
    on_row: Optional[Callable[[dict], None]] = None,
    **trainer_kwargs,
) -> list[dict]:
    """Test error against downstream dataset size, learning rate and initialisation.

    For every task, size `n` in `num_samples` and learning rate, it trains on
    the first `n` samples of a fixed random order of the task's training pairs
    (see [`subsample`][trainax.trainer.subsample]: a smaller set is part of a
    larger one) for `num_training_steps` steps, starting from

    - `"scratch"`: a fresh model `make_model(key)` (the same initial weights
        for every point of a task);
    - `"pretrained"`: `pretrained`, fine-tuned with a fresh optimizer (see
        [`fine_tune`][trainax.trainer.fine_tune]);

    and scores the trained model on the task's test pairs by the mean
    relative L2 error ([`relative_l2`][trainax.trainer.relative_l2]).
    `"zero-shot"` scores `pretrained` untrained, once per task (its row has
    `num_samples` 0 and `learning_rate` `None`).

    Each point gives one row `{"task", "num_samples", "init", "learning_rate",
    "test_rel_l2"}`. With `results_path`, the rows are written to that JSON
    file after each point (atomically), and a call that finds the file runs
    only the points it lacks: a finished point is never run twice. A point is
    identified by `(task, num_samples, init, learning_rate)` alone, so use a
    new file when changing anything else (steps, model, data).

    **Arguments:**

    - `tasks`: `{name: ((train_inputs, train_targets), (test_inputs,
        test_targets))}`, each array with a leading sample axis.
    - `make_model`: `make_model(key) -> model`, the model trained from scratch.
    - `pretrained`: the pretrained model (`None` when `inits` needs none).
    - `num_samples`: downstream sizes (each at most the task's training pairs).
    - `learning_rates`: learning rates to try (positive).
    - `num_training_steps`, `batch_size`: per point (the batch is at most `n`).
    - `key`: a JAX PRNG key; each point's keys derive from it and the point.
    - `inits`: a subset of `("scratch", "pretrained", "zero-shot")`.
    - `configuration`: the configuration trained (default
        [`OperatorLearning`][trainax.configuration.OperatorLearning]()).
    - `make_optimizer`: `make_optimizer(learning_rate, num_training_steps)`
        (default: [`cosine_adam`][trainax.trainer.cosine_adam]).
    - `results_path`: the JSON file of rows (optional).
    - `on_row`: called with each new row (e.g. to print it).
    - further keyword arguments go to the
        [`GeneralTrainer`][trainax.trainer.GeneralTrainer] (default
        `progress_bar=False`).

    **Returns:** the rows of every point asked for (also those read from the file).

    ```python
    def make(key):
        return eqx.nn.Conv1d(2, 1, 3, padding=1, key=key)
    x = jr.normal(jr.PRNGKey(0), (12, 2, 16))
    task = ((x[:8], x[:8, :1]), (x[8:], x[8:, :1]))
    rows = tx.trainer.data_scaling_sweep(
        {"copy": task}, make, make(jr.PRNGKey(1)), [4, 8], [1e-2],
        num_training_steps=5, batch_size=4, key=jr.PRNGKey(2),
    )
    len(rows)   # 2 sizes x (scratch, pretrained) + 1 zero-shot = 5
    ```
    """
    tasks = _check_tasks(tasks)
    if not callable(make_model):
        raise TypeError(f"`make_model` must be a function key -> model, got {make_model!r}.")
    sizes = _check_numbers("num_samples", num_samples, int)
    rates = _check_numbers("learning_rates", learning_rates, float)
    inits = list(inits) if not isinstance(inits, str) else [inits]
    bad = [i for i in inits if i not in INITS]
    if bad or not inits:
        raise ValueError(f"`inits` must be a non-empty subset of {INITS}, got {inits!r}.")
    if pretrained is None and any(i != "scratch" for i in inits):
        raise ValueError(
            "`pretrained` is None, but `inits` asks for 'pretrained' or 'zero-shot'."
        )
    num_training_steps = positive_int("num_training_steps", num_training_steps)
    batch_size = positive_int("batch_size", batch_size)
    for name, (train, _) in tasks.items():
        total = _leading_axes(train, name)
        if max(sizes) > total:
            raise ValueError(
                f"`num_samples` ({max(sizes)}) exceeds the {total} training pairs of task "
                f"{name!r}."
            )
    configuration = OperatorLearning() if configuration is None else configuration
    trainer_kwargs.setdefault("progress_bar", False)
    path = None if results_path is None else Path(results_path)
    rows = read_sweep(path) if path is not None else []
    done = {_point_id(r): r for r in rows}
    wanted = []

    def finish(row):
        row = {k: row[k] for k in ROW_KEYS}
        rows.append(row)
        done[_point_id(row)] = row
        if path is not None:
            _write_rows(path, rows)
        if on_row is not None:
            on_row(row)

    for name, (train, test) in tasks.items():
        if "zero-shot" in inits:
            point = (name, 0, "zero-shot", None)
            wanted.append(point)
            if point not in done:
                finish(dict(zip(ROW_KEYS, point + (relative_l2(pretrained, *test),))))
        order_key = jr.fold_in(key, _seed(name, "order"))
        scratch = None
        for n in sizes:
            subset = subsample(train, n, key=order_key)
            for init in (i for i in inits if i != "zero-shot"):
                for rate in rates:
                    point = (name, n, init, rate)
                    wanted.append(point)
                    if point in done:
                        continue
                    if init == "scratch":
                        if scratch is None:
                            scratch = make_model(jr.fold_in(key, _seed(name, "model")))
                        start = scratch
                    else:
                        start = pretrained
                    model, _ = fine_tune(
                        start, Samples(subset), configuration,
                        make_optimizer(rate, num_training_steps), num_training_steps,
                        min(batch_size, n), key=jr.fold_in(key, _seed(*point)),
                        **trainer_kwargs,
                    )
                    finish(dict(zip(ROW_KEYS, point + (relative_l2(model, *test),))))
    return [done[p] for p in wanted]


def best_over_learning_rates(rows: Sequence[Mapping]) -> list[dict]:
    """For each `(task, init, num_samples)`, the row of the lowest test error
    (over the learning rates tried), sorted by task, init and size.

    ```python
    rows = [dict(task="a", num_samples=8, init="scratch", learning_rate=r,
                 test_rel_l2=e) for r, e in ((1e-3, 0.5), (1e-2, 0.3))]
    tx.trainer.best_over_learning_rates(rows)[0]["learning_rate"]   # 0.01
    ```
    """
    best = {}
    for row in rows:
        group = (row["task"], row["init"], row["num_samples"])
        value = row["test_rel_l2"]
        if value is None or not math.isfinite(value):
            continue
        if group not in best or value < best[group]["test_rel_l2"]:
            best[group] = dict(row)
    return [best[g] for g in sorted(best, key=lambda g: (g[0], INITS.index(g[1])
                                                          if g[1] in INITS else 9, g[2]))]


def sweep_table(rows: Sequence[Mapping]) -> str:
    """A text table: one line per task and size, the best test relative L2
    error (percent, over the learning rates) of each initialisation.

    ```python
    rows = [dict(task="a", num_samples=8, init=i, learning_rate=1e-3, test_rel_l2=e)
            for i, e in (("scratch", 0.5), ("pretrained", 0.1))]
    print(tx.trainer.sweep_table(rows))
    ```
    """
    best = best_over_learning_rates(rows)
    inits = [i for i in INITS if any(r["init"] == i for r in best)]
    zero = {r["task"]: r["test_rel_l2"] for r in best if r["init"] == "zero-shot"}
    value = {(r["task"], r["init"], r["num_samples"]): r["test_rel_l2"] for r in best}
    header = f"{'task':<16} {'samples':>8}" + "".join(f" {i:>11}" for i in inits)
    lines = [header + "   (test relative L2 error, %, best learning rate)"]
    for task in dict.fromkeys(r["task"] for r in best):
        sizes = sorted({r["num_samples"] for r in best if r["task"] == task
                        and r["init"] != "zero-shot"})
        for n in sizes:
            cells = []
            for init in inits:
                v = zero.get(task) if init == "zero-shot" else value.get((task, init, n))
                cells.append(f" {'-' if v is None else f'{100 * v:.2f}':>11}")
            lines.append(f"{task:<16} {n:>8}" + "".join(cells))
    return "\n".join(lines)


def plot_sweep(rows: Sequence[Mapping], path: Optional[Union[str, os.PathLike]] = None):
    """A log-log plot of the test relative L2 error against the downstream
    dataset size, one panel per task, one line per initialisation (the best
    learning rate at each size; zero-shot as a horizontal line).

    Needs matplotlib (an `ImportError` saying so otherwise). Saves to `path`
    when given; returns the figure.
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plot_sweep needs matplotlib: pip install matplotlib") from error
    best = best_over_learning_rates(rows)
    tasks = list(dict.fromkeys(r["task"] for r in best))
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(4.5 * max(len(tasks), 1), 3.8),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        these = [r for r in best if r["task"] == task]
        sizes = sorted({r["num_samples"] for r in these if r["init"] != "zero-shot"})
        for init, style in zip(INITS, ("o-", "s-", "--")):
            part = [r for r in these if r["init"] == init]
            if not part:
                continue
            if init == "zero-shot":
                ax.axhline(100 * part[0]["test_rel_l2"], linestyle="--", color="gray",
                           label=init)
            else:
                part.sort(key=lambda r: r["num_samples"])
                ax.plot([r["num_samples"] for r in part],
                        [100 * r["test_rel_l2"] for r in part], style, label=init)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if sizes:
            ax.set_xticks(sizes)
            ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("downstream training samples")
        ax.set_ylabel("test relative L2 error (%)")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
