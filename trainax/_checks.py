"""Small argument checks shared by the public constructors."""

from __future__ import annotations

import inspect
import math
import numbers
import os
from typing import Any, Callable, Optional

import equinox as eqx
import jax


def positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    """Return `value` as an int, or raise naming `name` if it is not one > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer, got {value!r} of type {type(value).__name__}."
        )
    lower = 0 if allow_zero else 1
    if value < lower:
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be {bound}, got {value}.")
    return int(value)


def output_of(name: str, fn, *probes, given: str):
    """The abstract output of `fn(*probes)`, or a one-line error naming `name`.

    `given` says what the probes are, e.g. "one input of shape (2, 16)".
    """
    try:
        return eqx.filter_eval_shape(fn, *probes)
    except Exception as error:
        raise ValueError(
            f"`{name}` cannot be applied to {given}: {type(error).__name__}: {error}"
        ) from error


def require_shape(name: str, out, expected, maps: str) -> None:
    """Raise unless `out` has shape `expected`; `maps` says what should map to it."""
    shape = getattr(out, "shape", None)
    if shape != tuple(expected):
        raise ValueError(
            f"`{name}` must map {maps} {tuple(expected)}; it returns "
            f"{shape if shape is not None else type(out).__name__}."
        )


def check_stepper(name: str, stepper, state_shape, dtype) -> None:
    """Raise unless `stepper` maps a state of `state_shape` to one of the same shape."""
    probe = jax.ShapeDtypeStruct(tuple(state_shape), dtype)
    out = output_of(name, stepper, probe, given=(
        f"one state of the trajectories, of shape {tuple(state_shape)} (C, *N)"))
    out_shape = getattr(out, "shape", None)
    out_dtype = getattr(out, "dtype", None)
    if out_shape == tuple(state_shape) and out_dtype != dtype:
        raise ValueError(
            f"`{name}` must keep the data's dtype: it maps a {dtype} state to a "
            f"{out_dtype} one. Cast the model or the data (e.g. both float64 under "
            "jax_enable_x64)."
        )
    if out_shape != tuple(state_shape):
        raise ValueError(
            f"`{name}` must map a state to a state of the same shape: it maps "
            f"{tuple(state_shape)} to {out_shape}. Check the model's channels and "
            "padding against the trajectories (S, T+1, C, *N)."
        )


def find_stacklevel() -> int:
    """The `stacklevel` of a warning that points at the first caller outside trainax."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = inspect.currentframe(), 0
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return max(level, 1)


def positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    """`value` as a float > 0 (or >= 0), or an error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be {bound} and finite, got {value}.")
    return value


# a forcing of the vorticity equation: f(x, y) at coordinates in [0, 1)
Forcing = Callable[[Any, Any], Any]


def flow_parameters(nu, horizon, forcing) -> tuple[float, float, Optional[Forcing]]:
    """`(nu, horizon, forcing)` of a vorticity equation, checked: `nu >= 0`,
    `horizon > 0` and `forcing` None or a callable `f(x, y)`, else an error
    naming the argument."""
    nu = positive_float("nu", nu, allow_zero=True)
    horizon = positive_float("horizon", horizon)
    if forcing is not None and not callable(forcing):
        raise TypeError(
            f"`forcing` must be None or a callable f(x, y), got {type(forcing).__name__}."
        )
    return nu, horizon, forcing
