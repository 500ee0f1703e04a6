"""Data sources: what the trainer draws minibatches from.

A source turns a configuration into a *feed*: an Equinox module called inside
the compiled training loop as `feed(position, indices, key) -> batch`, where
`position` is the step's place in the current chunk, `indices` the `(B,)`
sample (or window) indices the mixer drew for the step and `key` the step's
draw key. Each source uses what it needs and ignores the rest, so the trainer
has one loop for all of them.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree

from .._checks import positive_int
from ._substack import (
    HostSubStacker,
    TrajectorySubStacker,
    _check_trajectories,
    count_windows,
    is_host_source,
)


def _short(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


class AbstractDataSource(abc.ABC):
    """What a [`GeneralTrainer`][trainax.trainer.GeneralTrainer] draws from.

    Subclasses say how many items they hold for a configuration (`None`: an
    infinite source), how one minibatch looks and how to build it inside the
    compiled loop. See [`Trajectories`][trainax.trainer.Trajectories],
    [`Samples`][trainax.trainer.Samples] and [`Sampler`][trainax.trainer.Sampler].
    """

    #: whether minibatches are gathered on the host, one chunk at a time
    host: bool = False

    @abc.abstractmethod
    def num_items(self, configuration) -> Optional[int]:
        """The number of windows or samples to permute; `None` for a sampler."""

    @abc.abstractmethod
    def check(self, configuration, batch_size: int) -> None:
        """Raise a clear error if this source cannot feed `configuration`."""

    @abc.abstractmethod
    def feed(self, configuration, batch_size: int) -> eqx.Module:
        """The device-side feed `(position, indices, key) -> batch` for a stage."""

    def host_chunk(self, configuration, indices: np.ndarray) -> eqx.Module:
        """A feed holding the chunk's minibatches, gathered on the host."""
        raise NotImplementedError

    @abc.abstractmethod
    def example_batch(self, configuration, batch_size: int) -> PyTree[jax.ShapeDtypeStruct]:
        """Shapes and dtypes of one minibatch (nothing is computed)."""

    @property
    @abc.abstractmethod
    def dtype(self):
        """The floating dtype of the data."""


# -- feeds: tiny modules, arguments of the compiled loop -----------------------


class _WindowFeed(eqx.Module):
    substacker: TrajectorySubStacker

    def __call__(self, position, indices, key):
        return self.substacker(indices)


class _GatherFeed(eqx.Module):
    samples: PyTree[Array]

    def __call__(self, position, indices, key):
        return jax.tree_util.tree_map(lambda leaf: leaf[indices], self.samples)


class _ChunkFeed(eqx.Module):
    # (chunk, B, ...) per leaf: the chunk's minibatches, read on the host
    # (NumPy arrays, moved to the device by the compiled loop's call)
    batches: PyTree

    def __call__(self, position, indices, key):
        return jax.tree_util.tree_map(lambda leaf: leaf[position], self.batches)


class _SamplerFeed(eqx.Module):
    fn: Callable
    batch_size: int = eqx.field(static=True)

    def __call__(self, position, indices, key):
        return self.fn(key, self.batch_size)


# -- the sources ---------------------------------------------------------------


class Trajectories(AbstractDataSource):
    """Trajectories `(S, T+1, C, *N)`, cut into windows of the configuration's length.

    Window `i` holds time levels `t .. t + W - 1` of trajectory `s`, numbered
    trajectory by trajectory (see
    [`substack_trajectories`][trainax.trainer.substack_trajectories]); every
    window is drawn once per epoch. Windows are cut inside the compiled loop
    from the trajectories on the device, or, for out-of-memory array-likes
    (`np.memmap`, `h5py.Dataset`, zarr) gathered on the host chunk by chunk.
    Passing an array to a trainer means `Trajectories(array)`.

    **Arguments:**

    - `trajectories`: `(S, T+1, C, *N)`, floating point.
    - `window_length`: cut windows of this many time levels instead of the
        configuration's own (at least that many; the named trainers use
        `num_rollout_steps + 1` for every configuration, as the rollout
        taxonomy does).
    - `do_sub_stacking`: `False` takes only the first window of each
        trajectory (default `True`: every window).
    - `host`: gather windows on the host. Default: on for array-likes that
        are not in memory, off for JAX and NumPy arrays.

    ```python
    data = jnp.zeros((4, 11, 1, 16))
    source = tx.trainer.Trajectories(data)
    source.num_items(tx.configuration.Supervised(5))   # 4 * 6 windows
    ```
    """

    def __init__(
        self,
        trajectories,
        *,
        window_length: Optional[int] = None,
        do_sub_stacking: bool = True,
        host: Optional[bool] = None,
    ):
        if window_length is not None:
            positive_int("window_length", window_length)
        self.window_length = window_length
        self.do_sub_stacking = bool(do_sub_stacking)
        if isinstance(trajectories, AbstractDataSource):
            raise TypeError("`trajectories` is already a data source; pass it directly.")
        self.host = is_host_source(trajectories) if host is None else bool(host)
        if not self.host:
            trajectories = jnp.asarray(trajectories)
        shape = getattr(trajectories, "shape", None)
        if shape is None or len(shape) < 3:
            raise ValueError(
                "`trajectories` must have shape (S, T+1, C, *N) (samples, time levels, "
                f"channels, space); got shape {shape}."
            )
        if shape[1] < 2:
            raise ValueError(
                f"`trajectories` hold a single time level (shape {_short(shape)}): "
                "rollout training needs at least two (an initial state and its successor)."
            )
        if not np.issubdtype(np.dtype(trajectories.dtype), np.floating):
            raise TypeError(
                "`trajectories` must hold floating-point values, got dtype "
                f"{trajectories.dtype}."
            )
        self.trajectories = trajectories

    @property
    def dtype(self):
        return np.dtype(self.trajectories.dtype)

    def _window(self, configuration) -> int:
        window = configuration.window_length
        if window is None:
            raise TypeError(
                f"{type(configuration).__name__} trains on samples, not trajectory "
                "windows: pass the data as tx.trainer.Samples(...) (or a Sampler)."
            )
        if self.window_length is not None:
            if self.window_length < window:
                raise ValueError(
                    f"`window_length` ({self.window_length}) is shorter than the "
                    f"{window} time levels {type(configuration).__name__} needs."
                )
            window = self.window_length
        return window

    def _data(self, configuration):
        """The trajectories windows are cut from: only the first window of each
        when not sub-stacking."""
        if self.do_sub_stacking:
            return self.trajectories
        return self.trajectories[:, : self._window(configuration)]

    def num_items(self, configuration) -> int:
        return count_windows(self._data(configuration).shape, self._window(configuration))

    def check(self, configuration, batch_size: int) -> None:
        _check_trajectories(self.trajectories, self._window(configuration))

    def feed(self, configuration, batch_size: int) -> eqx.Module:
        window = self._window(configuration)
        return _WindowFeed(TrajectorySubStacker(self._data(configuration), window))

    def host_chunk(self, configuration, indices) -> eqx.Module:
        stacker = HostSubStacker(self._data(configuration), self._window(configuration))
        return _ChunkFeed(stacker(indices))

    def all_windows(self, configuration):
        """Every window at once, `(num_windows, W, C, *N)`."""
        indices = np.arange(self.num_items(configuration))
        if self.host:
            return jnp.asarray(self.host_chunk(configuration, indices).batches)
        return self.feed(configuration, 0).substacker(jnp.asarray(indices))

    def example_batch(self, configuration, batch_size: int):
        shape = (batch_size, self._window(configuration)) + tuple(self.trajectories.shape[2:])
        return jax.ShapeDtypeStruct(shape, self.dtype)

    @property
    def state_shape(self) -> tuple[int, ...]:
        """The shape `(C, *N)` of one state."""
        return tuple(self.trajectories.shape[2:])


def _leading_axes(tree, name: str) -> int:
    leaves, _ = jax.tree_util.tree_flatten(tree)
    if not leaves:
        raise ValueError(f"`{name}` holds no arrays; got {tree!r}.")
    sizes = []
    for leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0:
            raise ValueError(
                f"`{name}`: every leaf needs a leading sample axis; got a leaf of "
                f"shape {shape} (type {type(leaf).__name__})."
            )
        sizes.append(shape[0])
    if len(set(sizes)) != 1:
        shapes = ", ".join(_short(leaf.shape) for leaf in leaves)
        raise ValueError(
            f"`{name}`: every leaf must have the same leading (sample) axis; got "
            f"leaves of shapes {shapes}."
        )
    return sizes[0]


def _floating_dtype(tree):
    dtypes = [
        np.dtype(leaf.dtype)
        for leaf in jax.tree_util.tree_leaves(tree)
        if np.issubdtype(np.dtype(leaf.dtype), np.floating)
    ]
    return dtypes[0] if dtypes else np.dtype(jnp.result_type(float))


class Samples(AbstractDataSource):
    """Any PyTree of arrays with a leading sample axis, in minibatches of samples.

    Pairs `(inputs, targets)` for operator learning, parameter fields alone for
    physics-informed training, observed trajectories with their coordinates
    and masks: every leaf is indexed by the same `(B,)` sample indices, each
    sample once per epoch, and the minibatch is the same PyTree with leading
    axis `B`. A configuration that keeps per-sample state (such as latent
    codes) receives the indices as `indices=`.

    **Arguments:**

    - `samples`: a PyTree of arrays, all with the same leading axis `S`.
    - `host`: gather minibatches on the host (default: on when a leaf is an
        out-of-memory array-like such as `np.memmap` or `h5py.Dataset`).

    ```python
    inputs, targets = jnp.zeros((10, 2, 16)), jnp.zeros((10, 1, 16))
    source = tx.trainer.Samples((inputs, targets))
    source.num_samples   # 10
    ```
    """

    def __init__(self, samples: PyTree, *, host: Optional[bool] = None):
        if isinstance(samples, AbstractDataSource):
            raise TypeError("`samples` is already a data source; pass it directly.")
        self.num_samples = _leading_axes(samples, "samples")
        leaves = jax.tree_util.tree_leaves(samples)
        if host is None:
            host = any(is_host_source(leaf) for leaf in leaves)
        self.host = bool(host)
        if not self.host:
            samples = jax.tree_util.tree_map(jnp.asarray, samples)
        self.samples = samples

    @property
    def dtype(self):
        return _floating_dtype(self.samples)

    def num_items(self, configuration) -> int:
        return self.num_samples

    def check(self, configuration, batch_size: int) -> None:
        pass

    def feed(self, configuration, batch_size: int) -> eqx.Module:
        return _GatherFeed(self.samples)

    def host_chunk(self, configuration, indices) -> eqx.Module:
        indices = np.asarray(indices)
        # read each needed sample once, in increasing order (fast on disk;
        # h5py also requires increasing indices)
        needed, inverse = np.unique(indices.reshape(-1), return_inverse=True)

        def gather(leaf):
            rows = np.asarray(leaf[needed])[inverse]
            return rows.reshape(indices.shape + rows.shape[1:])

        return _ChunkFeed(jax.tree_util.tree_map(gather, self.samples))

    def example_batch(self, configuration, batch_size: int):
        return jax.tree_util.tree_map(
            lambda leaf: jax.ShapeDtypeStruct((batch_size,) + tuple(leaf.shape[1:]), leaf.dtype),
            self.samples,
        )

    def all_samples(self):
        """Every sample at once (the PyTree itself, on the device)."""
        return jax.tree_util.tree_map(jnp.asarray, self.samples)


class Sampler(AbstractDataSource):
    """A fresh minibatch drawn at every step: `fn(key, batch_size) -> batch`.

    The draw runs inside the compiled loop. Its key is split from the
    trainer's key and the step index, so the same key gives the same draws,
    also after a resume. Use it for infinite data, such as new parameter
    fields at every step of physics-informed training.

    **Arguments:**

    - `fn`: `fn(key, batch_size)` returning a PyTree of arrays, each with
        leading axis `batch_size`. It may be an Equinox module holding arrays.

    ```python
    def draw(key, batch_size):
        return jax.random.normal(key, (batch_size, 1, 16))

    source = tx.trainer.Sampler(draw)
    ```
    """

    def __init__(self, fn: Callable[[Any, int], PyTree]):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable as fn(key, batch_size), got {fn!r}.")
        self.fn = fn

    def num_items(self, configuration) -> None:
        return None

    def _shapes(self, batch_size: int):
        try:
            return eqx.filter_eval_shape(self.fn, jax.random.PRNGKey(0), batch_size)
        except Exception as error:
            raise ValueError(
                f"`fn` fails when called as fn(key, {batch_size}): "
                f"{type(error).__name__}: {error}"
            ) from error

    def check(self, configuration, batch_size: int) -> None:
        shapes = self._shapes(batch_size)
        leaves = jax.tree_util.tree_leaves(shapes)
        if not leaves:
            raise ValueError("`fn` must return a PyTree of arrays; it returned none.")
        for leaf in leaves:
            if len(leaf.shape) == 0 or leaf.shape[0] != batch_size:
                raise ValueError(
                    f"`fn` must return arrays with leading axis batch_size={batch_size}; "
                    f"it returned an array of shape {_short(leaf.shape)}."
                )

    @property
    def dtype(self):
        return _floating_dtype(self._shapes(1))

    def feed(self, configuration, batch_size: int) -> eqx.Module:
        return _SamplerFeed(self.fn, batch_size)

    def example_batch(self, configuration, batch_size: int):
        return self._shapes(batch_size)


def as_source(data) -> AbstractDataSource:
    """A data source for `data`: sources pass through, arrays become `Trajectories`."""
    if isinstance(data, AbstractDataSource):
        return data
    if isinstance(data, (tuple, list, dict)):
        raise TypeError(
            "`data` is a tuple, list or dict: wrap pairs or other PyTrees of samples as "
            "tx.trainer.Samples(data) (for operator learning: Samples((inputs, targets)))."
        )
    return Trajectories(data)

