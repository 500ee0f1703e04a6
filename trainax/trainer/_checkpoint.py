"""Saving and restoring the whole training state in one file."""

from __future__ import annotations

import hashlib
import io
import os

import equinox as eqx
import jax
import numpy as np

from .._atomic import atomic_write
from ..parallel import to_host

# The file holds the serialised state (params, optimizer state, step, key),
# then the loss history as one `.npy` record, then a trailer: a magic word
# and the SHA-256 of everything before it. The history comes last and is
# read with its own length, so a run can be resumed with more steps; the
# trailer tells a damaged file (truncated, overwritten) from a mismatched one.
_MAGIC = b"TRAINAX-STATE-1\n"
_TRAILER = len(_MAGIC) + 32


def save_state(path, params, opt_state, step: int, loss_history, key_data) -> None:
    """Write the training state atomically (a crash never leaves half a file).

    With several processes only the first writes; replicated arrays that span
    processes are read from their local copy.
    """
    if jax.process_index() != 0:
        return
    params, opt_state = jax.tree_util.tree_map(
        lambda x: to_host(x) if isinstance(x, jax.Array) else x, (params, opt_state)
    )
    state = {
        "params": params,
        "opt_state": opt_state,
        "step": np.asarray(step, dtype=np.int64),
        "key": np.asarray(key_data),
    }
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(payload, state)
    np.save(payload, np.asarray(loss_history), allow_pickle=False)
    payload = payload.getvalue()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path) as f:
        f.write(payload + _MAGIC + hashlib.sha256(payload).digest())


def load_state(path, params, opt_state, key_data):
    """Read a state written by `save_state`, shaped like the given skeleton.

    Returns a dict with `params`, `opt_state`, `step`, `key` and
    `loss_history` (the history of the saved run, of its own length).
    """
    like = {
        "params": params,
        "opt_state": opt_state,
        "step": np.asarray(0, dtype=np.int64),
        "key": np.asarray(key_data),
    }
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"`resume_from`: no checkpoint at {name!r}.")
    with open(name, "rb") as f:
        data = f.read()
    payload = data[:-_TRAILER]
    trailer = data[-_TRAILER:]
    if (
        len(data) < _TRAILER
        or trailer[: len(_MAGIC)] != _MAGIC
        or hashlib.sha256(payload).digest() != trailer[len(_MAGIC):]
    ):
        raise ValueError(
            f"`resume_from`: the checkpoint {name!r} is damaged (truncated, overwritten "
            "or not a trainax checkpoint); delete it or resume from another one."
        )
    f = io.BytesIO(payload)
    try:
        state = eqx.tree_deserialise_leaves(f, like)
        state["loss_history"] = np.load(f, allow_pickle=False)
    except Exception as error:  # shapes or structure differ
        raise ValueError(
            f"`resume_from`: the checkpoint {name!r} does not match this trainer and "
            f"model (a different model or optimizer?): {error}"
        ) from error
    return state
