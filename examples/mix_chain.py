"""Mix-chain training: the network's steps are continued by the solver.

A three-point linear stencil learns one step of the heat equation
`u_t = nu u_xx`. With `MixChainPostPhysics(T, P)` the network takes `T` steps
from the data's initial state, the reference solver continues `P` steps from
the network's last state, and every level of that mixed chain is compared
with the data. Gradients flow back through the (differentiable) solver steps,
so the network is also judged by how its states evolve under the physics.

With `time_level_weights` that are zero on the network's own levels, only the
post-physics levels supervise the network.

The learned stencils `[a, b, a]` come out close to the explicit Euler stencil
`[r, 1 - 2r, r]`, `r = nu dt / dx^2`, the classical three-point scheme for the
same step (not equal to it: they fit the exact step on the data's modes).

    python examples/mix_chain.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/mix_chain.py
"""

import os
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 500 if SMALL else 2000

DIFFUSIVITY, NUM_POINTS, DT, CUTOFF = 0.01, 32, 0.01, 10
R = DIFFUSIVITY * DT * NUM_POINTS**2  # nu dt / dx^2 on the unit interval


def main():
    data, heat = tx.sample_data.diffusion_1d_periodic(
        diffusivity=DIFFUSIVITY, num_points=NUM_POINTS, dt=DT, cutoff=CUTOFF,
        num_samples=10 if SMALL else 20, temporal_horizon=20,
        key=jax.random.PRNGKey(0), return_stepper=True,
    )
    stencil = eqx.nn.Conv1d(1, 1, 3, padding="SAME", padding_mode="CIRCULAR",
                            use_bias=False, key=jax.random.PRNGKey(1))
    num_rollout_steps, num_post_physics_steps = 2, 3
    runs = {
        "all levels": None,
        "post-physics levels only": jnp.array(
            [0.0] * num_rollout_steps + [1.0] * num_post_physics_steps
        ),
    }
    for name, weights in runs.items():
        trainer = tx.trainer.MixChainPostPhysicsTrainer(
            data,
            ref_stepper=heat,
            num_rollout_steps=num_rollout_steps,
            num_post_physics_steps=num_post_physics_steps,
            time_level_weights=weights,
            optimizer=optax.adam(optax.cosine_decay_schedule(1e-2, NUM_TRAINING_STEPS)),
            num_training_steps=NUM_TRAINING_STEPS,
            batch_size=16,
            progress_bar=not SMALL,
        )
        learned, loss_history = trainer(stencil, key=jax.random.PRNGKey(2))
        w = learned.weight.ravel()
        print(
            f"{name:25s} stencil [{w[0]:.3f}, {w[1]:.3f}, {w[2]:.3f}]"
            f"  loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}"
        )
    print(f"{'explicit Euler':25s} stencil [{R:.3f}, {1 - 2 * R:.3f}, {R:.3f}]")


if __name__ == "__main__":
    main()
