"""FourierNet: the multiplicative filter network that decodes a latent code into a field."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._checks import check_coords, positive_real, shape_of


class FourierNet(eqx.Module):
    """A multiplicative filter network whose biases are shifted by a latent code.

    With filters `g_l(x) = [sin(W_l x), cos(W_l x)]` (`l = 0, ..., L`) the
    network computes

    ```
    h_0 = g_0(x)
    h_l = g_l(x) * (A_l h_{l-1} + b_l + B_l code)      l = 1, ..., L
    out = A_out h_L + b_out
    ```

    so the code only shifts each layer's bias (`B_l` has no bias of its own):
    a zero code gives the network with biases `b_l`. The filter weights
    `W_l` start uniform in `[-s, s] / sqrt(coord_dim)` with the frequency
    scale `s = input_scale / sqrt(num_layers + 1)` (the
    [`filter_scale`][trainax.inr.FourierNet.filter_scale]), so that the
    product of the `L + 1` filters reaches frequencies of order `input_scale`.
    Every weight is trainable.

    **Several channels.** A state with `C` channels has one code per channel,
    codes of shape `(C, code_dim)`, and one decoder with `out_dim = 1`
    evaluated per channel: channels differ only through their codes.
    [`field`][trainax.inr.FourierNet.field] does this; it also accepts
    `out_dim > 1`, when the channel outputs are concatenated.

    **Arguments:**

    - `coord_dim`: dimension `d` of the domain (2 for the unit square).
    - `out_dim`: outputs per code (1 for one code per channel).
    - `hidden`: width of the hidden layers; even, half sines and half cosines.
    - `code_dim`: size of one latent code.
    - `num_layers`: number `L` of multiplicative layers (`L + 1` filters).
    - `input_scale`: frequency scale of the network (64 in DINo, for
        coordinates in the unit square).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one point `x` `(coord_dim,)` and one code `(code_dim,)` -> the
    field's value `(out_dim,)`. Vmap over points, or use `field`.

    ```python
    decoder = tx.inr.FourierNet(2, 1, hidden=16, code_dim=8, num_layers=3,
                                input_scale=64.0, key=jr.key(0))
    decoder(jnp.array([0.3, 0.7]), jnp.zeros(8)).shape   # (1,)
    decoder.field(jnp.zeros((2, 8)), jnp.ones((5, 2))).shape  # (5, 2): 2 channels
    decoder.filter_scale                                  # 32.0
    ```
    """

    filters: list[Float[Array, "half coord_dim"]]
    linears: list[eqx.nn.Linear]
    shifts: list[eqx.nn.Linear]
    output: eqx.nn.Linear
    coord_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)
    code_dim: int = eqx.field(static=True)
    num_layers: int = eqx.field(static=True)
    input_scale: float = eqx.field(static=True)

    def __init__(
        self,
        coord_dim: int,
        out_dim: int = 1,
        *,
        hidden: int = 64,
        code_dim: int = 100,
        num_layers: int = 3,
        input_scale: float | int = 64.0,
        key: PRNGKeyArray,
    ):
        self.coord_dim = positive_int("coord_dim", coord_dim)
        self.out_dim = positive_int("out_dim", out_dim)
        self.hidden = positive_int("hidden", hidden)
        if self.hidden % 2:
            raise ValueError(f"`hidden` must be even (half sines, half cosines), got {hidden}.")
        self.code_dim = positive_int("code_dim", code_dim)
        self.num_layers = positive_int("num_layers", num_layers)
        self.input_scale = positive_real("input_scale", input_scale)
        filter_keys, linear_keys, shift_keys, out_key = _split(key, self.num_layers)
        bound = self.filter_scale / math.sqrt(self.coord_dim)
        shape = (self.hidden // 2, self.coord_dim)
        self.filters = [jr.uniform(k, shape, minval=-bound, maxval=bound) for k in filter_keys]
        self.linears = [eqx.nn.Linear(self.hidden, self.hidden, key=k) for k in linear_keys]
        self.shifts = [
            eqx.nn.Linear(self.code_dim, self.hidden, use_bias=False, key=k) for k in shift_keys
        ]
        self.output = eqx.nn.Linear(self.hidden, self.out_dim, key=out_key)

    @property
    def filter_scale(self) -> float:
        """The filters' frequency scale `input_scale / sqrt(num_layers + 1)`."""
        return self.input_scale / math.sqrt(self.num_layers + 1)

    def __call__(
        self, x: Float[Array, " coord_dim"], code: Float[Array, " code_dim"]
    ) -> Float[Array, " out_dim"]:
        if shape_of("x", x) != (self.coord_dim,):
            raise ValueError(
                f"`x` must be one point of shape ({self.coord_dim},) (vmap over points, "
                f"or use FourierNet.field), got shape {x.shape}."
            )
        if shape_of("code", code) != (self.code_dim,):
            raise ValueError(
                f"`code` must have shape ({self.code_dim},), got shape {code.shape}."
            )
        h = _filter(self.filters[0], x)
        for weights, linear, shift in zip(self.filters[1:], self.linears, self.shifts):
            h = _filter(weights, x) * (linear(h) + shift(code))
        return self.output(h)

    def field(
        self, codes: Float[Array, "C code_dim"], coords: Float[Array, "P coord_dim"]
    ) -> Float[Array, "P channels"]:
        """The field of every code at every point.

        **Arguments:**

        - `codes`: one code per channel, `(C, code_dim)`.
        - `coords`: the points, `(P, coord_dim)`.

        **Returns:**

        The values `(P, C * out_dim)`: column `c * out_dim + j` is output `j`
        of code `c` (column `c` is channel `c` when `out_dim = 1`).

        ```python
        decoder = tx.inr.FourierNet(2, hidden=16, code_dim=8, key=jr.key(0))
        decoder.field(jnp.zeros((3, 8)), jnp.ones((10, 2))).shape  # (10, 3)
        ```
        """
        shape = shape_of("codes", codes)
        if len(shape) != 2 or shape[1] != self.code_dim:
            raise ValueError(
                f"`codes` must have shape (C, {self.code_dim}), one code per channel, "
                f"got shape {shape}."
            )
        check_coords("coords", coords, self.coord_dim)
        return _field(self, codes, coords)


@eqx.filter_jit
def _field(decoder: FourierNet, codes, coords):
    # Compiled as one program: called eagerly, the vmapped layers would
    # otherwise be dispatched (and compiled) one operation at a time.
    def at_point(x):
        return jax.vmap(lambda code: decoder(x, code))(codes).reshape(-1)

    return jax.vmap(at_point)(coords)


def _filter(weights, x):
    phase = weights @ x
    return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)])


def _split(key, num_layers: int):
    keys = jr.split(key, 3 * num_layers + 2)
    filters = keys[: num_layers + 1]
    linears = keys[num_layers + 1 : 2 * num_layers + 1]
    shifts = keys[2 * num_layers + 1 : 3 * num_layers + 1]
    return filters, linears, shifts, keys[-1]
