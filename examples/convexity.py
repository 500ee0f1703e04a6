"""One-step learning of a linear stencil is a convex problem.

The data are made by the first-order upwind scheme itself, `u_{t+1}[i] =
(1 + CFL) u_t[i] - CFL u_t[i + 1]`, so a two-point convolution can represent
them exactly. The one-step supervised loss is then a convex quadratic in the
two weights: full-batch training converges to the same stencil, the upwind
one, from every start. `trainer.full_loss` (the loss over all windows at
once, a pure function of the model) maps the loss landscape over a grid of
stencils; its minimum sits at the upwind weights.

    python examples/convexity.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/convexity.py   # seconds
"""

import os
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 1000 if SMALL else 3000
CFL = -0.75
UPWIND = jnp.array([1 + CFL, -CFL])


def upwind_data(num_samples=10, num_steps=10):
    """Trajectories `(S, T+1, 1, N)` of the upwind scheme from smooth states."""
    initial = tx.sample_data.advection_1d_periodic(
        num_samples=num_samples, key=jax.random.PRNGKey(0)
    )[:, 0]

    def step(u, _):
        u_next = (1 + CFL) * u - CFL * jnp.roll(u, -1, axis=-1)
        return u_next, u_next

    _, later = jax.lax.scan(step, initial, None, length=num_steps)
    return jnp.concatenate([initial[:, None], jnp.moveaxis(later, 0, 1)], axis=1)


def with_weights(conv, weights):
    return eqx.tree_at(lambda m: m.weight, conv, weights.reshape(conv.weight.shape))


def main():
    data = upwind_data()  # 10 trajectories of 10 steps: 100 one-step windows
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(0))
    trainer = tx.trainer.SupervisedTrainer(
        data, num_rollout_steps=1, optimizer=optax.adam(3e-2),
        num_training_steps=NUM_TRAINING_STEPS,
        batch_size=200,  # more than the 100 windows: full batch (with a warning)
        progress_bar=False,
    )

    starts = [(-1.0, -1.0), (2.0, 0.0), (0.0, 2.0), (1.5, -1.5)]
    for start in starts:
        model = with_weights(conv, jnp.array(start))
        learned, losses = trainer(model, jax.random.PRNGKey(0))
        weights = learned.weight.ravel()
        print(
            f"start [{start[0]:5.2f}, {start[1]:5.2f}] -> stencil "
            f"[{weights[0]:.4f}, {weights[1]:.4f}]  distance to upwind "
            f"{float(jnp.linalg.norm(weights - UPWIND)):.2e}  "
            f"loss: {losses[0]:.3e} -> {losses[-1]:.3e}"
        )

    # the landscape: full_loss over a grid of stencils, in one vmapped call
    grid = jnp.linspace(-1.5, 2.0, 15 if SMALL else 141)  # holds 0.25 and 0.75
    w0, w1 = jnp.meshgrid(grid, grid, indexing="ij")
    stencils = jnp.stack([w0.ravel(), w1.ravel()], axis=1)
    landscape = jax.jit(jax.vmap(lambda w: trainer.full_loss(with_weights(conv, w))))(stencils)
    landscape = np.asarray(landscape).reshape(w0.shape)
    best = np.unravel_index(np.argmin(landscape), landscape.shape)
    print(f"landscape minimum at [{grid[best[0]]:.3f}, {grid[best[1]]:.3f}] "
          f"(upwind [{UPWIND[0]:.3f}, {UPWIND[1]:.3f}], grid step {grid[1] - grid[0]:.3f})")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(5, 4.2))
    contours = ax.contourf(w0, w1, np.log10(landscape), levels=30, cmap="viridis")
    fig.colorbar(contours, ax=ax, label="log10 one-step loss (all windows)")
    ax.plot(*UPWIND, "r*", markersize=12, label="upwind stencil")
    ax.set_xlabel("weight of u[i]")
    ax.set_ylabel("weight of u[i+1]")
    ax.set_title("One-step loss landscape of a two-point stencil")
    ax.legend(loc="upper right")
    folder = os.environ.get("TRAINAX_EXAMPLE_OUT", tempfile.gettempdir())
    path = os.path.join(folder, "convexity_landscape.png")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"landscape plot: {path}")


if __name__ == "__main__":
    main()
