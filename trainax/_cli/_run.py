"""Run folders: their checks, training with a metrics log, evaluation."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..callback import BaseCallback, ValidationRollout
from ..configuration._base import network_rollout
from ..trainer import Curriculum, GeneralTrainer
from ..trainer._checkpoint import load_state
from . import _plots
from ._errors import CLIError
from ._experiment import Experiment, config_section, write_cache
from ._schema import differences, experiment_part, resolve
from ._toml import dumps, parse_toml, write_text_atomic

CONFIG, METRICS, CHECKPOINT, MODEL, EVALUATION = (
    "config.toml", "metrics.jsonl", "checkpoint.eqx", "model.eqx", "evaluation.json"
)


def notice(message: str) -> None:
    print(f"trainax: {message}", file=sys.stderr)


# -- the run folder ----------------------------------------------------------


def read_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG
    if not path.is_file():
        raise CLIError(f"{run_dir} is not a run folder: it has no {CONFIG}.")
    return resolve(parse_toml(path.read_text(encoding="utf-8"), str(path)))


def check_run_dir(run_dir: Path, config: dict, overwrite: bool) -> None:
    """Refuse (before writing anything) to mix two experiments in one folder."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CLIError(f"--out {run_dir} is a file, not a folder.")
    if overwrite or not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    if not (run_dir / CONFIG).is_file():
        raise CLIError(
            f"{run_dir} exists, is not empty and holds no trainax run (no {CONFIG}): "
            "choose another --out, or pass --overwrite to write into it."
        )
    try:
        old = experiment_part(read_config(run_dir))
    except CLIError:
        old = None
    new = experiment_part(config)
    if old == new:
        raise CLIError(
            f"{run_dir} already holds this experiment: pass --overwrite to train it "
            f"again from scratch, or continue it with `trainax resume {run_dir}`."
        )
    diff = differences(old, new) if old is not None else [f"its {CONFIG} is not valid"]
    more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
    raise CLIError(
        f"{run_dir} holds a different experiment ({'; '.join(diff[:3])}{more}): choose "
        "another --out, or pass --overwrite to replace it."
    )


def clear_run_dir(run_dir: Path) -> None:
    """Remove what a run writes (only that; the data cache checks itself)."""
    for name in (CONFIG, METRICS, CHECKPOINT, MODEL, EVALUATION):
        (run_dir / name).unlink(missing_ok=True)
    for name in _plots.FILES:
        (run_dir / "plots" / name).unlink(missing_ok=True)


def start_run_dir(run_dir: Path, experiment: Experiment) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / CONFIG, dumps(experiment.config))
    write_cache(run_dir, experiment)


# -- metrics -----------------------------------------------------------------


class _Loggers:
    """Optional mirrors of metrics.jsonl (TensorBoard, Weights & Biases)."""

    def __init__(self, config: dict, run_dir: Path):
        options = config["logging"]
        self.tensorboard = self.wandb = None
        if options["tensorboard"]:
            writer = _tensorboard_writer()
            if writer is None:
                notice("[logging] tensorboard: neither tensorboardX nor torch is "
                       "installed; logging to metrics.jsonl only.")
            else:
                self.tensorboard = writer(str(run_dir / "tensorboard"))
        if options["wandb"]:
            try:
                import wandb
            except ImportError:
                notice("[logging] wandb: wandb is not installed; logging to "
                       "metrics.jsonl only.")
            else:
                self.wandb = wandb.init(project=options["wandb_project"], config=config,
                                        dir=str(run_dir), name=run_dir.name)

    def log(self, record: dict) -> None:
        step = record["step"]
        values = {k: v for k, v in record.items() if k != "step"}
        if self.tensorboard is not None:
            for name, value in values.items():
                self.tensorboard.add_scalar(name, value, step)
        if self.wandb is not None:
            self.wandb.log(values, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _tensorboard_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
    return SummaryWriter


class MetricsSink:
    """Appends one JSON line per record to metrics.jsonl (and to the loggers)."""

    def __init__(self, path: Path, loggers: Optional[_Loggers] = None):
        self.path = path
        self.loggers = loggers

    def __call__(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self.loggers is not None:
            self.loggers.log(record)


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class MetricsLog(BaseCallback):
    """Writes the mean training loss of the last `every` steps, and every
    `validation.every` steps the mean validation rollout error.

    The final step is logged by the command itself, after the last update.
    """

    every: int = eqx.field(static=True)
    num_training_steps: int = eqx.field(static=True)
    validation: Optional[ValidationRollout]
    sink: Callable

    def __call__(self, step, model, context):
        if step == 0 or step >= self.num_training_steps:
            return None
        recent = context.loss_history[max(0, step - self.every): step]
        record = {"step": int(step), "loss": float(np.mean(recent))}
        if self.validation is not None and step % self.validation.every == 0:
            errors = self.validation(step, model, context)
            record["validation_error"] = float(np.mean(errors))
        self.sink(record)
        return None


# -- training and evaluation ---------------------------------------------------


def _checkpoint_step(experiment: Experiment, path: Path) -> int:
    params = eqx.filter(experiment.model, eqx.is_inexact_array)
    state = load_state(path, params, experiment.optimizer.init(params), np.zeros(2, np.uint32))
    return int(state["step"])


class Training:
    """The trainer of an experiment, built (and so checked) before anything is
    written; `run()` then trains into the run folder."""

    def __init__(self, experiment: Experiment, run_dir: Path, *, progress_bar: bool = True):
        config = experiment.config
        training = config["training"]
        self.experiment, self.run_dir = experiment, run_dir
        self.start_step = 0
        self.sink = MetricsSink(run_dir / METRICS)
        every = config["evaluation"]["every"]
        validation = None
        if every:
            validation = ValidationRollout(every, experiment.validation,
                                           experiment.eval_steps, experiment.metric)
        curriculum = isinstance(experiment.configuration, Curriculum)
        with config_section("[training]"):
            self.trainer = GeneralTrainer(
                experiment.train,
                experiment.configuration,
                experiment.optimizer,
                None if curriculum else experiment.num_training_steps,
                training["batch_size"],
                ref_stepper=experiment.ref_stepper,
                residuum_fn=experiment.residuum_fn,
                callback_fn=MetricsLog(training["log_every"], experiment.num_training_steps,
                                       validation, self.sink),
                chunk_size=training["chunk_size"],
                progress_bar=progress_bar,
                checkpoint_path=run_dir / CHECKPOINT,
                checkpoint_every=training["checkpoint_every"] or None,
            )

    def run(self, *, resume: bool = False):
        """Train (or continue from checkpoint.eqx); returns the model, the loss
        history and the final validation rollout (see [`rollout_errors`][])."""
        experiment, run_dir = self.experiment, self.run_dir
        total = experiment.num_training_steps
        log_every = experiment.config["training"]["log_every"]
        checkpoint, metrics = run_dir / CHECKPOINT, run_dir / METRICS
        start = 0
        if resume:
            start = _checkpoint_step(experiment, checkpoint)
            kept = [r for r in read_metrics(metrics) if r["step"] < start]
            write_text_atomic(metrics, "".join(json.dumps(r) + "\n" for r in kept))
        else:
            metrics.write_text("", encoding="utf-8")
        self.start_step = start
        self.sink.loggers = _Loggers(experiment.config, run_dir)
        try:
            model, loss_history, _ = self.trainer(
                experiment.model, experiment.key, resume_from=checkpoint if resume else None
            )
            rollout = rollout_errors(experiment, model)
            last_logged = total - (total % log_every or log_every)
            self.sink({
                "step": total,
                "loss": float(np.mean(loss_history[last_logged:total])),
                "validation_error": float(np.mean(rollout[1])),
            })
        finally:
            self.sink.loggers.close()
            self.sink.loggers = None
        _save_model(run_dir / MODEL, model)
        return model, loss_history, rollout


def _save_model(path: Path, model) -> None:
    tmp = path.with_name(path.name + ".tmp")
    eqx.tree_serialise_leaves(tmp, model)
    os.replace(tmp, path)


def load_model(experiment: Experiment, run_dir: Path):
    path = run_dir / MODEL
    if not path.is_file():
        hint = (f"continue it with `trainax resume {run_dir}`"
                if (run_dir / CHECKPOINT).is_file() else "train it with `trainax run`")
        raise CLIError(f"{run_dir} has no {MODEL} (the run has not finished): {hint}.")
    try:
        return eqx.tree_deserialise_leaves(path, experiment.model)
    except Exception as error:
        raise CLIError(f"{path} does not match the run's [model]: {error}") from None


@eqx.filter_jit
def _predict_and_score(model, trajectories, num_steps: int, metric):
    """Roll out from each first state: predictions `(T, S, C, *N)` and the
    metric per step `(T,)` (mean over the trajectories), in one program."""
    predictions = network_rollout(model, trajectories[:, 0], num_steps)
    references = jnp.moveaxis(trajectories[:, 1 : num_steps + 1], 1, 0)
    return predictions, jax.vmap(metric)(predictions, references)


def rollout_errors(experiment: Experiment, model):
    """The validation predictions and the metric per time step."""
    predictions, errors = _predict_and_score(
        model, experiment.validation, experiment.eval_steps, experiment.metric
    )
    return predictions, np.asarray(errors, dtype=np.float64)


def evaluate(experiment: Experiment, model, run_dir: Path, rollout=None) -> dict:
    """Write evaluation.json and the plots; return the evaluation.

    `rollout` is what [`rollout_errors`][] returned, if already computed.
    """
    predictions, errors = rollout if rollout is not None else rollout_errors(experiment, model)
    steps = experiment.eval_steps
    result = {
        "metric": experiment.config["evaluation"]["metric"],
        "num_rollout_steps": steps,
        "num_trajectories": int(experiment.validation.shape[0]),
        "mean": float(np.mean(errors)),
        "per_step": [float(e) for e in errors],
    }
    write_text_atomic(run_dir / EVALUATION, json.dumps(result, indent=2) + "\n")
    reference = np.asarray(experiment.validation[0, : steps + 1])
    prediction = np.concatenate([reference[:1], np.asarray(predictions[:, 0])])
    _plots.make_plots(run_dir / "plots", read_metrics(run_dir / METRICS), result,
                      reference, prediction)
    return result


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start

