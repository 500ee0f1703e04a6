"""Reproducible minibatch draws: each sample exactly once per epoch."""

from __future__ import annotations

import jax
import jax.random as jr
import numpy as np

from .._checks import positive_int


def _key_words(key) -> tuple[int, ...]:
    key = jax.numpy.asarray(key)
    if jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jr.key_data(key)
    return tuple(int(word) for word in np.asarray(key).ravel())


class PermutationMixer:
    """Draws minibatch indices epoch by epoch from a key.

    The index stream is the concatenation of one random permutation of
    `range(num_samples)` per epoch, and minibatch `i` is positions
    `i * batch_size ... (i + 1) * batch_size - 1` of that stream. So every
    sample appears exactly once in each epoch's `num_samples` consecutive
    draws, every minibatch has the same shape (one compiled update serves all
    steps), and minibatch `i` depends only on `(key, i)`: resuming at step `i`
    draws what an uninterrupted run draws. When `batch_size` does not divide
    `num_samples`, one minibatch spans the end of one epoch and the start of
    the next.

    The permutations are drawn on the host (NumPy's PCG64, seeded by the JAX
    key's words and the epoch number), once per epoch: a sort on the device
    per chunk of steps cost more than the training steps of small models.

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

    def __init__(self, num_samples: int, batch_size: int, *, key):
        positive_int("num_samples", num_samples)
        positive_int("batch_size", batch_size)
        if batch_size > num_samples:
            raise ValueError(
                f"`batch_size` ({batch_size}) must not exceed the number of samples "
                f"to draw from ({num_samples})."
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self._seed = _key_words(key)
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the samples."""
        epoch = int(epoch)
        if epoch not in self._cache:
            if len(self._cache) >= 4:  # a chunk rarely spans more epochs
                self._cache.pop(next(iter(self._cache)))
            rng = np.random.default_rng(np.random.SeedSequence(self._seed + (epoch,)))
            self._cache[epoch] = rng.permutation(self.num_samples).astype(np.int32)
        return self._cache[epoch]

    def __call__(self, step: int) -> np.ndarray:
        """The indices of minibatch `step`, shape `(batch_size,)`."""
        return self.chunk(step, 1)[0]

    def chunk(self, start_step: int, num_steps: int) -> np.ndarray:
        """The indices of minibatches `start_step .. start_step + num_steps - 1`."""
        n, b = self.num_samples, self.batch_size
        first, last = int(start_step) * b, (int(start_step) + int(num_steps)) * b
        first_epoch, last_epoch = first // n, (last - 1) // n
        stream = np.concatenate(
            [self.permutation(e) for e in range(first_epoch, last_epoch + 1)]
        )
        offset = first - first_epoch * n
        return stream[offset : offset + (last - first)].reshape(int(num_steps), b)
