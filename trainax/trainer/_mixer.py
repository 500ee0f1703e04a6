"""Reproducible minibatch draws: each sample exactly once per epoch."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Int, PRNGKeyArray

from .._checks import positive_int


class PermutationMixer(eqx.Module):
    """Draws minibatch indices epoch by epoch from a key.

    The index stream is the concatenation of one random permutation of
    `range(num_samples)` per epoch (epoch `e` uses `fold_in(key, e)`), and
    minibatch `i` is positions `i * batch_size ... (i + 1) * batch_size - 1`
    of that stream. So every sample appears exactly once in each epoch's
    `num_samples` consecutive draws, every minibatch has the same shape (one
    compiled update serves all steps), and minibatch `i` depends only on
    `(key, i)`: resuming at step `i` draws what an uninterrupted run draws.
    When `batch_size` does not divide `num_samples`, one minibatch spans the
    end of one epoch and the start of the next.

    **Arguments:**

    - `num_samples`: the number of windows to draw from.
    - `batch_size`: the minibatch size (at most `num_samples`).
    - `key`: a JAX PRNG key.

    ```python
    mixer = tx.PermutationMixer(100, 32, key=jax.random.PRNGKey(0))
    mixer(0)              # (32,) indices of minibatch 0
    mixer.chunk(0, 10)    # (10, 32) indices of minibatches 0..9
    ```
    """

    num_samples: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    key: PRNGKeyArray

    def __init__(self, num_samples: int, batch_size: int, *, key: PRNGKeyArray):
        positive_int("num_samples", num_samples)
        positive_int("batch_size", batch_size)
        if batch_size > num_samples:
            raise ValueError(
                f"`batch_size` ({batch_size}) must not exceed the number of samples "
                f"to draw from ({num_samples})."
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.key = key

    def _permutation(self, epoch):
        return jr.permutation(jr.fold_in(self.key, epoch), self.num_samples)

    def __call__(self, step) -> Int[Array, " B"]:
        """The indices of minibatch `step`, shape `(batch_size,)`."""
        return self.chunk(step, 1)[0]

    def chunk(self, start_step, num_steps: int) -> Int[Array, "K B"]:
        """The indices of minibatches `start_step .. start_step + num_steps - 1`."""
        n, b = self.num_samples, self.batch_size
        first = jnp.asarray(start_step) * b
        first_epoch = first // n
        # epochs the chunk can touch: static, so this compiles once
        num_epochs = math.ceil(num_steps * b / n) + 1
        perms = jax.vmap(self._permutation)(first_epoch + jnp.arange(num_epochs))
        stream = perms.reshape(-1)
        offset = first - first_epoch * n
        picked = jax.lax.dynamic_slice_in_dim(stream, offset, num_steps * b)
        return picked.reshape(num_steps, b)
