"""The abstract time-level loss, its algebra (sums and scalings), the input
checks shared by every loss and the body shared by the mean-error losses."""

from __future__ import annotations

import abc
import functools
from typing import Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Scale = Union[float, int, Float[Array, ""]]


def _check_floating(name: str, array) -> None:
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a floating-point array; got dtype {array.dtype}."
        )


def _check_inputs(prediction, target, *, batched: bool):
    """Raise an error naming the argument for malformed inputs (one line)."""
    if batched:
        min_ndim, layout = 2, "a batch (B, C, *N) with batch and channel axes"
    else:
        min_ndim, layout = 1, "a state (C, *N) with a channel axis"
    _check_floating("prediction", prediction)
    if prediction.ndim < min_ndim:
        raise ValueError(
            f"`prediction` must be {layout}; got shape {prediction.shape}."
        )
    if target is not None:
        _check_floating("target", target)
        if target.shape != prediction.shape:
            raise ValueError(
                "`target` must have the shape of `prediction`: expected "
                f"{prediction.shape}, got {target.shape}."
            )


def _checked(*, batched: bool) -> Callable:
    """Decorate a loss method `(self, prediction, target=None)`.

    Array-likes are converted to JAX arrays and checked (dtype, axes, shapes)
    before the method runs. Everything happens at trace time, so the method
    stays jit/vmap/grad-able.
    """

    def decorator(method):
        @functools.wraps(method)
        def wrapper(self, prediction, target=None):
            prediction = jnp.asarray(prediction)
            if target is not None:
                target = jnp.asarray(target)
            _check_inputs(prediction, target, batched=batched)
            return method(self, prediction, target)

        return wrapper

    return decorator


checked_single_batch = _checked(batched=False)
"""Decorator for every concrete `single_batch`: input checks at entry."""


def difference(
    prediction: Float[Array, "C *N"], target: Optional[Float[Array, "C *N"]]
) -> Float[Array, "C *N"]:
    """The error `prediction - target`; the prediction itself if no target."""
    return prediction if target is None else prediction - target


def require_target(loss: "BaseLoss", target) -> None:
    """Normalized losses divide by a norm of the target: it must be given."""
    if target is None:
        raise ValueError(
            f"{type(loss).__name__} needs a `target` (it divides by a norm of "
            "the target); got target=None."
        )


def safe_sqrt(x: Float[Array, ""]) -> Float[Array, ""]:
    """`sqrt(x)` whose gradient at `x = 0` is 0 instead of NaN.

    The other branch is `0 * x` rather than `0`, so a NaN (e.g. `0 / 0` in a
    normalized loss with a zero target) still shows up as NaN.
    """
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0 * x)


class BaseLoss(eqx.Module):
    """A time-level loss: compares one state with a reference, or with zero.

    Subclasses implement [`single_batch`][trainax.loss.BaseLoss.single_batch]
    on one state `(C, *N)` (decorate it with `checked_single_batch` for the
    shared input checks); calling the loss on a batch `(B, C, *N)` vmaps it
    over the leading axis and takes the mean. A state may have no spatial
    axis at all, e.g. a Lorenz state `(3,)`.

    Losses are Equinox modules, so they pass through `jit`/`grad`, and they
    compose: `loss_a + loss_b`, `0.5 * loss` and `loss / 2` are losses too.

    ```python
    loss = tx.loss.MSELoss() + 0.1 * tx.loss.SobolevLoss(orders=(1,))
    prediction, target = jnp.ones((4, 1, 16)), jnp.zeros((4, 1, 16))  # (B, C, *N)
    loss(prediction, target)  # 1.0: the constant has no derivative
    ```
    """

    @abc.abstractmethod
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        """The loss of one state `(C, *N)` against `target` (zero if `None`)."""

    @_checked(batched=True)
    def multi_batch(
        self,
        prediction: Float[Array, "B C *N"],
        target: Optional[Float[Array, "B C *N"]] = None,
    ) -> Float[Array, ""]:
        """The mean over a batch `(B, C, *N)` of the single-state losses."""
        if target is None:
            values = jax.vmap(lambda p: self.single_batch(p, None))(prediction)
        else:
            values = jax.vmap(self.single_batch)(prediction, target)
        return jnp.mean(values)

    # Checked here too (trace time only), so that the plain errors come first
    # whatever wraps `__call__`, e.g. a type checker in the test suite.
    @_checked(batched=True)
    def __call__(
        self,
        prediction: Float[Array, "B C *N"],
        target: Optional[Float[Array, "B C *N"]] = None,
    ) -> Float[Array, ""]:
        """Batched loss; same as [`multi_batch`][trainax.loss.BaseLoss.multi_batch]."""
        return self.multi_batch(prediction, target)

    def __add__(self, other: "BaseLoss") -> "BaseLoss":
        if not isinstance(other, BaseLoss):
            return NotImplemented
        return SumLoss((self, other))

    def __radd__(self, other) -> "BaseLoss":
        # `sum(losses)` starts from the integer 0.
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, scale: Scale) -> "BaseLoss":
        if isinstance(scale, BaseLoss) or not _is_scalar(scale):
            return NotImplemented
        return ScaledLoss(self, scale)

    __rmul__ = __mul__

    def __truediv__(self, scale: Scale) -> "BaseLoss":
        if isinstance(scale, BaseLoss) or not _is_scalar(scale):
            return NotImplemented
        return ScaledLoss(self, 1.0 / scale)


def _is_scalar(x) -> bool:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return True
    return isinstance(x, jax.Array) and x.ndim == 0


class SumLoss(BaseLoss):
    """The sum of several losses.

    `single_batch(p, t) = sum(loss.single_batch(p, t) for loss in losses)`.

    **Arguments:**

    - `losses`: a tuple of [`trainax.loss.BaseLoss`][].

    ```python
    loss = tx.loss.SumLoss((tx.loss.MSELoss(), tx.loss.MAELoss()))
    # the same as tx.loss.MSELoss() + tx.loss.MAELoss()
    ```
    """

    losses: tuple[BaseLoss, ...]

    def __check_init__(self):
        if not all(isinstance(loss, BaseLoss) for loss in self.losses):
            raise TypeError("`losses` must be a tuple of BaseLoss instances.")

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        return sum(loss.single_batch(prediction, target) for loss in self.losses)


class ScaledLoss(BaseLoss):
    """A loss multiplied by a constant.

    `single_batch(p, t) = scale * loss.single_batch(p, t)`.

    **Arguments:**

    - `loss`: the [`trainax.loss.BaseLoss`][] to scale.
    - `scale`: a scalar.

    ```python
    loss = tx.loss.ScaledLoss(tx.loss.MSELoss(), 2.0)  # same as 2 * MSELoss()
    ```
    """

    loss: BaseLoss
    scale: Scale

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        return self.scale * self.loss.single_batch(prediction, target)


class _MeanError(BaseLoss):
    """The mean of `|e|^p` over one state, optionally relative to the target.

    The one body of the MSE, MAE and RMSE losses and their normalized forms:
    `finish(mean(entry(e)))`, or `finish(mean(entry(e)) / mean(entry(t)))`
    when `normalized` (a class constant, so it is not a field of the PyTree).
    """

    normalized: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def _entry(self, x: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        """The pointwise size of an error, such as `x^2` or `|x|`."""

    def _finish(self, mean: Float[Array, ""]) -> Float[Array, ""]:
        return mean

    @checked_single_batch
    def single_batch(
        self,
        prediction: Float[Array, "C *N"],
        target: Optional[Float[Array, "C *N"]] = None,
    ) -> Float[Array, ""]:
        if self.normalized:
            require_target(self, target)
        value = jnp.mean(self._entry(difference(prediction, target)))
        if self.normalized:
            value = value / jnp.mean(self._entry(target))
        return self._finish(value)
