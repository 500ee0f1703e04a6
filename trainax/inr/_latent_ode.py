"""Latent dynamics: an ODE on the codes, integrated with diffrax at fixed steps."""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Real

from .._checks import positive_int
from ._checks import check_times, concrete, shape_of
from ._rk4 import RK4


class Swish(eqx.Module):
    """The scaled Swish `x * sigmoid(x * softplus(beta)) / 1.1` with a learnable `beta`.

    `softplus` keeps the gate's slope positive whatever value `beta` takes in
    training; the constant 1.1 and the initial `beta = 0.5` are DINo's.

    **Arguments:**

    - `beta`: the initial value of the learnable parameter (default 0.5).

    **Call:** an array of any shape -> an array of the same shape.

    ```python
    swish = tx.inr.Swish()
    swish(jnp.array([-1.0, 0.0, 2.0])).shape   # (3,)
    ```
    """

    beta: Float[Array, ""]

    def __init__(self, beta: float | int = 0.5):
        self.beta = jnp.asarray(float(beta), dtype=jnp.result_type(float))

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return x * jax.nn.sigmoid(x * jax.nn.softplus(self.beta)) / 1.1


class SwishMLP(eqx.Module):
    """An autonomous vector field on the codes: an MLP with `Swish` activations.

    `depth` hidden layers of `width` units, each followed by its own
    [`Swish`][trainax.inr.Swish] (with its own `beta`),
    then a linear layer back to `code_size`.

    **Arguments:**

    - `code_size`: length of the (flattened) code.
    - `width`: units per hidden layer.
    - `depth`: number of hidden layers (at least 1).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** `(t, z)` with `z` `(code_size,)` -> `dz/dt` `(code_size,)`; `t`
    is ignored (the dynamics are autonomous).

    ```python
    field = tx.inr.SwishMLP(8, width=16, depth=2, key=jr.key(0))
    field(0.0, jnp.ones(8)).shape   # (8,)
    ```
    """

    layers: list[eqx.nn.Linear]
    activations: list[Swish]
    code_size: int = eqx.field(static=True)

    def __init__(self, code_size: int, *, width: int = 64, depth: int = 3, key: PRNGKeyArray):
        self.code_size = positive_int("code_size", code_size)
        width = positive_int("width", width)
        depth = positive_int("depth", depth)
        sizes = [self.code_size] + [width] * depth + [self.code_size]
        keys = jr.split(key, depth + 1)
        self.layers = [eqx.nn.Linear(n, m, key=k) for n, m, k in zip(sizes, sizes[1:], keys)]
        self.activations = [Swish() for _ in range(depth)]

    def __call__(self, t, z: Float[Array, " code"]) -> Float[Array, " code"]:
        del t
        for layer, activation in zip(self.layers, self.activations):
            z = activation(layer(z))
        return self.layers[-1](z)


class LatentODE(eqx.Module):
    """Latent dynamics `dz/dt = f(t, z)` on the codes, integrated with diffrax.

    Each interval between two requested times is split into
    `steps_per_frame` equal steps of the diffrax `solver` (fixed steps, no
    error control), so a frame interval of the training data is one solver
    step by default, as in DINo (RK4, one step per frame), and the requested
    times are always hit exactly.

    The vector field is a [`SwishMLP`][trainax.inr.SwishMLP] built from
    `width`, `depth` and `key`, or any module passed as `vector_field`,
    called as `vector_field(t, z)` on the flattened code `(code_size,)`
    (for example a linear field `z' = A z`).

    **Arguments:**

    - `code_size`: number of entries of a code (`C * code_dim` for codes
        `(C, code_dim)`; codes of any shape with this many entries are
        accepted and flattened for the vector field).
    - `width`, `depth`: the default vector field's hidden width and number of
        hidden layers.
    - `key`: a JAX PRNG key for the default vector field (unused with
        `vector_field`).
    - `vector_field`: a callable module `(t, z) -> dz/dt` to use instead.
    - `solver`: any `diffrax.AbstractSolver` (default [`RK4`][trainax.inr.RK4]()).
    - `steps_per_frame`: fixed steps per interval between requested times
        (default 1).

    **Call:** `dynamics(z0, times)`: the code `z0` at `times[0]` integrated to
    every time in `times` `(T,)` (strictly increasing) -> `(T, *z0.shape)`,
    with the first entry `z0` itself.

    ```python
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(0))
    dynamics(jnp.ones(8), jnp.linspace(0.0, 1.0, 5)).shape   # (5, 8)
    ```
    """

    vector_field: Callable
    solver: diffrax.AbstractSolver
    code_size: int = eqx.field(static=True)
    steps_per_frame: int = eqx.field(static=True)

    def __init__(
        self,
        code_size: int,
        *,
        width: int = 64,
        depth: int = 3,
        key: PRNGKeyArray | None = None,
        vector_field: Callable | None = None,
        solver: diffrax.AbstractSolver | None = None,
        steps_per_frame: int = 1,
    ):
        self.code_size = positive_int("code_size", code_size)
        self.steps_per_frame = positive_int("steps_per_frame", steps_per_frame)
        solver = RK4() if solver is None else solver
        if not isinstance(solver, diffrax.AbstractSolver):
            raise TypeError(
                f"`solver` must be a diffrax solver such as diffrax.Tsit5(), got {solver!r}."
            )
        if vector_field is None:
            if key is None:
                raise ValueError("`key` is required to build the default vector field.")
            vector_field = SwishMLP(self.code_size, width=width, depth=depth, key=key)
        elif not callable(vector_field):
            raise TypeError(f"`vector_field` must be callable as f(t, z), got {vector_field!r}.")
        self.vector_field = vector_field
        self.solver = solver

    def __call__(
        self, z0: Float[Array, "*code"], times: Real[Array, " T"]
    ) -> Float[Array, "T *code"]:
        self._check_code("z0", shape_of("z0", z0))
        times = check_times(times)
        shape = z0.shape
        z0 = z0.reshape(-1)
        truth = jnp.broadcast_to(z0, (times.shape[0], self.code_size))
        never = jnp.zeros(times.shape[0] - 1, dtype=bool)
        return _rollout(self, truth, never, times).reshape(-1, *shape)

    def teacher_forcing(
        self,
        codes: Float[Array, "T *code"],
        times: Real[Array, " T"],
        *,
        probability: float | int | Float[Array, ""],
        key: PRNGKeyArray,
    ) -> Float[Array, "T *code"]:
        """Integrate frame by frame, restarting from the true code at random.

        Each interval `times[i] -> times[i + 1]` starts from the true code
        `codes[i]` with probability `probability` (independently per
        interval) and from the model's own prediction otherwise. With
        probability 0 this is exactly the free rollout `self(codes[0],
        times)`; with probability 1 every step is a one-step prediction from
        the truth.

        **Arguments:**

        - `codes`: the true code trajectory `(T, *code)`.
        - `times`: the times of the codes `(T,)`, strictly increasing.
        - `probability`: the teacher-forcing probability in `[0, 1]` (may be
            a traced scalar, e.g. from a decaying schedule).
        - `key`: a JAX PRNG key for the coin flips.

        **Returns:**

        The predicted codes `(T, *code)`; the first is `codes[0]`.

        ```python
        dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(0))
        codes = jnp.ones((5, 2, 4))   # two channels, codes of 4
        dynamics.teacher_forcing(codes, jnp.arange(5.0), probability=0.5,
                                 key=jr.key(1)).shape   # (5, 2, 4)
        ```
        """
        shape = shape_of("codes", codes)
        if len(shape) < 2:
            raise ValueError(f"`codes` must be a trajectory (T, *code), got shape {shape}.")
        self._check_code("codes", shape[1:])
        times = check_times(times)
        if times.shape[0] != shape[0]:
            raise ValueError(
                f"`times` must have one entry per code ({shape[0]}), got {times.shape[0]}."
            )
        value = concrete(probability)
        if value is not None and not (0.0 <= float(value) <= 1.0):
            raise ValueError(f"`probability` must lie in [0, 1], got {float(value)}.")
        restart = jr.bernoulli(key, probability, (shape[0] - 1,))
        truth = codes.reshape(shape[0], self.code_size)
        return _rollout(self, truth, restart, times).reshape(shape)

    def _check_code(self, name: str, shape: tuple[int, ...]) -> None:
        size = 1
        for n in shape:
            size *= n
        if size != self.code_size:
            raise ValueError(
                f"`{name}` must hold a code of {self.code_size} entries, got shape {shape} "
                f"({size} entries)."
            )

    def _advance(self, z, t0, t1):
        # Fixed steps through the solver's own `init`/`step`: the same
        # arithmetic as `diffrax.diffeqsolve` with `StepTo`, without its
        # adaptive-loop machinery (much faster to compile).
        term = diffrax.ODETerm(lambda t, y, args: self.vector_field(t, y))
        fraction = jnp.arange(self.steps_per_frame + 1) / self.steps_per_frame
        # The last step must end at t1 exactly, whatever the rounding.
        ends = (t0 + (t1 - t0) * fraction).at[-1].set(t1)
        state = self.solver.init(term, t0, ends[1], z, None)

        def substep(carry, interval):
            y, state = carry
            y, _, _, state, _ = self.solver.step(
                term, interval[0], interval[1], y, None, state, False
            )
            return (y, state), None

        (z, _), _ = jax.lax.scan(substep, (z, state), (ends[:-1], ends[1:]))
        return z


@eqx.filter_jit
def _rollout(dynamics: LatentODE, truth, restart, times):
    # The free rollout is this scan with `restart` all False: `where` then
    # passes the prediction through unchanged, so teacher forcing with
    # probability 0 is the free rollout bit for bit.
    def step(previous, inputs):
        t0, t1, true_code, from_truth = inputs
        start = jnp.where(from_truth, true_code, previous)
        following = dynamics._advance(start, t0, t1)
        return following, following

    times = times.astype(jnp.result_type(truth.dtype, times.dtype, float))
    inputs = (times[:-1], times[1:], truth[:-1], restart)
    _, rest = jax.lax.scan(step, truth[0], inputs)
    return jnp.concatenate([truth[:1], rest])
