"""Windows of consecutive time levels cut from reference trajectories."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._checks import positive_int


def _check_trajectories(trajectories, window: int, *, name: str = "trajectories"):
    shape = getattr(trajectories, "shape", None)
    if shape is None or len(shape) < 3:
        raise ValueError(
            f"`{name}` must have shape (S, T+1, C, *N) (samples, time levels, "
            f"channels, space); got shape {shape}."
        )
    if shape[1] < window:
        raise ValueError(
            f"`{name}` hold {shape[1]} time levels, but windows of {window} are "
            f"needed (num_rollout_steps plus the initial state, and any post-physics "
            f"steps): make the trajectories longer or num_rollout_steps smaller."
        )


def count_windows(shape, window: int) -> int:
    """The number of `window`-level windows in trajectories of `shape` (S, T+1, ...)."""
    return shape[0] * (shape[1] - window + 1)


def substack_trajectories(
    trajectories: Float[Array, "S T_plus_1 C *N"], window: int
) -> Float[Array, "S_times_windows W C *N"]:
    """All windows of `window` consecutive time levels, stacked.

    Turns `(S, T+1, C, *N)` into `(S * (T + 2 - window), window, C, *N)`;
    sample `s` contributes its windows first (start 0, 1, ...), then sample
    `s + 1`.

    ```python
    data = jnp.zeros((3, 11, 1, 16))                     # (S, T+1, C, *N)
    windows = tx.trainer.substack_trajectories(data, 6)  # for 5 rollout steps
    windows.shape                                        # (18, 6, 1, 16)
    ```
    """
    positive_int("window", window)
    _check_trajectories(trajectories, window)
    return TrajectorySubStacker(trajectories, window).all()


class TrajectorySubStacker(eqx.Module):
    """Cuts windows out of trajectories on demand, without storing all windows.

    Window `i` is `trajectories[i // n, i % n : i % n + window]` with
    `n = T + 2 - window` windows per sample, the same order as
    [`substack_trajectories`][trainax.trainer.substack_trajectories]. Keeping
    only the trajectories (not the `window`-fold copy) keeps memory flat for
    long windows.

    **Arguments:**

    - `trajectories`: `(S, T+1, C, *N)`.
    - `window`: the number of time levels per window.
    """

    trajectories: Float[Array, "S T_plus_1 C *N"]
    window: int = eqx.field(static=True)

    def __init__(self, trajectories, window: int):
        positive_int("window", window)
        _check_trajectories(trajectories, window)
        self.trajectories = jnp.asarray(trajectories)
        self.window = window

    @property
    def windows_per_sample(self) -> int:
        return self.trajectories.shape[1] - self.window + 1

    @property
    def num_windows(self) -> int:
        return count_windows(self.trajectories.shape, self.window)

    def __call__(self, indices: Int[Array | np.ndarray, " B"]) -> Float[Array, "B W C *N"]:
        """The windows with the given flat indices, `(B, window, C, *N)`."""
        sample, start = jnp.divmod(indices, self.windows_per_sample)

        def one(s, t):
            return jax.lax.dynamic_slice_in_dim(self.trajectories[s], t, self.window, 0)

        return jax.vmap(one)(sample, start)

    def all(self) -> Float[Array, "S_times_windows W C *N"]:
        return self(jnp.arange(self.num_windows))


def is_host_source(trajectories) -> bool:
    """Whether `trajectories` is an out-of-memory array-like (memmap, HDF5, zarr)."""
    if isinstance(trajectories, np.memmap):
        return True
    if isinstance(trajectories, (jax.Array, np.ndarray)):
        return False
    return hasattr(trajectories, "shape") and hasattr(trajectories, "__getitem__")


class HostSubStacker:
    """Like [`TrajectorySubStacker`][trainax.trainer.TrajectorySubStacker], but
    reads windows on the host from an array-like that need not fit in memory
    (`np.memmap`, `h5py.Dataset`, zarr): each trajectory touched by a request
    is read once, then cut into its windows.
    """

    def __init__(self, trajectories, window: int):
        positive_int("window", window)
        _check_trajectories(trajectories, window)
        self.trajectories = trajectories
        self.window = window

    @property
    def windows_per_sample(self) -> int:
        return self.trajectories.shape[1] - self.window + 1

    @property
    def num_windows(self) -> int:
        return count_windows(self.trajectories.shape, self.window)

    def __call__(self, indices) -> np.ndarray:
        """The windows with the given flat indices; any leading shape."""
        indices = np.asarray(indices)
        sample, start = np.divmod(indices.reshape(-1), self.windows_per_sample)
        out = np.empty(
            (sample.size, self.window) + tuple(self.trajectories.shape[2:]),
            dtype=self.trajectories.dtype,
        )
        for s in np.unique(sample):
            rows = np.flatnonzero(sample == s)
            trajectory = np.asarray(self.trajectories[int(s)])
            for row in rows:
                out[row] = trajectory[start[row] : start[row] + self.window]
        return out.reshape(indices.shape + out.shape[1:])
