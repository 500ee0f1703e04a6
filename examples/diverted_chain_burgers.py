"""Diverted-chain training on the viscous Burgers equation.

A small residual convolutional network learns one step of
`u_t + (u^2 / 2)_x = nu u_xx`. Besides plain one-step supervision it is
trained with diverted chains: the network rolls out its own trajectory, and
the reference solver (the exponax stepper that made the data) branches off
every state of that trajectory. The network is compared with those branches,
so it learns to correct the states it visits itself, not only the data's.

- `DivertedChainBranchOneTrainer`: branches of one solver step.
- `DivertedChainTrainer(num_branch_steps=2, cut_div_chain=True)`: branches of
  two steps, with no gradient through the solver.

Each trained model is rolled out on held-out trajectories.

    python examples/diverted_chain_burgers.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/diverted_chain_burgers.py
"""

import os
import sys

import equinox as eqx
import jax
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 100 if SMALL else 3000
NUM_SAMPLES = 12 if SMALL else 60
TEST_STEPS = 20


class ResidualConvNet(eqx.Module):
    """`u -> u + net(u)`: a stepper that starts close to the identity."""

    layers: eqx.nn.Sequential

    def __init__(self, width: int, depth: int, *, key):
        keys = jax.random.split(key, depth)
        layers = []
        for i, k in enumerate(keys):
            c_in = 1 if i == 0 else width
            c_out = 1 if i == depth - 1 else width
            layers.append(eqx.nn.Conv1d(c_in, c_out, 5, padding="SAME",
                                        padding_mode="CIRCULAR", key=k))
            if i < depth - 1:
                layers.append(eqx.nn.Lambda(jax.nn.gelu))
        self.layers = eqx.nn.Sequential(layers)

    def __call__(self, u):
        return u + 0.1 * self.layers(u)


def rollout_nrmse(stepper, trajectories, num_steps):
    """Normalized RMSE after 1..num_steps steps, mean over trajectories."""
    validation = tx.callback.ValidationRollout(
        every=1, trajectories=trajectories[:, : num_steps + 1],
        metric=tx.loss.Normalized_RMSELoss(),
    )
    return validation.compute(0, stepper, None)


def main():
    data, burgers = tx.sample_data.burgers_1d_periodic(
        num_samples=NUM_SAMPLES + 10, temporal_horizon=TEST_STEPS, warmup_steps=10,
        key=jax.random.PRNGKey(0), return_stepper=True,
    )
    train_data, test_data = data[:NUM_SAMPLES], data[NUM_SAMPLES:]
    model = ResidualConvNet(width=16 if SMALL else 32, depth=3, key=jax.random.PRNGKey(1))
    common = dict(
        optimizer=optax.adam(optax.cosine_decay_schedule(1e-3, NUM_TRAINING_STEPS)),
        num_training_steps=NUM_TRAINING_STEPS,
        batch_size=16,
        progress_bar=not SMALL,
    )
    trainers = {}
    if not SMALL:  # the baseline; skipped in the quick run
        trainers["one-step supervised"] = tx.trainer.SupervisedTrainer(
            train_data, num_rollout_steps=1, **common
        )
    trainers |= {
        "diverted chain, branch one": tx.trainer.DivertedChainBranchOneTrainer(
            train_data, ref_stepper=burgers, num_rollout_steps=3, **common
        ),
        "diverted chain, branch two": tx.trainer.DivertedChainTrainer(
            train_data, ref_stepper=burgers, num_rollout_steps=4,
            num_branch_steps=2, cut_div_chain=True, **common
        ),
    }
    for name, trainer in trainers.items():
        learned, loss_history = trainer(model, key=jax.random.PRNGKey(2))
        error = rollout_nrmse(learned, test_data, TEST_STEPS)
        print(
            f"{name:27s} test nRMSE after 1/5/{TEST_STEPS} steps: "
            f"{error[0]:.4f} / {error[4]:.4f} / {error[-1]:.4f}"
            f"  loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}"
        )


if __name__ == "__main__":
    main()
