"""Time-level losses: what they measure, how they compose, how to train with one.

1. Two errors with the same mean squared value, one smooth and one rough, are
   told apart by `SobolevLoss`, which also weighs the error's derivatives
   (computed spectrally on the periodic domain); normalized losses divide by
   the size of the target.
2. Losses add and scale into new losses, and any of them can be the
   `time_level_loss` of a configuration. A convolutional network learns the
   Kuramoto-Sivashinsky equation with `MSELoss() + 0.01 * SobolevLoss(...)`,
   which penalises errors in the small scales of the chaotic solution more.

    python examples/losses.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/losses.py
"""

import os
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 100 if SMALL else 3000


def compare_losses():
    x = jnp.linspace(0.0, 1.0, 64, endpoint=False)
    target = jnp.sin(2 * jnp.pi * x)[None]  # one state (C=1, N=64)
    smooth_error = 0.1 * jnp.sin(2 * jnp.pi * 2 * x)[None]
    rough_error = 0.1 * jnp.sin(2 * jnp.pi * 12 * x)[None]
    losses = {
        "MSELoss": tx.loss.MSELoss(),
        "Normalized_RMSELoss": tx.loss.Normalized_RMSELoss(),
        "SobolevLoss(orders=(0, 1))": tx.loss.SobolevLoss(domain_extent=1.0, orders=(0, 1)),
        "MSELoss + 0.01 * SobolevLoss((1,))": (
            tx.loss.MSELoss() + 0.01 * tx.loss.SobolevLoss(domain_extent=1.0, orders=(1,))
        ),
    }
    print(f"{'loss':36s} {'smooth error':>12s} {'rough error':>12s}")
    for name, loss in losses.items():
        smooth = loss.single_batch(target + smooth_error, target)
        rough = loss.single_batch(target + rough_error, target)
        print(f"{name:36s} {float(smooth):12.4e} {float(rough):12.4e}")


def conv_net(key, width=16, depth=3):
    keys = jax.random.split(key, depth)
    layers = []
    for i, k in enumerate(keys):
        c_in = 1 if i == 0 else width
        c_out = 1 if i == depth - 1 else width
        layers.append(eqx.nn.Conv1d(c_in, c_out, 5, padding="SAME",
                                    padding_mode="CIRCULAR", key=k))
        if i < depth - 1:
            layers.append(eqx.nn.Lambda(jax.nn.gelu))
    return eqx.nn.Sequential(layers)


class Residual(eqx.Module):
    net: eqx.nn.Sequential

    def __call__(self, u):
        return u + 0.1 * self.net(u)


def train_with_sobolev():
    domain_extent = 36.0
    data = tx.sample_data.kuramoto_sivashinsky_1d_periodic(
        domain_extent=domain_extent, num_samples=10 if SMALL else 40,
        temporal_horizon=20, key=jax.random.PRNGKey(0),
    )
    # the Sobolev loss needs the domain's length for its derivatives
    loss = tx.loss.MSELoss() + 0.01 * tx.loss.SobolevLoss(
        domain_extent=domain_extent, orders=(1,)
    )
    trainer = tx.trainer.SupervisedTrainer(
        data,
        num_rollout_steps=2,
        time_level_loss=loss,
        optimizer=optax.adam(1e-3),
        num_training_steps=NUM_TRAINING_STEPS,
        batch_size=16,
        progress_bar=not SMALL,
    )
    model = Residual(conv_net(jax.random.PRNGKey(1)))
    learned, loss_history = trainer(model, key=jax.random.PRNGKey(2))
    print(f"Kuramoto-Sivashinsky, MSE + Sobolev, {NUM_TRAINING_STEPS} steps")
    print(f"loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}")


if __name__ == "__main__":
    compare_losses()
    train_with_sobolev()
