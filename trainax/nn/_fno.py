"""The Fourier neural operator (Li et al., 2021) in 1D, 2D and 3D."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ._padding import check_activation, check_num_spatial_dims, check_state


def _default_dtype(dtype):
    return jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _uniform_arrays(key, specs, dtype):
    """One array uniform in `[low, high)` per `(shape, low, high)` in `specs`.

    All come from one flat draw: each draw of a new shape compiles the random
    generator anew, which dominates building a model on CPU.
    """
    sizes = [math.prod(shape) for shape, _, _ in specs]
    flat = jax.random.uniform(key, (sum(sizes),), dtype)
    parts = jnp.split(flat, list(itertools.accumulate(sizes))[:-1])
    return tuple(
        low + (high - low) * part.reshape(shape)
        for part, (shape, low, high) in zip(parts, specs)
    )


def _check_modes(modes, d: int) -> tuple[int, ...]:
    if isinstance(modes, (tuple, list)):
        if len(modes) != d:
            raise ValueError(f"`modes` must hold one int per spatial axis ({d}), got {modes!r}.")
        return tuple(positive_int("modes", m) for m in modes)
    return (positive_int("modes", modes),) * d


def _block_shape(modes: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the kept block of rfft modes: `2 m` on leading axes, `m` on the last."""
    return tuple(2 * m for m in modes[:-1]) + modes[-1:]


def _check_grid(modes: tuple[int, ...], shape: tuple[int, ...]) -> None:
    for axis, (m, n) in enumerate(zip(modes, shape)):
        last = axis == len(shape) - 1
        limit = n // 2 + 1 if last else n // 2
        if m > limit:
            why = "N // 2 + 1 rfft modes" if last else "2 * modes <= N: +- blocks must not overlap"
            raise ValueError(
                f"`modes` must be at most {limit} for spatial axis {axis} of {n} points "
                f"({why}), got {m}."
            )


def _truncate(u_hat, modes):
    """Keep frequencies `0..m-1` and `-m..-1` on leading axes, `0..m-1` on the last."""
    for axis, m in enumerate(modes[:-1], start=1):
        n = u_hat.shape[axis]
        low = lax.slice_in_dim(u_hat, 0, m, axis=axis)
        high = lax.slice_in_dim(u_hat, n - m, n, axis=axis)
        u_hat = jnp.concatenate([low, high], axis=axis)
    return lax.slice_in_dim(u_hat, 0, modes[-1], axis=-1)


def _embed(block, modes, rfft_shape):
    """Inverse of `_truncate`: place the block in a zero rfft array of `rfft_shape`."""
    for axis, (m, n) in enumerate(zip(modes[:-1], rfft_shape[:-1]), start=1):
        low, high = jnp.split(block, [m], axis=axis)
        gap = list(block.shape)
        gap[axis] = n - 2 * m
        block = jnp.concatenate([low, jnp.zeros(gap, block.dtype), high], axis=axis)
    pad = [(0, 0)] * (block.ndim - 1) + [(0, rfft_shape[-1] - modes[-1])]
    return jnp.pad(block, pad)


class _Pointwise(eqx.Module):
    """A 1x1 convolution `(c_in, *N) -> (c_out, *N)` as an einsum over channels."""

    weight: Array
    bias: Array

    @staticmethod
    def specs(c_in: int, c_out: int):
        """`eqx.nn.Linear`'s init: weight and bias uniform in `+-1 / sqrt(c_in)`."""
        bound = 1.0 / math.sqrt(c_in)
        return (((c_out, c_in), -bound, bound), ((c_out,), -bound, bound))

    def __call__(self, h):
        out = jnp.einsum("oi,i...->o...", self.weight, h)
        return out + self.bias.reshape(-1, *([1] * (h.ndim - 1)))


class SpectralConv(eqx.Module):
    """A spectral convolution: a learned linear map per kept Fourier mode.

    `v = irfftn(W * truncate(rfftn(u)))`, where the real FFT runs over the
    spatial axes and, for each kept mode `k`, `W[k]` is a complex
    `(out_channels, in_channels)` matrix; all other modes are set to zero.
    The kept modes are `0..m-1` and `-m..-1` on every axis but the last,
    and the first `m` rfft modes `0..m-1` on the last axis. The weights are
    stored as two real arrays, `weight_real` and `weight_imag`, of shape
    `(out_channels, in_channels, 2 m_1, ..., 2 m_{d-1}, m_d)`; along a leading
    axis, index `j < m` is frequency `j` and index `m + j` is frequency
    `j - m`. Both parts start uniform in `[0, 1 / (in_channels * out_channels))`,
    as in the FNO paper. No bias.

    **Arguments:**

    - `num_spatial_dims`: number of spatial axes `d` (1, 2 or 3).
    - `in_channels`, `out_channels`: channels of the input and output.
    - `modes`: modes `m` kept per axis, an int or a tuple of `d` ints.
    - `dtype`: real dtype of the weights (default: float32, float64 under x64).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** `(in_channels, *N)` -> `(out_channels, *N)`, for any grid with
    `2 m <= N` on leading axes and `m <= N // 2 + 1` on the last.

    ```python
    conv = tx.nn.SpectralConv(2, 3, 4, modes=(4, 5), key=jax.random.PRNGKey(0))
    conv.weight_real.shape           # (4, 3, 8, 5)
    conv(jnp.ones((3, 16, 16))).shape  # (4, 16, 16)
    ```
    """

    weight_real: Array
    weight_imag: Array
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    modes: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        modes: int | tuple[int, ...],
        *,
        dtype=None,
        key: PRNGKeyArray,
    ):
        self.num_spatial_dims = check_num_spatial_dims(num_spatial_dims)
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.modes = _check_modes(modes, self.num_spatial_dims)
        shape = (self.out_channels, self.in_channels, *_block_shape(self.modes))
        spec = (shape, 0.0, 1.0 / (self.in_channels * self.out_channels))
        dtype = _default_dtype(dtype)
        self.weight_real, self.weight_imag = _uniform_arrays(key, (spec, spec), dtype)

    def __call__(self, u: Float[Array, "C_in *N"]) -> Float[Array, "C_out *N"]:
        check_state(u, self.in_channels, self.num_spatial_dims, "SpectralConv")
        _check_grid(self.modes, u.shape[1:])
        axes = tuple(range(1, u.ndim))
        u_hat = jnp.fft.rfftn(u, axes=axes)
        weight = lax.complex(self.weight_real, self.weight_imag)
        block = jnp.einsum("oi...,i...->o...", weight, _truncate(u_hat, self.modes))
        v_hat = _embed(block, self.modes, u_hat.shape[1:])
        return jnp.fft.irfftn(v_hat, s=u.shape[1:], axes=axes)


class FNO(eqx.Module):
    """The Fourier neural operator: lifting, Fourier layers, projection.

    1. Optionally append the grid coordinates `x_j = j / N_j` in `[0, 1)`
       per axis as `d` extra input channels (`coordinate_channels=True`; the
       model then no longer commutes with periodic shifts).
    2. Lift pointwise (a 1x1 linear layer) to `width` channels.
    3. `num_layers` Fourier layers `h <- act(SpectralConv(h) + W h + b)`, with
       a pointwise linear skip `W h + b`; as in the reference FNO, there is
       no activation after the last one.
    4. Project pointwise: `width -> projection_width -> out_channels` with
       the activation in between, or directly `width -> out_channels` when
       `projection_width=0`.

    See [`trainax.nn.SpectralConv`][] for the kept modes. The same weights
    act on any grid on which the modes fit, so the model is
    resolution-independent. With `in_channels == out_channels` it is a
    rollout stepper; with `out_channels=n_basis` it is a backbone.
    Pointwise layers start like `eqx.nn.Linear`.

    **Arguments:**

    - `num_spatial_dims`: number of spatial axes `d` (1, 2 or 3).
    - `in_channels`, `out_channels`: channels of the input and output.
    - `width`: channels of the Fourier layers (default 32).
    - `modes`: modes `m` kept per axis, an int or a tuple of `d` ints (default 8).
    - `num_layers`: number of Fourier layers (default 4).
    - `activation`: the nonlinearity (default `jax.nn.gelu`).
    - `coordinate_channels`: append the grid coordinates (default `False`).
    - `projection_width`: hidden width of the projection; `None` (default)
      means `2 * width`, `0` means no hidden layer.
    - `dtype`: real dtype of the weights (default: float32, float64 under x64).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one state `(in_channels, *N)` with `d` spatial axes -> `(out_channels, *N)`.

    ```python
    fno = tx.nn.FNO(1, 1, 2, width=8, modes=4, key=jax.random.PRNGKey(0))
    apply = eqx.filter_jit(jax.vmap(fno))         # compile once, batch with vmap
    apply(jnp.ones((5, 1, 32))).shape             # (5, 2, 32)
    apply(jnp.ones((5, 1, 64))).shape             # (5, 2, 64): same weights, finer grid
    ```
    """

    lifting: _Pointwise
    spectral: tuple[SpectralConv, ...]
    skips: tuple[_Pointwise, ...]
    projection: tuple[_Pointwise, ...]
    activation: Callable
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    coordinate_channels: bool = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 32,
        modes: int | tuple[int, ...] = 8,
        num_layers: int = 4,
        activation: Callable = jax.nn.gelu,
        coordinate_channels: bool = False,
        projection_width: int | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        d, c_in, c_out, width, modes, num_layers, hidden = _check_arguments(
            num_spatial_dims, in_channels, out_channels, width, modes, num_layers,
            coordinate_channels, projection_width,
        )
        dtype = _default_dtype(dtype)
        pointwise_key, *spectral_keys = jax.random.split(key, num_layers + 1)
        self.spectral = tuple(
            SpectralConv(d, width, width, modes, dtype=dtype, key=k) for k in spectral_keys
        )
        widths = [width, hidden, c_out] if hidden else [width, c_out]
        channels = [(c_in + d * coordinate_channels, width)] + [(width, width)] * num_layers
        channels += list(zip(widths[:-1], widths[1:]))
        specs = sum((_Pointwise.specs(a, b) for a, b in channels), ())
        arrays = _uniform_arrays(pointwise_key, specs, dtype)
        layers = [_Pointwise(w, b) for w, b in zip(arrays[::2], arrays[1::2])]
        self.lifting, self.skips = layers[0], tuple(layers[1 : num_layers + 1])
        self.projection = tuple(layers[num_layers + 1 :])
        self.activation = check_activation(activation)
        self.num_spatial_dims = d
        self.in_channels = c_in
        self.out_channels = c_out
        self.coordinate_channels = coordinate_channels

    def __call__(self, u: Float[Array, "C_in *N"]) -> Float[Array, "C_out *N"]:
        check_state(u, self.in_channels, self.num_spatial_dims, "FNO")
        _check_grid(self.spectral[0].modes, u.shape[1:])
        if self.coordinate_channels:
            axes = [jnp.arange(n, dtype=u.dtype) / n for n in u.shape[1:]]
            u = jnp.concatenate([u, jnp.stack(jnp.meshgrid(*axes, indexing="ij"))])
        h = self.lifting(u)
        for i, (spectral, skip) in enumerate(zip(self.spectral, self.skips)):
            h = spectral(h) + skip(h)
            if i < len(self.spectral) - 1:
                h = self.activation(h)
        for layer in self.projection[:-1]:
            h = self.activation(layer(h))
        return self.projection[-1](h)

    @staticmethod
    def count_parameters(
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 32,
        modes: int | tuple[int, ...] = 8,
        num_layers: int = 4,
        coordinate_channels: bool = False,
        projection_width: int | None = None,
    ) -> int:
        """The number of trained scalars of the `FNO` built with these arguments.

        With `d` spatial axes, `w = width`, `L = num_layers`, lifted input
        channels `c = in_channels + d * coordinate_channels`, kept modes
        `M = 2 m_1 * ... * 2 m_{d-1} * m_d` and projection width `p`:

        `(c + 1) w + L (2 M w^2 + w^2 + w) + P`, where the projection has
        `P = (w + 1) p + (p + 1) out_channels`, or `P = (w + 1) out_channels`
        when `p = 0`. The factor 2 counts the real and imaginary parts.

        **Arguments:** as for [`trainax.nn.FNO`][] (no `activation`, `dtype`, `key`).

        **Returns:** the parameter count, an `int`.

        ```python
        tx.nn.FNO.count_parameters(1, 1, 1, width=8, modes=4, num_layers=2)  # 1345
        ```
        """
        d, c_in, c_out, w, modes, num_layers, p = _check_arguments(
            num_spatial_dims, in_channels, out_channels, width, modes, num_layers,
            coordinate_channels, projection_width,
        )
        c = c_in + d * coordinate_channels
        kept = math.prod(_block_shape(modes))
        projection = (w + 1) * p + (p + 1) * c_out if p else (w + 1) * c_out
        return (c + 1) * w + num_layers * (2 * kept * w * w + w * w + w) + projection


def _check_arguments(d, c_in, c_out, width, modes, num_layers, coordinates, projection):
    d = check_num_spatial_dims(d)
    width = positive_int("width", width)
    if not isinstance(coordinates, bool):
        raise TypeError(f"`coordinate_channels` must be a bool, got {coordinates!r}.")
    if projection is None:
        projection = 2 * width
    return (
        d,
        positive_int("in_channels", c_in),
        positive_int("out_channels", c_out),
        width,
        _check_modes(modes, d),
        positive_int("num_layers", num_layers),
        positive_int("projection_width", projection, allow_zero=True),
    )
