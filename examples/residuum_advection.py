"""Residuum training: learn advection from a PDE residual, without targets.

`ResiduumTrainer` uses only the initial states of the trajectories. The
network rolls out its own chain `u_0, u_1, ..., u_T`, and the loss is the
Crank-Nicolson residual of the advection equation on each pair of
consecutive states,

    r(u_{t+1}, u_t) = (u_{t+1} - u_t) + dt * c * d/dx (u_{t+1} + u_t) / 2,

which is zero exactly when `u_{t+1}` is the Crank-Nicolson step of `u_t`.
No reference solver is run during training. The residuum function comes
with the data source: `tx.sample_data.advection_residuum` takes the same
arguments as `tx.sample_data.advection_1d_periodic`.

A two-point stencil cannot make the residual vanish; the one it learns is
compared with the upwind stencil `[1 + CFL, -CFL]` that supervised training
finds, and both are rolled out on the data.

    python examples/residuum_advection.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/residuum_advection.py
"""

import os
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 300 if SMALL else 2000

CFL = -0.5
UPWIND = jnp.array([1 + CFL, -CFL])


def error_after(stencil, trajectories, num_steps):
    u = trajectories[:, 0]
    for _ in range(num_steps):
        u = jax.vmap(stencil)(u)
    return float(tx.loss.Normalized_RMSELoss()(u, trajectories[:, num_steps]))


def main():
    data = tx.sample_data.advection_1d_periodic(cfl=CFL, key=jax.random.PRNGKey(0))
    residuum_fn = tx.sample_data.advection_residuum(cfl=CFL)
    print(
        "residual of the exact data (the floor): "
        f"{float(tx.loss.MSELoss()(residuum_fn(data[:, 1], data[:, 0]))):.3e}"
    )
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))
    for cut_prev in (False, True):
        trainer = tx.trainer.ResiduumTrainer(
            data,
            residuum_fn=residuum_fn,
            num_rollout_steps=3,
            cut_prev=cut_prev,
            optimizer=optax.adam(optax.cosine_decay_schedule(1e-2, NUM_TRAINING_STEPS)),
            num_training_steps=NUM_TRAINING_STEPS,
            batch_size=16,
            progress_bar=not SMALL,
        )
        learned, loss_history = trainer(conv, key=jax.random.PRNGKey(42))
        w = learned.weight.ravel()
        print(
            f"cut_prev={cut_prev!s:5}  stencil [{w[0]:.4f}, {w[1]:.4f}]"
            f"  nRMSE after 10 steps {error_after(learned, data, 10):.4f}"
            f"  loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}"
        )
    upwind = eqx.tree_at(lambda c: c.weight, conv, UPWIND.reshape(1, 1, 2))
    print(
        f"upwind          stencil [{UPWIND[0]:.4f}, {UPWIND[1]:.4f}]"
        f"  nRMSE after 10 steps {error_after(upwind, data, 10):.4f}"
    )


if __name__ == "__main__":
    main()
