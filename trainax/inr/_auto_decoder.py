"""The trainable DINo model: a table of codes, the decoder, the dynamics, a step counter."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Real

from .._checks import positive_int
from ._auto_decode import forecast
from ._fourier_net import FourierNet
from ._latent_ode import LatentODE


class AutoDecoder(eqx.Module):
    """Codes for every trajectory and frame, the decoder that maps them to fields, the dynamics.

    The model that [`tx.configuration.AutoDecoding`][trainax.configuration.AutoDecoding]
    trains: `codes[s, t]` are the codes `(K, code_dim)` of frame `t` of
    trajectory `s` (one code per channel, `K = num_channels // decoder.out_dim`),
    all zero at first as in DINo; `decoder.field(codes[s, t], coords)` is the
    frame at any points, and `dynamics` moves the codes in time. Train the
    codes row-sparse (only the minibatch's trajectories move) by passing
    `per_sample=lambda m: m.codes` to the trainer.

    `step` counts the updates the model has had. The trainer trains every
    floating-point array, and [`step_counter`][trainax.inr.step_counter] (part
    of [`auto_decoder_optimizer`][trainax.inr.auto_decoder_optimizer]) turns
    the counter's update into `+1`; the configuration reads it for its
    teacher-forcing schedule, and a checkpoint restores it with the rest.

    **Arguments:**

    - `decoder`: a [`FourierNet`][trainax.inr.FourierNet].
    - `dynamics`: a [`LatentODE`][trainax.inr.LatentODE] with
        `code_size = K * decoder.code_dim`.
    - `num_samples`: trajectories `S` (rows of the table).
    - `num_frames`: frames `T` per trajectory.
    - `num_channels`: channels `C` of a state (default 1).

    **Fields:** `codes` `(S, T, K, code_dim)`, `decoder`, `dynamics`, `step` (a
    float scalar).

    ```python
    decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=3, num_frames=5)
    model.codes.shape   # (3, 5, 1, 8)
    ```
    """

    codes: Float[Array, "S T K code_dim"]
    decoder: FourierNet
    dynamics: LatentODE
    step: Float[Array, ""]

    def __init__(
        self,
        decoder: FourierNet,
        dynamics: LatentODE,
        *,
        num_samples: int,
        num_frames: int,
        num_channels: int = 1,
    ):
        if not isinstance(decoder, FourierNet):
            raise TypeError(
                f"`decoder` must be a tx.inr.FourierNet, got {type(decoder).__name__}."
            )
        if not isinstance(dynamics, LatentODE):
            raise TypeError(
                f"`dynamics` must be a tx.inr.LatentODE, got {type(dynamics).__name__}."
            )
        num_samples = positive_int("num_samples", num_samples)
        num_frames = positive_int("num_frames", num_frames)
        num_channels = positive_int("num_channels", num_channels)
        if num_channels % decoder.out_dim:
            raise ValueError(
                f"`num_channels` must be a multiple of the decoder's out_dim = "
                f"{decoder.out_dim}, got {num_channels}."
            )
        num_codes = num_channels // decoder.out_dim
        if dynamics.code_size != num_codes * decoder.code_dim:
            raise ValueError(
                f"`dynamics` must act on codes of {num_codes * decoder.code_dim} entries "
                f"({num_codes} x {decoder.code_dim}), got code_size = {dynamics.code_size}."
            )
        dtype = decoder.output.weight.dtype
        self.codes = jnp.zeros((num_samples, num_frames, num_codes, decoder.code_dim), dtype)
        self.decoder = _strong(decoder)
        self.dynamics = _strong(dynamics)
        self.step = jnp.zeros((), dtype)

    def forecast(
        self,
        observations: Float[Array, "P C"],
        coords: Float[Array, "P d"],
        times: Real[Array, " T"],
        query_coords: Float[Array, "Q d"],
        *,
        mask: Bool[Array, " P"] | None = None,
        num_steps: int = 300,
        learning_rate: float | int = 1e-2,
    ) -> Float[Array, "T Q C"]:
        """[`tx.inr.forecast`][trainax.inr.forecast] with this model's decoder and dynamics.

        Fits the codes of a new first frame (the table is not used), integrates
        them over `times` and decodes at `query_coords`.

        **Arguments:** as for `tx.inr.forecast`.

        **Returns:** the forecast `(T, Q, C)`.

        ```python
        decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
        dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
        model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=3, num_frames=5)
        coords = jr.uniform(jr.key(2), (50, 2))
        model.forecast(jnp.sin(coords[:, :1]), coords, jnp.arange(4.0), coords,
                       num_steps=10).shape   # (4, 50, 1)
        ```
        """
        return forecast(
            self.decoder,
            self.dynamics,
            observations,
            coords,
            times,
            query_coords,
            mask=mask,
            num_steps=num_steps,
            learning_rate=learning_rate,
        )


def _strong(tree):
    """`tree` with weak-typed arrays (such as scalars made from Python floats)
    made strong: an update makes them strong anyway, and the trainer would
    compile its update again for the new input types."""

    def strong(leaf):
        if isinstance(leaf, jax.Array) and leaf.aval.weak_type:
            return jnp.asarray(leaf, dtype=leaf.dtype)
        return leaf

    return jax.tree_util.tree_map(strong, tree)


def step_counter() -> optax.GradientTransformation:
    """An optax transformation that ignores the gradient and adds 1 at every update.

    For counters kept in a model, such as [`AutoDecoder.step`][trainax.inr.AutoDecoder]:
    after `n` updates the counter holds `n` exactly (up to `2**24` in float32).
    Use it inside `optax.multi_transform` (as
    [`auto_decoder_optimizer`][trainax.inr.auto_decoder_optimizer] does) as the
    last transformation of its leaves: a transformation chained after it would
    change the `+1`.

    **Arguments:** none.

    **Returns:** an `optax.GradientTransformation` with no state.

    ```python
    counter = tx.inr.step_counter()
    step = jnp.zeros(())
    updates, _ = counter.update(jnp.asarray(5.0), counter.init(step), step)
    optax.apply_updates(step, updates)   # 1.0
    ```
    """

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map(jnp.ones_like, updates), state

    return optax.GradientTransformation(init, update)


_PARTS = ("codes", "decoder", "dynamics", "step")


def auto_decoder_optimizer(
    *,
    decoder: optax.GradientTransformation | None = None,
    dynamics: optax.GradientTransformation | None = None,
    codes: optax.GradientTransformation | None = None,
) -> optax.GradientTransformation:
    """The optimizer of an [`AutoDecoder`][trainax.inr.AutoDecoder]: one per part.

    An `optax.multi_transform` over the model's fields: `decoder` for the
    decoder, `dynamics` for the dynamics and
    [`step_counter`][trainax.inr.step_counter] for `step`. The codes are
    meant to train row-sparse with the trainer's `per_sample=lambda m:
    m.codes` and `per_sample_optimizer=` (they then never reach this
    optimizer); pass `codes` to train them here instead, densely.

    **Arguments:**

    - `decoder`: the decoder's optimizer (default `optax.adam(1e-2)`, DINo's).
    - `dynamics`: the dynamics' optimizer (default `optax.adam(1e-3)`, DINo's).
    - `codes`: the codes' optimizer when they are not a per-sample table
        (default `None`: an error if the codes reach this optimizer).

    **Returns:** an `optax.GradientTransformation`.

    ```python
    # codes trained densely here; with a trainer, prefer per_sample= (see above)
    optimizer = tx.inr.auto_decoder_optimizer(codes=optax.adam(1e-3))
    decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=3, num_frames=5)
    state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    ```
    """
    transforms = {
        "decoder": optax.adam(1e-2) if decoder is None else decoder,
        "dynamics": optax.adam(1e-3) if dynamics is None else dynamics,
        "step": step_counter(),
    }
    if codes is not None:
        transforms["codes"] = codes
    for name, transform in (("decoder", decoder), ("dynamics", dynamics), ("codes", codes)):
        if transform is not None and not isinstance(transform, optax.GradientTransformation):
            raise TypeError(
                f"`{name}` must be an optax.GradientTransformation, got "
                f"{type(transform).__name__}."
            )
    return optax.multi_transform(transforms, lambda params: _labels(params, transforms))


def _labels(params, transforms):
    def label(path, leaf):
        name = getattr(path[0], "name", None) if path else None
        if name not in _PARTS:
            raise ValueError(
                f"`auto_decoder_optimizer` optimizes an AutoDecoder (fields {_PARTS}), got a "
                f"parameter at {jax.tree_util.keystr(path) or 'the root'}."
            )
        if name not in transforms:
            raise ValueError(
                "`codes` reach `auto_decoder_optimizer`: give the trainer "
                "per_sample=lambda m: m.codes and the codes' own per_sample_optimizer=, "
                "or pass codes= an optimizer here."
            )
        return name

    return jax.tree_util.tree_map_with_path(label, params)
