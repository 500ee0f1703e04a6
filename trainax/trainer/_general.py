"""The trainer: a data source, a configuration, an optimizer, one compiled loop."""

from __future__ import annotations

import os
import time
import warnings
from typing import Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checks import check_stepper, find_stacklevel, positive_int
from ..callback import BaseCallback, CallbackContext
from ..configuration import BaseConfiguration
from ..parallel import check_mesh, data_mesh, num_data_shards, replicate, shard_batch, to_host
from ._checkpoint import load_state, save_state
from ._curriculum import Curriculum
from ._mixer import PermutationMixer
from ._sources import AbstractDataSource, Sampler, Samples, Trajectories, as_source

# The per-step keys come from their own stream of the trainer's key, so the
# minibatch permutations (drawn from the key itself) do not depend on them.
_STEP_KEY_STREAM = 0x7374_6570  # "step"

# chunks: the most steps per dispatch by default, and the wall time a chunk aims at
_DEVICE_CHUNK, _HOST_CHUNK, _CHUNK_SECONDS = 1000, 100, 0.25


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; `.step` is the first such step."""

    def __init__(self, step: int, message: str):
        super().__init__(message)
        self.step = step


def _as_raw_key(key):
    if key is None:
        raise TypeError(
            "`key` is required: call the trainer as trainer(model, key) with a JAX "
            "PRNG key, e.g. jax.random.PRNGKey(0)."
        )
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jr.key_data(key)
    if key.dtype != jnp.uint32 or key.ndim != 1:
        raise TypeError(
            "`key` must be a JAX PRNG key (jax.random.PRNGKey or jax.random.key), "
            f"got an array of dtype {key.dtype} and shape {key.shape}."
        )
    return key


def step_keys(key, step):
    """The `(draw_key, loss_key)` of training step `step` for a trainer called with `key`.

    `draw_key` feeds a [`Sampler`][trainax.trainer.Sampler], `loss_key` is the
    configuration's `key=`. Both depend only on `(key, step)`, so a resumed
    run draws exactly what an uninterrupted one draws.

    ```python
    draw_key, loss_key = tx.trainer.step_keys(jax.random.PRNGKey(0), 7)
    ```
    """
    return _split_step(_key_base(_as_raw_key(key)), step)


@jax.jit
def _key_base(raw_key):
    """The stream of the per-step keys (compiled: one dispatch, not one per op)."""
    return jr.fold_in(raw_key, _STEP_KEY_STREAM)


def _split_step(base, step):
    keys = jr.split(jr.fold_in(base, step))
    return keys[0], keys[1]


class _Stage:
    """What one configuration of the schedule trains on: its feed and its mixer."""

    def __init__(self, trainer, index, configuration, start, end, raw_key):
        self.index, self.configuration, self.start, self.end = index, configuration, start, end
        source = trainer.source
        self.batch_size = trainer._stage_batch_sizes[index]
        num_items = source.num_items(configuration)
        self.mixer = None
        if num_items is not None:
            self.mixer = trainer._mixer(index, num_items, self.batch_size, end - start, raw_key)
        self.feed = None if source.host else source.feed(configuration, self.batch_size)
        # on the device, the smaller last minibatch of each epoch runs inside the
        # same compiled chunk (a branch of its own); host feeds and meshes split
        # the chunk there instead
        self.mixed = (
            self.mixer is not None
            and self.mixer.next_short_step(0) is not None
            and not source.host
            and trainer.mesh is None
        )

    def batch_size_at(self, step: int) -> int:
        if self.mixer is None:
            return self.batch_size
        return self.mixer.batch_size_at(step - self.start)

    def chunk_end(self, step: int, end: int) -> int:
        """Where a chunk starting at `step` must stop: a smaller last minibatch
        of an epoch is a chunk of its own (it has its own compiled update)."""
        if self.mixer is None:
            return end
        # at the end of the block of epochs drawn at once: the next block is
        # drawn on the host while this chunk runs
        end = min(end, self.start + self.mixer.block_end(step - self.start))
        if self.mixed:
            return end
        short = self.mixer.next_short_step(step - self.start)
        if short is None:
            return end
        short += self.start
        return step + 1 if short == step else min(end, short)

    def indices(self, start_step: int, num_steps: int, rows: int):
        """Minibatch indices of the stage's steps, padded to `rows` rows.

        For a mixed stage, `(full, short, is_short)`: the full minibatches
        `(rows, B)`, the smaller last ones of the epochs `(rows, b)` and which
        steps take them `(rows,)`; each step's row is filled in one of the two.
        """
        if not self.mixed:
            indices = np.zeros((rows, self.batch_size_at(start_step)), dtype=np.int32)
            if self.mixer is not None:
                indices[:num_steps] = self.mixer.chunk(start_step - self.start, num_steps)
            return indices
        mixer, first = self.mixer, start_step - self.start
        small = mixer.num_samples % mixer.batch_size
        full = np.zeros((rows, mixer.batch_size), dtype=np.int32)
        short = np.zeros((rows, small), dtype=np.int32)
        steps = np.arange(first, first + num_steps)
        is_short = np.zeros(rows, dtype=bool)
        is_short[:num_steps] = steps % mixer.steps_per_epoch == mixer.steps_per_epoch - 1
        # runs of equal size, each gathered at once
        edges = np.flatnonzero(np.diff(is_short[:num_steps])) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, num_steps]):
            target = short if is_short[lo] else full
            target[lo:hi] = mixer.chunk(first + int(lo), int(hi - lo))
        return full, short, is_short


class GeneralTrainer:
    """Trains a model with a configuration on minibatches from a data source.

    One loop serves every methodology. The data source says what a minibatch
    is: [`Trajectories`][trainax.trainer.Trajectories] (an array `(S, T+1,
    C, *N)` passed as it is means this) cut into windows of the
    configuration's length, [`Samples`][trainax.trainer.Samples] (any PyTree
    with a leading sample axis, such as pairs `(inputs, targets)`) or a
    [`Sampler`][trainax.trainer.Sampler] drawing a fresh batch at each step.
    A [`PermutationMixer`][trainax.trainer.PermutationMixer] draws every
    window or sample once per epoch. The update (loss, gradient, optimizer
    step) is compiled once per configuration and runs a chunk of steps per
    dispatch inside one `lax.fori_loop`, with the parameter and optimizer
    buffers donated; Python only runs between chunks (progress bar,
    callbacks, checkpoints, the NaN check).

    At step `s` the configuration is called as `config(model, batch,
    ref_stepper=..., residuum_fn=..., key=loss_key)` (plus `indices=` when it
    keeps per-sample state), where the key comes from
    [`step_keys`][trainax.trainer.step_keys]`(key, s)`.

    The model is any PyTree that Equinox can partition: its floating-point
    arrays are trained (`eqx.is_inexact_array`), the rest is kept. Before
    anything compiles, the configuration checks the model against one
    minibatch's shapes (a stepper maps a state to a state of the same shape;
    an operator maps an input to the target's shape).

    **Arguments:**

    - `data`: a data source, or trajectories `(S, T+1, C, *N)`.
    - `configuration`: a [`BaseConfiguration`][trainax.configuration.BaseConfiguration],
        or a [`Curriculum`][trainax.trainer.Curriculum] of them.
    - `optimizer`: an `optax.GradientTransformation`.
    - `num_training_steps`: the number of updates (ignored, may be `None`,
        for a `Curriculum`, which brings its own).
    - `batch_size`: windows or samples per minibatch.
    - `ref_stepper`: the reference solver for diverted and mix chains.
    - `residuum_fn`: `residuum_fn(u_next, u_prev)` on batched states, for
        residuum configurations.
    - `callback_fn`: a [`tx.callback`][trainax.callback] callback (or a
        composite); it runs every `callback_fn.every` steps between chunks,
        and the history holds `(step, output)` pairs. Any other callable
        follows the rollout taxonomy's protocol: it is called as
        `fn(update_i, model, minibatch)` before every update step, and the
        history holds its outputs, one per update step.
    - `chunk_size`: training steps per compiled dispatch. Default `None`:
        as many as take about a quarter of a second, measured as training
        goes, at most 1000 (100 when a host feed reads each chunk's
        minibatches), so fast models pay no dispatch overhead and slow ones
        still update the progress bar and the NaN check often. The
        results do not depend on it.
    - `progress_bar`: show a tqdm bar with the running loss (default True).
    - `nan_policy`: `"raise"` (default) stops with a
        [`NonFiniteLossError`][trainax.trainer.NonFiniteLossError] naming the
        first step whose loss is NaN or infinite; `"continue"` only warns.
    - `checkpoint_path`, `checkpoint_every`: save the whole training state
        (model, optimizer state, key, step, loss history) to this file every
        `checkpoint_every` steps and at the end; resume with
        `trainer(model, resume_from=checkpoint_path)`.
    - `host_data`: for trajectories given as an array, gather windows on the
        host chunk by chunk (see [`Trajectories`][trainax.trainer.Trajectories]);
        sources take `host=` themselves.
    - `trainable`: train only part of the model (fine-tuning): a function
        selecting sub-trees as an `eqx.tree_at` `where` does (e.g.
        `lambda m: m.projection`), or a PyTree of bools shaped like the
        model. The other leaves stay bit-identical and the optimizer holds
        no state for them. Default: every floating-point array trains.
    - `per_sample`: per-sample tables of the model (e.g. latent codes, one
        row per sample of a [`Samples`][trainax.trainer.Samples] source),
        selected like `trainable`. Their update is row-sparse: a step updates
        only the rows of the minibatch's samples, and the other rows and
        their optimizer moments stay bit-identical (optax's moments would
        otherwise decay for rows with zero gradient). The configuration
        must set `needs_indices`.
    - `per_sample_optimizer`: the optimizer of the tables (default
        `optimizer`), e.g. with its own learning rate.
    - `data_parallel`: `True` trains data-parallel on every device (a
        [`tx.parallel.data_mesh`][trainax.parallel.data_mesh]), or pass a
        `jax.sharding.Mesh` with a `"data"` axis. Parameters and optimizer
        state are replicated, each minibatch is split over the devices and
        XLA reduces the gradients: the result equals one device's to float
        tolerance. `batch_size` must be divisible by the device count; a
        smaller last minibatch of an epoch that is not runs replicated.

    **Calling** `trainer(model, key, *, return_loss_history=True, resume_from=None)`
    returns `(model, loss_history)`, or `(model, loss_history, callback_history)`
    when a callback is given, where `loss_history` is a NumPy array (in the
    loss's dtype) holding the minibatch loss at each step and
    `callback_history` a list of `(step, output)` pairs.

    ```python
    data = tx.sample_data.advection_1d_periodic(num_samples=4, key=jr.PRNGKey(0))
    model = tx.nn.LinearConvStepper(1, kernel_size=2, key=jr.PRNGKey(1))
    trainer = tx.GeneralTrainer(data, tx.configuration.Supervised(5),
                                optax.adam(1e-2), 20, 8, progress_bar=False)
    model, losses = trainer(model, jr.PRNGKey(0))
    ```
    """

    def __init__(
        self,
        data,
        configuration: Union[BaseConfiguration, Curriculum],
        optimizer: optax.GradientTransformation,
        num_training_steps: Optional[int],
        batch_size: int,
        *,
        ref_stepper: Optional[Callable] = None,
        residuum_fn: Optional[Callable] = None,
        callback_fn=None,
        chunk_size: Optional[int] = None,
        progress_bar: bool = True,
        nan_policy: str = "raise",
        checkpoint_path: Optional[Union[str, os.PathLike]] = None,
        checkpoint_every: Optional[int] = None,
        host_data: Optional[bool] = None,
        data_parallel=False,
        trainable=None,
        per_sample=None,
        per_sample_optimizer: Optional[optax.GradientTransformation] = None,
    ):
        if isinstance(configuration, Curriculum):
            if num_training_steps not in (None, configuration.num_training_steps):
                raise ValueError(
                    "`num_training_steps` must be None (or the curriculum's total, "
                    f"{configuration.num_training_steps}) when `configuration` is a "
                    f"Curriculum; got {num_training_steps}."
                )
            stages = configuration.stages
        elif isinstance(configuration, BaseConfiguration):
            if num_training_steps is None:
                raise TypeError("`num_training_steps` is required (a positive int), got None.")
            stages = ((configuration, positive_int("num_training_steps", num_training_steps)),)
        else:
            raise TypeError(
                "`configuration` must be a tx.configuration configuration or a "
                f"tx.trainer.Curriculum, got {type(configuration).__name__}."
            )
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                "`optimizer` must be an optax.GradientTransformation (e.g. "
                f"optax.adam(1e-3)), got {type(optimizer).__name__}."
            )
        positive_int("batch_size", batch_size)
        if chunk_size is not None:
            positive_int("chunk_size", chunk_size)
        if nan_policy not in ("raise", "continue"):
            raise ValueError(
                f"`nan_policy` must be 'raise' or 'continue', got {nan_policy!r}."
            )
        if checkpoint_every is not None:
            positive_int("checkpoint_every", checkpoint_every)
            if checkpoint_path is None:
                raise ValueError("`checkpoint_every` needs a `checkpoint_path` to write to.")
        if callback_fn is not None and not callable(callback_fn):
            raise TypeError(f"`callback_fn` must be callable, got {callback_fn!r}.")
        if isinstance(data, AbstractDataSource):
            if host_data is not None:
                raise TypeError(
                    "`host_data` applies to trajectories given as an array; a data source "
                    "takes `host=` itself."
                )
            source = data
        elif host_data is not None:
            source = Trajectories(data, host=host_data)
        else:
            source = as_source(data)

        stage_batch_sizes = []
        for config, _ in stages:
            source.check(config, batch_size)
            config.check_dependencies(ref_stepper, residuum_fn)
            num_items = source.num_items(config)
            if num_items is not None and batch_size > num_items:
                what = (
                    f"{num_items} windows of {source._window(config)} time levels from "
                    f"{source.trajectories.shape[0]} trajectories"
                    if isinstance(source, Trajectories)
                    else f"{num_items} samples"
                )
                warnings.warn(
                    f"`batch_size` ({batch_size}) exceeds the number of training "
                    f"{'windows' if isinstance(source, Trajectories) else 'samples'} "
                    f"({what}): training full batch, {num_items} per step.",
                    UserWarning,
                    stacklevel=find_stacklevel(),
                )
                stage_batch_sizes.append(num_items)
            else:
                stage_batch_sizes.append(batch_size)
            if config.needs_indices and isinstance(source, Sampler):
                raise TypeError(
                    f"{type(config).__name__} keeps per-sample state and needs sample "
                    "indices: train it on tx.trainer.Samples, not a Sampler."
                )
        if ref_stepper is not None and isinstance(source, Trajectories):
            check_stepper("ref_stepper", ref_stepper, source.state_shape, source.dtype)

        self.source = source
        self.stages = tuple(stages)
        self.optimizer = optimizer
        self.num_training_steps = sum(n for _, n in stages)
        self.batch_size = batch_size
        self.ref_stepper = ref_stepper
        self.residuum_fn = residuum_fn
        self.callback_fn = callback_fn
        self.chunk_size = chunk_size
        # the most steps one dispatch runs (its loss buffer and index rows)
        self._capacity = chunk_size if chunk_size is not None else (
            _HOST_CHUNK if source.host else _DEVICE_CHUNK)
        self.progress_bar = progress_bar
        self.nan_policy = nan_policy
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        if data_parallel is True:
            mesh = data_mesh()
        elif data_parallel is False or data_parallel is None:
            mesh = None
        else:
            mesh = check_mesh(data_parallel)
        if mesh is not None:
            shards = num_data_shards(mesh)
            for size in stage_batch_sizes:
                if size % shards != 0:
                    raise ValueError(
                        f"`batch_size` ({size}) must be divisible by the {shards} devices of "
                        "the data-parallel mesh (each device takes an equal share)."
                    )
        self.mesh = mesh
        self.trainable = trainable
        if per_sample is not None:
            if not isinstance(source, Samples):
                raise TypeError(
                    "`per_sample` tables hold one row per sample: train on "
                    f"tx.trainer.Samples, not {type(source).__name__}."
                )
            if not all(config.needs_indices for config, _ in stages):
                raise TypeError(
                    "`per_sample` tables are read by the minibatch's sample indices: the "
                    "configuration must set `needs_indices = True`."
                )
        if per_sample_optimizer is not None and not isinstance(
            per_sample_optimizer, optax.GradientTransformation
        ):
            raise TypeError(
                "`per_sample_optimizer` must be an optax.GradientTransformation, got "
                f"{type(per_sample_optimizer).__name__}."
            )
        self.per_sample = per_sample
        self.per_sample_optimizer = per_sample_optimizer
        self._stage_batch_sizes = tuple(stage_batch_sizes)
        self._compiled = {}
        self._span = None  # steps per chunk last measured (chunk_size=None)
        self._mixers_key, self._mixers = None, {}  # the last key's mixers, per stage
        self._checked = {}
        self._callback_loss_fns = {}

    @property
    def host_data(self) -> bool:
        """Whether minibatches are gathered on the host, chunk by chunk."""
        return self.source.host

    # -- the compiled part -------------------------------------------------
    def _loss(self, configuration, model, batch, key, indices):
        extra = {"indices": indices} if configuration.needs_indices else {}
        return configuration(
            model,
            batch,
            ref_stepper=self.ref_stepper,
            residuum_fn=self.residuum_fn,
            key=key,
            **extra,
        )

    def _make_chunk_runner(self, configuration, static, feed_static, loss_dtype, mixed=False):
        chunk, mesh = self._capacity, self.mesh
        updater = self._updater(static)

        def loss_fn(params, batch, key, indices):
            return self._loss(configuration, eqx.combine(params, static), batch, key, indices)

        def run_chunk(params, opt_state, feed_dynamic, indices, key_base, start, num_steps):
            feed = eqx.combine(feed_dynamic, feed_static)

            def one_step(i, params, opt_state, rows):
                draw_key, loss_key = _split_step(key_base, start + i)
                batch = feed(i, rows, draw_key)
                if mesh is not None:
                    batch = shard_batch(batch, mesh)
                loss, grads = jax.value_and_grad(loss_fn)(params, batch, loss_key, rows)
                params, opt_state = updater.update(params, grads, opt_state, rows)
                return params, opt_state, loss

            def body(i, carry):
                params, opt_state, losses = carry
                if mixed:
                    full, short, is_short = indices
                    params, opt_state, loss = jax.lax.cond(
                        is_short[i],
                        lambda p, o: one_step(i, p, o, short[i]),
                        lambda p, o: one_step(i, p, o, full[i]),
                        params, opt_state,
                    )
                else:
                    params, opt_state, loss = one_step(i, params, opt_state, indices[i])
                return params, opt_state, losses.at[i].set(loss)

            losses = jnp.zeros(chunk, dtype=loss_dtype)
            return jax.lax.fori_loop(0, num_steps, body, (params, opt_state, losses))

        return jax.jit(run_chunk, donate_argnums=(0, 1))

    def _chunk_runner(self, stage, batch_size, static, feed_static, loss_dtype):
        # reuse the compiled update across calls with the same kind of model
        leaves, treedef = jax.tree_util.tree_flatten(static)
        make = lambda: self._make_chunk_runner(  # noqa: E731
            stage.configuration, static, feed_static, loss_dtype, mixed=stage.mixed
        )
        try:
            cache_key = (stage.index, batch_size, treedef, tuple(leaves))
            hash(cache_key)
        except TypeError:
            return make()
        if cache_key not in self._compiled:
            self._compiled[cache_key] = make()
        return self._compiled[cache_key]

    def _stage_feed(self, stage, indices):
        """The feed of a chunk: the stage's device feed, or the chunk read on the host."""
        if self.source.host:
            return self.source.host_chunk(stage.configuration, indices)
        return stage.feed

    # -- the Python loop between chunks -----------------------------------
    def _mixer(self, index, num_items, batch_size, num_steps, raw_key):
        """A stage's minibatch mixer. The permutations depend on the key alone,
        so a call with the key of the previous call reuses those it drew."""
        memo = (index, num_items, batch_size, num_steps)
        key_bytes = np.asarray(raw_key).tobytes()
        if self._mixers_key != key_bytes:
            self._mixers_key, self._mixers = key_bytes, {}
        if memo not in self._mixers:
            # the first stage permutes with the trainer's key itself (as the
            # rollout taxonomy does); later stages with keys folded from it
            mixer_key = raw_key if index == 0 else jr.fold_in(raw_key, index)
            epochs = -(-num_steps // -(-num_items // batch_size))
            self._mixers[memo] = PermutationMixer(
                num_items, batch_size, key=mixer_key,
                epochs_per_draw=min(64, epochs + 1), num_epochs=max(1, epochs),
            )
        return self._mixers[memo]

    def _stages(self, raw_key):
        start = 0
        for index, (configuration, num_steps) in enumerate(self.stages):
            yield _Stage(self, index, configuration, start, start + num_steps, raw_key)
            start += num_steps

    def _next_boundary(self, step: int, stage_end: int, span: int) -> int:
        """Where the chunk from `step` ends: after `span` steps, at the next
        callback or checkpoint step, or at the stage's end (an explicit
        `chunk_size` cuts at its multiples)."""
        periods = [] if self.chunk_size is None else [self.chunk_size]
        if self.callback_fn is not None:
            periods.append(getattr(self.callback_fn, "every", 1))
        if self.checkpoint_every is not None:
            periods.append(self.checkpoint_every)
        nxt = min([step + span] + [(step // p + 1) * p for p in periods])
        return min(nxt, stage_end)

    def _init_fn(self, static):
        """The optimizer's `init`, compiled once per kind of model (one
        dispatch instead of one per state leaf)."""
        leaves, treedef = jax.tree_util.tree_flatten(static)
        try:
            cache_key = ("init", treedef, tuple(leaves))
            hash(cache_key)
        except TypeError:
            return self._updater(static).init
        if cache_key not in self._compiled:
            self._compiled[cache_key] = jax.jit(self._updater(static).init)
        return self._compiled[cache_key]

    def _updater(self, static):
        if self.per_sample is None:
            return _DenseUpdate(self.optimizer)
        return _RowSparseUpdate(
            self.optimizer,
            self.per_sample_optimizer or self.optimizer,
            self._table_mask,
            self.source.num_samples,
        )

    def _select(self, where, model, name):
        false = jax.tree_util.tree_map(lambda _: False, model)
        try:
            return eqx.tree_at(
                where, false, replace_fn=lambda sub: jax.tree_util.tree_map(lambda _: True, sub)
            )
        except Exception as error:
            raise ValueError(
                f"`{name}` must select parts of the model, like an `eqx.tree_at` `where` "
                f"(e.g. lambda m: m.codes): {type(error).__name__}: {error}"
            ) from error

    def _trainable_mask(self, model):
        """Which leaves train: the floating-point arrays the `trainable` filter selects."""
        inexact = jax.tree_util.tree_map(eqx.is_inexact_array, model)
        if self.trainable is None:
            return inexact
        if callable(self.trainable) and not isinstance(self.trainable, eqx.Module):
            chosen = self._select(self.trainable, model, "trainable")
        else:
            chosen = self.trainable
        try:
            mask = jax.tree_util.tree_map(lambda a, b: bool(a) and bool(b), inexact, chosen)
        except ValueError as error:
            raise ValueError(
                "`trainable`: a PyTree of bools must have the model's structure: "
                f"{error}"
            ) from error
        if not any(jax.tree_util.tree_leaves(mask)):
            raise ValueError(
                "`trainable` selects no floating-point array of the model: nothing would "
                "train."
            )
        return mask

    def _check_tables(self, model, trainable_mask):
        """The mask of the per-sample tables, checked: trained leaves with one row per sample."""
        chosen = self._select(self.per_sample, model, "per_sample")
        tables = jax.tree_util.tree_map(lambda a, b: a and b, trainable_mask, chosen)
        leaves = [
            leaf
            for leaf, is_table in zip(
                jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(tables)
            )
            if is_table
        ]
        if not leaves:
            raise ValueError("`per_sample` selects no trained floating-point array of the model.")
        for leaf in leaves:
            if leaf.ndim == 0 or leaf.shape[0] != self.source.num_samples:
                raise ValueError(
                    f"`per_sample` tables need one row per sample ({self.source.num_samples}); "
                    f"got an array of shape {tuple(leaf.shape)}."
                )
        # the tables' mask over the trained parameters only
        return eqx.filter(tables, trainable_mask)

    def check_model(self, model) -> None:
        """Raise a clear error if `model` does not fit every configuration and the data."""
        for configuration, _ in self.stages:
            example = self.source.example_batch(configuration, self.batch_size)
            configuration.check_model(model, example)

    def full_loss(self, model, *, key=None):
        """The configuration's loss over all windows (or samples) at once.

        A pure function of `model` (jit, grad and vmap pass through), e.g. to
        map a loss landscape over a grid of models. `key` is the
        configuration's `key=` (default `None`). Only for one configuration
        (not a curriculum) and for `Trajectories` or `Samples`.

        ```python
        data = tx.sample_data.advection_1d_periodic(num_samples=4, key=jr.PRNGKey(0))
        trainer = tx.trainer.SupervisedTrainer(data, optimizer=optax.sgd(0.1),
                                               num_training_steps=1, batch_size=8)
        model = tx.nn.LinearConvStepper(1, kernel_size=2, key=jr.PRNGKey(1))
        trainer.full_loss(model)   # a scalar
        ```
        """
        if len(self.stages) != 1:
            raise TypeError("`full_loss` needs a single configuration, not a curriculum.")
        configuration = self.stages[0][0]
        if isinstance(self.source, Trajectories):
            batch = self.source.all_windows(configuration)
        elif hasattr(self.source, "all_samples"):
            batch = self.source.all_samples()
        else:
            raise TypeError(
                f"`full_loss` needs a finite data set; {type(self.source).__name__} draws "
                "new data at every step."
            )
        indices = jnp.arange(jax.tree_util.tree_leaves(batch)[0].shape[0])
        return self._loss(configuration, model, batch, key, indices)

    def __repr__(self) -> str:
        configuration = (
            repr(self.stages[0][0])
            if len(self.stages) == 1
            else f"Curriculum({len(self.stages)} stages)"
        )
        fields = {
            "source": f"{type(self.source).__name__}({_describe_source(self.source)})",
            "configuration": configuration.replace("\n", "\n  "),
            "optimizer": _describe_optimizer(self.optimizer),
            "num_training_steps": self.num_training_steps,
            "batch_size": self.batch_size,
            "ref_stepper": None if self.ref_stepper is None else type(self.ref_stepper).__name__,
            "residuum_fn": None if self.residuum_fn is None else getattr(
                self.residuum_fn, "__name__", type(self.residuum_fn).__name__
            ),
            "callback_fn": None if self.callback_fn is None else type(self.callback_fn).__name__,
            "chunk_size": self.chunk_size,
            "nan_policy": repr(self.nan_policy),
            "checkpoint_path": None if self.checkpoint_path is None else repr(
                os.fspath(self.checkpoint_path)
            ),
        }
        body = ",\n".join(f"  {name}={value}" for name, value in fields.items())
        return f"{type(self).__name__}(\n{body}\n)"

    def _checked_loss_dtype(self, model):
        """Check `model` and find the loss dtype, once per kind of model: both trace
        the configuration, which costs more than many small training steps."""
        leaves, treedef = jax.tree_util.tree_flatten(model)
        signature = (treedef, tuple(
            (leaf.shape, leaf.dtype) if isinstance(leaf, (jax.Array, np.ndarray)) else leaf
            for leaf in leaves
        ))
        try:
            hash(signature)
        except TypeError:
            signature = None
        if signature is not None and signature in self._checked:
            return self._checked[signature]
        self.check_model(model)
        dtype = self._loss_dtype(model)
        if signature is not None:
            self._checked[signature] = dtype
        return dtype

    def _loss_dtype(self, model):
        configuration = self.stages[0][0]
        example = self.source.example_batch(configuration, self.batch_size)
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        indices = jax.ShapeDtypeStruct((self.batch_size,), jnp.int32)
        try:
            out = eqx.filter_eval_shape(
                lambda m, b, k, i: self._loss(configuration, m, b, k, i),
                model, example, key, indices,
            )
        except Exception as error:
            raise ValueError(
                f"{type(configuration).__name__} fails on `model` and one minibatch of "
                f"the data: {type(error).__name__}: {error}"
            ) from error
        if getattr(out, "shape", None) != ():
            raise ValueError(
                f"{type(configuration).__name__} must return a scalar loss, got shape "
                f"{getattr(out, 'shape', None)}."
            )
        return np.dtype(out.dtype)

    def __call__(
        self,
        model,
        key=None,
        opt_state=None,
        *,
        return_loss_history: bool = True,
        record_loss_every: int = 1,
        spawn_tqdm: Optional[bool] = None,
        resume_from: Optional[Union[str, os.PathLike]] = None,
    ):
        """Train `model`; see the class docstring for what comes back.

        **Arguments:**

        - `model`: the model (any PyTree; its floating-point arrays train).
        - `key`: a JAX PRNG key: the minibatch permutations and the per-step
            keys derive from it.
        - `opt_state`: an optimizer state to start from (default
            `optimizer.init` of the model's parameters).
        - `return_loss_history`: return the loss history (default True).
        - `record_loss_every`: keep every k-th step's loss in the returned
            history (default 1: all).
        - `spawn_tqdm`: show the progress bar (default: the constructor's
            `progress_bar`).
        - `resume_from`: a checkpoint written by this trainer; training goes
            on from its step, to this trainer's `num_training_steps`.
        """
        record_loss_every = positive_int("record_loss_every", record_loss_every)
        loss_dtype = self._checked_loss_dtype(model)
        mask = self._trainable_mask(model)
        if self.per_sample is not None:
            self._table_mask = self._check_tables(model, mask)
        params, static = eqx.partition(model, mask)
        if opt_state is None:
            opt_state = self._init_fn(static)(params)
        total = self.num_training_steps
        loss_history = np.full(total, np.nan, dtype=loss_dtype)
        step = 0
        if resume_from is not None:
            skeleton_key = np.zeros(2, np.uint32) if key is None else _as_raw_key(key)
            state = load_state(resume_from, params, opt_state, skeleton_key)
            params, opt_state = state["params"], state["opt_state"]
            step = int(state["step"])
            if step > total:
                raise ValueError(
                    f"`resume_from`: the checkpoint is at step {step}, past this trainer's "
                    f"num_training_steps ({total})."
                )
            loss_history[:step] = state["loss_history"][:step]
            key = jnp.asarray(state["key"])
        raw_key = _as_raw_key(key)
        key_base = _key_base(raw_key)
        # fresh buffers: the chunk runner donates them
        params, opt_state = _fresh_copies((params, opt_state))
        if self.mesh is not None:
            params, opt_state = replicate((params, opt_state), self.mesh)
            key_base = replicate(key_base, self.mesh)

        callback_history = []
        nan_seen = False
        show = self.progress_bar if spawn_tqdm is None else bool(spawn_tqdm)
        bar = tqdm(total=total, initial=step, desc="training") if show else _NoBar()
        # the chunk dispatched last, whose losses are read once the next one is
        # dispatched: the host's work between chunks (the next minibatch
        # indices, a host feed's reads) overlaps the device's
        pending = None
        # steps per chunk: a given chunk_size, or sized to the measured step time
        # (a later call starts from the span the last one ended with)
        span = self._capacity if self.chunk_size is not None else (
            self._span or min(100, self._capacity))
        clock = time.perf_counter()

        def flush():
            nonlocal pending, nan_seen, span, clock
            if pending is None:
                return
            losses, lo, hi = pending
            pending = None
            losses = to_host(losses)[: hi - lo]
            now = time.perf_counter()
            if self.chunk_size is None:  # the chunk ran (about) since the last read
                per_step = max(now - clock, 1e-9) / (hi - lo)
                span = self._span = int(min(self._capacity, max(1, _CHUNK_SECONDS / per_step)))
            clock = now
            loss_history[lo:hi] = losses
            nan_seen = self._check_finite(losses, lo, nan_seen)
            bar.update(len(losses))
            bar.set_postfix(loss=f"{losses[-1]:.3e}", refresh=False)

        try:
            for stage in self._stages(raw_key):
                if stage.end <= step and stage.index < len(self.stages) - 1:
                    continue
                runners = {}  # compiled lazily, per minibatch size
                while step < stage.end:
                    if self._callback_due(step):
                        flush()  # a callback sees the loss history up to its step
                        self._run_callback(step, params, static, opt_state, stage, key_base,
                                           loss_history, callback_history)
                    end = stage.chunk_end(step, self._next_boundary(step, stage.end, span))
                    indices = stage.indices(step, end - step, self._capacity)
                    feed = self._stage_feed(stage, indices)
                    feed_dynamic, feed_static = eqx.partition(feed, eqx.is_array)
                    if self.mesh is not None:
                        feed_dynamic, indices = replicate((feed_dynamic, indices), self.mesh)
                    size = "mixed" if stage.mixed else indices.shape[1]
                    if size not in runners:
                        runners[size] = self._chunk_runner(
                            stage, size, static, feed_static, loss_dtype
                        )
                    params, opt_state, losses = runners[size](
                        params, opt_state, feed_dynamic, indices, key_base, step, end - step
                    )
                    flush()
                    pending = (losses, step, end)
                    step = end
                    if self.checkpoint_every is not None and step % self.checkpoint_every == 0:
                        flush()
                        save_state(
                            self.checkpoint_path, params, opt_state, step, loss_history, raw_key
                        )
                flush()
            # the final model: the batch is the one a further step would draw
            self._run_callback(step, params, static, opt_state, stage, key_base,
                               loss_history, callback_history)
            if self.checkpoint_path is not None:
                save_state(self.checkpoint_path, params, opt_state, step, loss_history, raw_key)
        finally:
            bar.close()

        model = eqx.combine(params, static)
        outputs = [model]
        if return_loss_history:
            outputs.append(loss_history[::record_loss_every])
        if self.callback_fn is not None:
            outputs.append(callback_history)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _check_finite(self, losses: np.ndarray, first_step: int, seen: bool) -> bool:
        """Raise (or warn once per run) at the first non-finite loss."""
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size == 0 or seen:
            return seen or bad.size > 0
        where = first_step + int(bad[0])
        message = (
            f"The training loss became {losses[bad[0]]} at step {where}. Lower the "
            "learning rate, shorten the rollout or check the data; pass "
            "nan_policy='continue' to keep training anyway."
        )
        if self.nan_policy == "raise":
            raise NonFiniteLossError(where, message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return True

    def _batch_at(self, stage, step, key_base):
        """The minibatch, keys and indices that training step `step` uses."""
        indices = stage.indices(step, 1, 1)
        if stage.mixed:
            full, short, is_short = indices
            indices = short if is_short[0] else full
        draw_key, loss_key = _split_step(key_base, step)
        feed = self._stage_feed(stage, indices)
        batch = feed(0, jnp.asarray(indices[0]), draw_key)
        row = indices[0] if stage.mixer is not None else None
        return batch, loss_key, row

    def _callback_due(self, step: int) -> bool:
        callback = self.callback_fn
        return callback is not None and step % getattr(callback, "every", 1) == 0

    def _run_callback(
        self, step, params, static, opt_state, stage, key_base, loss_history, callback_history
    ):
        callback = self.callback_fn
        if not self._callback_due(step):
            return
        configuration = stage.configuration
        batch, loss_key, indices = self._batch_at(stage, step, key_base)
        if not isinstance(callback, BaseCallback):
            # the rollout taxonomy's protocol: fn(update_i, model, batch) at every
            # update step, one output per step
            if step < self.num_training_steps:
                model = eqx.combine(jax.tree_util.tree_map(jnp.copy, params), static)
                callback_history.append(callback(step, model, batch))
            return

        # one function per stage: callbacks that jit it (Loss, GradNorm) then
        # compile once instead of at every call
        loss_fn = self._callback_loss_fns.get(id(configuration))
        if loss_fn is None:

            def loss_fn(model, batch, *, key=None, indices=None):
                return self._loss(configuration, model, batch, key, indices)

            self._callback_loss_fns[id(configuration)] = loss_fn
        bound = _BoundLoss(loss_fn, loss_key, None if indices is None else jnp.asarray(indices))

        # copies: the next chunk donates (deletes) the params and opt_state
        # buffers, and a callback may keep what it is given (e.g. GetNetwork)
        params = jax.tree_util.tree_map(jnp.copy, params)
        opt_state = jax.tree_util.tree_map(jnp.copy, opt_state)
        context = CallbackContext(
            batch=batch,
            loss_fn=bound,
            configuration=configuration,
            opt_state=opt_state,
            loss_history=loss_history[:step],
            key=loss_key,
            indices=indices,
        )
        output = callback(step, eqx.combine(params, static), context)
        if output is not None:
            callback_history.append((step, output))


class _NoBar:
    """What the loop calls on a progress bar, when none is shown."""

    def update(self, n):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


class _BoundLoss(eqx.Module):
    """`loss_fn(model, batch)` with a step's key and indices bound (a PyTree, so
    callbacks can `eqx.filter_jit` it and reuse the compiled function)."""

    loss_fn: Callable = eqx.field(static=True)
    key: jax.Array
    indices: Optional[jax.Array]

    def __call__(self, model, batch):
        return self.loss_fn(model, batch, key=self.key, indices=self.indices)


def _describe_source(source) -> str:
    if isinstance(source, Trajectories):
        return "trajectories of shape " + str(tuple(source.trajectories.shape))
    if hasattr(source, "num_samples"):
        return f"{source.num_samples} samples"
    return getattr(source.fn, "__name__", type(source.fn).__name__)


def _describe_optimizer(optimizer) -> str:
    # optax transformations are NamedTuples of closures: name what made them
    init = getattr(optimizer, "init", None)
    qualname = getattr(init, "__qualname__", "")
    return qualname.split(".<locals>")[0] if qualname else type(optimizer).__name__


@jax.jit
def _fresh_copies(tree):
    """Copies of every array leaf (in one dispatch): the chunk runner donates them."""
    return jax.tree_util.tree_map(jnp.copy, tree)


class _DenseUpdate:
    """The optimizer step on every trained leaf."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def init(self, params):
        return self.optimizer.init(params)

    def update(self, params, grads, opt_state, indices):
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state


class _RowSparseUpdate:
    """The dense step for the networks, a row-sparse one for per-sample tables.

    The tables' optimizer runs on the minibatch's rows only (parameters,
    gradients and the state leaves with one row per sample, gathered), and
    the results are scattered back: rows outside the batch are untouched.
    """

    def __init__(self, optimizer, table_optimizer, table_mask, num_samples):
        self.optimizer, self.table_optimizer = optimizer, table_optimizer
        self.table_mask, self.num_samples = table_mask, num_samples

    def _split(self, tree):
        tables, dense = eqx.partition(tree, self.table_mask)
        return dense, tables

    def _is_row(self, leaf):
        return getattr(leaf, "ndim", 0) >= 1 and leaf.shape[0] == self.num_samples

    def init(self, params):
        dense, tables = self._split(params)
        return self.optimizer.init(dense), self.table_optimizer.init(tables)

    def update(self, params, grads, opt_state, indices):
        dense_state, table_state = opt_state
        dense, tables = self._split(params)
        dense_grads, table_grads = self._split(grads)
        updates, dense_state = self.optimizer.update(dense_grads, dense_state, dense)
        dense = optax.apply_updates(dense, updates)

        rows = lambda tree: jax.tree_util.tree_map(lambda x: x[indices], tree)  # noqa: E731
        state_rows = jax.tree_util.tree_map(
            lambda x: x[indices] if self._is_row(x) else x, table_state
        )
        row_updates, new_rows = self.table_optimizer.update(
            rows(table_grads), state_rows, rows(tables)
        )
        tables = jax.tree_util.tree_map(lambda x, u: x.at[indices].add(u), tables, row_updates)
        table_state = jax.tree_util.tree_map(
            lambda old, new: old.at[indices].set(new) if self._is_row(old) else new,
            table_state,
            new_rows,
        )
        return eqx.combine(dense, tables), (dense_state, table_state)
