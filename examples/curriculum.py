"""Composite configurations, time-level weights and curricula.

Three ways to shape the training signal for the advection stencil of
`supervised_advection.py`, all with `GeneralTrainer`:

1. A rollout curriculum, `Curriculum.rollout([1, 3, 10], ...)` (`[1, 3]` in
   the quick run): start with
   one-step training and lengthen the rollout stage by stage. The optimizer
   state carries over between stages.
2. Time-level weights that discount later steps of a long rollout,
   `exponential_time_level_weights(10, 0.8)`.
3. A composite configuration, `Supervised(5) + 0.1 * Residuum(5)`: data
   supervision plus a physics residual on the same rollout.

    python examples/curriculum.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/curriculum.py
"""

import os
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
STEPS_PER_STAGE = 100 if SMALL else 500
ROLLOUT_LENGTHS = [1, 3] if SMALL else [1, 3, 10]

CFL = -0.75
UPWIND = jnp.array([1 + CFL, -CFL])


def report(name, learned, loss_history):
    error = float(jnp.linalg.norm(learned.weight.ravel() - UPWIND))
    print(f"{name:38s} stencil error {error:.4f}"
          f"  loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}")


def main():
    data = tx.sample_data.advection_1d_periodic(cfl=CFL, key=jax.random.PRNGKey(0))
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))
    optimizer = optax.adam(1e-2)
    key = jax.random.PRNGKey(42)
    total_steps = 3 * STEPS_PER_STAGE

    # 1. a curriculum over the rollout length; num_training_steps comes from it
    curriculum = tx.trainer.Curriculum.rollout(ROLLOUT_LENGTHS, steps_per_stage=STEPS_PER_STAGE)
    trainer = tx.GeneralTrainer(data, curriculum, optimizer, None, batch_size=32,
                                progress_bar=not SMALL)
    learned, loss_history = trainer(conv, key=key)
    report("curriculum " + " -> ".join(map(str, ROLLOUT_LENGTHS)), learned, loss_history)
    start = 0
    for config, num_steps in curriculum.stages:
        stage = loss_history[start : start + num_steps]
        start += num_steps
        print(f"    stage num_rollout_steps={config.num_rollout_steps:2d}: "
              f"loss {stage[0]:.3e} -> {stage[-1]:.3e}")

    # 2. ten rollout steps, later steps discounted by 0.8 per step
    weights = tx.configuration.exponential_time_level_weights(10, 0.8)
    config = tx.configuration.Supervised(10, time_level_weights=weights)
    trainer = tx.GeneralTrainer(data, config, optimizer, total_steps, batch_size=32,
                                progress_bar=not SMALL)
    learned, loss_history = trainer(conv, key=key)
    report("10 steps, weights 0.8**t", learned, loss_history)

    # 3. supervision plus a residuum, one configuration
    config = (tx.configuration.Supervised(5)
              + 0.1 * tx.configuration.Residuum(5, cut_prev=True))
    trainer = tx.GeneralTrainer(
        data, config, optimizer, total_steps, batch_size=32,
        residuum_fn=tx.sample_data.advection_residuum(cfl=CFL),
        progress_bar=not SMALL,
    )
    learned, loss_history = trainer(conv, key=key)
    report("Supervised(5) + 0.1 * Residuum(5)", learned, loss_history)


if __name__ == "__main__":
    main()
