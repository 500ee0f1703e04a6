"""Transfer learning: fine-tune a pretrained model, subsample a downstream set."""

from __future__ import annotations

import jax
import jax.random as jr
import numpy as np

from .._checks import positive_int
from ._general import GeneralTrainer
from ._sources import _leading_axes


def fine_tune(
    pretrained,
    data,
    configuration,
    optimizer,
    num_training_steps: int,
    batch_size: int,
    *,
    key,
    trainable=None,
    **trainer_kwargs,
):
    """Fine-tune `pretrained` on `data` with a fresh optimizer state.

    All floating-point weights train by default; `trainable` (as in
    [`GeneralTrainer`][trainax.trainer.GeneralTrainer]) trains only part of
    them, and the frozen leaves stay bit-identical. `num_training_steps=0`
    returns `pretrained` itself (a zero-shot model) and an empty history.

    **Returns:** `(model, loss_history)`.

    ```python
    inputs = jr.normal(jr.PRNGKey(0), (8, 2, 16))
    model = eqx.nn.Conv1d(2, 1, 3, padding=1, key=jr.PRNGKey(1))
    tuned, losses = tx.trainer.fine_tune(
        model, tx.Samples((inputs, inputs[:, :1])), tx.configuration.OperatorLearning(),
        optax.adam(1e-3), 10, 4, key=jr.PRNGKey(2), progress_bar=False,
        trainable=lambda m: m.bias,
    )
    ```
    """
    num_training_steps = positive_int("num_training_steps", num_training_steps, allow_zero=True)
    if num_training_steps == 0:
        return pretrained, np.zeros(0, dtype=np.float32)
    trainer = GeneralTrainer(
        data, configuration, optimizer, num_training_steps, batch_size,
        trainable=trainable, **trainer_kwargs,
    )
    return trainer(pretrained, key)


def subsample(samples, num_samples: int, *, key):
    """`num_samples` samples of a PyTree with a leading sample axis, drawn
    without replacement (the same key gives the same subset; a smaller subset
    of the same key is a prefix of a larger one).

    ```python
    inputs = jnp.arange(10.0)[:, None]
    tx.trainer.subsample((inputs, inputs), 4, key=jr.PRNGKey(0))[0].shape   # (4, 1)
    ```
    """
    total = _leading_axes(samples, "samples")
    num_samples = positive_int("num_samples", num_samples)
    if num_samples > total:
        raise ValueError(
            f"`num_samples` ({num_samples}) exceeds the {total} samples available."
        )
    order = np.asarray(jr.permutation(key, total))[:num_samples]
    return jax.tree_util.tree_map(lambda leaf: leaf[order], samples)
