"""Supervised rollout training: learn the upwind stencil of 1D advection.

A two-point convolution without bias is trained on trajectories of
`u_t + c u_x = 0` at the Courant number -0.75. Each step of the data is the
exact (Fourier) solution; the two-point stencil that reproduces it best is the
first-order upwind scheme with weights `[1 + CFL, -CFL]`. Training over longer
rollouts (`num_rollout_steps` = 1, 5, 20) brings the learned weights closer.

    python examples/supervised_advection.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/supervised_advection.py   # seconds
"""

import os
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 150 if SMALL else 1000

CFL = -0.75
UPWIND = jnp.array([1 + CFL, -CFL])


def rollout_error(stepper, trajectories, num_steps):
    """Mean relative L2 error after `num_steps` autoregressive steps."""
    u = trajectories[:, 0]
    for _ in range(num_steps):
        u = jax.vmap(stepper)(u)
    metric = tx.loss.Normalized_RMSELoss()
    return float(metric(u, trajectories[:, num_steps]))


def main():
    data = tx.sample_data.advection_1d_periodic(
        cfl=CFL, num_samples=30, key=jax.random.PRNGKey(0)
    )  # (30, 100, 1, 30): 30 trajectories of 100 states on 30 points
    train_data, test_data = data[:20], data[20:]
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))

    for num_rollout_steps in (1, 5, 20):
        trainer = tx.trainer.SupervisedTrainer(
            train_data,
            num_rollout_steps=num_rollout_steps,
            optimizer=optax.adam(1e-2),
            num_training_steps=NUM_TRAINING_STEPS,
            batch_size=32,
            progress_bar=not SMALL,
        )
        learned, loss_history = trainer(conv, key=jax.random.PRNGKey(42))
        weights = learned.weight.ravel()
        print(
            f"rollout {num_rollout_steps:2d}: stencil [{weights[0]:.4f}, {weights[1]:.4f}]"
            f"  stencil error {float(jnp.linalg.norm(weights - UPWIND)):.4f}"
            f"  error after 10 test steps {rollout_error(learned, test_data, 10):.4f}"
            f"  loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}"
        )
    print(f"upwind stencil: [{UPWIND[0]:.4f}, {UPWIND[1]:.4f}]")


if __name__ == "__main__":
    main()
