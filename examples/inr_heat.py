"""Continuous-space forecasting of the 2D heat equation with DINo.

A field is decoded from latent codes by a FourierNet at any point of the
square, and a latent ODE moves the codes in time. Training is one
`GeneralTrainer` run: the model holds a table of codes, one per trajectory,
frame and channel, and `AutoDecoding` fits the codes and the decoder to the
observed points (half of a 32 x 32 grid) and the ODE to the code
trajectories, with teacher forcing. The codes are a per-sample table: a step
moves only the codes of its minibatch.

New trajectories are forecast from their first frame alone: its codes are
fitted on 50% or 5% of the points, integrated past the training horizon
(frames 0-9 seen in training, 10-19 beyond) and decoded on the 32 x 32 grid
and on a finer 64 x 64 grid.

    python examples/inr_heat.py                          # about 5 min on 2 CPU cores
    TRAINAX_EXAMPLE_SMALL=1 python examples/inr_heat.py  # about 1 min
"""

import os
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAIN = 8 if SMALL else 64
NUM_TEST = 2 if SMALL else 8
NUM_STEPS = 150 if SMALL else 2000
N, FINE, FRAMES, SEEN = 32, 64, 20, 10
FIT_STEPS = 100 if SMALL else 500


def heat_data(key):
    """Exact heat trajectories on the 64^2 grid and on its 32^2 subgrid."""
    fine, fine_coords, times = tx.sample_data.heat_2d_periodic(
        num_samples=NUM_TRAIN + NUM_TEST, num_points=FINE, num_frames=FRAMES,
        dt=0.05, nu=5e-3, cutoff=2, key=key,
    )
    coarse = coarse_points()
    return fine, fine_coords, fine[:, :, coarse], fine_coords[coarse], times


def nearest_neighbour_fill(values, coords, mask):
    """Each unobserved point takes the value of the nearest observed one (periodic)."""
    observed, hidden = np.flatnonzero(mask), np.flatnonzero(~mask)
    offset = coords[hidden][:, None] - coords[observed][None]
    offset = (offset + 0.5) % 1.0 - 0.5
    nearest = observed[np.argmin((offset**2).sum(-1), axis=1)]
    return values[..., nearest, :], hidden


def errors(prediction, truth, mask):
    """The four DINo errors: in/out of the training horizon x in/out of the observed points."""
    squared = np.asarray((prediction - truth) ** 2)
    mask = np.asarray(mask)
    return {
        "mse_in_t_in_s": squared[:, :SEEN][:, :, mask].mean(),
        "mse_in_t_out_s": squared[:, :SEEN][:, :, ~mask].mean(),
        "mse_out_t_in_s": squared[:, SEEN:][:, :, mask].mean(),
        "mse_out_t_out_s": squared[:, SEEN:][:, :, ~mask].mean(),
    }


def main():
    fine, fine_coords, values, coords, times = heat_data(jr.key(0))
    train, test = values[:NUM_TRAIN], values[NUM_TRAIN:]
    seen, _ = tx.sample_data.split_horizon(train, SEEN)
    masks = {
        "50%": tx.sample_data.random_observation_mask(jr.key(1), N * N, 0.5),
        "5%": tx.sample_data.random_observation_mask(jr.key(2), N * N, 0.05),
    }

    decoder = tx.inr.FourierNet(2, hidden=32, code_dim=32, input_scale=16.0, key=jr.key(3))
    dynamics = tx.inr.LatentODE(32, width=64, depth=3, key=jr.key(4))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=NUM_TRAIN, num_frames=SEEN)
    # DINo's teacher forcing (0.99, decaying by 0.99 every 100 steps) is the default
    configuration = tx.configuration.AutoDecoding(coords, times[:SEEN], masks["50%"])
    trainer = tx.GeneralTrainer(
        tx.Samples(seen),
        configuration,
        tx.inr.auto_decoder_optimizer(decoder=optax.adam(1e-2), dynamics=optax.adam(1e-3)),
        NUM_STEPS,
        batch_size=4,
        per_sample=lambda m: m.codes,
        # DINo's 1e-3 needs thousands of epochs; each code here is updated
        # NUM_STEPS * 4 / NUM_TRAIN times only
        per_sample_optimizer=optax.adam(1e-2),
        progress_bar=not SMALL,
    )
    trained, loss_history = trainer(model, jr.key(5))

    rows = jnp.arange(NUM_TRAIN)
    before = configuration.losses(model, seen, key=jr.key(6), indices=rows)
    after = configuration.losses(trained, seen, key=jr.key(6), indices=rows)
    # the dynamics' fit, on the codes they were fitted to
    untrained = eqx.tree_at(lambda m: m.dynamics, trained, model.dynamics)
    untrained = configuration.losses(untrained, seen, key=jr.key(6), indices=rows)
    print(f"training loss: {loss_history[0]:.3e} -> {loss_history[-1]:.3e}")
    print(f"reconstruction loss: {before[0]:.3e} -> {after[0]:.3e}")
    print(f"dynamics loss: {untrained[1]:.3e} -> {after[1]:.3e} (trained codes; "
          "untrained -> trained dynamics)")

    truth_fine = fine[NUM_TRAIN:]
    for name, mask in masks.items():
        # fit the first frame's codes on the observed points, integrate past
        # the horizon, decode on the 64^2 grid (the 32^2 points are among them)
        forecast = jax.vmap(lambda first: trained.forecast(
            first, coords, times, fine_coords, mask=mask, num_steps=FIT_STEPS))
        prediction_fine = forecast(test[:, 0])
        prediction = prediction_fine[:, :, coarse_points()]
        print(f"forecast from {name} of the first frame ({int(mask.sum())} points):")
        for label, value in errors(prediction, test, mask).items():
            print(f"  {label:<16} {value:.3e}")
        coarse_error = np.asarray((prediction - test) ** 2)
        fine_error = np.asarray((prediction_fine - truth_fine) ** 2)
        print(f"  all points, in/out of the horizon: 32^2 grid {coarse_error[:, :SEEN].mean():.3e}"
              f" / {coarse_error[:, SEEN:].mean():.3e}, 64^2 grid "
              f"{fine_error[:, :SEEN].mean():.3e} / {fine_error[:, SEEN:].mean():.3e}")
        filled, hidden = nearest_neighbour_fill(np.asarray(test[:, 0]), np.asarray(coords),
                                                np.asarray(mask))
        nearest = ((filled - np.asarray(test[:, 0])[:, hidden]) ** 2).mean()
        print(f"  t = 0 at the unobserved points: INR {coarse_error[:, 0][:, hidden].mean():.3e}"
              f", nearest neighbour {nearest:.3e}")
    animate(prediction_fine[0], truth_fine[0], times, coords[mask], name)


def coarse_points():
    """The indices of the 32^2 grid's points among the 64^2 grid's."""
    i = np.arange(N) * (FINE // N)
    return (i[:, None] * FINE + i[None, :]).ravel()


def animate(prediction, truth, times, observed, name):
    """An animated GIF of a forecast against the truth on the 64^2 grid,
    with the points the forecast was fitted to (`observed`, `(n, 2)`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.animation import FuncAnimation, PillowWriter
        import PIL  # noqa: F401  (the GIF writer)
    except ImportError:
        print("matplotlib or pillow is not installed: no animation")
        return
    prediction = np.asarray(prediction)[..., 0].reshape(-1, FINE, FINE)
    truth = np.asarray(truth)[..., 0].reshape(-1, FINE, FINE)
    limit = np.abs(truth).max()
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 3.0))
    panels = [truth, prediction, prediction - truth]
    titles = ["truth (dots: observed at t = 0)", f"forecast from {name} of frame 0",
              "forecast - truth"]
    images = []
    for ax, panel, title in zip(axes, panels, titles):
        images.append(ax.imshow(panel[0].T, origin="lower", cmap="RdBu_r",
                                vmin=-limit, vmax=limit, extent=(0, 1, 0, 1)))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    observed = np.asarray(observed)
    axes[0].plot(observed[:, 0], observed[:, 1], "k.", markersize=2)
    label = fig.suptitle("", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.9))

    def frame(t):
        for image, panel in zip(images, panels):
            image.set_data(panel[t].T)
        where = "inside" if t < SEEN else "beyond"
        label.set_text(f"t = {float(times[t]):.2f} ({where} the training horizon)")
        return images

    folder = os.environ.get("TRAINAX_EXAMPLE_OUT", tempfile.gettempdir())
    path = os.path.join(folder, "inr_heat.gif")
    FuncAnimation(fig, frame, frames=len(times)).save(path, writer=PillowWriter(fps=4), dpi=72)
    plt.close(fig)
    print(f"animation: {path}")


if __name__ == "__main__":
    main()
