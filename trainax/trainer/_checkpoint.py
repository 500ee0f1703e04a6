"""Saving and restoring the whole training state in one file."""

from __future__ import annotations

import os
import tempfile

import equinox as eqx
import numpy as np


def save_state(path, params, opt_state, step: int, loss_history, key_data) -> None:
    """Write the training state atomically (a crash never leaves half a file)."""
    state = {
        "params": params,
        "opt_state": opt_state,
        "step": np.asarray(step, dtype=np.int64),
        "loss_history": np.asarray(loss_history, dtype=np.float32),
        "key": np.asarray(key_data),
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        eqx.tree_serialise_leaves(tmp, state)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state(path, params, opt_state, num_training_steps: int, key_data):
    """Read a state written by `save_state`, shaped like the given skeleton."""
    like = {
        "params": params,
        "opt_state": opt_state,
        "step": np.asarray(0, dtype=np.int64),
        "loss_history": np.zeros(num_training_steps, dtype=np.float32),
        "key": np.asarray(key_data),
    }
    if not os.path.exists(path):
        raise FileNotFoundError(f"`resume_from`: no checkpoint at {os.fspath(path)!r}.")
    try:
        state = eqx.tree_deserialise_leaves(path, like)
    except Exception as error:  # shapes or structure differ
        raise ValueError(
            f"`resume_from`: the checkpoint {os.fspath(path)!r} does not match this "
            "trainer and model (a different model, optimizer or num_training_steps?): "
            f"{error}"
        ) from error
    return state
