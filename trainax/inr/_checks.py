"""Argument checks shared by the INR components; every error names the argument."""

from __future__ import annotations

import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def concrete(x):
    """`x` as a NumPy array when its values are known at trace time, else `None`."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def positive_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive number, got {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value}.")
    return float(value)


def shape_of(name: str, x) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}.")
    return tuple(shape)


def check_coords(name: str, coords, coord_dim: int) -> int:
    """`coords` must be `(P, coord_dim)`; returns `P`."""
    shape = shape_of(name, coords)
    if len(shape) != 2 or shape[1] != coord_dim:
        raise ValueError(
            f"`{name}` must have shape (P, {coord_dim}) (points of the decoder's "
            f"{coord_dim}-dimensional domain), got shape {shape}."
        )
    return shape[0]


def check_mask(mask, num_points: int, name: str = "mask"):
    """A boolean `(P,)` mask that keeps at least one point.

    An empty mask makes every masked mean 0 / 0; concrete masks are rejected
    at once, traced ones (under `jit` or `vmap`) by `eqx.error_if` at run time.
    """
    shape = shape_of(name, mask)
    if shape != (num_points,) or mask.dtype != jnp.bool_:
        raise ValueError(
            f"`{name}` must be a boolean array of shape ({num_points},), got "
            f"{mask.dtype} of shape {shape}."
        )
    values = concrete(mask)
    if values is not None:
        if not values.any():
            raise ValueError(f"`{name}` must keep at least one point, got one that keeps none.")
        return mask
    return eqx.error_if(mask, ~jnp.any(mask), f"`{name}` must keep at least one point.")


def check_times(times, name: str = "times"):
    """A one-dimensional, strictly increasing array of times."""
    shape = shape_of(name, times)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"`{name}` must be a non-empty 1D array of times, got shape {shape}.")
    values = concrete(times)
    message = f"`{name}` must be strictly increasing"
    if values is not None:
        steps = np.diff(values)
        if not np.all(steps > 0):
            bad = int(np.argmin(steps > 0))
            raise ValueError(
                f"{message}, got times[{bad}] = {values[bad]} followed by "
                f"times[{bad + 1}] = {values[bad + 1]}."
            )
        return times
    return eqx.error_if(times, jnp.any(jnp.diff(times) <= 0), message + ".")
