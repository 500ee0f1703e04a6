"""The trainer: a data source, a configuration, an optimizer, one compiled loop."""

from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checks import check_stepper, positive_int
from ..callback import CallbackContext
from ..configuration import BaseConfiguration
from ._checkpoint import load_state, save_state
from ._curriculum import Curriculum
from ._mixer import PermutationMixer
from ._sources import AbstractDataSource, Sampler, Trajectories, as_source

# The per-step keys come from their own stream of the trainer's key, so the
# minibatch permutations (drawn from the key itself) do not depend on them.
_STEP_KEY_STREAM = 0x7374_6570  # "step"


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
    base = jr.fold_in(_as_raw_key(key), _STEP_KEY_STREAM)
    return _split_step(base, step)


def _split_step(base, step):
    keys = jr.split(jr.fold_in(base, step))
    return keys[0], keys[1]


class _Stage:
    """What one configuration of the schedule trains on: its feed and its mixer."""

    def __init__(self, trainer, index, configuration, start, end, raw_key):
        self.index, self.configuration, self.start, self.end = index, configuration, start, end
        source, batch_size = trainer.source, trainer.batch_size
        num_items = source.num_items(configuration)
        self.mixer = (
            None
            if num_items is None
            else PermutationMixer(num_items, batch_size, key=jr.fold_in(raw_key, index))
        )
        self.feed = None if source.host else source.feed(configuration, batch_size)

    def indices(self, start_step: int, num_steps: int, rows: int, batch_size: int):
        """Minibatch indices of the stage's steps, padded to `rows` rows."""
        indices = np.zeros((rows, batch_size), dtype=np.int32)
        if self.mixer is not None:
            indices[:num_steps] = self.mixer.chunk(start_step - self.start, num_steps)
        return indices


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
    step) is compiled once per configuration and runs `chunk_size` steps per
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
        composite); it runs every `callback_fn.every` steps between chunks.
    - `chunk_size`: training steps per compiled dispatch (default 100).
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
        chunk_size: int = 100,
        progress_bar: bool = True,
        nan_policy: str = "raise",
        checkpoint_path: Optional[Union[str, os.PathLike]] = None,
        checkpoint_every: Optional[int] = None,
        host_data: Optional[bool] = None,
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

        for config, _ in stages:
            source.check(config, batch_size)
            config.check_dependencies(ref_stepper, residuum_fn)
            num_items = source.num_items(config)
            if num_items is not None and batch_size > num_items:
                what = (
                    f"{num_items} windows of {config.window_length} time levels from "
                    f"{source.trajectories.shape[0]} trajectories"
                    if isinstance(source, Trajectories)
                    else f"{num_items} samples"
                )
                raise ValueError(
                    f"`batch_size` ({batch_size}) exceeds the number of training "
                    f"{'windows' if isinstance(source, Trajectories) else 'samples'} "
                    f"({what})."
                )
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
        self.progress_bar = progress_bar
        self.nan_policy = nan_policy
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self._compiled = {}
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

    def _make_chunk_runner(self, configuration, static, feed_static, loss_dtype):
        optimizer, chunk = self.optimizer, self.chunk_size

        def loss_fn(params, batch, key, indices):
            return self._loss(configuration, eqx.combine(params, static), batch, key, indices)

        def run_chunk(params, opt_state, feed_dynamic, indices, key_base, start, num_steps):
            feed = eqx.combine(feed_dynamic, feed_static)

            def body(i, carry):
                params, opt_state, losses = carry
                draw_key, loss_key = _split_step(key_base, start + i)
                batch = feed(i, indices[i], draw_key)
                loss, grads = jax.value_and_grad(loss_fn)(params, batch, loss_key, indices[i])
                updates, opt_state = optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
                return params, opt_state, losses.at[i].set(loss)

            losses = jnp.zeros(chunk, dtype=loss_dtype)
            return jax.lax.fori_loop(0, num_steps, body, (params, opt_state, losses))

        return jax.jit(run_chunk, donate_argnums=(0, 1))

    def _chunk_runner(self, stage, static, feed_static, loss_dtype):
        # reuse the compiled update across calls with the same kind of model
        leaves, treedef = jax.tree_util.tree_flatten(static)
        make = lambda: self._make_chunk_runner(  # noqa: E731
            stage.configuration, static, feed_static, loss_dtype
        )
        try:
            cache_key = (stage.index, treedef, tuple(leaves))
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
    def _stages(self, raw_key):
        start = 0
        for index, (configuration, num_steps) in enumerate(self.stages):
            yield _Stage(self, index, configuration, start, start + num_steps, raw_key)
            start += num_steps

    def _next_boundary(self, step: int, stage_end: int) -> int:
        periods = [self.chunk_size]
        if self.callback_fn is not None:
            periods.append(self.callback_fn.every)
        if self.checkpoint_every is not None:
            periods.append(self.checkpoint_every)
        nxt = min((step // p + 1) * p for p in periods)
        return min(nxt, stage_end)

    def check_model(self, model) -> None:
        """Raise a clear error if `model` does not fit every configuration and the data."""
        for configuration, _ in self.stages:
            example = self.source.example_batch(configuration, self.batch_size)
            configuration.check_model(model, example)

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
        *,
        return_loss_history: bool = True,
        resume_from: Optional[Union[str, os.PathLike]] = None,
    ):
        self.check_model(model)
        loss_dtype = self._loss_dtype(model)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        opt_state = self.optimizer.init(params)
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
        key_base = jr.fold_in(raw_key, _STEP_KEY_STREAM)
        # fresh buffers: the chunk runner donates them
        params = jax.tree_util.tree_map(jnp.array, params)
        opt_state = jax.tree_util.tree_map(jnp.array, opt_state)

        callback_history = []
        nan_seen = False
        bar = tqdm(total=total, initial=step, disable=not self.progress_bar, desc="training")
        try:
            for stage in self._stages(raw_key):
                if stage.end <= step and stage.index < len(self.stages) - 1:
                    continue
                run_chunk = None  # compiled lazily: a finished stage needs none
                while step < stage.end:
                    self._run_callback(step, params, static, opt_state, stage, key_base,
                                       loss_history, callback_history)
                    end = self._next_boundary(step, stage.end)
                    indices = stage.indices(step, end - step, self.chunk_size, self.batch_size)
                    feed = self._stage_feed(stage, indices)
                    feed_dynamic, feed_static = eqx.partition(feed, eqx.is_array)
                    if run_chunk is None:
                        run_chunk = self._chunk_runner(stage, static, feed_static, loss_dtype)
                    params, opt_state, losses = run_chunk(
                        params, opt_state, feed_dynamic, indices, key_base, step, end - step
                    )
                    losses = np.asarray(losses)[: end - step]
                    loss_history[step:end] = losses
                    nan_seen = self._check_finite(losses, step, nan_seen)
                    step = end
                    bar.update(len(losses))
                    bar.set_postfix(loss=f"{losses[-1]:.3e}", refresh=False)
                    if self.checkpoint_every is not None and step % self.checkpoint_every == 0:
                        save_state(
                            self.checkpoint_path, params, opt_state, step, loss_history, raw_key
                        )
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
            outputs.append(loss_history)
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
        indices = stage.indices(step, 1, 1, self.batch_size)
        draw_key, loss_key = _split_step(key_base, step)
        feed = self._stage_feed(stage, indices)
        batch = feed(0, jnp.asarray(indices[0]), draw_key)
        row = indices[0] if stage.mixer is not None else None
        return batch, loss_key, row

    def _run_callback(
        self, step, params, static, opt_state, stage, key_base, loss_history, callback_history
    ):
        callback = self.callback_fn
        if callback is None or step % callback.every != 0:
            return
        configuration = stage.configuration
        batch, loss_key, indices = self._batch_at(stage, step, key_base)

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


class _BoundLoss(eqx.Module):
    """`loss_fn(model, batch)` with a step's key and indices bound (a PyTree, so
    callbacks can `eqx.filter_jit` it and reuse the compiled function)."""

    loss_fn: Callable = eqx.field(static=True)
    key: jax.Array
    indices: Optional[jax.Array]

    def __call__(self, model, batch):
        return self.loss_fn(model, batch, key=self.key, indices=self.indices)
