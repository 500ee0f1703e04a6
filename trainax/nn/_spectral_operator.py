"""The neural spectral operator: a network from coefficients to coefficients."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import positive_int
from ..spectral import AbstractBasis, Fourier
from ._fno import _Pointwise, _default_dtype, _uniform_arrays
from ._padding import check_activation, check_floating


class _CoefficientLinear(eqx.Module):
    """A pointwise linear map on coefficients: `W h + b`, the bias a constant function.

    A constant is `b` times the first basis function (`T_0 = 1`, the Fourier
    mean) on every axis, so the bias enters the first coefficient only.
    """

    weight: Array
    bias: Array

    specs = staticmethod(_Pointwise.specs)  # the same initialisation

    def __call__(self, h):
        out = jnp.einsum("oi,i...->o...", self.weight, h)
        # a one-hot first coefficient: a broadcast product, cheaper than a scatter
        first = jnp.zeros(h.shape[1:], h.dtype).at[(0,) * (h.ndim - 1)].set(1)
        return out + self.bias.reshape(-1, *([1] * (h.ndim - 1))) * first


class SpectralOperator(eqx.Module):
    """The neural spectral method's operator: coefficients in, coefficients out.

    It maps the coefficients of the parameter fields, `(in_channels, *N)`
    in a spectral basis, to those of the solution, `(out_channels, *N)` in
    the same basis. Every layer acts on coefficients, and the nonlinearity
    on the basis's collocation nodes:

    1. Lift pointwise: `h = W_0 x + b_0` (channel mixing; a bias is a
       constant function, so it enters the first coefficient).
    2. `num_layers` spectral layers `z = K h + W h + b`, where `K` mixes the
       channels of each retained mode with its own real weights (the other
       modes pass through the skip `W h` only), then
       `h = transform(activation(inverse(z)))`: inverse transform to the
       nodes, activate, transform back. No activation after the last layer.
    3. Project: `width -> projection_width` (linear), the activation on the
       nodes, `-> out_channels` (linear); or directly `width -> out_channels`
       when `projection_width=0`.

    Its cost depends on the basis size only, never on a grid the solution is
    later evaluated on (`basis.evaluate` or a problem's `to_grid`). The
    weights act in any basis of the same kind with at least `modes` modes
    per axis: the basis of a call is `basis.with_modes(x.shape[1:])`, so the
    same model runs on a finer basis (as a grid-based baseline does).

    **The spectral weights.** On a Chebyshev axis each `T_k` has its own
    `(width, width)` matrix. On a Fourier axis a frequency has two
    coefficients, `(a_k, b_k)` of its cosine and sine, and a per-coefficient
    weight alone could never turn a cosine into a sine: every layer would map
    even fields to even fields, and no first derivative (no transport term)
    could be represented. So `K` also acts on the *quarter turn*
    `Q (a_k, b_k) = (b_k, -a_k)` of each pair (a shift of a quarter period
    of that frequency; `Q` zeroes the mean, the Nyquist cosine and a cosine
    whose sine is not retained): per layer
    `K h = sum_S W_S ⊙ Q_S h` over the subsets `S` of the Fourier axes, `Q_S`
    the quarter turns along the axes of `S`. With `f` Fourier axes that is
    `2^f` weight arrays, which together act on each frequency's `2^f` real
    coefficients as a full real `2^f x 2^f` matrix per channel pair. A
    complex weight `w` per frequency (FNO's) is a special case: in 1-D it is
    `Re w · I + Im w · Q`, i.e. the identity term equal to `Re w` on both the
    cosine and the sine, the turned term to `Im w`.
    `weights[i]` has shape `(2^f, width, width, *modes)`, the term of subset
    `S` at index `sum_{axis in S} 2^(position of axis among the Fourier axes)`.
    The layer is not shift-equivariant (its weights depend on `k` only
    through their own values).
    Spectral weights start uniform in `±1 / (width * 2^(f/2))` (the same
    initial variance of `K h` whatever `f`), pointwise layers like
    `eqx.nn.Linear`.

    **Arguments:**

    - `basis`: the spectral basis, e.g. a problem's `basis`.
    - `in_channels`, `out_channels`: channels of the input and output.
    - `width`: channels of the spectral layers (default 32).
    - `modes`: coefficients retained per axis by `K`, an int or one per
      axis (default: every mode of `basis`).
    - `num_layers`: spectral layers (default 4).
    - `activation`: the nonlinearity on the nodes (default `jax.nn.gelu`).
    - `projection_width`: hidden width of the projection; `None` (default)
      means `2 * width`, `0` no hidden layer.
    - `dtype`: real dtype of the weights (default: float32, float64 under x64).
    - `key`: a JAX PRNG key for the initial weights.

    **Call:** one sample `(in_channels, *N)` of coefficients -> `(out_channels, *N)`.

    ```python
    problem = tx.spectral.PoissonPeriodic(8)
    model = tx.nn.SpectralOperator(problem.basis, 1, 1, width=8, num_layers=2,
                                   key=jr.PRNGKey(0))
    s = problem.sample(jr.PRNGKey(1), 3)              # (3, 1, 8, 8)
    jax.vmap(model)(s).shape                          # (3, 1, 8, 8)
    model(jnp.zeros((1, 16, 16))).shape               # a finer basis: (1, 16, 16)
    ```
    """

    lifting: _CoefficientLinear
    weights: tuple[Array, ...]
    skips: tuple[_CoefficientLinear, ...]
    projection: tuple[_CoefficientLinear, ...]
    activation: Callable
    basis: AbstractBasis = eqx.field(static=True)
    modes: tuple[int, ...] = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)

    def __init__(
        self,
        basis: AbstractBasis,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 32,
        modes: Optional[int | tuple[int, ...]] = None,
        num_layers: int = 4,
        activation: Callable = jax.nn.gelu,
        projection_width: Optional[int] = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        if not isinstance(basis, AbstractBasis):
            raise TypeError(
                f"`basis` must be a tx.spectral basis, got {type(basis).__name__}."
            )
        self.basis = basis
        self.modes = _check_modes(modes, basis)
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        width = positive_int("width", width)
        num_layers = positive_int("num_layers", num_layers)
        hidden = 2 * width if projection_width is None else projection_width
        hidden = positive_int("projection_width", hidden, allow_zero=True)
        self.activation = check_activation(activation)
        dtype = _default_dtype(dtype)

        widths = [width, hidden, self.out_channels] if hidden else [width, self.out_channels]
        channels = [(self.in_channels, width)] + [(width, width)] * num_layers
        channels += list(zip(widths[:-1], widths[1:]))
        terms = 2 ** len(_fourier_axes(basis))
        bound = 1.0 / (width * math.sqrt(terms))
        spectral = (((terms, width, width, *self.modes), -bound, bound),) * num_layers
        specs = spectral + sum((_CoefficientLinear.specs(a, b) for a, b in channels), ())
        arrays = _uniform_arrays(key, specs, dtype)
        self.weights = tuple(arrays[:num_layers])
        pointwise = arrays[num_layers:]
        layers = [_CoefficientLinear(w, b) for w, b in zip(pointwise[::2], pointwise[1::2])]
        self.lifting, self.skips = layers[0], tuple(layers[1 : num_layers + 1])
        self.projection = tuple(layers[num_layers + 1 :])

    def _call_basis(self, x) -> AbstractBasis:
        shape = getattr(x, "shape", None)
        ndim = self.basis.ndim
        if shape is None or len(shape) != ndim + 1 or shape[0] != self.in_channels:
            axes = ", ".join(str(n) for n in self.basis.shape)
            raise ValueError(
                f"SpectralOperator acts on one sample of coefficients ({self.in_channels}, "
                f"{axes}) (channels first, unbatched: use jax.vmap), got shape {shape}."
            )
        check_floating(x, "SpectralOperator")
        for n, m in zip(shape[1:], self.modes):
            if n < m:
                raise ValueError(
                    f"SpectralOperator retains {self.modes} modes: the input needs at "
                    f"least that many coefficients per axis, got shape {shape}."
                )
        if tuple(shape[1:]) == self.basis.shape:
            return self.basis
        return self.basis.with_modes(tuple(shape[1:]))

    def _activate(self, basis: AbstractBasis, h: Array) -> Array:
        """The activation on the collocation nodes, channel by channel."""
        values = jax.vmap(basis.inverse)(h)
        return jax.vmap(basis.transform)(self.activation(values))

    # compiled as a whole when called eagerly (inlined inside an outer `jit`):
    # run op by op, each small operation would be compiled alone
    @eqx.filter_jit
    def __call__(self, x: Float[Array, "C_in *N"]) -> Float[Array, "C_out *N"]:
        basis = self._call_basis(x)
        kept = (slice(None),) + tuple(slice(0, m) for m in self.modes)
        padding = [(0, 0)] + [(0, n - m) for n, m in zip(basis.shape, self.modes)]
        h = self.lifting(x)
        for i, (weight, skip) in enumerate(zip(self.weights, self.skips)):
            turned = _quarter_turns(h[kept], _fourier_axes(self.basis))
            mixed = jnp.einsum("soi...,si...->o...", weight, turned)
            z = skip(h) + jnp.pad(mixed, padding)
            h = self._activate(basis, z) if i < len(self.weights) - 1 else z
        for layer in self.projection[:-1]:
            h = self._activate(basis, layer(h))
        return self.projection[-1](h)


def _check_modes(modes, basis: AbstractBasis) -> tuple[int, ...]:
    if modes is None:
        return basis.shape
    if isinstance(modes, (tuple, list)):
        if len(modes) != basis.ndim:
            raise ValueError(
                f"`modes` must be an int or {basis.ndim} ints (one per axis), got {modes!r}."
            )
        modes = tuple(positive_int("modes", m) for m in modes)
    else:
        modes = (positive_int("modes", modes),) * basis.ndim
    for m, n in zip(modes, basis.shape):
        if m > n:
            raise ValueError(
                f"`modes` must be at most the basis size {basis.shape} per axis, got {modes}."
            )
    return modes


def _fourier_axes(basis: AbstractBasis) -> tuple[int, ...]:
    """The axes of `basis` that are Fourier axes."""
    return tuple(i for i, b in enumerate(basis.axes) if isinstance(b, Fourier))


def _quarter_turn(h: Array, axis: int) -> Array:
    """`(a_k, b_k) -> (b_k, -a_k)` along `axis` of `h`; the mean, the Nyquist
    cosine and a cosine without its retained sine go to zero."""
    m = h.shape[axis]
    j = np.arange(m)
    partner = np.where(j % 2 == 1, j + 1, j - 1)
    has_partner = (j > 0) & (partner < m)
    partner = np.where(has_partner, partner, j)
    sign = np.where((j > 0) & (j % 2 == 0), -1.0, 1.0) * has_partner
    shape = [1] * h.ndim
    shape[axis] = m
    return jnp.take(h, partner, axis=axis) * jnp.asarray(sign, h.dtype).reshape(shape)


def _quarter_turns(h: Array, fourier_axes: tuple[int, ...]) -> Array:
    """`Q_S h` for every subset `S` of `fourier_axes` (as array axes `1 + a` of
    `h`, a channel axis first), stacked on a new leading axis: subset `S`
    at index `sum_{a in S} 2^(position of a)`."""
    turned = [h]
    for a in fourier_axes:
        turned += [_quarter_turn(t, 1 + a) for t in turned]
    return jnp.stack(turned)
