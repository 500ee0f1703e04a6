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
from .. import loss as tx_loss
from .. import nn, sample_data
from ..trainer import Curriculum
from ._errors import CLIError
from ._schema import RESIDUUM_FACTORIES

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "tanh": jax.nn.tanh,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
}

LOSSES = {
    "mse": tx_loss.MSELoss,
    "mae": tx_loss.MAELoss,
    "rmse": tx_loss.RMSELoss,
    "nmse": tx_loss.Normalized_MSELoss,
    "nmae": tx_loss.Normalized_MAELoss,
    "nrmse": tx_loss.Normalized_RMSELoss,
}

CHAIN_KINDS = ("diverted_chain", "diverted_chain_branch_one", "mix_chain_post_physics")


@dataclass
class Experiment:
    """Everything a run needs, built from a resolved config."""

    config: dict
    train: Any  # (S, T+1, C, *N)
    validation: Any  # (S_val, T+1, C, *N)
    model: Any  # the initial model
    configuration: Any  # a BaseConfiguration or a Curriculum
    optimizer: optax.GradientTransformation
    key: jax.Array  # the trainer's key
    ref_stepper: Optional[Callable] = None
    residuum_fn: Optional[Callable] = None

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


def build(config: dict, run_dir: Optional[Path] = None) -> Experiment:
    """Build the experiment; data come from `run_dir/data` when cached there."""
    training = config["training"]
    steps = training["num_training_steps"]
    model_key, train_key = jr.split(jr.PRNGKey(training["seed"]))
    kind = config["configuration"]["kind"]
    ref_stepper = residuum_fn = None
    with config_section("[data]"):
        train, validation, stepper = load_data(config, run_dir)
        if kind in CHAIN_KINDS:
            ref_stepper = stepper if stepper is not None else reference_stepper(config["data"])
        if kind == "residuum":
            residuum_fn = residuum(config["data"])
    _eval_steps(config, validation)
    with config_section("[model]"):
        model = make_model(config["model"], train.shape[2:], model_key)
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
    )


# -- data ------------------------------------------------------------------


def _generate(data: dict, num_samples: int, seed: int, **extra):
    fn = sample_data.PROBLEMS[data["problem"]]
    return fn(**data["kwargs"], **extra, num_samples=num_samples, key=jr.PRNGKey(seed))


def reference_stepper(data: dict):
    """The solver that made the data (the data function's `return_stepper=True`)."""
    # one sample, one step: the stepper is what we want, not the data
    extra = {"temporal_horizon": 1}
    if "warmup_steps" in data["kwargs"]:
        extra["warmup_steps"] = 0
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
    """Training and validation trajectories `(S, T+1, C, *N)`, and the data's
    solver when the data were generated just now (else `None`)."""
    data, validation = config["data"], config["validation"]
    if "file" in data:
        return (*_file_data(data, validation), None)
    cache = None if run_dir is None else run_dir / "data"
    if cache is not None and _cache_is_valid(cache, config):
        return (jnp.asarray(np.load(cache / "train.npy")),
                jnp.asarray(np.load(cache / "validation.npy")), None)
    train, stepper = _generate(data, data["num_samples"], data["seed"], return_stepper=True)
    valid = _generate(data, validation["num_samples"], validation["seed"])
    return train, valid, stepper


def _cache_is_valid(cache: Path, config: dict) -> bool:
    files = [cache / n for n in ("train.npy", "validation.npy", "source.json")]
    if not all(f.is_file() for f in files):
        return False
    return (cache / "source.json").read_text(encoding="utf-8") == _cache_fingerprint(config)


def write_cache(run_dir: Path, experiment: Experiment) -> None:
    """Store generated data in `run_dir/data` (file data are read in place)."""
    config = experiment.config
    if "file" in config["data"]:
        return
    cache = run_dir / "data"
    if _cache_is_valid(cache, config):
        return
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "source.json").unlink(missing_ok=True)  # invalid until both arrays are in
    np.save(cache / "train.npy", np.asarray(experiment.train))
    np.save(cache / "validation.npy", np.asarray(experiment.validation))
    (cache / "source.json").write_text(_cache_fingerprint(config), encoding="utf-8")


def _open_array(path: str, dataset: str, where: str, files: contextlib.ExitStack):
    """A lazily readable array: a memory map (.npy), an .npz member or an h5py
    dataset; open files are closed with `files`."""
    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{where} file: no such file {path!r}.")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        if dataset:
            raise CLIError(f"{where} dataset: a .npy file holds one array; remove dataset.")
        return np.load(file, mmap_mode="r")
    if suffix == ".npz":
        archive = files.enter_context(np.load(file))
        return archive[_pick(list(archive.files), dataset, where, path)]
    if suffix in (".h5", ".hdf5"):
        try:
            import h5py
        except ImportError:
            raise CLIError(
                f"{where} file: reading {file.name} needs h5py (pip install h5py)."
            ) from None
        handle = files.enter_context(h5py.File(file, "r"))
        names = []
        handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return handle[_pick(names, dataset, where, path)]
    raise CLIError(f"{where} file: expected a .npy, .npz, .h5 or .hdf5 file, got {path!r}.")


def _pick(names: list[str], dataset: str, where: str, path: str) -> str:
    if dataset:
        if dataset not in names:
            raise CLIError(
                f"{where} dataset: no array {dataset!r} in {path}; it holds "
                f"{', '.join(names) or 'none'}."
            )
        return dataset
    if len(names) != 1:
        raise CLIError(
            f"{where} dataset: {path} holds {len(names)} arrays ({', '.join(names)}); "
            "name one with `dataset`."
        )
    return names[0]


class _LazyRows:
    """Rows `start:stop` of an on-disk array (memory map or HDF5 dataset),
    read only when indexed: the trainer gathers each chunk's windows on the
    host, so training data larger than memory stream from disk."""

    def __init__(self, array, start: int, stop: int):
        self._array, self._start = array, start
        self.shape = (stop - start,) + tuple(array.shape[1:])
        self.dtype = np.dtype(array.dtype)

    def __getitem__(self, index: int):
        return np.asarray(self._array[self._start + int(index)])


def _check_trajectories_file(array):
    if len(array.shape) < 3:
        raise CLIError(
            f"data files must hold trajectories (S, T+1, C, *N); got shape {array.shape}."
        )
    if not np.issubdtype(np.dtype(array.dtype), np.floating):
        raise CLIError(f"data files must hold floating-point values, got {array.dtype}.")


def _materialise(array, stop: Optional[int] = None, start: int = 0):
    """Rows `start:stop` in memory, as float32 (validation data)."""
    _check_trajectories_file(array)
    out = np.asarray(array[start:stop])
    return jnp.asarray(out.astype(np.float32, copy=False))


def _lazy(array, stop: Optional[int] = None, start: int = 0):
    """Rows `start:stop` left on disk when the file allows it (training data)."""
    _check_trajectories_file(array)
    if isinstance(array, np.memmap) or type(array).__module__.startswith("h5py"):
        stop = array.shape[0] if stop is None else min(stop, array.shape[0])
        return _LazyRows(array, start, stop)
    return _materialise(array, stop, start)


def _file_data(data: dict, validation: dict):
    # The files stay open for the process: training reads from them lazily.
    return _read_file_data(data, validation, _OPEN_FILES)


_OPEN_FILES = contextlib.ExitStack()


def _read_file_data(data: dict, validation: dict, files: contextlib.ExitStack):
    array = _open_array(data["file"], data["dataset"], "[data]", files)
    total = array.shape[0]
    if validation["file"]:
        other = _open_array(validation["file"], validation["dataset"], "[validation]", files)
        valid = _materialise(other, validation["num_samples"] or None)
        end = data["num_samples"] or total
        return _lazy(array, end), valid
    held_out = validation["num_samples"]
    available = total - held_out
    if available < 1:
        raise CLIError(
            f"[validation] num_samples ({held_out}) must be smaller than the "
            f"{total} trajectories in {data['file']}."
        )
    end = min(data["num_samples"] or available, available)
    return _lazy(array, end), _materialise(array, None, total - held_out)


# -- model, configuration, optimizer ------------------------------------------


def make_model(model: dict, state_shape: tuple, key):
    kind = model["kind"]
    channels, spatial = state_shape[0], state_shape[1:]
    if kind == "mlp":
        if spatial:
            raise CLIError(
                f"[model] kind = 'mlp' needs states without a spatial axis (C,); the data "
                f"have states {tuple(state_shape)}: use kind = 'conv_net' or 'linear_conv'."
            )
        return nn.MLPStepper(
            channels, model["width"], model["depth"], model["residual"],
            activation=ACTIVATIONS[model["activation"]], scale=model["scale"], key=key,
        )
    if not spatial:
        raise CLIError(
            f"[model] kind = {kind!r} needs states with space (C, *N); the data have "
            f"states {tuple(state_shape)}: use kind = 'mlp'."
        )
    if kind == "linear_conv":
        return nn.LinearConvStepper(len(spatial), channels, model["kernel_size"], key=key)
    return nn.ConvNet(
        len(spatial), channels, channels, model["hidden_channels"], model["depth"],
        model["kernel_size"], ACTIVATIONS[model["activation"]], model["residual"], key=key,
    )


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


def make_configuration(options: dict, num_training_steps: int):
    lengths = options.get("curriculum")
    if not lengths:
        return _one_configuration(options, options["num_rollout_steps"])
    steps = stage_steps(num_training_steps, len(lengths))
    return Curriculum([(_one_configuration(options, r), n) for r, n in zip(lengths, steps)])


def make_optimizer(options: dict, num_training_steps: int):
    lr, schedule = options["learning_rate"], options["schedule"]
    if schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, num_training_steps, alpha=options["decay_to"])
    elif schedule == "exponential":
        lr = optax.exponential_decay(lr, num_training_steps, options["decay_to"])
    name = options["name"]
    if name == "adam":
        return optax.adam(lr)
    if name == "adamw":
        return optax.adamw(lr, weight_decay=options["weight_decay"])
    return optax.sgd(lr, momentum=options["momentum"] or None)
