"""Soft constraints, hard constraints and a mixture of experts on diffusion-sorption.

Three models learn the solution operator of 1D diffusion-sorption (PDEBench
form) from random initial states, without any solution data: each is
trained on the PDE residual of its output on a `(t, x)` grid plus its
initial and boundary conditions (`tx.configuration.PhysicsInformed`).

- soft: an FNO maps the initial state to the field directly;
- hard: the same FNO outputs `N` basis fields, and a `HardConstraint`
  combines them per sample with the weights that make the residual vanish
  at sampled collocation points (least squares, implicit gradients), in
  initial-value form (`u = u0 + sum w phi`, the basis zero at `t = 0`);
- experts: the same, with the grid cut into four strips along `x`, each
  with its own weights and its own points (`MixtureOfExperts`), coupled
  at their interfaces: the PDE rows at the interface nodes read both
  strips, and the strips' weights are solved together.

All three see the same backbone size, optimizer, steps and batches. The
table compares them with the reference solver (a stiff finite-volume
method of lines) on held-out initial states, as relative L2 errors.

    python examples/hard_constraints.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/hard_constraints.py   # about a minute
    python examples/hard_constraints.py --small --plot docs/assets/hard_constraints.png
"""

import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # the constraint layers solve in float64

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import optax  # noqa: E402

import trainax as tx  # noqa: E402

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TIMES, NUM_POINTS = (9, 16) if SMALL else (17, 32)
NUM_STEPS = 40 if SMALL else 1000
NUM_BASIS = 8
NUM_TEST = 4 if SMALL else 16
BATCH = 8


def backbone(out_channels):
    return tx.nn.FNO(
        2, 1, out_channels, width=16, modes=(4, 6) if SMALL else (6, 8), num_layers=3,
        coordinate_channels=True, key=jr.PRNGKey(0),
    )


def models(pde):
    points = NUM_TIMES * NUM_POINTS // 4

    def layer(num_points, initial_value_form):
        # initial-value form: u = u0 + sum_n w_n phi_n with phi_n = 0 at t = 0, so the
        # initial condition holds exactly and the solve fits the PDE and the boundaries
        net = backbone(NUM_BASIS)
        return tx.constraint.HardConstraint(
            tx.constraint.InitialValueBasis(net) if initial_value_form else net, pde,
            num_points=num_points, particular=initial_value_form,
            solver=tx.constraint.GaussNewton(), max_steps=30,
            on_failure="ignore",  # counted in the table instead of warned about at every step
        )

    # coupling="interface": independent strips would leave the inner ones without
    # boundary data (diffusion needs it on every strip), and their fields jump
    experts = tx.constraint.MixtureOfExperts(
        layer(points // 4, True), (1, 4), coupling="interface")
    return {
        "soft": backbone(1),
        "hard": tx.constraint.Constrained(layer(points, True)),
        "4 experts": tx.constraint.Constrained(experts),
    }


def main():
    pde = tx.constraint.DiffusionSorption()

    def draw(key, batch_size):  # fresh initial states at every step
        initial = tx.sample_data.random_initial_states(key, batch_size, NUM_POINTS)
        return pde.inputs(initial, NUM_TIMES)

    test_inputs, reference = tx.sample_data.diffusion_sorption_1d(
        num_samples=NUM_TEST, num_points=NUM_POINTS, num_times=NUM_TIMES,
        refinement=2 if SMALL else 4, key=jr.PRNGKey(1),
    )
    configuration = tx.configuration.PhysicsInformed(pde)
    schedule = optax.exponential_decay(1e-3, NUM_STEPS, 0.1)
    # clipped gradients: a rare ill-conditioned solve must not throw the backbone off
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    errors, converged, predictions = {}, {}, {}
    for name, model in models(pde).items():
        trainer = tx.GeneralTrainer(
            tx.trainer.Sampler(draw), configuration, optimizer, NUM_STEPS, BATCH,
            progress_bar=False, chunk_size=50,
        )
        start = time.perf_counter()
        model, losses = trainer(model, jr.PRNGKey(2))
        seconds = time.perf_counter() - start
        window = max(1, NUM_STEPS // 10)
        print(f"{name:>9}  loss: {losses[:window].mean():.3e} -> {losses[-window:].mean():.3e}"
              f"  ({seconds:.0f} s)")
        if isinstance(model, tx.constraint.Constrained):  # the field and its solves' info
            prediction, info = eqx.filter_jit(eqx.filter_vmap(model.layer))(test_inputs)
            converged[name] = float(jnp.mean(info.converged))
        else:
            prediction = eqx.filter_jit(eqx.filter_vmap(model))(test_inputs)
        errors[name] = 100 * tx.sample_data.relative_l2_error(prediction, reference)
        predictions[name] = prediction[0, 0]

    print(f"\nrelative L2 error against the reference, {NUM_TEST} held-out initial states "
          f"({NUM_TIMES} x {NUM_POINTS} grid)")
    print(f"{'model':>9}  {'mean %':>7}  {'max %':>7}  {'solves converged':>16}")
    for name, error in errors.items():
        solves = f"{100 * converged[name]:.0f}%" if name in converged else "-"
        print(f"{name:>9}  {float(jnp.mean(error)):7.2f}  {float(jnp.max(error)):7.2f}  {solves:>16}")
    if "--plot" in sys.argv:
        plot(sys.argv[sys.argv.index("--plot") + 1], reference[0, 0], predictions, errors,
             pde.final_time)


def plot(path, reference, predictions, errors, final_time):
    """The first held-out state: each field, u(T, x), and each model's error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), constrained_layout=True)
    extent, x = (0.0, 1.0, final_time, 0.0), jnp.linspace(0.0, 1.0, reference.shape[-1])
    fields = {"reference u(t, x)": reference, **predictions}
    for ax, (name, field) in zip(axes[0], fields.items()):
        image = ax.imshow(field, extent=extent, aspect="auto", vmin=0.0, vmax=1.0)
        ax.set(title=name, xlabel="x", ylabel="t")
    fig.colorbar(image, ax=axes[0].tolist())
    axes[1, 0].plot(x, reference[-1], "k", lw=2, label="reference")
    for name, field in predictions.items():
        axes[1, 0].plot(x, field[-1], label=name)
    axes[1, 0].set(title=f"u({final_time:.0f}, x)", xlabel="x")
    axes[1, 0].legend(fontsize=8)
    for ax, (name, field) in zip(axes[1, 1:], predictions.items()):
        image = ax.imshow(jnp.abs(field - reference), extent=extent, aspect="auto",
                          cmap="magma", vmin=0.0, vmax=0.5)
        ax.set(title=f"|error|, {name}: {float(errors[name][0]):.1f}%", xlabel="x")
    fig.colorbar(image, ax=axes[1].tolist())
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
