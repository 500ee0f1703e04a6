"""Sobolev-type loss on periodic domains, computed in Fourier space."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import BaseLoss, checked_single_batch, difference, require_target

_Real = Union[int, float]


def _squared_mode_number(shape: tuple[int, ...]) -> np.ndarray:
    """`|n|^2` on the FFT grid of `shape` (integer mode numbers `n_d`).

    Built with NumPy from the static shape, so it is a compile-time constant.
    """
    n2 = np.zeros(shape)
    for axis, n in enumerate(shape):
        modes = np.fft.fftfreq(n, d=1.0 / n)
        n2 = n2 + np.expand_dims(
            np.square(modes), [a for a in range(len(shape)) if a != axis]
        )
    return n2


class SobolevLoss(BaseLoss):
    """Weighted sum of mean squared derivatives of the error, on a periodic domain.

    For one state `(C, *N)` on `[0, L)^D` (`D >= 1` spatial axes), with
    `e = prediction - target` (or `e = prediction` if `target` is `None`):

    $$\\mathcal{S}(e) = \\frac{1}{C} \\sum_c \\sum_s w_s \\,
    \\frac{1}{\\prod N} \\sum_x |\\nabla^s e_c(x)|^2
    = \\frac{1}{C} \\sum_c \\sum_s w_s \\,
    \\frac{1}{(\\prod N)^2} \\sum_k |k|^{2s} |\\hat e_c(k)|^2,$$

    where `ê_c = fftn(e_c)` over the spatial axes and `k = 2πn/L` is the
    angular wavenumber (Parseval). Order 0 is the MSE; order 1 is the mean
    squared gradient norm `Σ_d |∂_d e|²`; order 2 equals the mean squared
    Laplacian (and the mean squared Frobenius norm of the Hessian, which has the
    same value on a periodic domain). Fractional orders use `|k|^{2s}` as well.
    The Nyquist mode of an even grid counts with `|k| = πN/L`.

    With `normalized=True` the value is divided by the same quantity computed
    for the target, `S(p - t) / S(t)` (a target is then required).

    A batch `(B, C, *N)` gives the mean over `B` of the single-state values.

    **Arguments:**

    - `domain_extent`: the side length `L` of the periodic domain (the same
        along every spatial axis).
    - `orders`: the derivative orders `s >= 0` (floats allowed).
    - `weights`: one weight `w_s` per order; `None` means all ones.
    - `normalized`: divide by the same norm of the target.

    ```python
    loss = tx.loss.SobolevLoss(domain_extent=2 * jnp.pi, orders=(0, 1))
    x = jnp.linspace(0, 2 * jnp.pi, 64, endpoint=False)
    loss.single_batch(jnp.sin(3 * x)[None])  # 0.5 + 9 * 0.5 = 5.0
    ```
    """

    domain_extent: Union[_Real, Float[Array, ""]]
    orders: tuple[float, ...] = eqx.field(static=True)
    weights: tuple[_Real, ...]
    normalized: bool = eqx.field(static=True)

    def __init__(
        self,
        domain_extent: Union[_Real, Float[Array, ""]] = 1.0,
        orders: Sequence[_Real] = (0, 1),
        weights: Optional[Sequence[_Real]] = None,
        normalized: bool = False,
    ):
        self.domain_extent = domain_extent
        self.orders = tuple(float(order) for order in orders)
        self.weights = (
            (1.0,) * len(self.orders) if weights is None else tuple(weights)
        )
        self.normalized = bool(normalized)

    def __check_init__(self):
        if len(self.orders) == 0:
            raise ValueError("`orders` must name at least one derivative order.")
        if any(order < 0 for order in self.orders):
            raise ValueError(f"`orders` must be non-negative; got {self.orders}.")
        if len(self.weights) != len(self.orders):
            raise ValueError(
                "`weights` must have one entry per order: expected "
                f"{len(self.orders)}, got {len(self.weights)}."
            )
        if isinstance(self.domain_extent, (int, float)) and self.domain_extent <= 0:
            raise ValueError(
                f"`domain_extent` must be positive; got {self.domain_extent}."
            )

    def _spectral_weight(self, spatial_shape: tuple[int, ...], dtype) -> Array:
        """`Σ_s w_s |k|^{2s}` on the FFT grid, divided by `(Π N)^2` (Parseval).

        With `k = 2πn/L`, `|k|^{2s} = (2π/L)^{2s} |n|^{2s}`: the mode-number
        part is a NumPy constant, the extent enters as a scalar (it may be traced).
        """
        n2 = _squared_mode_number(spatial_shape)
        wavenumber_unit = 2 * jnp.pi / jnp.asarray(self.domain_extent, dtype)
        total = jnp.zeros(spatial_shape, dtype)
        for order, weight in zip(self.orders, self.weights):
            # np.power(0, 0) = 1: order 0 weighs the mean mode too.
            modes = jnp.asarray(np.power(n2, order), dtype)
            total = total + weight * wavenumber_unit ** (2 * order) * modes
        return total / math.prod(spatial_shape) ** 2

    def _norm(self, field: Float[Array, "C *N"], spectral_weight) -> Float[Array, ""]:
        """Mean over channels of the weighted Sobolev seminorms squared."""
        spatial_axes = tuple(range(1, field.ndim))
        coefficients = jnp.fft.fftn(field, axes=spatial_axes)
        power = jnp.square(jnp.abs(coefficients))
        per_channel = jnp.sum(spectral_weight * power, axis=spatial_axes)
        return jnp.mean(per_channel)

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        if prediction.ndim < 2:
            raise ValueError(
                "SobolevLoss needs at least one spatial axis: a state of shape "
                f"(C, *N) with len(N) >= 1; got shape {prediction.shape}."
            )
        if self.normalized:
            require_target(self, target)
        spectral_weight = self._spectral_weight(prediction.shape[1:], prediction.dtype)
        value = self._norm(difference(prediction, target), spectral_weight)
        if self.normalized:
            value = value / self._norm(target, spectral_weight)
        return value
