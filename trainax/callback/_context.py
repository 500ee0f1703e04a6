"""What the trainer shows a callback besides the step and the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np


@dataclass(frozen=True)
class CallbackContext:
    """What a callback may look at, besides the step and the model.

    **Fields:**

    - `batch`: the minibatch the trainer draws at this step (trajectory
        windows `(B, W, C, *N)`, or the PyTree of a `Samples` or `Sampler`
        source).
    - `loss_fn`: `loss_fn(model, batch) -> scalar`, the current
        configuration's loss, with this step's key (and sample indices) bound.
    - `configuration`: the configuration in force at this step.
    - `opt_state`: the optimizer state.
    - `loss_history`: the losses of the steps done so far (NumPy, in the
        loss's own dtype).
    - `key`: the per-step key the configuration receives at this step.
    - `indices`: the minibatch's sample or window indices (`None` for a
        `Sampler`).
    """

    batch: Any
    loss_fn: Optional[Callable]
    configuration: Any
    opt_state: Any
    loss_history: Optional[np.ndarray]
    key: Any = None
    indices: Optional[np.ndarray] = None
