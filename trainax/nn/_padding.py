"""Circular (periodic) padding and the argument checks the models share."""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import positive_int


def periodic_pad(u, kernel_size: int):
    """Pad every spatial axis of `u` `(C, *N)` periodically for a `VALID` conv.

    A kernel of size `k` sees `(k - 1) // 2` neighbours on the left and
    `k // 2` on the right, the same split as `padding="SAME"`: a two-point
    kernel sees `u[i]` and `u[i + 1]`.
    """
    left, right = (kernel_size - 1) // 2, kernel_size // 2
    widths = [(0, 0)] + [(left, right)] * (u.ndim - 1)
    return jnp.pad(u, widths, mode="wrap")


def check_num_spatial_dims(value) -> int:
    value = positive_int("num_spatial_dims", value)
    if value > 3:
        raise ValueError(f"`num_spatial_dims` must be 1, 2 or 3, got {value}.")
    return value


def check_activation(value):
    if not callable(value):
        raise TypeError(
            f"`activation` must be a callable such as jax.nn.relu, got {value!r}."
        )
    return value


def check_state(u, channels: int, num_spatial_dims: int, name: str) -> None:
    """Raise a plain `ValueError` for a state of the wrong layout (at trace time)."""
    shape = getattr(u, "shape", None)
    if shape is None or len(shape) != num_spatial_dims + 1 or shape[0] != channels:
        axes = ", ".join(["C=" + str(channels)] + [f"N{i}" for i in range(num_spatial_dims)])
        raise ValueError(
            f"{name} acts on one state ({axes}), channels first and unbatched "
            f"(use jax.vmap for batches); got shape {shape}."
        )
