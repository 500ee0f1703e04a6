"""Auto-decoding with a frozen decoder: fit codes to observations, then forecast."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Real

from .._checks import positive_int
from ._checks import check_coords, check_mask, positive_real, shape_of
from ._fourier_net import FourierNet
from ._latent_ode import LatentODE


def masked_mse(
    prediction: Float[Array, "*batch P C"],
    target: Float[Array, "*batch P C"],
    mask: Bool[Array, " P"],
) -> Float[Array, ""]:
    """The mean squared error over the points a mask keeps.

    The mean runs over every channel, every leading (frame or sample) axis
    and the points with `mask` True, the same points for every frame. With
    `n` points kept and `m` left out of `P = n + m`,
    `n * masked_mse(p, t, mask) + m * masked_mse(p, t, ~mask) == P * mse(p, t)`.

    **Arguments:**

    - `prediction`, `target`: values `(*batch, P, C)`, points on axis -2.
    - `mask`: `(P,)` booleans, True at the points that count.

    **Returns:**

    A scalar.

    ```python
    mask = jnp.array([True, False, True])
    tx.inr.masked_mse(jnp.ones((3, 1)), jnp.zeros((3, 1)), mask)   # 1.0
    ```
    """
    shape = shape_of("prediction", prediction)
    if len(shape) < 2:
        raise ValueError(f"`prediction` must have shape (*batch, P, C), got shape {shape}.")
    if shape_of("target", target) != shape:
        raise ValueError(
            f"`target` must have the shape of `prediction` {shape}, got {target.shape}."
        )
    mask = check_mask(mask, shape[-2])
    return _masked_mse(prediction, target, mask)


def _masked_mse(prediction, target, mask):
    weights = mask[:, None].astype(prediction.dtype)
    squared = jnp.sum(weights * (prediction - target) ** 2)
    entries = jnp.sum(weights) * (prediction.size // mask.shape[0])
    return squared / entries


def fit_codes(
    decoder: FourierNet,
    coords: Float[Array, "P d"],
    values: Float[Array, "P C"],
    mask: Bool[Array, " P"] | None = None,
    *,
    num_steps: int = 300,
    learning_rate: float | int = 1e-2,
    code_shape: tuple[int, int] | None = None,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[Float[Array, "K code_dim"], Float[Array, ""]]:
    """Fit the codes of one observed state with the decoder frozen.

    Starts from the zero code and takes `num_steps` optimizer steps on the
    masked mean squared error between `decoder.field(code, coords)` and
    `values`, keeping the best code seen (the zero code included), all in one
    compiled `lax.scan`. Batch over frames or samples with `jax.vmap`.

    **Arguments:**

    - `decoder`: a [`FourierNet`][trainax.inr.FourierNet]; not trained.
    - `coords`: the observed points `(P, d)`.
    - `values`: the observations `(P, C)`.
    - `mask`: `(P,)` booleans, True at the points that count (default all).
    - `num_steps`: optimizer steps (300 to 500 in DINo).
    - `learning_rate`: Adam's learning rate (default 1e-2).
    - `code_shape`: the codes' shape `(K, code_dim)` with `K * out_dim = C`;
        default `(C // decoder.out_dim, decoder.code_dim)`.
    - `optimizer`: an optax optimizer to use instead of `optax.adam(learning_rate)`
        (pass the same object to repeated calls: each new one compiles again).

    **Returns:**

    `(codes, loss)`: the best codes `(K, code_dim)` and their masked MSE.

    ```python
    decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
    coords = jr.uniform(jr.key(1), (50, 2))
    values = jnp.sin(6.0 * coords[:, :1])
    codes, loss = tx.inr.fit_codes(decoder, coords, values, num_steps=20)
    codes.shape   # (1, 8)
    ```
    """
    num_points = check_coords("coords", coords, decoder.coord_dim)
    shape = shape_of("values", values)
    if len(shape) != 2 or shape[0] != num_points:
        raise ValueError(
            f"`values` must have shape ({num_points}, C), one row per point of `coords`, "
            f"got shape {shape}."
        )
    if mask is None:
        mask = jnp.ones(num_points, dtype=bool)
    mask = check_mask(mask, num_points)
    code_shape = _check_code_shape(code_shape, decoder, shape[1])
    num_steps = positive_int("num_steps", num_steps)
    learning_rate = jnp.asarray(positive_real("learning_rate", learning_rate), values.dtype)
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"`optimizer` must be an optax optimizer, got {optimizer!r}.")
    return _fit(decoder, coords, values, mask, code_shape, num_steps, optimizer, learning_rate)


def _check_code_shape(code_shape, decoder: FourierNet, channels: int) -> tuple[int, int]:
    if code_shape is None:
        if channels % decoder.out_dim:
            raise ValueError(
                f"`values` must have a multiple of the decoder's out_dim = "
                f"{decoder.out_dim} channels, got {channels}."
            )
        return (channels // decoder.out_dim, decoder.code_dim)
    code_shape = tuple(code_shape)
    if (
        len(code_shape) != 2
        or code_shape[1] != decoder.code_dim
        or code_shape[0] * decoder.out_dim != channels
    ):
        raise ValueError(
            f"`code_shape` must be (K, {decoder.code_dim}) with K * out_dim "
            f"({decoder.out_dim}) = {channels} channels, got {code_shape}."
        )
    return code_shape


@eqx.filter_jit
def _fit(decoder, coords, values, mask, code_shape, num_steps, optimizer, learning_rate):
    # The learning rate is traced and the default optimizer built here, so
    # that a new learning rate does not compile the loop again.
    if optimizer is None:
        optimizer = optax.adam(learning_rate)

    def loss_fn(codes):
        return _masked_mse(decoder.field(codes, coords), values, mask)

    def step(carry, _):
        codes, state, best, best_loss = carry
        loss, grad = jax.value_and_grad(loss_fn)(codes)
        better = loss < best_loss
        best = jnp.where(better, codes, best)
        best_loss = jnp.where(better, loss, best_loss)
        updates, state = optimizer.update(grad, state, codes)
        return (optax.apply_updates(codes, updates), state, best, best_loss), None

    codes = jnp.zeros(code_shape, dtype=values.dtype)
    start = (codes, optimizer.init(codes), codes, jnp.asarray(jnp.inf, values.dtype))
    (codes, _, best, best_loss), _ = jax.lax.scan(step, start, None, length=num_steps)
    # The code after the last update has not been scored inside the loop.
    loss = loss_fn(codes)
    better = loss < best_loss
    return jnp.where(better, codes, best), jnp.where(better, loss, best_loss)


def forecast(
    decoder: FourierNet,
    dynamics: LatentODE,
    observations: Float[Array, "P C"],
    coords: Float[Array, "P d"],
    times: Real[Array, " T"],
    query_coords: Float[Array, "Q d"],
    *,
    mask: Bool[Array, " P"] | None = None,
    num_steps: int = 300,
    learning_rate: float | int = 1e-2,
) -> Float[Array, "T Q C"]:
    """Forecast a field anywhere in space from observations of its first frame.

    Fits the first frame's codes with [`fit_codes`][trainax.inr.fit_codes]
    (on the points `mask` keeps), integrates them with `dynamics` over
    `times`, and decodes every predicted code at `query_coords`, which need
    not be the observed points.

    **Arguments:**

    - `decoder`: a trained [`FourierNet`][trainax.inr.FourierNet].
    - `dynamics`: a trained [`LatentODE`][trainax.inr.LatentODE] whose
        `code_size` is the number of entries of the codes.
    - `observations`: the first frame at the observed points `(P, C)`.
    - `coords`: the observed points `(P, d)`.
    - `times`: the times `(T,)`, strictly increasing; `times[0]` is the time
        of the observations.
    - `query_coords`: where to decode `(Q, d)`.
    - `mask`, `num_steps`, `learning_rate`: passed to `fit_codes`.

    **Returns:**

    The forecast `(T, Q, C)`.

    ```python
    decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
    coords = jr.uniform(jr.key(2), (50, 2))
    prediction = tx.inr.forecast(decoder, dynamics, jnp.cos(coords[:, :1]), coords,
                                 jnp.arange(5.0), jnp.zeros((7, 2)), num_steps=20)
    prediction.shape   # (5, 7, 1)
    ```
    """
    check_coords("query_coords", query_coords, decoder.coord_dim)
    shape = shape_of("observations", observations)
    if len(shape) != 2:
        raise ValueError(f"`observations` must have shape (P, C), got shape {shape}.")
    channels = shape[1]
    code_shape = _check_code_shape(None, decoder, channels)
    size = code_shape[0] * code_shape[1]
    if size != dynamics.code_size:
        raise ValueError(
            f"`dynamics` must act on codes of {size} entries ({code_shape[0]} x "
            f"{code_shape[1]}), got code_size = {dynamics.code_size}."
        )
    codes, _ = fit_codes(
        decoder,
        coords,
        observations,
        mask,
        num_steps=num_steps,
        learning_rate=learning_rate,
    )
    trajectory = dynamics(codes, times)
    return _decode(decoder, trajectory, query_coords)


@eqx.filter_jit
def _decode(decoder, trajectory, query_coords):
    return jax.vmap(lambda codes: decoder.field(codes, query_coords))(trajectory)
