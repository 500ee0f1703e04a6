"""The run's pictures: loss curve, rollout error, prediction against reference.

Plots need matplotlib; without it the run says so in one line and goes on.
Every file is written atomically (a reader never finds half a PNG).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np

FILES = ("loss.png", "rollout_error.png", "prediction.png")
TASK_FILES = ("sweep.png", "forecast.gif", "solution.png")


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


def _draw_all(folder: Path, figures, write_file: Callable) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in figures:
        fig = plt.figure(figsize=(9, 5))
        try:
            draw(fig)
            fig.tight_layout()
            write_file(folder / name, lambda f: fig.savefig(f, format="png", dpi=100))
        finally:
            plt.close(fig)
    return True


def make_plots(folder: Path, metrics: list[dict], evaluation: dict,
               reference: np.ndarray, prediction: np.ndarray, write_file: Callable, *,
               boundaries=(), trajectory: int = 0) -> bool:
    """Write the three plots of a rollout run; `reference`/`prediction` are
    `(T+1, C, *N)` of validation trajectory `trajectory`.

    Returns whether plots were written.
    """
    metric = evaluation["metric"]
    label = f"validation rollout {metric} (mean over {evaluation['num_rollout_steps']} steps)"
    return _draw_all(folder, (
        ("loss.png", lambda fig: _loss(fig, metrics, label, evaluation, boundaries)),
        ("rollout_error.png", lambda fig: _rollout_error(fig, evaluation)),
        ("prediction.png",
         lambda fig: _prediction(fig, reference, prediction, trajectory,
                                 evaluation["num_trajectories"])),
    ), write_file)


def make_pair_plots(folder: Path, metrics: list[dict], evaluation: dict, inputs, target,
                    prediction, write_file: Callable) -> bool:
    """Write loss.png and prediction.png of a run on pairs (sample 0)."""
    label = "validation relative L2 error (%)"
    return _draw_all(folder, (
        ("loss.png", lambda fig: _loss(fig, metrics, label, evaluation, ())),
        ("prediction.png", lambda fig: _pair(fig, inputs, target, prediction, evaluation)),
    ), write_file)


def make_loss_plot(folder: Path, metrics: list[dict], label: str, evaluation: dict,
                   write_file: Callable) -> bool:
    """Write loss.png alone (a task draws its own other pictures)."""
    return _draw_all(folder, (
        ("loss.png", lambda fig: _loss(fig, metrics, label, evaluation, ())),
    ), write_file)


def _number(value) -> str:
    return "not finite" if value is None else f"{value:.3g}"


def _positive(values) -> bool:
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(finite > 0))


def _mark_stages(ax, boundaries) -> None:
    for i, step in enumerate(boundaries):
        ax.axvline(step, color="0.4", linestyle=":", linewidth=1,
                   label="curriculum stage boundary" if i == 0 else None)


def _loss(fig, metrics, validation_label, evaluation, boundaries):
    top = fig.add_subplot(2, 1, 1)
    steps = [r["step"] for r in metrics]
    losses = [r["loss"] for r in metrics]
    top.plot(steps, losses, marker=".", label="training loss (mean since the last line)")
    if _positive(losses):
        top.set_yscale("log")
    top.set_ylabel("training loss")
    top.set_title("training")
    _mark_stages(top, boundaries)
    top.legend(loc="upper right", fontsize=8)
    top.grid(alpha=0.3)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    validated = [r for r in metrics if r.get("validation_error") is not None]
    values = [r["validation_error"] for r in validated]
    bottom.plot([r["step"] for r in validated], values, marker="o", color="C1",
                label="model")
    baseline = evaluation.get("baseline_mean")
    if baseline is not None:
        bottom.axhline(baseline, color="0.3", linestyle="--",
                       label=f"baseline: {evaluation['baseline']} ({_number(baseline)})")
    if _positive(values + ([baseline] if baseline is not None else [])):
        bottom.set_yscale("log")
    _mark_stages(bottom, boundaries)
    bottom.set_ylabel(validation_label, fontsize=8)
    bottom.set_xlabel("training step")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(alpha=0.3)


def _rollout_error(fig, evaluation):
    from matplotlib.ticker import MaxNLocator

    ax = fig.add_subplot()
    errors = [np.nan if e is None else e for e in evaluation["per_step"]]
    steps = np.arange(1, len(errors) + 1)
    ax.plot(steps, errors, marker=".", label=f"model (mean {_number(evaluation['mean'])})")
    baseline = [np.nan if e is None else e for e in evaluation["baseline_per_step"]]
    ax.plot(steps, baseline, "--", color="0.3",
            label=f"baseline: {evaluation['baseline']} "
                  f"(mean {_number(evaluation['baseline_mean'])})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if _positive(errors + baseline):
        ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel(evaluation["metric"])
    ax.set_title(f"rollout error on {evaluation['num_trajectories']} validation trajectories")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _prediction(fig, reference, prediction, trajectory, num_trajectories):
    spatial = reference.ndim - 2  # (T+1, C, *N)
    name = f"validation trajectory {trajectory} (of {num_trajectories})"
    if spatial == 0:
        _lines(fig, reference, prediction)
    elif spatial == 1:
        _space_time(fig, reference[:, 0], prediction[:, 0])
    else:
        _snapshots(fig, reference[:, 0], prediction[:, 0])
    channel = "" if spatial == 0 or reference.shape[1] == 1 else ", channel 0"
    fig.suptitle(f"{name}{channel}: reference and prediction")


def _lines(fig, reference, prediction):
    from matplotlib.ticker import MaxNLocator

    channels = reference.shape[1]
    steps = np.arange(reference.shape[0])
    for c in range(channels):
        ax = fig.add_subplot(channels, 1, c + 1)
        ax.plot(steps, reference[:, c], label="reference")
        ax.plot(steps, prediction[:, c], "--", label="prediction")
        ax.set_ylabel(f"u[{c}]")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if c == 0:
            ax.legend(loc="upper right")
    ax.set_xlabel("time step")


def _symmetric_limit(field) -> float:
    finite = np.abs(field[np.isfinite(field)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _space_time(fig, reference, prediction):
    # rows: time steps, columns: grid points (first channel); each panel
    # keeps its own colour range, so a blow-up shows instead of saturating
    from matplotlib.ticker import MaxNLocator

    steps = reference.shape[0] - 1
    extent = (-0.5, reference.shape[1] - 0.5, -0.5, steps + 0.5)
    panels = (("reference", reference, "u"), ("prediction", prediction, "u"),
              ("|prediction - reference|", np.abs(prediction - reference),
               "|prediction - reference|"))
    for i, (title, field, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        if i < 2:
            limit = _symmetric_limit(field)
            kwargs = dict(cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            kwargs = dict(cmap="magma", vmin=0.0)
        image = ax.imshow(field, aspect="auto", origin="lower", extent=extent,
                          interpolation="nearest", **kwargs)
        fig.colorbar(image, ax=ax).set_label(label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("grid point")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i == 0:
            ax.set_ylabel("time step")


def _snapshots(fig, reference, prediction):
    times = np.unique(np.linspace(0, reference.shape[0] - 1, 4).astype(int))
    middle = tuple(n // 2 for n in reference.shape[3:])  # a slice of 3D fields
    for row, (name, field) in enumerate((("reference", reference), ("prediction", prediction))):
        limit = _symmetric_limit(field)
        for col, t in enumerate(times):
            ax = fig.add_subplot(2, len(times), row * len(times) + col + 1)
            image = ax.imshow(field[(t, slice(None), slice(None), *middle)], cmap="RdBu_r",
                              vmin=-limit, vmax=limit, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}, time step {int(t)}", fontsize=8)
        fig.colorbar(image, ax=fig.axes[-len(times):]).set_label(f"u ({name})")


def _pair(fig, inputs, target, prediction, evaluation):
    error = evaluation["per_sample"][0]
    title = (f"validation pair 0 (of {evaluation['num_samples']}): relative L2 error "
             f"{_number(error)}%")
    if target.ndim == 2:  # (C, N): lines
        ax = fig.add_subplot(2, 1, 1)
        for c in range(inputs.shape[0]):
            ax.plot(inputs[c], label=f"input[{c}]")
        ax.set_ylabel("input")
        ax.legend(fontsize=8)
        ax = fig.add_subplot(2, 1, 2)
        for c in range(target.shape[0]):
            ax.plot(target[c], label=f"target[{c}]")
            ax.plot(prediction[c], "--", label=f"prediction[{c}]")
        ax.set_ylabel("output")
        ax.set_xlabel("grid point")
        ax.legend(fontsize=8)
    else:  # images of the first channel (the middle slice of 3D fields)
        middle = tuple(n // 2 for n in target.shape[3:])
        index = (0, slice(None), slice(None), *middle)
        panels = (("input", inputs[index]), ("target", target[index]),
                  ("prediction", prediction[index]),
                  ("|prediction - target|", np.abs(prediction[index] - target[index])))
        for i, (name, field) in enumerate(panels):
            ax = fig.add_subplot(1, 4, i + 1)
            image = ax.imshow(field, origin="lower", cmap="magma" if i == 3 else "RdBu_r")
            fig.colorbar(image, ax=ax, shrink=0.7).set_label(name, fontsize=8)
            ax.set_title(name, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
