"""Learn the Lorenz-63 system with an MLP: states without a spatial axis.

A state of the Lorenz system is a vector `(x, y, z)` of shape `(3,)`: one
"channel" axis and no space. Losses, configurations and trainers need nothing
else, so the same `SupervisedTrainer` trains a residual MLP stepper on RK4
trajectories. Training first on one step and then on rollouts of four steps
(a `Curriculum`) keeps the chaotic dynamics in check early on.

    python examples/lorenz.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/lorenz.py
"""

import os
import sys

import equinox as eqx
import jax
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
STEPS_PER_STAGE = 200 if SMALL else 3000
SCALE = 20.0  # the attractor's extent: keeps the MLP's inputs of order one


class ResidualMLP(eqx.Module):
    """`u -> u + SCALE * mlp(u / SCALE)` on one state `(3,)`."""

    mlp: eqx.nn.MLP

    def __init__(self, *, key):
        self.mlp = eqx.nn.MLP(3, 3, width_size=64, depth=2,
                              activation=jax.nn.tanh, key=key)

    def __call__(self, u):
        return u + SCALE * self.mlp(u / SCALE)


def main():
    data = tx.sample_data.lorenz_rk4(
        num_samples=40 if SMALL else 100, temporal_horizon=100, dt=0.01,
        num_warmup_steps=300, key=jax.random.PRNGKey(0),
    )  # (S, 100, 3), on the attractor
    train_data, test_data = data[:-10], data[-10:]
    model = ResidualMLP(key=jax.random.PRNGKey(1))

    curriculum = tx.trainer.Curriculum.rollout([1, 4], steps_per_stage=STEPS_PER_STAGE)
    total = curriculum.num_training_steps
    trainer = tx.GeneralTrainer(
        train_data,
        curriculum,
        optax.adam(optax.cosine_decay_schedule(3e-3, total)),
        None,
        batch_size=64,
        progress_bar=not SMALL,
    )
    learned, loss_history = trainer(model, key=jax.random.PRNGKey(2))

    validation = tx.callback.ValidationRollout(
        every=1, trajectories=test_data, num_rollout_steps=50,
        metric=tx.loss.Normalized_RMSELoss(),
    )
    before = validation.compute(0, model, None)
    after = validation.compute(0, learned, None)
    print(f"test nRMSE after 1/10/50 steps, untrained: "
          f"{before[0]:.4f} / {before[9]:.4f} / {before[49]:.4f}")
    print(f"test nRMSE after 1/10/50 steps, trained:   "
          f"{after[0]:.4f} / {after[9]:.4f} / {after[49]:.4f}")
    print(f"loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}")


if __name__ == "__main__":
    main()
