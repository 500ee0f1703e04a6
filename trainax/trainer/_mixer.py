"""Reproducible minibatch draws: each sample exactly once per epoch."""

from __future__ import annotations

import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import positive_int


_KEEP = 2**22  # indices of drawn permutations kept for reuse (16 MiB)


def _rounds(num_samples: int) -> int:
    """The sorting rounds of `jax.random.permutation(key, num_samples)`."""
    return int(np.ceil(3 * np.log(max(1, num_samples)) / np.log(np.iinfo(np.uint32).max)))


@functools.lru_cache(maxsize=None)
def _sort_keys(num_samples: int, num_epochs: int):
    """A compiled `key -> (sort keys (epochs, rounds, n), the next epoch key)`.

    `jax.random.permutation(k, n)` sorts `arange(n)` by fresh random 32-bit
    words in each of its rounds (`k, sub = split(k)`, words `bits(sub)`), by
    a stable sort. The words are cheap to draw on the device; the sort is
    not (XLA's CPU sort is about 1 ms for 2000 entries), so the mixer draws
    the words of a block of epochs in one dispatch and sorts them with
    NumPy's stable argsort: the same permutations, exactly.
    """
    rounds = _rounds(num_samples)

    @jax.jit
    def draw(key):
        def chain(key, _):
            return jr.split(key)[0], key

        next_key, keys = jax.lax.scan(chain, key, None, length=num_epochs)

        def words(key):
            out = []
            for _ in range(rounds):
                key, sub = jr.split(key)
                out.append(jr.bits(sub, (num_samples,), jnp.uint32))
            return jnp.stack(out) if out else jnp.zeros((0, num_samples), jnp.uint32)

        return jax.vmap(words)(keys), next_key

    return draw


@functools.lru_cache(maxsize=None)
def _advance(num_epochs: int):
    """A compiled `key -> the key num_epochs epochs later` (no words drawn)."""

    @jax.jit
    def advance(key):
        return jax.lax.fori_loop(0, num_epochs, lambda _, k: jr.split(k)[0], key)

    return advance


def _permutations(words: np.ndarray) -> np.ndarray:
    """The permutations sorted out of the words `(epochs, rounds, n)`.

    Each round reorders the arrangement by a stable sort of its words, as
    `lax.sort_key_val(words, order)` does. A stable argsort equals an
    unstable sort of the unique 64-bit keys `word << 32 | position` (ties
    between equal words broken by position), which NumPy sorts with SIMD
    several times faster than its stable argsort.
    """
    epochs, rounds, n = words.shape
    order = np.broadcast_to(np.arange(n, dtype=np.int32), (epochs, n))
    positions = np.arange(n, dtype=np.uint64)
    for r in range(rounds):
        packed = (words[:, r].astype(np.uint64) << np.uint64(32)) | positions
        packed.sort(axis=1)
        moves = (packed & np.uint64(0xFFFFFFFF)).astype(np.intp)
        order = np.take_along_axis(order, moves, axis=1)
    return np.ascontiguousarray(order, dtype=np.int32)


def _raw_key(key):
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jr.key_data(key)
    return jax.device_put(key, jax.local_devices(backend="cpu")[0])


class PermutationMixer:
    """Draws minibatch indices epoch by epoch from a key.

    Epoch `e` visits the samples in the order `jax.random.permutation(k_e,
    num_samples)`, where `k_0 = key` and `k_{e+1} = jax.random.split(k_e)[0]`.
    Its minibatches are taken from that permutation in order, `batch_size` at
    a time; when `batch_size` does not divide `num_samples` the last
    minibatch of each epoch is **smaller** (the remainder), never filled from
    the next epoch. So every sample appears exactly once per epoch, an epoch
    has `ceil(num_samples / batch_size)` steps, and minibatch `i` depends only
    on `(key, i)`: resuming at step `i` draws what an uninterrupted run draws.

    The permutations are drawn outside the compiled training loop, a block of
    epochs per dispatch.

    **Arguments:**

    - `num_samples`: the number of windows or samples to draw from.
    - `batch_size`: the minibatch size (at most `num_samples`).
    - `key`: a JAX PRNG key.
    - `epochs_per_draw`: how many epochs' permutations one dispatch draws
        (default 64; the trainer passes what its steps need). The stream does
        not depend on it.
    - `num_epochs`: how many epochs the caller will visit, if known. Then the
        words of the next block of epochs are dispatched with those of the
        current one, and sorted on the host while the device trains on the
        current block. The stream does not depend on it.

    ```python
    mixer = tx.PermutationMixer(10, 4, key=jax.random.PRNGKey(0))
    mixer(0), mixer(1)    # two minibatches of 4
    mixer(2)              # the epoch's last minibatch: 2 indices
    mixer.chunk(3, 2)     # (2, 4) indices of minibatches 3 and 4 (next epoch)
    ```
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        key,
        epochs_per_draw: int = 64,
        num_epochs: Optional[int] = None,
    ):
        positive_int("num_samples", num_samples)
        positive_int("batch_size", batch_size)
        if batch_size > num_samples:
            raise ValueError(
                f"`batch_size` ({batch_size}) must not exceed the number of samples "
                f"to draw from ({num_samples})."
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.steps_per_epoch = math.ceil(num_samples / batch_size)
        # epochs are drawn in blocks (of at most about a million indices)
        positive_int("epochs_per_draw", epochs_per_draw)
        self._block = max(1, min(epochs_per_draw, 2**20 // num_samples))
        self._steps_per_block = self._block * self.steps_per_epoch
        self._num_epochs = None if num_epochs is None else positive_int("num_epochs", num_epochs)
        self._keys = [_raw_key(key)]  # the key of each block's first epoch
        self._cache: dict[int, np.ndarray] = {}
        self._ahead: dict[int, jax.Array] = {}  # words dispatched, not yet sorted

    def _draw(self, block: int) -> jax.Array:
        """Dispatch the words of block `block`, `(block size, rounds, n)`, and
        record the key of the block after it."""
        if len(self._keys) <= block:  # skip blocks: walk the key chain only
            advance = _advance(self._block)
            while len(self._keys) <= block:
                self._keys.append(advance(self._keys[-1]))
        words, next_key = _sort_keys(self.num_samples, self._block)(self._keys[block])
        if len(self._keys) == block + 1:  # the next block's key comes for free
            self._keys.append(next_key)
        return words

    def _orders(self, block: int) -> np.ndarray:
        """The permutations of the epochs of block `block`, `(block size, n)`."""
        if block not in self._cache:
            words = self._ahead.pop(block, None)
            if words is None:
                words = self._draw(block)
            ahead = block + 1
            if (self._num_epochs is not None and ahead * self._block < self._num_epochs
                    and ahead not in self._ahead and ahead not in self._cache):
                # dispatched now, ahead of the device work the caller queues next
                self._ahead[ahead] = self._draw(ahead)
            orders = _permutations(np.asarray(words))
            orders.setflags(write=False)
            # kept while they are small (a later pass over the same steps, as a
            # second call with the same key, draws nothing); at least the two
            # blocks a chunk can span
            while len(self._cache) >= 2 and (len(self._cache) + 1) * orders.size > _KEEP:
                self._cache.pop(next(iter(self._cache)))
            self._cache[block] = orders
        return self._cache[block]

    def permutation(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the samples (read-only)."""
        block, offset = divmod(int(epoch), self._block)
        return self._orders(block)[offset]

    def block_end(self, step: int) -> int:
        """The first step after the block of epochs that holds step `step`:
        a chunk that stops there lets the next block be drawn while it runs."""
        return (int(step) // self._steps_per_block + 1) * self._steps_per_block

    def batch_size_at(self, step: int) -> int:
        """The size of minibatch `step` (smaller at the end of an epoch)."""
        position = int(step) % self.steps_per_epoch
        return min(self.batch_size, self.num_samples - position * self.batch_size)

    def next_short_step(self, step: int):
        """The first step `>= step` whose minibatch is smaller, or `None`."""
        if self.num_samples % self.batch_size == 0:
            return None
        last = self.steps_per_epoch - 1
        epoch, position = divmod(int(step), self.steps_per_epoch)
        return epoch * self.steps_per_epoch + last if position <= last else None

    def __call__(self, step: int) -> np.ndarray:
        """The indices of minibatch `step`, shape `(batch_size_at(step),)`."""
        epoch, position = divmod(int(step), self.steps_per_epoch)
        start = position * self.batch_size
        # a copy: the caller may write into it without touching the cache
        return self.permutation(epoch)[start : start + self.batch_size].copy()

    def chunk(self, start_step: int, num_steps: int) -> np.ndarray:
        """The indices of minibatches `start_step .. start_step + num_steps - 1`.

        Returns `(num_steps, b)`; every minibatch of the chunk must have the
        same size `b` (a smaller last minibatch of an epoch is a chunk of its own).
        """
        start_step, num_steps = int(start_step), int(num_steps)
        if self.num_samples % self.batch_size == 0:  # full minibatches: rows of the blocks
            out = np.empty((num_steps, self.batch_size), dtype=np.int32)
            done = 0
            while done < num_steps:
                block, row = divmod(start_step + done, self._steps_per_block)
                rows = self._orders(block).reshape(-1, self.batch_size)
                take = min(num_steps - done, self._steps_per_block - row)
                out[done : done + take] = rows[row : row + take]
                done += take
            return out
        steps = np.arange(start_step, start_step + num_steps)
        epochs, positions = np.divmod(steps, self.steps_per_epoch)
        starts = positions * self.batch_size
        sizes = np.minimum(self.batch_size, self.num_samples - starts)
        if sizes.size and sizes.min() != sizes.max():
            raise ValueError(
                "`chunk` spans minibatches of different sizes (the smaller last one of "
                "an epoch); take it as a chunk of its own."
            )
        size = int(sizes[0]) if sizes.size else self.batch_size
        out = np.empty((len(steps), size), dtype=np.int32)
        blocks, offsets = np.divmod(epochs, self._block)
        columns = starts[:, None] + np.arange(size)
        for block in np.unique(blocks):  # one gather per block of epochs
            rows = blocks == block
            out[rows] = self._orders(int(block))[offsets[rows][:, None], columns[rows]]
        return out
