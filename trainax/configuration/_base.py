"""The abstract configuration, the shared rollout machinery and composition."""

from __future__ import annotations

import abc
from typing import Callable, ClassVar, Optional, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_stepper, positive_int
from ..loss import BaseLoss

Stepper = Callable[[Float[Array, "C *N"]], Float[Array, "C *N"]]
ResiduumFn = Callable[[Float[Array, "B C *N"], Float[Array, "B C *N"]], Float[Array, "B C *N"]]


class BaseConfiguration(eqx.Module):
    """How a model meets one minibatch: a callable PyTree returning a scalar loss.

    ```python
    config = tx.configuration.Supervised(2)
    model = lambda u: 0.9 * u                      # a stepper on one state (C, *N)
    batch = jnp.ones((4, 3, 1, 16))                # windows (B, W, C, *N)
    loss = config(model, batch, ref_stepper=None, residuum_fn=None, key=None)
    ```

    Trajectory configurations (the rollout taxonomy) take a `stepper`
    mapping one state `(C, *N)` to the next and a minibatch of windows
    `(B, W, C, *N)`, and say how many time levels `W` a window holds
    (`window_length`). Sample configurations (operator learning, physics
    losses) take any model and the minibatch of a
    [`Samples`][trainax.trainer.Samples] or [`Sampler`][trainax.trainer.Sampler]
    source as it is; their `window_length` is `None`. `key` is the per-step
    key the trainer splits from its own key and the step index (the same on
    resume); configurations that need no randomness ignore it. A
    configuration that keeps per-sample state sets `needs_indices = True` and
    is also given the minibatch's sample indices as `indices=`.
    Configurations add and scale: `0.5 * cfg_a + cfg_b` is a
    [`Composite`][trainax.configuration.Composite].
    """

    needs_ref_stepper: ClassVar[bool] = False
    needs_residuum_fn: ClassVar[bool] = False
    needs_indices: ClassVar[bool] = False

    @property
    def window_length(self) -> Optional[int]:
        """Time levels `W` per trajectory window; `None` for sample configurations."""
        return None

    @abc.abstractmethod
    def __call__(
        self,
        model,
        data,
        *,
        ref_stepper: Optional[Stepper] = None,
        residuum_fn: Optional[ResiduumFn] = None,
        key=None,
    ) -> Float[Array, ""]:
        """The scalar loss of `model` on one minibatch."""

    def check_model(self, model, batch) -> None:
        """Raise a clear error if `model` cannot serve this configuration.

        `batch` holds the shapes and dtypes (`jax.ShapeDtypeStruct`) of one
        minibatch. The default does nothing; the trainer calls it before it
        compiles anything.
        """

    def check_dependencies(self, ref_stepper=None, residuum_fn=None) -> None:
        """Raise if a needed `ref_stepper` or `residuum_fn` is missing."""
        name = type(self).__name__
        if self.needs_ref_stepper and ref_stepper is None:
            raise ValueError(
                f"{name} branches or continues with a reference solver: pass "
                "`ref_stepper=` (for example an exponax stepper), got None."
            )
        if self.needs_residuum_fn and residuum_fn is None:
            raise ValueError(
                f"{name} evaluates a residuum of consecutive states: pass "
                "`residuum_fn=` (a callable residuum_fn(u_next, u_prev) on batched "
                "states), got None."
            )

    def check_data(self, data) -> None:
        """Raise if `data` is not a batch of windows long enough for this configuration."""
        shape = getattr(data, "shape", None)
        if shape is None or len(shape) < 3:
            raise ValueError(
                "`data` must be a batch of trajectory windows of shape (B, W, C, *N); "
                f"got shape {shape}."
            )
        if shape[1] < self.window_length:
            raise ValueError(
                f"`data` windows hold {shape[1]} time levels, but {self!r} needs at "
                f"least {self.window_length} (num_rollout_steps plus the initial state)."
            )

    def __add__(self, other):
        if not isinstance(other, BaseConfiguration):
            return NotImplemented
        return Composite((self, other), (1.0, 1.0))

    def __radd__(self, other):
        # lets `sum([cfg_a, cfg_b])` start from 0
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, scale):
        if isinstance(scale, BaseConfiguration):
            return NotImplemented
        return Composite((self,), (float(scale),))

    __rmul__ = __mul__


def _check_weights(name: str, weights, expected: int):
    if weights is None:
        return jnp.ones(expected)
    weights = jnp.asarray(weights, dtype=float)
    if weights.shape != (expected,):
        raise ValueError(
            f"`{name}` must hold one weight per level: expected shape ({expected},), "
            f"got {weights.shape}."
        )
    return weights


def check_rollout_options(num_rollout_steps, cut_bptt_every):
    positive_int("num_rollout_steps", num_rollout_steps)
    positive_int("cut_bptt_every", cut_bptt_every)


def _unroll(num_steps: int) -> int:
    # Unrolling a few steps removes the per-iteration loop overhead that
    # dominates small steppers on CPU, while long rollouts still compile as
    # a loop (compile time stays flat in the rollout length).
    return max(1, min(num_steps, 8))


def network_rollout(
    stepper: Stepper,
    initial: Float[Array, "B C *N"],
    num_steps: int,
    *,
    cut_bptt: bool = False,
    cut_bptt_every: int = 1,
    remat: bool = False,
) -> Float[Array, "T B C *N"]:
    """Autoregressive rollout of `stepper` over a batch; returns states 1..T.

    With `cut_bptt`, the state `u_t` fed into the stepper is stop-gradiented
    whenever `t % cut_bptt_every == 0`, so gradients flow back at most
    `cut_bptt_every` steps. The returned states are not cut (a loss on `u_t`
    reaches the step that made it); cut them for their later uses with
    [`cut_states`][trainax.configuration.cut_states]. With `remat`, each step is rematerialised
    on the backward pass (`jax.checkpoint`), so memory grows with the carry
    only, not with the stepper's activations.
    """
    batched = jax.vmap(stepper)

    def step(u, t):
        if cut_bptt and cut_bptt_every == 1:
            u = jax.lax.stop_gradient(u)
        elif cut_bptt:
            u = jnp.where(t % cut_bptt_every == 0, jax.lax.stop_gradient(u), u)
        u_next = batched(u)
        return u_next, u_next

    if remat:
        step = jax.checkpoint(step)
    # unrolled steps would let XLA fuse the rematerialised forward passes
    # back into one, undoing the memory saving
    unroll = 1 if remat else _unroll(num_steps)
    _, trajectory = jax.lax.scan(step, initial, jnp.arange(num_steps), unroll=unroll)
    return trajectory


def cut_states(
    states: Float[Array, "L B C *N"],
    first_index: int,
    *,
    cut_bptt: bool,
    cut_bptt_every: int = 1,
) -> Float[Array, "L B C *N"]:
    """The main-chain states as later steps see them under `cut_bptt`.

    `states[l]` is the network output `u_k` with `k = first_index + l` (the
    data's initial state is `k = 0`). With `cut_bptt`, `u_k` (`k >= 1`) is
    stop-gradiented where `k % cut_bptt_every == 0`: a cut state is cut for
    every later use (the next network step, a reference branch or the
    post-physics steps that start from it, the residuum's `u_prev`), while a
    loss on `u_k` itself still reaches the network step that produced it.

    ```python
    states = jnp.ones((3, 2, 1, 8))     # u_1, u_2, u_3 of a batch of 2
    tx.configuration.cut_states(states, 1, cut_bptt=True, cut_bptt_every=2)
    ```
    """
    if not cut_bptt:
        return states
    index = first_index + jnp.arange(states.shape[0])
    cut = (index >= 1) & (index % cut_bptt_every == 0)
    cut = cut.reshape((-1,) + (1,) * (states.ndim - 1))
    return jnp.where(cut, jax.lax.stop_gradient(states), states)


def reference_rollout(ref_stepper: Stepper, initial, num_steps: int):
    """Rollout of a reference solver over a batch (no cuts); returns states 1..T."""
    batched = jax.vmap(ref_stepper)

    def step(u, _):
        u_next = batched(u)
        return u_next, u_next

    _, trajectory = jax.lax.scan(
        step, initial, None, length=num_steps, unroll=_unroll(num_steps)
    )
    return trajectory


def weighted_level_losses(
    loss: BaseLoss, predictions, targets, weights
) -> Float[Array, ""]:
    """`sum_l weights[l] * loss(predictions[l], targets[l])` over leading level axis.

    `targets=None` compares each level with zero (residuals).
    """
    if targets is None:
        per_level = jax.vmap(lambda p: loss(p))(predictions)
    else:
        per_level = jax.vmap(loss)(predictions, targets)
    return jnp.sum(weights * per_level)


def time_major(data: Float[Array, "B W C *N"]) -> Float[Array, "W B C *N"]:
    return jnp.moveaxis(data, 1, 0)


class AbstractRollout(BaseConfiguration):
    """The shared part of the rollout configurations: the network's chain.

    Holds the options every rollout configuration has and rolls the network
    out (see [`Supervised`][trainax.configuration.Supervised] for their
    meaning); subclasses say what the chain is compared with.
    """

    num_rollout_steps: eqx.AbstractVar[int]
    time_level_loss: eqx.AbstractVar[BaseLoss]
    cut_bptt: eqx.AbstractVar[bool]
    cut_bptt_every: eqx.AbstractVar[int]
    remat: eqx.AbstractVar[bool]

    def __check_init__(self):
        check_rollout_options(self.num_rollout_steps, self.cut_bptt_every)
        if not isinstance(self.time_level_loss, BaseLoss):
            raise TypeError(
                "`time_level_loss` must be a tx.loss loss (e.g. tx.loss.MSELoss()), "
                f"got {type(self.time_level_loss).__name__}."
            )

    @property
    @abc.abstractmethod
    def window_length(self) -> int:
        """The number of time levels `W` each data window must hold."""

    def check_model(self, model, batch) -> None:
        check_stepper("model", model, batch.shape[2:], batch.dtype)

    def cut(self, states, first_index: int):
        """`states` (`u_first_index, ...`) as later steps see them (see `cut_states`)."""
        return cut_states(
            states, first_index, cut_bptt=self.cut_bptt, cut_bptt_every=self.cut_bptt_every
        )

    def rollout(self, stepper: Stepper, initial: Float[Array, "B C *N"]):
        """The network's chain `u_1 .. u_T` from `initial`, `(T, B, C, *N)`."""
        return network_rollout(
            stepper,
            initial,
            self.num_rollout_steps,
            cut_bptt=self.cut_bptt,
            cut_bptt_every=self.cut_bptt_every,
            remat=self.remat,
        )


class Composite(BaseConfiguration):
    """A weighted sum of configurations, itself a configuration.

    ```python
    cfg = tx.configuration.Composite(
        (tx.configuration.Supervised(5), tx.configuration.Residuum(5)),
        weights=(1.0, 0.1),
    )
    # same as Supervised(5) + 0.1 * Residuum(5)
    ```

    **Arguments:**

    - `configurations`: the configurations to combine.
    - `weights`: one float per configuration (default all ones).
    """

    configurations: tuple[BaseConfiguration, ...]
    weights: tuple[float, ...]

    def __init__(
        self,
        configurations: Sequence[BaseConfiguration],
        weights: Optional[Sequence[float]] = None,
    ):
        configurations = tuple(configurations)
        if not configurations or not all(
            isinstance(c, BaseConfiguration) for c in configurations
        ):
            raise TypeError(
                "`configurations` must be a non-empty sequence of configurations, "
                f"got {configurations!r}."
            )
        if weights is None:
            weights = (1.0,) * len(configurations)
        weights = tuple(float(w) for w in weights)
        if len(weights) != len(configurations):
            raise ValueError(
                f"`weights` must hold one weight per configuration: expected "
                f"{len(configurations)}, got {len(weights)}."
            )
        # flatten nested composites so `a + b + c` stays one flat sum
        flat_cfgs, flat_w = [], []
        for cfg, w in zip(configurations, weights):
            if isinstance(cfg, Composite):
                flat_cfgs.extend(cfg.configurations)
                flat_w.extend(w * wi for wi in cfg.weights)
            else:
                flat_cfgs.append(cfg)
                flat_w.append(w)
        self.configurations = tuple(flat_cfgs)
        self.weights = tuple(flat_w)
        kinds = {c.window_length is None for c in self.configurations}
        if len(kinds) > 1:
            raise TypeError(
                "`configurations` mixes trajectory configurations (with windows) and "
                "sample configurations; a Composite takes one kind of data."
            )

    @property
    def window_length(self) -> Optional[int]:
        lengths = [c.window_length for c in self.configurations]
        return None if lengths[0] is None else max(lengths)

    def check_dependencies(self, ref_stepper=None, residuum_fn=None) -> None:
        for c in self.configurations:
            c.check_dependencies(ref_stepper, residuum_fn)

    @property
    def needs_indices(self) -> bool:  # type: ignore[override]
        return any(c.needs_indices for c in self.configurations)

    def check_model(self, model, batch) -> None:
        for c in self.configurations:
            c.check_model(model, batch)

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None, indices=None
    ):
        """The weighted sum of the parts' losses; every part gets the same `key`."""
        if self.window_length is not None:
            self.check_data(data)
        total = 0.0
        for c, w in zip(self.configurations, self.weights):
            extra = {"indices": indices} if c.needs_indices else {}
            total = total + w * c(
                model, data, ref_stepper=ref_stepper, residuum_fn=residuum_fn, key=key, **extra
            )
        return total


def exponential_time_level_weights(num_levels: int, discount: float) -> np.ndarray:
    """Weights `discount**l` for `l = 0..num_levels-1` (discounting later levels).

    ```python
    cfg = tx.configuration.Supervised(
        10, time_level_weights=tx.configuration.exponential_time_level_weights(10, 0.9)
    )
    ```
    """
    positive_int("num_levels", num_levels)
    return np.asarray(float(discount)) ** np.arange(num_levels)
