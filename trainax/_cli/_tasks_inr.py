"""[task] builders of continuous-space forecasting with an INR auto-decoder (inr-heat)."""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from .. import configuration as cfg
from .. import inr, sample_data
from ..trainer import Samples
from ._errors import CLIError
from ._task import Task, say

ANIMATION = "forecast.gif"  # in the run's plots folder


@eqx.filter_jit
def _forecasts(model, firsts, coords, times, query, mask, num_steps: int):
    """`model.forecast` of each first frame `(S, P, C)`: `(S, T, Q, C)`."""
    mask = jnp.asarray(mask)
    return jax.vmap(lambda first: model.forecast(first, coords, times, query, mask=mask,
                                                 num_steps=num_steps))(firsts)


def _errors(prediction, truth, mask, seen: int) -> dict:
    """DINo's four errors: in/out of the training horizon (the first `seen`
    frames) by in/out of the observed points (`mask`)."""
    squared = np.asarray((prediction - truth) ** 2, np.float64)
    return {
        "mse_in_t_in_s": float(squared[:, :seen][:, :, mask].mean()),
        "mse_in_t_out_s": float(squared[:, :seen][:, :, ~mask].mean()),
        "mse_out_t_in_s": float(squared[:, seen:][:, :, mask].mean()),
        "mse_out_t_out_s": float(squared[:, seen:][:, :, ~mask].mean()),
    }


def _nearest_neighbour_fill(values, coords, mask):
    """`values` `(..., P, C)` at the unobserved points, each taken from the
    nearest observed point of the periodic unit square."""
    observed, hidden = np.flatnonzero(mask), np.flatnonzero(~mask)
    offset = coords[hidden][:, None] - coords[observed][None]
    offset = (offset + 0.5) % 1.0 - 0.5
    return values[..., observed[np.argmin((offset**2).sum(-1), axis=1)], :]


def _mask(seed: int, num_points: int, fraction: float, name: str, grid: str):
    mask = np.asarray(sample_data.random_observation_mask(jr.key(seed), num_points, fraction))
    if not mask.any() or mask.all():
        what = "none" if not mask.any() else "all"
        raise CLIError(f"[task] {name}: {fraction:g} of the {grid} grid keeps {what} of its "
                       f"{num_points} points; the errors need observed and unobserved "
                       "points: change it or num_points.")
    return mask


def inr_heat(
    *,
    num_train: int = 64,
    num_test: int = 8,
    num_points: int = 32,
    fine_points: int = 64,
    num_frames: int = 20,
    seen_frames: int = 10,
    dt: float = 0.05,
    nu: float = 5e-3,
    cutoff: int = 2,
    observed_fraction: float = 0.5,
    sparse_fraction: float = 0.05,
    hidden: int = 32,
    code_dim: int = 32,
    num_layers: int = 3,
    input_scale: float = 16.0,
    dynamics_width: int = 64,
    dynamics_depth: int = 3,
    codes_learning_rate: float = 1e-2,
    decoder_learning_rate: float = 1e-2,
    dynamics_learning_rate: float = 1e-3,
    fit_steps: int = 500,
    key,
) -> Task:
    """DINo on the 2D heat equation: an `AutoDecoder` (FourierNet decoder,
    latent ODE, a table of codes) trained by `AutoDecoding` on
    `observed_fraction` of a `num_points`^2 grid and the first `seen_frames`
    frames. Validation: the forecast MSE of each held-out trajectory from its
    first frame observed on the same points, over all frames and points.
    Evaluation: DINo's four errors, the same from `sparse_fraction` of the
    first frame, on a `fine_points`^2 grid, nearest-neighbour fill at t = 0
    and plots/forecast.gif."""
    for name, value in (("num_train", num_train), ("num_test", num_test),
                        ("hidden", hidden), ("code_dim", code_dim), ("num_layers", num_layers),
                        ("dynamics_width", dynamics_width), ("dynamics_depth", dynamics_depth),
                        ("fit_steps", fit_steps), ("cutoff", cutoff)):
        if value < 1:
            raise CLIError(f"[task] {name}: must be positive, got {value!r}.")
    for name, value in (("dt", dt), ("input_scale", input_scale),
                        ("codes_learning_rate", codes_learning_rate),
                        ("decoder_learning_rate", decoder_learning_rate),
                        ("dynamics_learning_rate", dynamics_learning_rate)):
        if not (np.isfinite(value) and value > 0):
            raise CLIError(f"[task] {name}: must be a positive number, got {value!r}.")
    if not (np.isfinite(nu) and nu >= 0):
        raise CLIError(f"[task] nu: must be a number >= 0, got {nu!r}.")
    for name, value in (("observed_fraction", observed_fraction),
                        ("sparse_fraction", sparse_fraction)):
        if not 0 < value < 1:
            raise CLIError(f"[task] {name}: expected a fraction in (0, 1), got {value!r}.")
    if hidden % 2:
        raise CLIError(f"[task] hidden: must be even (half sines, half cosines), "
                       f"got {hidden}.")
    if not 2 * cutoff < num_points:
        raise CLIError(f"[task] cutoff: expected 2 * cutoff < num_points ({num_points}), "
                       f"got {cutoff}.")
    if fine_points < num_points or fine_points % num_points:
        raise CLIError(f"[task] fine_points: expected a multiple of num_points "
                       f"({num_points}), got {fine_points}.")
    if not 2 <= seen_frames < num_frames:
        raise CLIError(f"[task] seen_frames: expected 2 <= seen_frames < num_frames "
                       f"({num_frames}), got {seen_frames}.")
    coarse_grid, fine_grid = f"{num_points}x{num_points}", f"{fine_points}x{fine_points}"
    masks = {"observed": _mask(1, num_points**2, observed_fraction, "observed_fraction",
                               coarse_grid),
             "sparse": _mask(2, num_points**2, sparse_fraction, "sparse_fraction",
                             coarse_grid)}

    # exact trajectories on the fine grid; the coarse grid is a subgrid of it
    fine, fine_coords, times = sample_data.heat_2d_periodic(
        num_samples=num_train + num_test, num_points=fine_points, num_frames=num_frames,
        dt=dt, nu=nu, cutoff=cutoff, key=jr.key(0),
    )
    i = np.arange(num_points) * (fine_points // num_points)
    coarse = (i[:, None] * fine_points + i[None, :]).ravel()
    values, coords = fine[:, :, coarse], fine_coords[coarse]
    seen, _ = sample_data.split_horizon(values[:num_train], seen_frames)
    test, fine_test = values[num_train:], fine[num_train:]

    decoder_key, dynamics_key = jr.split(key)
    decoder = inr.FourierNet(2, hidden=hidden, code_dim=code_dim, num_layers=num_layers,
                             input_scale=input_scale, key=decoder_key)
    dynamics = inr.LatentODE(code_dim, width=dynamics_width, depth=dynamics_depth,
                             key=dynamics_key)
    model = inr.AutoDecoder(decoder, dynamics, num_samples=num_train, num_frames=seen_frames)
    # One optimizer per part, each with its learning rate. The codes train
    # densely (not as a row-sparse per-sample table): the rows outside a
    # minibatch keep moving on their Adam moments. DINo's teacher-forcing
    # schedule is the configuration's default.
    optimizer = inr.auto_decoder_optimizer(decoder=optax.adam(decoder_learning_rate),
                                           dynamics=optax.adam(dynamics_learning_rate),
                                           codes=optax.adam(codes_learning_rate))
    configuration = cfg.AutoDecoding(coords, times[:seen_frames],
                                     jnp.asarray(masks["observed"]))

    def validate(model):
        # decoded on the fine grid, as in `evaluate` (one compiled forecast for both)
        prediction = _forecasts(model, test[:, 0], coords, times, fine_coords,
                                masks["observed"], fit_steps)[:, :, coarse]
        return np.asarray(((prediction - test) ** 2).mean(axis=(1, 2, 3)), np.float64)

    def scores(model, mask, fraction):
        """The errors of the forecasts from `mask`'s points of the first frames."""
        prediction_fine = _forecasts(model, test[:, 0], coords, times, fine_coords, mask,
                                     fit_steps)
        prediction = prediction_fine[:, :, coarse]
        squared = np.asarray((prediction - test) ** 2, np.float64)
        fine_squared = np.asarray((prediction_fine - fine_test) ** 2, np.float64)
        filled = _nearest_neighbour_fill(np.asarray(test[:, 0]), np.asarray(coords), mask)
        first = np.asarray(test[:, 0])[:, ~mask]
        result = {
            "observed_fraction": fraction,
            "num_observed": int(mask.sum()),
            **_errors(prediction, test, mask, seen_frames),
            "grid": {"num_points": num_points, "mse_in_t": float(squared[:, :seen_frames].mean()),
                     "mse_out_t": float(squared[:, seen_frames:].mean())},
            "fine_grid": {"num_points": fine_points,
                          "mse_in_t": float(fine_squared[:, :seen_frames].mean()),
                          "mse_out_t": float(fine_squared[:, seen_frames:].mean())},
            "t0_unobserved": {"inr_mse": float(squared[:, 0][:, ~mask].mean()),
                              "nearest_neighbour_mse": float(
                                  ((filled - first) ** 2).mean(dtype=np.float64))},
        }
        return result, prediction_fine

    def evaluate(model, run_dir: Path, write_file):
        result, observed_fine = scores(model, masks["observed"], observed_fraction)
        sparse, sparse_fine = scores(model, masks["sparse"], sparse_fraction)
        written = _animate(
            run_dir / "plots" / ANIMATION, write_file, np.asarray(fine_test[0]),
            {f"{observed_fraction:.0%}": np.asarray(observed_fine[0]),
             f"{sparse_fraction:.0%}": np.asarray(sparse_fine[0])},
            np.asarray(coords[masks["sparse"]]), np.asarray(times), seen_frames, fine_points,
        )
        result = {**result, "sparse": sparse, "num_test": num_test,
                  "seen_frames": seen_frames, "num_frames": num_frames,
                  "animation": f"plots/{ANIMATION}" if written else None}
        return {**result, "summary": _summary(result)}

    return Task(
        data=Samples(seen),
        model=model,
        configuration=configuration,
        validate=validate,
        evaluate=evaluate,
        validation_label="held-out forecast MSE",
        optimizer=optimizer,
    )


def _summary(result: dict) -> str:
    def part(r):
        inside = r["grid"]["mse_in_t"]
        fine_ratio = r["fine_grid"]["mse_in_t"] / inside
        t0 = r["t0_unobserved"]
        return (f"from {r['observed_fraction']:.0%} of the first frame: MSE "
                f"{inside:.2e} inside / {r['grid']['mse_out_t']:.2e} beyond the training "
                f"horizon, unobserved points {r['mse_in_t_out_s'] / r['mse_in_t_in_s']:.1f}x "
                f"observed, {r['fine_grid']['num_points']}^2 grid {fine_ratio:.2f}x, t = 0 "
                f"unobserved {t0['inr_mse']:.2e} (nearest neighbour "
                f"{t0['nearest_neighbour_mse']:.2e})")

    return f"forecast {part(result)}; {part(result['sparse'])}"


def _animate(path: Path, write_file, truth, predictions: dict, observed, times, seen: int,
             n: int) -> bool:
    """An animated GIF of the forecasts `{label: (T, Q, 1)}` against the
    truth `(T, Q, 1)` on the `n`^2 grid, the last forecast's error and the
    points `observed` `(k, 2)` it was fitted to; `False` without matplotlib
    or pillow."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image
    except ImportError:
        say("trainax: matplotlib or pillow is not installed; skipping the animation "
            "(pip install matplotlib pillow).")
        return False
    last = list(predictions)[-1]
    panels = [(f"truth (dots: the {last} observed at t = 0)", truth)]
    panels += [(f"forecast from {label} of frame 0", p) for label, p in predictions.items()]
    panels += [(f"forecast from {last} - truth", predictions[last] - truth)]
    fields = [field[..., 0].reshape(-1, n, n) for _, field in panels]
    limit = float(np.abs(truth).max())
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0))
    images = []
    try:
        for ax, (title, _), field in zip(axes, panels, fields):
            images.append(ax.imshow(field[0].T, origin="lower", cmap="RdBu_r", vmin=-limit,
                                    vmax=limit, extent=(0, 1, 0, 1)))
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0].plot(observed[:, 0], observed[:, 1], "k.", markersize=2)
        label = fig.suptitle("", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        frames = []
        for t in range(len(times)):
            for image, field in zip(images, fields):
                image.set_data(field[t].T)
            where = "inside" if t < seen else "beyond"
            label.set_text(f"t = {float(times[t]):.2f} ({where} the training horizon)")
            fig.canvas.draw()
            rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
            frames.append(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE))
    finally:
        plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, lambda f: frames[0].save(f, format="GIF", save_all=True,
                                              append_images=frames[1:], duration=250,
                                              loop=0))
    return True


TASKS = {"inr_heat": inr_heat}
