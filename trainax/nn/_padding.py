"""The argument checks the models share (one-line errors naming the argument)."""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import positive_int


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
    check_floating(u, name)


def check_floating(u, name: str) -> None:
    """Raise a plain `TypeError` for a state that is not floating point."""
    if not jnp.issubdtype(u.dtype, jnp.floating):
        raise TypeError(f"{name} acts on floating-point states; got dtype {u.dtype}.")
