"""From a resolved config to the pieces of an experiment: data, model,
configuration, optimizer and keys."""

from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from .. import configuration as cfg
from .. import sample_data
from .._atomic import atomic_write
from ..trainer import Curriculum
from . import _data
from ._errors import CLIError
from ._lock import writable_error
from ._schema import (
    ACTIVATIONS,
    ALL_PROBLEMS,
    CHAIN_KINDS,
    LOSSES,
    MODELS,
    PAIR_PROBLEMS,
    RESIDUUM_FACTORIES,
    _resolve_optimizer,
    data_kind,
)


@dataclass
class Experiment:
    """Everything a run needs, built from a resolved config.

    For trajectories, `train` and `validation` are `(S, T+1, C, *N)`; for
    pairs they are `(inputs, targets)` with `(S, C_in, *N)`, `(S, C_out, *N)`.
    """

    config: dict
    train: Any
    validation: Any
    model: Any  # the initial model
    configuration: Any  # a BaseConfiguration or a Curriculum
    optimizer: optax.GradientTransformation
    key: jax.Array  # the trainer's key
    ref_stepper: Optional[Callable] = None
    residuum_fn: Optional[Callable] = None
    task: Any = None  # a tasks.Task when the config has a [task]
    raw: Any = None  # (train, validation) as generated, before input normalisation

    @property
    def pairs(self) -> bool:
        return data_kind(self.config) == "pairs"

    @property
    def num_training_steps(self) -> int:
        return self.config["training"]["num_training_steps"]

    @property
    def metric(self):
        return LOSSES[self.config["evaluation"]["metric"]]()

    @property
    def eval_steps(self) -> int:
        return _eval_steps(self.config, self.validation)


def _eval_steps(config: dict, validation) -> int:
    if data_kind(config) in ("pairs", "task"):
        return 0
    steps = config["evaluation"]["num_rollout_steps"]
    available = validation.shape[1] - 1
    if steps > available:
        raise CLIError(
            f"[evaluation] num_rollout_steps ({steps}) exceeds the {available} time "
            "steps of the validation trajectories."
        )
    return steps or available


@contextlib.contextmanager
def config_section(where: str):
    """Report the library's argument errors against the config section they come from."""
    try:
        yield
    except (ValueError, TypeError) as error:
        raise CLIError(f"{where}: {' '.join(str(error).split())}") from error


def precision(config: dict):
    """The precision the experiment runs in: `jax.enable_x64(True)` (a context
    manager that restores the previous setting on exit) when the config's
    [task] builder needs float64 (its attribute `needs_x64`), else nothing."""
    if "task" in config:
        from ._tasks import TASKS

        if getattr(TASKS[config["task"]["name"]], "needs_x64", False):
            return jax.enable_x64(True)
    return contextlib.nullcontext()


def build(config: dict, run_dir: Optional[Path] = None) -> Experiment:
    """Build the experiment; data come from `run_dir/data` when cached there."""
    training = config["training"]
    steps = training["num_training_steps"]
    model_key, train_key = jr.split(jr.PRNGKey(training["seed"]))
    if "task" in config:
        return _build_task(config, model_key, train_key)
    kind = config["configuration"]["kind"]
    ref_stepper = residuum_fn = None
    with config_section("[data]"):
        train, validation, stepper = load_data(config, run_dir)
        raw = (train, validation)
        if config["data"].get("normalize_inputs"):
            train, validation = _normalized(train, validation)
        if kind in CHAIN_KINDS:
            ref_stepper = stepper if stepper is not None else reference_stepper(config["data"])
        if kind == "residuum":
            residuum_fn = residuum(config["data"])
    _eval_steps(config, validation)
    with config_section("[model]"):
        if data_kind(config) == "pairs":
            shapes = (train[0].shape[1:], train[1].shape[1:])
        else:
            shapes = (train.shape[2:], train.shape[2:])
        model = make_model(config["model"], *shapes, model_key)
    with config_section("[configuration]"):
        configuration = make_configuration(config["configuration"], steps)
    with config_section("[optimizer]"):
        optimizer = make_optimizer(config["optimizer"], steps)
    return Experiment(
        config=config,
        train=train,
        validation=validation,
        model=model,
        configuration=configuration,
        optimizer=optimizer,
        key=train_key,
        ref_stepper=ref_stepper,
        residuum_fn=residuum_fn,
        raw=raw,
    )


def _build_task(config: dict, model_key, train_key) -> Experiment:
    """A [task] config: the task's builder makes the data, model and
    configuration (see `_tasks.py`); optimizer and training are the config's."""
    from ._tasks import TASKS

    options = _tuples({k: v for k, v in config["task"].items() if k != "name"})
    steps = config["training"]["num_training_steps"]
    with config_section("[task]"):
        task = TASKS[config["task"]["name"]](key=model_key, **options)
    optimizer = task.optimizer
    if optimizer is not None and config["optimizer"] != _resolve_optimizer(None):
        raise CLIError(f"[optimizer]: task {config['task']['name']!r} brings its own "
                       "optimizer (its learning rates are [task] keys): remove [optimizer].")
    if optimizer is None:
        with config_section("[optimizer]"):
            optimizer = make_optimizer(config["optimizer"], steps)
    return Experiment(config=config, train=task.data, validation=None, model=task.model,
                      configuration=task.configuration, optimizer=optimizer,
                      key=train_key, task=task)


def _normalized(train, validation):
    """Inputs normalised per channel by statistics of the training inputs."""
    normalize = jax.vmap(sample_data.InputNormalizer.fit(train[0]))
    return (normalize(train[0]), train[1]), (normalize(validation[0]), validation[1])


# -- generated data ------------------------------------------------------------


def _generate(data: dict, num_samples: int, seed: int, **extra):
    fn = ALL_PROBLEMS[data["problem"]]
    return fn(**_tuples(data["kwargs"]), **extra, num_samples=num_samples,
              key=jr.PRNGKey(seed))


def _tuples(kwargs: dict) -> dict:
    """TOML lists as the tuples the functions' signatures name (pairs, sequences)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def generated_bytes(config: dict) -> Optional[int]:
    """The size of the generated training and validation data, from their
    shapes alone (nothing is computed); `None` if it cannot be told."""
    data = config.get("data", {})
    if "problem" not in data:
        return None
    total = 0
    try:
        for n, seed in ((data["num_samples"], data["seed"]),
                        (config["validation"]["num_samples"], config["validation"]["seed"])):
            out = jax.eval_shape(lambda: _generate(data, n, seed))
            for leaf in jax.tree_util.tree_leaves(out):
                total += int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
    except Exception:  # the problem's own checks run later, with their message
        return None
    return total


def reference_stepper(data: dict):
    """The solver that made the data (the data function's `return_stepper=True`)."""
    # one sample, one step: the stepper is what we want, not the data
    extra = {"temporal_horizon": 1}
    for name in ("warmup_steps", "num_warmup_steps"):
        if name in data["kwargs"]:
            extra[name] = 0
    kwargs = {k: v for k, v in data["kwargs"].items() if k not in extra}
    _, stepper = _generate({**data, "kwargs": kwargs}, 1, 0, return_stepper=True, **extra)
    return stepper


def residuum(data: dict):
    """The Crank-Nicolson residuum matching the data's problem and grid."""
    name, fixed = RESIDUUM_FACTORIES[data["problem"]]
    factory = getattr(sample_data, name)
    accepted = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in data["kwargs"].items() if k in accepted}
    return factory(**kwargs, **fixed)


def _cache_fingerprint(config: dict) -> str:
    return json.dumps({"data": config["data"], "validation": config["validation"]},
                      sort_keys=True)


def load_data(config: dict, run_dir: Optional[Path]):
    """Training and validation data, and the data's solver when the data were
    generated just now (else `None`)."""
    data, validation = config["data"], config["validation"]
    if "file" in data:
        if data["kind"] == "pairs":
            return (*_pair_data(data, validation), None)
        return (*_file_data(data, validation), None)
    cache = None if run_dir is None else run_dir / "data"
    pairs = data["problem"] in PAIR_PROBLEMS
    if cache is not None and _cache_is_valid(cache, config):
        arrays = [jnp.asarray(np.load(cache / f"{name}.npy")) for name in _cache_names(config)]
        if pairs:
            return tuple(arrays[:2]), tuple(arrays[2:]), None
        return arrays[0], arrays[1], None
    where = f"[data] problem {data['problem']!r}"
    if pairs:
        train = _generate(data, data["num_samples"], data["seed"])
        valid = _generate(data, validation["num_samples"], validation["seed"])
        for (split, what), array in zip(
            (("training", "input"), ("training", "target"), ("validation", "input"),
             ("validation", "target")), train + valid
        ):
            _data.check_finite(array, where, f"{split} {what}")
        return train, valid, None
    train, stepper = _generate(data, data["num_samples"], data["seed"], return_stepper=True)
    valid = _generate(data, validation["num_samples"], validation["seed"])
    _data.check_finite(train, where, "training trajectory")
    _data.check_finite(valid, where, "validation trajectory")
    return train, valid, stepper


def _cache_names(config: dict) -> tuple[str, ...]:
    """The arrays of the data cache, in the order of (train, validation)."""
    if config["data"]["problem"] in PAIR_PROBLEMS:
        return ("train_inputs", "train_targets", "validation_inputs", "validation_targets")
    return ("train", "validation")


def _cache_is_valid(cache: Path, config: dict) -> bool:
    files = [cache / f"{n}.npy" for n in _cache_names(config)] + [cache / "source.json"]
    if not all(f.is_file() for f in files):
        return False
    return (cache / "source.json").read_text(encoding="utf-8") == _cache_fingerprint(config)


def write_file(path: Path, content, *, text: bool = False) -> None:
    """Write `content` (bytes, text or a function writing to the file)
    atomically; a failed write names the path and leaves no file behind."""
    try:
        with atomic_write(path, "w" if text else "wb",
                          encoding="utf-8" if text else None) as file:
            if callable(content):
                content(file)
            else:
                file.write(content)
    except Exception as error:
        cause = _os_error(error)
        if cause is None:
            raise
        raise writable_error(path, cause) from None


def _os_error(error: BaseException) -> Optional[OSError]:
    """The OSError behind `error` (serialisers wrap what the file raised)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def write_cache(run_dir: Path, experiment: Experiment) -> None:
    """Store generated data in `run_dir/data`; record the fingerprints of file data."""
    config = experiment.config
    if "task" in config:  # a task's builder makes its data from its options
        return
    cache = run_dir / "data"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise writable_error(cache, error) from None
    if "file" in config["data"]:
        write_file(cache / FILES, _data.fingerprint_text(config), text=True)
        return
    if _cache_is_valid(cache, config):
        return
    (cache / "source.json").unlink(missing_ok=True)  # invalid until every array is in
    # the raw data (before any input normalisation): build() applies that again
    train, validation = experiment.raw or (experiment.train, experiment.validation)
    arrays = (list(train) + list(validation) if isinstance(train, tuple)
              else [train, validation])
    for name, array in zip(_cache_names(config), arrays):
        write_file(cache / f"{name}.npy", lambda f, a=array: np.save(f, np.asarray(a)))
    write_file(cache / "source.json", _cache_fingerprint(config), text=True)


FILES = "files.json"


def changed_data(run_dir: Path, config: dict) -> list[str]:
    """The data files that changed since the run started (file data only)."""
    if "file" not in config.get("data", {}):
        return []
    path = run_dir / "data" / FILES
    if not path.is_file():
        return [f"{name} (no fingerprint recorded in {path})"
                for name in _data.data_files(config)]
    return _data.changed_files(json.loads(path.read_text(encoding="utf-8")), config)


# -- file data -----------------------------------------------------------------


_OPEN_FILES = contextlib.ExitStack()  # training reads from them lazily


def _file_data(data: dict, validation: dict):
    array = _data.open_array(data["file"], data["dataset"], "[data]", _OPEN_FILES)
    last = data["channels_last"]
    _data.check_trajectories(array, "[data]", data["file"], last)
    _data.convert_notice(array, "[data]", data["file"])
    total = array.shape[0]
    if validation["file"]:
        other = _data.open_array(validation["file"], validation["dataset"], "[validation]",
                                 _OPEN_FILES)
        _data.check_trajectories(other, "[validation]", validation["file"], last)
        _data.convert_notice(other, "[validation]", validation["file"])
        valid = _data.materialise(other, 0, validation["num_samples"] or None,
                                  channels_last=last)
        end = min(data["num_samples"] or total, total)
    else:
        held_out = validation["num_samples"]
        end = total - held_out
        if end < 1:
            raise CLIError(
                f"[validation] num_samples ({held_out}) must be smaller than the "
                f"{total} trajectories in {data['file']}."
            )
        end = min(data["num_samples"] or end, end)
        valid = _data.materialise(array, total - held_out, None, channels_last=last)
    _data.check_finite(valid, "[validation]", "validation trajectory")
    train = _training_rows(array, end, last)
    _data.check_finite(train, "[data]", "training trajectory")
    return train, valid


def _training_rows(array, stop: int, channels_last: bool):
    """Rows `:stop`, left on disk when the file allows it."""
    if _data.is_on_disk(array):
        return _data.LazyRows(array, 0, stop, channels_last)
    return _data.materialise(array, 0, stop, channels_last=channels_last)


def _open_pairs(table: dict, where: str):
    """Inputs and targets of a [data] or [validation] table of pairs."""
    path, other = table["file"], table["targets_file"]
    if other:
        inputs = _data.open_array(path, table["inputs"], where, _OPEN_FILES, "inputs")
        targets = _data.open_array(other, table["targets"], where, _OPEN_FILES, "targets")
    elif Path(path).suffix.lower() == ".npy":
        if table["inputs"] or table["targets"]:
            raise CLIError(f"{where}: a .npy file holds one array; remove inputs/targets "
                           "(a .npy of pairs is (2, S, C, *N): inputs first).")
        both = _data.open_array(path, "", where, _OPEN_FILES)
        if len(both.shape) < 3 or both.shape[0] != 2:
            raise CLIError(
                f"{where} file: a .npy file of pairs holds (2, S, C, *N) (inputs, then "
                f"targets); {path} holds shape {tuple(both.shape)}. For inputs and "
                "targets of different shapes, name a second file with `targets_file`."
            )
        inputs, targets = both[0], both[1]
    else:
        inputs = _data.open_array(path, table["inputs"] or "inputs", where, _OPEN_FILES,
                                  "inputs")
        targets = _data.open_array(path, table["targets"] or "targets", where, _OPEN_FILES,
                                   "targets")
    return inputs, targets


def _pair_data(data: dict, validation: dict):
    """`(inputs, targets)` for training and validation, in memory as float32."""
    last = data["channels_last"]
    inputs, targets = _open_pairs(data, "[data]")
    _data.check_pairs(inputs, targets, "[data]", data["file"], last)
    for array in (inputs, targets):
        _data.convert_notice(array, "[data]", data["file"])
    total = inputs.shape[0]
    if validation["file"]:
        v_in, v_out = _open_pairs(validation, "[validation]")
        _data.check_pairs(v_in, v_out, "[validation]", validation["file"], last)
        stop = validation["num_samples"] or None
        valid = tuple(_data.materialise(a, 0, stop, channels_last=last, time_axis=False)
                      for a in (v_in, v_out))
        end = min(data["num_samples"] or total, total)
    else:
        held_out = validation["num_samples"]
        end = total - held_out
        if end < 1:
            raise CLIError(
                f"[validation] num_samples ({held_out}) must be smaller than the "
                f"{total} pairs in {data['file']}."
            )
        end = min(data["num_samples"] or end, end)
        valid = tuple(_data.materialise(a, total - held_out, None, channels_last=last,
                                        time_axis=False) for a in (inputs, targets))
    train = tuple(_data.materialise(a, 0, end, channels_last=last, time_axis=False)
                  for a in (inputs, targets))
    for (name, where), array in zip((("training input", "[data]"),
                                     ("training target", "[data]"),
                                     ("validation input", "[validation]"),
                                     ("validation target", "[validation]")),
                                    train + valid):
        _data.check_finite(array, where, name)
    return train, valid


# -- model, configuration, optimizer ------------------------------------------


def make_model(model: dict, in_shape: tuple, out_shape: tuple, key):
    kind = model["kind"]
    channels, spatial = in_shape[0], in_shape[1:]
    if kind == "mlp" and spatial:
        raise CLIError(
            f"[model] kind = 'mlp' needs states without a spatial axis (C,); the data "
            f"have states {tuple(in_shape)}: use kind = 'conv_net' or 'linear_conv'."
        )
    if kind != "mlp" and not spatial:
        raise CLIError(
            f"[model] kind = {kind!r} needs states with space (C, *N); the data "
            f"have states {tuple(in_shape)}: use kind = 'mlp'."
        )
    options = {
        name: ACTIVATIONS[value] if name == "activation" else value
        for name, value in model.items()
        if name != "kind"
    }
    network = MODELS[kind]
    if kind == "mlp":
        return network(channels, **options, key=key)
    if kind == "linear_conv":
        return network(len(spatial), channels, **options, key=key)
    return network(len(spatial), channels, out_shape[0], **options, key=key)


def _one_configuration(options: dict, num_rollout_steps: int):
    kind = options["kind"]
    common = dict(
        time_level_loss=LOSSES[options["time_level_loss"]](),
        cut_bptt=options["cut_bptt"],
        cut_bptt_every=options["cut_bptt_every"],
        remat=options["remat"],
    )
    if kind == "supervised":
        return cfg.Supervised(num_rollout_steps, **common)
    if kind == "diverted_chain":
        return cfg.DivertedChain(num_rollout_steps, options["num_branch_steps"],
                                 cut_div_chain=options["cut_div_chain"], **common)
    if kind == "diverted_chain_branch_one":
        return cfg.DivertedChainBranchOne(num_rollout_steps,
                                          cut_div_chain=options["cut_div_chain"], **common)
    if kind == "mix_chain_post_physics":
        return cfg.MixChainPostPhysics(num_rollout_steps, options["num_post_physics_steps"],
                                       **common)
    return cfg.Residuum(num_rollout_steps, cut_prev=options["cut_prev"],
                        cut_next=options["cut_next"], **common)


def stage_steps(num_training_steps: int, num_stages: int) -> list[int]:
    """Steps split evenly over the stages; the last ones take the remainder."""
    base, extra = divmod(num_training_steps, num_stages)
    return [base + (i >= num_stages - extra) for i in range(num_stages)]


def stage_boundaries(config: dict) -> list[int]:
    """The steps at which a curriculum's stages begin (after the first)."""
    lengths = config.get("configuration", {}).get("curriculum") or []
    steps = stage_steps(config["training"]["num_training_steps"], max(len(lengths), 1))
    return [int(s) for s in np.cumsum(steps)[:-1]] if len(lengths) > 1 else []


def make_configuration(options: dict, num_training_steps: int):
    if options["kind"] == "operator_learning":
        return cfg.OperatorLearning(loss=LOSSES[options["loss"]]())
    lengths = options.get("curriculum")
    if not lengths:
        return _one_configuration(options, options["num_rollout_steps"])
    steps = stage_steps(num_training_steps, len(lengths))
    return Curriculum([(_one_configuration(options, r), n) for r, n in zip(lengths, steps)])


def learning_rate(options: dict, num_training_steps: int):
    """The learning rate, a number or an optax schedule of the step."""
    lr, schedule, warmup = options["learning_rate"], options["schedule"], options["warmup_steps"]
    decay_steps = num_training_steps - warmup
    if schedule == "cosine":
        rate = optax.cosine_decay_schedule(lr, decay_steps, alpha=options["decay_to"])
    elif schedule == "exponential":
        rate = optax.exponential_decay(lr, decay_steps, options["decay_to"])
    else:
        rate = optax.constant_schedule(lr) if warmup else lr
    if not warmup:
        return rate
    ramp = optax.linear_schedule(0.0, lr, warmup)
    return optax.join_schedules([ramp, rate], [warmup])


def depends_on_length(options: dict) -> bool:
    """Whether the learning rate at a step depends on the run's total steps."""
    return options["schedule"] != "constant"


def make_optimizer(options: dict, num_training_steps: int):
    lr = learning_rate(options, num_training_steps)
    name = options["name"]
    if name == "adam":
        optimizer = optax.adam(lr)
    elif name == "adamw":
        optimizer = optax.adamw(lr, weight_decay=options["weight_decay"])
    else:
        optimizer = optax.sgd(lr, momentum=options["momentum"] or None)
    clip = options.get("clip_norm", 0.0)
    return optax.chain(optax.clip_by_global_norm(clip), optimizer) if clip > 0 else optimizer
