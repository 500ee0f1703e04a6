"""Periodic convolutional steppers: a linear stencil and a small conv stack."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._padding import check_activation, check_num_spatial_dims, check_state


def _periodic_conv(
    num_spatial_dims: int, c_in: int, c_out: int, kernel_size: int, **kwargs
) -> eqx.nn.Conv:
    """A convolution that pads circularly: the output has the input's grid.

    Equinox's `"SAME"` padding puts `(k - 1) // 2` points on the left and
    `k // 2` on the right, so a two-point kernel sees `u[i]` and `u[i + 1]`.
    """
    return eqx.nn.Conv(
        num_spatial_dims, c_in, c_out, kernel_size,
        padding="SAME", padding_mode="CIRCULAR", **kwargs,
    )


class LinearConvStepper(eqx.Module):
    """A learnable linear stencil on a periodic grid: one convolution, no bias.

    `u_next[c, i] = sum_{c', j} w[c, c', j] u[c', i + j - (k - 1) // 2]`, with
    indices wrapped periodically. A two-point kernel (`kernel_size=2`) sees
    `u[i]` and `u[i + 1]`: for 1D advection with Courant number `cfl < 0` the
    first-order upwind stencil is the weight `[1 + cfl, -cfl]`.

    **Arguments:**

    - `num_spatial_dims`: number of spatial axes `d` (1, 2 or 3).
    - `channels`: number of channels `C` of the state (in and out).
    - `kernel_size`: stencil width `k` per axis.
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one state `(C, *N)` with `d` spatial axes -> the next state
    `(C, *N)`.

    ```python
    stepper = tx.nn.LinearConvStepper(1, kernel_size=2, key=jax.random.PRNGKey(0))
    stepper(jnp.zeros((1, 30))).shape            # (1, 30)
    jax.vmap(stepper)(jnp.zeros((8, 1, 30)))     # a batch: (8, 1, 30)
    ```
    """

    conv: eqx.nn.Conv
    num_spatial_dims: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        channels: int = 1,
        kernel_size: int = 2,
        *,
        key: PRNGKeyArray,
    ):
        self.num_spatial_dims = check_num_spatial_dims(num_spatial_dims)
        self.channels = positive_int("channels", channels)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.conv = _periodic_conv(
            self.num_spatial_dims, self.channels, self.channels, self.kernel_size,
            use_bias=False, key=key,
        )

    def __call__(self, u: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        check_state(u, self.channels, self.num_spatial_dims, "LinearConvStepper")
        return self.conv(u)


class ConvNet(eqx.Module):
    """A stack of periodic convolutions with an activation between them.

    `depth` hidden layers, each a convolution to `hidden_channels` channels
    followed by `activation`, then a last (linear) convolution to
    `out_channels`. Every convolution pads circularly, so the network commutes
    with periodic shifts of its input. With `residual=True` it returns
    `u + net(u)` (a learned update), which needs `in_channels == out_channels`.

    **Arguments:**

    - `num_spatial_dims`: number of spatial axes `d` (1, 2 or 3).
    - `in_channels`, `out_channels`: channels of the input and output state.
    - `hidden_channels`: channels of the hidden layers (default 16).
    - `depth`: number of hidden layers (default 3); `depth + 1` convolutions.
    - `kernel_size`: kernel width per axis (default 3).
    - `activation`: the nonlinearity (default `jax.nn.relu`).
    - `residual`: return `u + net(u)` (default `False`).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one state `(in_channels, *N)` with `d` spatial axes -> a state
    `(out_channels, *N)`.

    ```python
    net = tx.nn.ConvNet(1, 1, 1, hidden_channels=16, depth=3, residual=True,
                        key=jax.random.PRNGKey(0))
    net(jnp.zeros((1, 64))).shape               # (1, 64)
    jax.vmap(net)(jnp.zeros((8, 1, 64))).shape  # (8, 1, 64)
    ```
    """

    layers: tuple[eqx.nn.Conv, ...]
    activation: Callable
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    residual: bool = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 16,
        depth: int = 3,
        kernel_size: int = 3,
        activation: Callable = jax.nn.relu,
        residual: bool = False,
        *,
        key: PRNGKeyArray,
    ):
        d = check_num_spatial_dims(num_spatial_dims)
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        hidden_channels = positive_int("hidden_channels", hidden_channels)
        depth = positive_int("depth", depth)
        kernel_size = positive_int("kernel_size", kernel_size)
        if not isinstance(residual, bool):
            raise TypeError(f"`residual` must be a bool, got {residual!r}.")
        if residual and in_channels != out_channels:
            raise ValueError(
                "`residual=True` adds the input to the output, so `in_channels` and "
                f"`out_channels` must match; got {in_channels} and {out_channels}."
            )
        widths = [in_channels] + [hidden_channels] * depth + [out_channels]
        keys = jax.random.split(key, len(widths) - 1)
        self.layers = tuple(
            _periodic_conv(d, c_in, c_out, kernel_size, key=k)
            for c_in, c_out, k in zip(widths[:-1], widths[1:], keys)
        )
        self.activation = check_activation(activation)
        self.num_spatial_dims = d
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.residual = residual

    def __call__(self, u: Float[Array, "C_in *N"]) -> Float[Array, "C_out *N"]:
        check_state(u, self.in_channels, self.num_spatial_dims, "ConvNet")
        h = u
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        h = self.layers[-1](h)
        return u + h if self.residual else h
