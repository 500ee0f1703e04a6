"""The run's pictures: loss curve, rollout error, prediction against reference.

Plots need matplotlib; without it the run says so in one line and goes on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

FILES = ("loss.png", "rollout_error.png", "prediction.png")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("trainax: matplotlib is not installed; skipping plots "
              "(pip install matplotlib).", file=sys.stderr)
        return None
    return plt


def make_plots(folder: Path, metrics: list[dict], evaluation: dict,
               reference: np.ndarray, prediction: np.ndarray) -> bool:
    """Write the three plots; `reference`/`prediction` are `(T+1, C, *N)`.

    Returns whether plots were written.
    """
    plt = _pyplot()
    if plt is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    metric = evaluation["metric"]
    for name, draw in (
        ("loss.png", lambda fig: _loss(fig, metrics, metric)),
        ("rollout_error.png", lambda fig: _rollout_error(fig, evaluation)),
        ("prediction.png", lambda fig: _prediction(fig, reference, prediction)),
    ):
        fig = plt.figure(figsize=(8, 4.5))
        try:
            draw(fig)
            fig.tight_layout()
            fig.savefig(folder / name, dpi=100)
        finally:
            plt.close(fig)
    return True


def _positive(values) -> bool:
    values = np.asarray(values, dtype=float)
    return values.size > 0 and bool(np.all(values[np.isfinite(values)] > 0))


def _loss(fig, metrics, metric):
    ax = fig.add_subplot()
    steps = [r["step"] for r in metrics]
    losses = [r["loss"] for r in metrics]
    ax.plot(steps, losses, marker=".", label="training loss")
    validated = [r for r in metrics if "validation_error" in r]
    if validated:
        ax.plot([r["step"] for r in validated], [r["validation_error"] for r in validated],
                marker="o", label=f"validation rollout {metric} (mean)")
    if _positive(losses + [r["validation_error"] for r in validated]):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_title("training")
    ax.legend()
    ax.grid(alpha=0.3)


def _rollout_error(fig, evaluation):
    ax = fig.add_subplot()
    errors = evaluation["per_step"]
    from matplotlib.ticker import MaxNLocator

    ax.plot(np.arange(1, len(errors) + 1), errors, marker=".")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if _positive(errors):
        ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel(evaluation["metric"])
    ax.set_title(f"rollout error on {evaluation['num_trajectories']} validation "
                 f"trajectories (mean {evaluation['mean']:.3g})")
    ax.grid(alpha=0.3)


def _prediction(fig, reference, prediction):
    spatial = reference.ndim - 2  # (T+1, C, *N)
    if spatial == 0:
        _lines(fig, reference, prediction)
    elif spatial == 1:
        _space_time(fig, reference[:, 0], prediction[:, 0])
    else:
        _snapshots(fig, reference[:, 0], prediction[:, 0])


def _lines(fig, reference, prediction):
    channels = reference.shape[1]
    steps = np.arange(reference.shape[0])
    for c in range(channels):
        ax = fig.add_subplot(channels, 1, c + 1)
        ax.plot(steps, reference[:, c], label="reference")
        ax.plot(steps, prediction[:, c], "--", label="prediction")
        ax.set_ylabel(f"u[{c}]")
        if c == 0:
            ax.legend(loc="upper right")
    ax.set_xlabel("time step")


def _space_time(fig, reference, prediction):
    # rows: time steps, columns: grid points (first channel)
    limit = float(np.max(np.abs(reference))) or 1.0
    panels = (("reference", reference, limit), ("prediction", prediction, limit),
              ("|difference|", np.abs(prediction - reference), None))
    for i, (title, field, lim) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        kwargs = dict(cmap="RdBu_r", vmin=-lim, vmax=lim) if lim else dict(cmap="magma")
        image = ax.imshow(field, aspect="auto", origin="lower", **kwargs)
        fig.colorbar(image, ax=ax)
        ax.set_title(title)
        ax.set_xlabel("grid point")
        if i == 0:
            ax.set_ylabel("time step")


def _snapshots(fig, reference, prediction):
    times = np.unique(np.linspace(0, reference.shape[0] - 1, 4).astype(int))
    limit = float(np.max(np.abs(reference))) or 1.0
    middle = tuple(n // 2 for n in reference.shape[3:])  # a slice of 3D fields
    for row, (name, field) in enumerate((("reference", reference), ("prediction", prediction))):
        for col, t in enumerate(times):
            ax = fig.add_subplot(2, len(times), row * len(times) + col + 1)
            ax.imshow(field[(t, slice(None), slice(None), *middle)], cmap="RdBu_r",
                      vmin=-limit, vmax=limit, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}, t={t}", fontsize=8)
