"""The trainer: minibatches of trajectory windows, a configuration, an optimizer."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checks import positive_int
from ..configuration import BaseConfiguration
from ._checkpoint import load_state, save_state
from ._curriculum import Curriculum
from ._mixer import PermutationMixer
from ._substack import (
    HostSubStacker,
    TrajectorySubStacker,
    _check_trajectories,
    count_windows,
    is_host_source,
)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; `.step` is the first such step."""

    def __init__(self, step: int, message: str):
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class CallbackContext:
    """What a callback may look at, besides the step and the model.

    **Fields:**

    - `batch`: the minibatch `(B, W, C, *N)` the trainer draws at this step.
    - `loss_fn`: `loss_fn(model, batch) -> scalar`, the current configuration's loss.
    - `configuration`: the configuration in force at this step.
    - `opt_state`: the optimizer state.
    - `loss_history`: the losses of the steps done so far (NumPy, float32).
    """

    batch: Any
    loss_fn: Callable
    configuration: BaseConfiguration
    opt_state: Any
    loss_history: np.ndarray


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


def _check_stepper_shape(name: str, stepper, state_shape, dtype) -> None:
    probe = jax.ShapeDtypeStruct(state_shape, dtype)
    try:
        out = eqx.filter_eval_shape(stepper, probe)
    except Exception as error:
        raise ValueError(
            f"`{name}` cannot be applied to one state of the trajectories, of shape "
            f"{tuple(state_shape)} (C, *N): {type(error).__name__}: {error}"
        ) from error
    out_shape = getattr(out, "shape", None)
    if out_shape != tuple(state_shape):
        raise ValueError(
            f"`{name}` must map a state to a state of the same shape: it maps "
            f"{tuple(state_shape)} to {out_shape}. Check the model's channels and "
            "padding against the trajectories (S, T+1, C, *N)."
        )


class GeneralTrainer:
    """Trains a model with a configuration on minibatches of trajectory windows.

    The trajectories `(S, T+1, C, *N)` are cut into all windows of the length
    the configuration needs (see
    [`TrajectorySubStacker`][trainax.trainer.TrajectorySubStacker]); a
    [`PermutationMixer`][trainax.trainer.PermutationMixer] draws minibatches
    from them, every window once per epoch. The update (loss, gradient,
    optimizer step) is compiled once per configuration and runs `chunk_size`
    steps per dispatch inside one `lax.fori_loop`, with the parameter and
    optimizer buffers donated; Python only runs between chunks (progress bar,
    callbacks, checkpoints, the NaN check).

    **Arguments:**

    - `trajectories`: reference trajectories `(S, T+1, C, *N)`.
    - `configuration`: a [`BaseConfiguration`][trainax.configuration.BaseConfiguration],
        or a [`Curriculum`][trainax.trainer.Curriculum] of them.
    - `optimizer`: an `optax.GradientTransformation`.
    - `num_training_steps`: the number of updates (ignored, may be `None`,
        for a `Curriculum`, which brings its own).
    - `batch_size`: windows per minibatch.
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
    - `host_data`: keep the trajectories on the host and gather each chunk's
        windows there (for data larger than device memory). Default: on for
        array-likes that are not in memory (`np.memmap`, `h5py.Dataset`,
        zarr arrays), off for JAX and NumPy arrays, which move to the device.

    **Calling** `trainer(model, key, *, return_loss_history=True, resume_from=None)`
    returns `(model, loss_history)`, or `(model, loss_history, callback_history)`
    when a callback is given, where `loss_history` is a NumPy array holding
    the minibatch loss at each step and `callback_history` a list of
    `(step, output)` pairs.

    ```python
    trainer = tx.GeneralTrainer(data, tx.configuration.Supervised(5),
                                optax.adam(1e-3), 1000, 32)
    model, losses = trainer(model, jax.random.PRNGKey(0))
    ```
    """

    def __init__(
        self,
        trajectories,
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
        if host_data is None:
            host_data = is_host_source(trajectories)
        self.host_data = bool(host_data)
        if not self.host_data:
            trajectories = jnp.asarray(trajectories)
        if not np.issubdtype(np.dtype(trajectories.dtype), np.floating):
            raise TypeError(
                f"`trajectories` must hold floating-point values, got dtype {trajectories.dtype}."
            )
        for config, _ in stages:
            _check_trajectories(trajectories, config.window_length)
            config.check_dependencies(ref_stepper, residuum_fn)
            num_windows = count_windows(trajectories.shape, config.window_length)
            if batch_size > num_windows:
                raise ValueError(
                    f"`batch_size` ({batch_size}) exceeds the number of training windows "
                    f"({num_windows} windows of {config.window_length} time levels from "
                    f"{trajectories.shape[0]} trajectories)."
                )
        if ref_stepper is not None:
            _check_stepper_shape(
                "ref_stepper", ref_stepper, trajectories.shape[2:], trajectories.dtype
            )

        self.trajectories = trajectories
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

    # -- the compiled part -------------------------------------------------
    def _loss_fn(self, configuration, static):
        def loss_fn(params, batch):
            model = eqx.combine(params, static)
            return configuration(
                model, batch, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
            )

        return loss_fn

    def _make_chunk_runner(self, configuration, static):
        loss_fn = self._loss_fn(configuration, static)
        optimizer, chunk = self.optimizer, self.chunk_size

        def train_steps(params, opt_state, num_steps, get_batch):
            def body(i, carry):
                params, opt_state, losses = carry
                loss, grads = jax.value_and_grad(loss_fn)(params, get_batch(i))
                updates, opt_state = optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
                return params, opt_state, losses.at[i].set(loss)

            losses = jnp.zeros(chunk, dtype=jnp.result_type(float))
            return jax.lax.fori_loop(0, num_steps, body, (params, opt_state, losses))

        if self.host_data:
            # windows gathered on the host, one chunk at a time: (chunk, B, W, C, *N)
            def run_chunk(params, opt_state, batches, num_steps):
                return train_steps(params, opt_state, num_steps, lambda i: batches[i])
        else:
            # windows cut on the device from the trajectories, inside the loop
            def run_chunk(params, opt_state, substacker, indices, num_steps):
                return train_steps(
                    params, opt_state, num_steps, lambda i: substacker(indices[i])
                )

        return jax.jit(run_chunk, donate_argnums=(0, 1))

    def _run_chunk(self, run_chunk, params, opt_state, substacker, mixer, start, num_steps):
        # always `chunk_size` rows, so a shorter last chunk reuses the compiled
        # loop; the rows past `num_steps` are never read
        indices = np.zeros((self.chunk_size, self.batch_size), dtype=np.int32)
        indices[:num_steps] = mixer.chunk(start, num_steps)
        if self.host_data:
            return run_chunk(params, opt_state, substacker(indices), num_steps)
        return run_chunk(params, opt_state, substacker, indices, num_steps)

    def _chunk_runner(self, index, configuration, static):
        # reuse the compiled update across calls with the same kind of model
        leaves, treedef = jax.tree_util.tree_flatten(static)
        try:
            cache_key = (index, treedef, tuple(leaves))
            hash(cache_key)
        except TypeError:
            return self._make_chunk_runner(configuration, static)
        if cache_key not in self._compiled:
            self._compiled[cache_key] = self._make_chunk_runner(configuration, static)
        return self._compiled[cache_key]

    # -- the Python loop between chunks -----------------------------------
    def _stage_bounds(self):
        start = 0
        for index, (configuration, num_steps) in enumerate(self.stages):
            yield index, configuration, start, start + num_steps
            start += num_steps

    def _next_boundary(self, step: int, stage_end: int) -> int:
        periods = [self.chunk_size]
        if self.callback_fn is not None:
            periods.append(self.callback_fn.every)
        if self.checkpoint_every is not None:
            periods.append(self.checkpoint_every)
        nxt = min((step // p + 1) * p for p in periods)
        return min(nxt, stage_end)

    def __call__(
        self,
        model,
        key=None,
        *,
        return_loss_history: bool = True,
        resume_from: Optional[Union[str, os.PathLike]] = None,
    ):
        _check_stepper_shape(
            "model", model, self.trajectories.shape[2:], self.trajectories.dtype
        )
        params, static = eqx.partition(model, eqx.is_inexact_array)
        opt_state = self.optimizer.init(params)
        total = self.num_training_steps
        loss_history = np.full(total, np.nan, dtype=np.float32)
        step = 0
        if resume_from is not None:
            skeleton_key = np.zeros(2, np.uint32) if key is None else _as_raw_key(key)
            state = load_state(resume_from, params, opt_state, total, skeleton_key)
            params, opt_state = state["params"], state["opt_state"]
            step = int(state["step"])
            loss_history[:step] = state["loss_history"][:step]
            key = jnp.asarray(state["key"])
        raw_key = _as_raw_key(key)
        # fresh buffers: the chunk runner donates them
        params = jax.tree_util.tree_map(jnp.array, params)
        opt_state = jax.tree_util.tree_map(jnp.array, opt_state)

        callback_history = []
        nan_seen = False
        bar = tqdm(total=total, initial=step, disable=not self.progress_bar, desc="training")
        try:
            for index, configuration, stage_start, stage_end in self._stage_bounds():
                if stage_end <= step and index < len(self.stages) - 1:
                    continue
                substacker, mixer = self._stage_data(index, configuration, raw_key)
                run_chunk = None  # compiled lazily: a finished stage needs none
                while step < stage_end:
                    self._run_callback(step, params, static, opt_state, configuration,
                                       lambda: substacker(mixer(step - stage_start)),
                                       loss_history, callback_history)
                    if run_chunk is None:
                        run_chunk = self._chunk_runner(index, configuration, static)
                    end = self._next_boundary(step, stage_end)
                    params, opt_state, losses = self._run_chunk(
                        run_chunk, params, opt_state, substacker, mixer,
                        step - stage_start, end - step,
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
            self._run_callback(step, params, static, opt_state, configuration,
                               lambda: substacker(mixer(step - stage_start)),
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

    def _stage_data(self, index, configuration, raw_key):
        stacker = HostSubStacker if self.host_data else TrajectorySubStacker
        substacker = stacker(self.trajectories, configuration.window_length)
        mixer = PermutationMixer(
            substacker.num_windows, self.batch_size, key=jr.fold_in(raw_key, index)
        )
        return substacker, mixer

    def _run_callback(
        self, step, params, static, opt_state, configuration, batch_fn, loss_history,
        callback_history,
    ):
        callback = self.callback_fn
        if callback is None or step % callback.every != 0:
            return

        # one function per stage: callbacks that jit it (Loss, GradNorm) then
        # compile once instead of at every call
        loss_fn = self._callback_loss_fns.get(id(configuration))
        if loss_fn is None:

            def loss_fn(model, batch):
                return configuration(
                    model, batch, ref_stepper=self.ref_stepper, residuum_fn=self.residuum_fn
                )

            self._callback_loss_fns[id(configuration)] = loss_fn

        # copies: the next chunk donates (deletes) the params and opt_state
        # buffers, and a callback may keep what it is given (e.g. GetNetwork)
        params = jax.tree_util.tree_map(jnp.copy, params)
        opt_state = jax.tree_util.tree_map(jnp.copy, opt_state)
        context = CallbackContext(
            batch=batch_fn(),
            loss_fn=loss_fn,
            configuration=configuration,
            opt_state=opt_state,
            loss_history=loss_history[:step],
        )
        output = callback(step, eqx.combine(params, static), context)
        if output is not None:
            callback_history.append((step, output))
