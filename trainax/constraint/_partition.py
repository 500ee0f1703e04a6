"""A regular, non-overlapping partition of a grid into blocks, one per expert."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np
from jaxtyping import Array, Shaped


def check_counts(counts, shape: Sequence[int], name: str = "partition") -> tuple[int, ...]:
    """`counts` as a tuple of positive ints, one per grid axis, each dividing its axis."""
    if isinstance(counts, numbers.Integral) or not isinstance(counts, (tuple, list)):
        raise TypeError(f"`{name}` must be a tuple of expert counts per axis, got {counts!r}.")
    if len(counts) != len(shape):
        raise ValueError(
            f"`{name}` must hold one expert count per grid axis ({len(shape)}), got {tuple(counts)}."
        )
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"`{name}` must hold positive ints, got {tuple(counts)}.")
    for axis, (c, n) in enumerate(zip(counts, shape)):
        if n % c:
            raise ValueError(
                f"`{name}` must divide the grid: axis {axis} has {n} nodes, not divisible "
                f"by {c} experts (grid {tuple(shape)}, partition {tuple(counts)})."
            )
    return tuple(int(c) for c in counts)


def _split_shape(shape, counts):
    out = []
    for n, c in zip(shape, counts):
        out += [c, n // c]
    return out


def partition(
    field: Shaped[Array, "C *N"], counts: Sequence[int]
) -> Shaped[Array, "E C *B"]:
    """Cut a field on a grid into the blocks of a regular partition.

    Axis `i` of the grid is cut into `counts[i]` equal blocks. Expert `e`
    owns the block with block index `np.unravel_index(e, counts)` (the last
    axis varies fastest), so the experts are the blocks in C order.
    [`stitch`][trainax.constraint.stitch] is the inverse.

    **Arguments:**

    - `field`: `(C, *N)`, channels first.
    - `counts`: the number of blocks per grid axis; each divides its axis.

    **Returns:** the blocks, `(E, C, *B)` with `E = prod(counts)` and
    `B_i = N_i / counts_i`.

    ```python
    field = jnp.arange(2 * 4 * 6.0).reshape(2, 4, 6)
    blocks = tx.constraint.partition(field, (1, 3))   # (3, 2, 4, 2): strips along x
    tx.constraint.stitch(blocks, (1, 3)).shape        # (2, 4, 6), equal to field
    ```
    """
    return _cut(field, check_counts(counts, field.shape[1:], "counts"))


def _cut(field, counts):
    # works on NumPy and JAX arrays alike
    d = len(counts)
    split = field.reshape(field.shape[0], *_split_shape(field.shape[1:], counts))
    # (C, c0, b0, c1, b1, ...) -> (c0, c1, ..., C, b0, b1, ...)
    order = [1 + 2 * i for i in range(d)] + [0] + [2 + 2 * i for i in range(d)]
    blocks = split.transpose(order)
    return blocks.reshape(math.prod(counts), field.shape[0], *blocks.shape[d + 1 :])


def stitch(blocks: Shaped[Array, "E C *B"], counts: Sequence[int]) -> Shaped[Array, "C *N"]:
    """Put the blocks of [`partition`][trainax.constraint.partition] back on the grid.

    **Arguments:**

    - `blocks`: `(E, C, *B)`, expert `e` holding block `np.unravel_index(e, counts)`.
    - `counts`: the number of blocks per grid axis (`prod(counts) == E`).

    **Returns:** the field `(C, *N)`, `N_i = counts_i * B_i`.

    ```python
    blocks = jnp.ones((4, 1, 8, 4))
    tx.constraint.stitch(blocks, (1, 4)).shape        # (1, 8, 16)
    ```
    """
    counts = tuple(counts)
    d = len(counts)
    if blocks.ndim != d + 2 or blocks.shape[0] != math.prod(counts):
        raise ValueError(
            f"`blocks` must have shape (E, C, *B) with E = prod(counts) = {math.prod(counts)} "
            f"and {d} block axes, got {tuple(blocks.shape)}."
        )
    channels, block = blocks.shape[1], blocks.shape[2:]
    grid = blocks.reshape(*counts, channels, *block)
    # (c0, c1, ..., C, b0, b1, ...) -> (C, c0, b0, c1, b1, ...)
    order = [d] + [x for i in range(d) for x in (i, d + 1 + i)]
    return grid.transpose(order).reshape(channels, *(c * b for c, b in zip(counts, block)))


def partition_numpy(array: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """[`partition`][trainax.constraint.partition] of a static NumPy array `(*N)` -> `(E, *B)`."""
    return _cut(np.asarray(array)[None], tuple(counts))[:, 0]
