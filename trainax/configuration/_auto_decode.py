"""Auto-decoding with latent dynamics (DINo): codes, decoder and ODE trained by one loss."""

from __future__ import annotations

from typing import Callable, ClassVar, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._base import BaseConfiguration

# DINo's decay: 0.99 at first, times 0.99 after every 100 updates.
_START, _RATE, _EVERY = 0.99, 0.99, 100

Schedule = Callable[[Float[Array, ""]], Union[float, Float[Array, ""]]]


def _dino_schedule(step):
    return _START * _RATE ** jnp.floor(step / _EVERY)


class AutoDecoding(BaseConfiguration):
    """Train codes, decoder and latent dynamics of trajectories observed at points (DINo).

    The model is an [`AutoDecoder`][trainax.inr.AutoDecoder] (or any model
    with its fields `codes` `(S, T, K, code_dim)`, `decoder`, `dynamics` and,
    for a schedule, `step`). A minibatch is the values `(B, T, P, C)` of `B`
    trajectories at the points `coords` `(P, d)` and the times `times` `(T,)`,
    and `indices` `(B,)` are their rows in the table of codes. The loss is

    ```
    loss = masked_mse(decode(codes[indices]), values, mask)
         + dynamics_weight * mean_{b, t >= 1} |tf(z_b)[t] - z_b[t]|^2,   z = sg(codes[indices])
    ```

    The first term ([`masked_mse`][trainax.inr.masked_mse] over the observed
    points only; the others are never decoded) trains the codes and the
    decoder; the second fits the dynamics to the code trajectories, which it
    sees through a stop-gradient `sg`, as DINo's separate dynamics step
    does. `tf` is [`LatentODE.teacher_forcing`][trainax.inr.LatentODE.teacher_forcing]:
    each frame interval restarts from the true code with the teacher-forcing
    probability, independently per trajectory and interval, with coins from
    the step's `key`.

    **The schedule.** `teacher_forcing` is a probability, or a schedule
    `step -> probability` (such as an optax schedule) of the number of
    updates the model has had, `model.step`. The trainer passes a key but
    not the step, so the model carries it:
    [`tx.inr.auto_decoder_optimizer`][trainax.inr.auto_decoder_optimizer]
    advances `model.step` by exactly 1 per update (a schedule with any other
    optimizer for `step` stays at its value at step 0). The step is a
    parameter, so a checkpoint restores it and a resumed run continues the
    schedule bit for bit; the update compiles once, whatever the schedule.
    The default is DINo's: `0.99 * 0.99 ** (step // 100)`.

    Train the codes row-sparse (`per_sample=lambda m: m.codes`), with their own
    `per_sample_optimizer` (DINo: `optax.adam(1e-3)`).

    **Arguments:**

    - `coords`: the points `(P, d)` of the data.
    - `times`: the times of the frames `(T,)`, strictly increasing, `T >= 2`.
    - `mask`: `(P,)` booleans, True at the observed points (default all); the
        same points for every frame and trajectory.
    - `teacher_forcing`: a probability in `[0, 1]`, or a schedule of the step
        (default DINo's; see above). Probabilities from a schedule are
        clipped to `[0, 1]`.
    - `dynamics_weight`: the weight of the dynamics term (default 1).

    ```python
    decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=4, num_frames=3)
    cfg = tx.configuration.AutoDecoding(jr.uniform(jr.key(2), (20, 2)), jnp.arange(3.0))
    values = jnp.ones((2, 3, 20, 1))   # two trajectories of 3 frames at 20 points
    cfg(model, values, key=jr.key(3), indices=jnp.array([0, 2]))   # a scalar
    ```
    """

    coords: Float[Array, "P d"]
    times: Float[Array, " T"]
    mask: Bool[Array, " P"]
    observed: Int[Array, " n"]
    teacher_forcing: Union[float, Schedule] = eqx.field(static=True)
    dynamics_weight: float = eqx.field(static=True)

    needs_indices: ClassVar[bool] = True

    def __init__(
        self,
        coords: Float[Array, "P d"],
        times: Float[Array, " T"],
        mask: Optional[Bool[Array, " P"]] = None,
        *,
        teacher_forcing: Union[float, int, Schedule, None] = None,
        dynamics_weight: Union[float, int] = 1.0,
    ):
        self.coords = _points(coords)
        self.times = _times(times)
        self.mask, self.observed = _mask(mask, self.coords.shape[0])
        self.teacher_forcing = _teacher_forcing(teacher_forcing)
        if isinstance(dynamics_weight, bool) or not isinstance(dynamics_weight, (int, float)):
            raise TypeError(f"`dynamics_weight` must be a number, got {dynamics_weight!r}.")
        if not (np.isfinite(dynamics_weight) and dynamics_weight >= 0):
            raise ValueError(
                f"`dynamics_weight` must be a finite number >= 0, got {dynamics_weight}."
            )
        self.dynamics_weight = float(dynamics_weight)

    def probability(self, step: Union[float, Float[Array, ""]]) -> Float[Array, ""]:
        """The teacher-forcing probability after `step` updates.

        **Arguments:**

        - `step`: the number of updates (`model.step`).

        **Returns:** a scalar in `[0, 1]`.

        ```python
        cfg = tx.configuration.AutoDecoding(jnp.zeros((4, 2)), jnp.arange(3.0))
        cfg.probability(250.0)   # 0.99 * 0.99 ** 2
        ```
        """
        if callable(self.teacher_forcing):
            return jnp.clip(jnp.asarray(self.teacher_forcing(step)), 0.0, 1.0)
        return jnp.asarray(self.teacher_forcing)

    def losses(
        self,
        model,
        data: Float[Array, "B T P C"],
        *,
        key=None,
        indices: Int[Array, " B"],
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The two terms of the loss, `(reconstruction, dynamics)`, unweighted.

        **Arguments:** as for the call: the model, the values `(B, T, P, C)`,
        the step's `key` and the rows `indices` `(B,)` of the batch.

        **Returns:** `(reconstruction, dynamics)`, two scalars.

        ```python
        decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
        dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(1))
        model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=4, num_frames=3)
        cfg = tx.configuration.AutoDecoding(jnp.zeros((20, 2)), jnp.arange(3.0))
        rec, dyn = cfg.losses(model, jnp.ones((1, 3, 20, 1)), key=jr.key(3),
                              indices=jnp.array([1]))
        ```
        """
        values = self._values(data)
        indices = self._indices(indices, values.shape[0])
        codes = model.codes[indices]
        points = self.coords[self.observed]
        decoded = jax.vmap(jax.vmap(lambda c: model.decoder.field(c, points)))(codes)
        reconstruction = jnp.mean((decoded - values[:, :, self.observed]) ** 2)

        truth = jax.lax.stop_gradient(codes)
        step = jax.lax.stop_gradient(model.step) if callable(self.teacher_forcing) else 0.0
        probability = self.probability(step)
        keys = jr.split(self._key(key), values.shape[0])
        predicted = jax.vmap(
            lambda z, k: model.dynamics.teacher_forcing(
                z, self.times, probability=probability, key=k
            )
        )(truth, keys)
        dynamics = jnp.mean((predicted[:, 1:] - truth[:, 1:]) ** 2)
        return reconstruction, dynamics

    def __call__(
        self, model, data, *, ref_stepper=None, residuum_fn=None, key=None, indices=None
    ) -> Float[Array, ""]:
        reconstruction, dynamics = self.losses(model, data, key=key, indices=indices)
        return reconstruction + self.dynamics_weight * dynamics

    def check_model(self, model, batch) -> None:
        """`model` must hold a table of codes `(S, T, K, code_dim)` matching the batch."""
        values = self._values(batch)
        codes = getattr(model, "codes", None)
        decoder = getattr(model, "decoder", None)
        if codes is None or decoder is None or not hasattr(model, "dynamics"):
            raise TypeError(
                "`model` must hold `codes`, `decoder` and `dynamics` (a tx.inr.AutoDecoder), "
                f"got {type(model).__name__}."
            )
        channels = values.shape[3]
        expected = (values.shape[1], channels // decoder.out_dim, decoder.code_dim)
        if codes.ndim != 4 or tuple(codes.shape[1:]) != expected:
            raise ValueError(
                f"`model` codes must have shape (S, {', '.join(map(str, expected))}) for "
                f"frames of {channels} channels, got {tuple(codes.shape)}."
            )
        if decoder.coord_dim != self.coords.shape[1]:
            raise ValueError(
                f"`model` decodes points of dimension {decoder.coord_dim}, but `coords` "
                f"have dimension {self.coords.shape[1]}."
            )
        if callable(self.teacher_forcing) and not hasattr(model, "step"):
            raise TypeError(
                "`model` must carry a `step` counter for a teacher-forcing schedule "
                "(tx.inr.AutoDecoder does), or pass a constant `teacher_forcing`."
            )

    def _values(self, data):
        shape = getattr(data, "shape", None)
        points, frames = self.coords.shape[0], self.times.shape[0]
        if shape is None or len(shape) != 4 or shape[1] != frames or shape[2] != points:
            raise ValueError(
                f"`data` must be a batch of trajectories (B, {frames}, {points}, C): "
                f"{frames} frames (`times`) at {points} points (`coords`), got shape {shape}. "
                "Train on tx.trainer.Samples(values) with values (S, T, P, C)."
            )
        return data

    @staticmethod
    def _indices(indices, batch_size: int):
        shape = getattr(indices, "shape", None)
        if shape != (batch_size,):
            raise ValueError(
                f"`indices` must be the batch's {batch_size} rows of the table of codes, "
                f"shape ({batch_size},), got {shape if shape is not None else indices!r}."
            )
        return indices

    def _key(self, key):
        if key is not None:
            return key
        if not callable(self.teacher_forcing) and self.teacher_forcing == 0.0:
            return jr.PRNGKey(0)  # no coin is ever true: the key is not used
        raise TypeError(
            "`key` is required: AutoDecoding draws the teacher-forcing coins from it "
            "(the trainer passes one at every step)."
        )


def _points(coords):
    shape = getattr(coords, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"`coords` must have shape (P, d), got shape {shape}.")
    coords = jnp.asarray(coords)
    if not jnp.issubdtype(coords.dtype, jnp.floating):
        coords = coords.astype(float)
    return coords


def _times(times):
    shape = getattr(times, "shape", None)
    if shape is None or len(shape) != 1 or shape[0] < 2:
        raise ValueError(f"`times` must be a 1D array of at least 2 frames, got shape {shape}.")
    values = np.asarray(times, dtype=float)
    if not np.all(np.diff(values) > 0):
        raise ValueError(f"`times` must be strictly increasing, got {values}.")
    times = jnp.asarray(times)
    return times if jnp.issubdtype(times.dtype, jnp.floating) else times.astype(float)


def _mask(mask, num_points: int):
    if mask is None:
        mask = np.ones(num_points, dtype=bool)
    shape = getattr(mask, "shape", None)
    try:
        values = np.asarray(mask)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        raise ValueError("`mask` must be a concrete array (not traced): it picks the points.")
    if shape != (num_points,) or values.dtype != np.bool_:
        raise ValueError(
            f"`mask` must be a boolean array of shape ({num_points},), got "
            f"{values.dtype} of shape {shape}."
        )
    if not values.any():
        raise ValueError("`mask` must keep at least one point, got one that keeps none.")
    return jnp.asarray(values), jnp.asarray(np.flatnonzero(values), dtype=jnp.int32)


def _teacher_forcing(teacher_forcing):
    if teacher_forcing is None:
        return _dino_schedule
    if callable(teacher_forcing):
        return teacher_forcing
    if isinstance(teacher_forcing, bool) or not isinstance(teacher_forcing, (int, float)):
        raise TypeError(
            "`teacher_forcing` must be a probability or a schedule step -> probability, "
            f"got {teacher_forcing!r}."
        )
    if not 0.0 <= teacher_forcing <= 1.0:
        raise ValueError(f"`teacher_forcing` must lie in [0, 1], got {teacher_forcing}.")
    return float(teacher_forcing)
