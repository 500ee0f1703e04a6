"""Run folders: their checks, training with a metrics log, evaluation."""

from __future__ import annotations

import json
import math
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
from ..configuration import network_rollout
from ..trainer import Curriculum, GeneralTrainer, NonFiniteLossError, Samples
from ..trainer._checkpoint import load_state  # no public name yet
from . import _plots
from ._errors import CLIError
from ._experiment import (
    FILES,
    Experiment,
    config_section,
    stage_boundaries,
    write_cache,
    write_file,
)
from ._lock import LOCK, writable_error
from ._schema import differences, experiment_part, resolve
from ._toml import dumps, parse_toml

CONFIG, METRICS, CHECKPOINT, MODEL, EVALUATION = (
    "config.toml", "metrics.jsonl", "checkpoint.eqx", "model.eqx", "evaluation.json"
)
# what a task's evaluation may add to the run folder (a sweep's rows)
TASK_FILES = ("sweep.json",)


def notice(message: str) -> None:
    print(f"trainax: {message}", file=sys.stderr)


# -- the run folder ----------------------------------------------------------


def read_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG
    if not path.is_file():
        raise CLIError(f"{run_dir} is not a run folder: it has no {CONFIG}.")
    return resolve(parse_toml(path.read_text(encoding="utf-8"), str(path)))


def _own_entries(run_dir: Path) -> list[Path]:
    """What the folder holds besides the lock and temporaries of atomic writes."""
    return [p for p in run_dir.iterdir()
            if p.name != LOCK and not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def check_run_dir(run_dir: Path, config: dict, overwrite: bool) -> None:
    """Refuse (before writing anything) to mix two experiments in one folder."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CLIError(f"--out {run_dir} is a file, not a folder.")
    if overwrite or not run_dir.is_dir() or not _own_entries(run_dir):
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
    for name in (CONFIG, METRICS, CHECKPOINT, MODEL, EVALUATION, *TASK_FILES):
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "data" / FILES).unlink(missing_ok=True)
    for name in _plots.FILES + _plots.TASK_FILES:
        (run_dir / "plots" / name).unlink(missing_ok=True)


def write_config(run_dir: Path, config: dict) -> None:
    write_file(run_dir / CONFIG, dumps(config), text=True)


def start_run_dir(run_dir: Path, experiment: Experiment) -> None:
    write_config(run_dir, experiment.config)
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
        values = {k: v for k, v in record.items() if k != "step" and v is not None}
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


def finite_or_none(value):
    """A JSON-safe number: `None` (JSON `null`) for NaN and infinities."""
    value = float(value)
    return value if math.isfinite(value) else None


class MetricsSink:
    """Appends one JSON line per record to metrics.jsonl (and to the loggers).

    Each line goes out in one `write` of an append-only file: a process
    killed mid-write leaves at worst a torn last line, which
    [`read_metrics`][] drops on resume.
    """

    def __init__(self, path: Path, loggers: Optional[_Loggers] = None):
        self.path = path
        self.loggers = loggers

    def __call__(self, record: dict) -> None:
        record = {k: finite_or_none(v) if k != "step" else v for k, v in record.items()}
        line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as error:
            raise writable_error(self.path, error) from None
        if self.loggers is not None:
            self.loggers.log(record)


def read_metrics(path: Path, *, quiet: bool = False) -> list[dict]:
    """The records of metrics.jsonl; a torn last line (a kill mid-write) is
    dropped with a notice, a damaged line before it is an error."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a metrics record")
        except ValueError:
            if number >= len(lines) - 1 and not text.endswith(line + "\n"):
                if not quiet:
                    notice(f"{path}: dropped a torn last line (line {number}, written when "
                           "the run was stopped mid-write).")
                break
            raise CLIError(
                f"{path} line {number} is not a metrics record ({line[:40]!r}); repair "
                "or remove that line."
            ) from None
        records.append(record)
    return records


class MetricsLog(BaseCallback):
    """Writes the mean training loss of the last `every` steps, and every
    `validation.every` steps the mean validation error.

    The final step is logged by the command itself, after the last update.
    """

    every: int = eqx.field(static=True)
    num_training_steps: int = eqx.field(static=True)
    validation: Optional[Callable]
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


class PairValidation(BaseCallback):
    """The relative L2 error (percent) of each held-out pair."""

    inputs: jax.Array
    targets: jax.Array

    def compute(self, step, model, context):
        return np.asarray(_relative_l2(model, self.inputs, self.targets))


class TaskValidation(BaseCallback):
    """A task's own validation errors (one per held-out item)."""

    validate: Callable = eqx.field(static=True)

    def compute(self, step, model, context):
        return np.asarray(self.validate(model))


@eqx.filter_jit
def _relative_l2(model, inputs, targets):
    predictions = jax.vmap(model)(inputs)
    return 100 * _rel(predictions, targets)


@eqx.filter_jit
def _apply(model, inputs):
    return jax.vmap(model)(inputs)


def _rel(predictions, targets):
    axes = tuple(range(1, targets.ndim))
    error = jnp.sqrt(jnp.sum((predictions - targets) ** 2, axis=axes))
    return error / jnp.sqrt(jnp.sum(targets**2, axis=axes))


# -- training and evaluation ---------------------------------------------------


def checkpoint_step(experiment: Experiment, path: Path) -> int:
    """The step of a checkpoint; a damaged or foreign file is a clear error."""
    params = eqx.filter(experiment.model, eqx.is_inexact_array)
    try:
        state = load_state(path, params, experiment.optimizer.init(params),
                           np.zeros(2, np.uint32))
    except ValueError as error:
        if "damaged" in str(error):
            raise CLIError(
                f"{path} is damaged (truncated, overwritten or not a trainax checkpoint): "
                "the run cannot resume from it; start again with `trainax run ... --out "
                f"{path.parent} --overwrite`."
            ) from None
        raise CLIError(
            f"{path} holds the state of a different model or optimizer than the run's "
            f"{CONFIG} describes: {' '.join(str(error).split())}"
        ) from None
    return int(state["step"])


def _oom_hint(experiment: Experiment) -> str:
    config, training = experiment.config, experiment.config["training"]
    batch = training["batch_size"]
    if experiment.task is not None:
        return f"lower [training] batch_size ({batch}) or the task's sizes in [task]"
    options = config["configuration"]
    if experiment.pairs:
        size = int(np.prod(experiment.train[0].shape[1:]))
        return (f"lower [training] batch_size ({batch}); each input holds {size} values")
    rollout = max(options.get("curriculum") or [options.get("num_rollout_steps", 1)])
    state = int(np.prod(experiment.train.shape[2:]))
    width = _hidden_width(config["model"], experiment.train.shape[2])
    estimate = batch * rollout * state * width * 4 / 2**20
    remat = "" if options.get("remat") else ", or set [configuration] remat = true"
    return (
        f"a rollout of {rollout} steps with [training] batch_size {batch} keeps about "
        f"{estimate:.0f} MiB of activations for the gradient: lower batch_size or "
        f"num_rollout_steps{remat}"
    )


def _hidden_width(model: dict, channels: int) -> int:
    """Channels held per grid point by one network step, roughly."""
    if model["kind"] == "conv_net":
        return model["hidden_channels"] * model["depth"] + channels
    if model["kind"] == "fno":
        return model["width"] * (model["num_layers"] + 2)
    if model["kind"] == "mlp":
        return max(1, model["width"] * model["depth"] // max(channels, 1))
    return channels


def _is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in text or (
        "out of memory" in text.lower()
    )


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
        if every and experiment.task is not None:
            validation = TaskValidation(every, experiment.task.validate)
        elif every and experiment.pairs:
            validation = PairValidation(every, *experiment.validation)
        elif every:
            validation = ValidationRollout(every, experiment.validation,
                                           experiment.eval_steps, experiment.metric)
        curriculum = isinstance(experiment.configuration, Curriculum)
        data = Samples(experiment.train) if experiment.pairs else experiment.train
        if experiment.task is not None:
            data = experiment.task.data
        with config_section("[training]"):
            self.trainer = GeneralTrainer(
                data,
                experiment.configuration,
                experiment.optimizer,
                None if curriculum else experiment.num_training_steps,
                training["batch_size"],
                ref_stepper=experiment.ref_stepper,
                residuum_fn=experiment.residuum_fn,
                callback_fn=MetricsLog(training["log_every"], experiment.num_training_steps,
                                       validation, self.sink),
                chunk_size=training["chunk_size"] or None,
                progress_bar=progress_bar,
                nan_policy=training["nan_policy"],
                checkpoint_path=run_dir / CHECKPOINT,
                checkpoint_every=training["checkpoint_every"] or None,
            )

    def run(self, *, resume: bool = False):
        """Train (or continue from checkpoint.eqx); returns the model, the loss
        history and the final validation scores (see [`score`][])."""
        experiment, run_dir = self.experiment, self.run_dir
        total = experiment.num_training_steps
        log_every = experiment.config["training"]["log_every"]
        checkpoint, metrics = run_dir / CHECKPOINT, run_dir / METRICS
        start = 0
        if resume:
            start = checkpoint_step(experiment, checkpoint)
            if start > total:
                raise CLIError(
                    f"{checkpoint} is at step {start}, past the run's num_training_steps "
                    f"({total}): resume with --steps {start} or more."
                )
            kept = [r for r in read_metrics(metrics) if r["step"] < start]
            write_file(metrics, "".join(json.dumps(r) + "\n" for r in kept), text=True)
        else:
            write_file(metrics, "", text=True)
        self.start_step = start
        self.sink.loggers = _Loggers(experiment.config, run_dir)
        try:
            model, loss_history, _ = self._train(checkpoint if resume else None)
            scores = score(experiment, model)
            last_logged = total - (total % log_every or log_every)
            self.sink({
                "step": total,
                "loss": float(np.mean(loss_history[last_logged:total])),
                "validation_error": float(np.mean(scores["errors"])),
            })
        finally:
            self.sink.loggers.close()
            self.sink.loggers = None
        write_file(run_dir / MODEL, lambda f: eqx.tree_serialise_leaves(f, model))
        return model, loss_history, scores

    def _train(self, resume_from):
        experiment = self.experiment
        try:
            return self.trainer(experiment.model, experiment.key, resume_from=resume_from)
        except NonFiniteLossError as error:
            loss = "NaN" if "nan" in str(error).split(" at step")[0].lower() else "infinite"
            raise CLIError(
                f"the training loss became {loss} at step {error.step}: lower [optimizer] "
                "learning_rate, shorten the rollout or check the data; set [training] "
                "nan_policy = 'continue' (--set training.nan_policy=continue) to keep "
                "training anyway."
            ) from None
        except OSError as error:
            path = _target_of(error.filename) if error.filename else self.run_dir / CHECKPOINT
            raise writable_error(path, error) from None
        except CLIError:
            raise
        except Exception as error:
            if _is_out_of_memory(error):
                raise CLIError(
                    f"training ran out of memory: {_oom_hint(experiment)}. "
                    f"({type(error).__name__}: {' '.join(str(error).split())[:300]})"
                ) from None
            raise


def _target_of(filename) -> Path:
    """The file an atomic write's temporary `.{name}.{pid}.{hex}.tmp` stands for."""
    path = Path(os.fsdecode(filename))
    parts = path.name.split(".")
    if path.name.startswith(".") and parts[-1] == "tmp" and len(parts) >= 5:
        return path.with_name(".".join(parts[1:-3]))
    return path


def load_model(experiment: Experiment, run_dir: Path):
    path = run_dir / MODEL
    if not path.is_file():
        hint = (f"continue it with `trainax resume {run_dir}`"
                if (run_dir / CHECKPOINT).is_file() else "train it with `trainax run`")
        raise CLIError(f"{run_dir} has no {MODEL} (the run has not finished): {hint}.")
    try:
        return eqx.tree_deserialise_leaves(path, experiment.model)
    except Exception as error:
        raise CLIError(
            f"{path} is damaged or does not match the run's [model]: "
            f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        ) from None


@eqx.filter_jit
def _predict_and_score(model, trajectories, num_steps: int, metric):
    """Roll out from each first state: predictions `(T, S, C, *N)`, the metric
    per step `(T,)` (mean over the trajectories), and the same for the
    baseline that repeats the initial state, in one program."""
    initial = trajectories[:, 0]
    predictions = network_rollout(model, initial, num_steps)
    references = jnp.moveaxis(trajectories[:, 1 : num_steps + 1], 1, 0)
    repeated = jnp.broadcast_to(initial, references.shape)
    return (predictions, jax.vmap(metric)(predictions, references),
            jax.vmap(metric)(repeated, references))


def score(experiment: Experiment, model) -> dict:
    """The model's validation errors and the baseline's, with the predictions.

    Trajectories: the metric per rollout step, against repeating the initial
    state. Pairs: the relative L2 error (percent) per pair, against
    predicting the mean training target. A task: its own validation errors.
    """
    if experiment.task is not None:
        return {"errors": np.asarray(experiment.task.validate(model), np.float64)}
    if experiment.pairs:
        inputs, targets = experiment.validation
        predictions = _apply(model, inputs)
        mean_target = jnp.mean(experiment.train[1], axis=0)
        baseline = 100 * _rel(jnp.broadcast_to(mean_target, targets.shape), targets)
        return {"predictions": predictions,
                "errors": np.asarray(100 * _rel(predictions, targets), np.float64),
                "baseline": np.asarray(baseline, np.float64)}
    predictions, errors, baseline = _predict_and_score(
        model, experiment.validation, experiment.eval_steps, experiment.metric
    )
    return {"predictions": predictions, "errors": np.asarray(errors, np.float64),
            "baseline": np.asarray(baseline, np.float64)}


def _numbers(values) -> list:
    return [finite_or_none(v) for v in values]


def _mean(values) -> Optional[float]:
    return finite_or_none(np.mean(values))


def _summary(experiment: Experiment, scores: dict) -> dict:
    errors, baseline = scores["errors"], scores["baseline"]
    worse = [int(i) + 1 for i in np.flatnonzero(~(errors < baseline))]
    if experiment.pairs:
        return {
            "kind": "pairs",
            "metric": "rel_l2_percent",
            "num_samples": int(errors.shape[0]),
            "rel_l2_percent": _mean(errors),
            "baseline_rel_l2_percent": _mean(baseline),
            "mean": _mean(errors),
            "per_sample": _numbers(errors),
            "baseline": "the mean training target",
            "baseline_mean": _mean(baseline),
            "baseline_per_sample": _numbers(baseline),
            "samples_not_better_than_baseline": worse,
        }
    return {
        "kind": "trajectories",
        "metric": experiment.config["evaluation"]["metric"],
        "num_rollout_steps": experiment.eval_steps,
        "num_trajectories": int(experiment.validation.shape[0]),
        "mean": _mean(errors),
        "per_step": _numbers(errors),
        "baseline": "repeat the initial state",
        "baseline_mean": _mean(baseline),
        "baseline_per_step": _numbers(baseline),
        "steps_not_better_than_baseline": worse,
        "finite": bool(np.all(np.isfinite(errors))),
    }


def evaluate(experiment: Experiment, model, run_dir: Path, scores=None, *,
             name: str = EVALUATION, plots: str = "plots") -> dict:
    """Write `name` (evaluation.json) and the plots; return the evaluation.

    `scores` is what [`score`][] returned, if already computed.
    """
    scores = scores if scores is not None else score(experiment, model)
    if experiment.task is not None:
        return _evaluate_task(experiment, model, run_dir, scores, name, plots)
    result = _summary(experiment, scores)
    write_file(run_dir / name, json.dumps(result, indent=2, allow_nan=False) + "\n",
               text=True)
    records = read_metrics(run_dir / METRICS, quiet=True)
    boundaries = stage_boundaries(experiment.config)
    if experiment.pairs:
        inputs, targets = experiment.validation
        _plots.make_pair_plots(run_dir / plots, records, result,
                               np.asarray(inputs[0]), np.asarray(targets[0]),
                               np.asarray(scores["predictions"][0]), write_file)
        return result
    steps = experiment.eval_steps
    reference = np.asarray(experiment.validation[0, : steps + 1])
    prediction = np.concatenate([reference[:1], np.asarray(scores["predictions"][:, 0])])
    _plots.make_plots(run_dir / plots, records, result, reference, prediction, write_file,
                      boundaries=boundaries, trajectory=0)
    return result


def _evaluate_task(experiment: Experiment, model, run_dir: Path, scores: dict, name: str,
                   plots: str) -> dict:
    """A task writes its own evaluation (and files such as sweep.json)."""
    task = experiment.task
    result = {"kind": "task", "task": experiment.config["task"]["name"],
              "validation_error": _mean(scores["errors"]),
              **task.evaluate(model, run_dir, write_file)}
    result.setdefault("summary", f"validation error {result['validation_error']}")
    write_file(run_dir / name, json.dumps(result, indent=2, allow_nan=False) + "\n",
               text=True)
    records = read_metrics(run_dir / METRICS, quiet=True)
    _plots.make_loss_plot(run_dir / plots, records, task.validation_label, result,
                          write_file)
    return result


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
