"""Argument checks shared by the data sources; errors name the argument."""

import math
import numbers

import jax
import jax.numpy as jnp


def _describe(value) -> str:
    return f"{value!r} (type {type(value).__name__})"


def check_int(name: str, value, *, minimum: int = 1) -> int:
    """Return `value` as an int if it is an integer >= `minimum`, else raise."""
    # bool is an int subclass, but `num_points=True` is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {_describe(value)}.")
    if value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{name}` must be {what}, got {value}.")
    return int(value)


def check_real(
    name: str, value, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """Return `value` as a finite Python float (optionally > 0 or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {_describe(value)}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be positive (> 0), got {value}.")
    if nonnegative and value < 0:
        raise ValueError(f"`{name}` must be non-negative (>= 0), got {value}.")
    return value


def check_cutoff(cutoff, num_points: int) -> int:
    """The IC cutoff must stay below the Nyquist mode `num_points // 2`."""
    cutoff = check_int("cutoff", cutoff)
    # The Nyquist mode cannot be advected or differentiated faithfully.
    if 2 * cutoff >= num_points:
        raise ValueError(
            f"`cutoff` must be below the Nyquist mode num_points // 2 "
            f"(2 * cutoff < num_points = {num_points}), got {cutoff}."
        )
    return cutoff


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {_describe(value)}.")
    return value


def check_key(key) -> None:
    """A JAX PRNG key: typed (`jax.random.key(0)`) or raw (`jax.random.PRNGKey(0)`)."""
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return
        if key.dtype == jnp.uint32 and key.shape in ((2,), (4,)):
            return
        given = f"an array of shape {key.shape} and dtype {key.dtype}"
    else:
        given = _describe(key)
    raise TypeError(
        f"`key` must be one JAX PRNG key such as jax.random.key(0), got {given}."
    )


def check_floating(name: str, array) -> None:
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a floating-point array, got dtype {array.dtype}."
        )


def check_rollout_args(
    *,
    num_points,
    num_samples,
    temporal_horizon,
    domain_extent,
    dt,
    cutoff,
    warmup_steps=0,
) -> None:
    """The checks every grid-based data source shares (on unchecked values)."""
    check_int("num_points", num_points, minimum=2)
    check_int("num_samples", num_samples)
    check_int("temporal_horizon", temporal_horizon)
    check_int("warmup_steps", warmup_steps, minimum=0)
    check_real("domain_extent", domain_extent, positive=True)
    check_real("dt", dt, positive=True)
    check_cutoff(cutoff, num_points)
