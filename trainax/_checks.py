"""Small argument checks shared by the public constructors."""

from __future__ import annotations

import numbers


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
