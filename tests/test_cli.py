"""Tests of the `trainax` command: presets, run folders, errors, resume, evaluate."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

import trainax._cli._run as run_module
from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import resolve
from trainax._cli._toml import dumps, parse_toml
from trainax.nn import LinearConvStepper

PRESETS = sorted(presets())
FAST = ["--quiet", "--steps", "20", "--set", "training.log_every=5",
        "--set", "evaluation.every=10"]


def run_files(run_dir: Path) -> dict:
    """Every file of a run folder: {relative path: (mtime_ns, bytes)}."""
    return {
        str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run_dir.rglob("*")) if p.is_file()
    }


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainax: error: ") and "\n" not in err, err
    return err


def model_leaves(path: Path, like):
    model = eqx.tree_deserialise_leaves(path, like)
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """advection-rollout, 20 steps, into the default folder runs/advection-rollout."""
    cwd = os.getcwd()
    root = tmp_path_factory.mktemp("base")
    os.chdir(root)
    try:
        assert main(["run", "advection-rollout", *FAST]) == 0
    finally:
        os.chdir(cwd)
    return root / "runs" / "advection-rollout"


# --------------------------------------------------------------------------
# list, help, python -m
# --------------------------------------------------------------------------


def test_list_shows_every_preset_with_a_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(PRESETS) >= 7
    for name, line in zip(PRESETS, out):
        assert line.startswith(name) and len(line.split(maxsplit=1)[1]) > 10
    for name in ("advection-rollout", "advection-diverted-chain", "advection-residuum",
                 "burgers-supervised", "diffusion-mix-chain", "ks-curriculum",
                 "lorenz-mlp"):
        assert name in PRESETS


def test_python_dash_m_list():
    done = subprocess.run([sys.executable, "-m", "trainax", "list"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "advection-rollout" in done.stdout


def test_help_and_usage_errors(capsys):
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["run"]) == 2
    assert "PRESET_OR_CONFIG" in error_line(capsys)
    assert main(["frobnicate"]) == 2
    error_line(capsys)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_resolve_and_round_trip(name):
    resolved = resolve(parse_toml(presets()[name].read_text(), name))
    assert resolve(parse_toml(dumps(resolved), name)) == resolved
    assert resolved["description"]


# --------------------------------------------------------------------------
# run: the run folder
# --------------------------------------------------------------------------


def test_run_writes_the_run_folder(base_run):
    for name in ("config.toml", "data/train.npy", "data/validation.npy", "metrics.jsonl",
                 "checkpoint.eqx", "model.eqx", "evaluation.json", "plots/loss.png",
                 "plots/rollout_error.png", "plots/prediction.png"):
        assert (base_run / name).is_file(), name
    config = parse_toml((base_run / "config.toml").read_text(), "config")
    assert config == resolve(config)  # every default filled in
    assert config["training"]["num_training_steps"] == 20
    assert config["data"]["kwargs"]["cutoff"] == 5  # a default of the problem
    records = metrics(base_run)
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert [r["step"] for r in records if "validation_error" in r] == [10, 20]
    train = np.load(base_run / "data" / "train.npy")
    assert train.shape == (20, 51, 1, 30)
    evaluation = json.loads((base_run / "evaluation.json").read_text())
    assert len(evaluation["per_step"]) == 50
    assert evaluation["mean"] == pytest.approx(np.mean(evaluation["per_step"]))


def test_rerun_needs_overwrite_and_touches_nothing(base_run, capsys):
    before = run_files(base_run)
    assert main(["run", "advection-rollout", "--out", str(base_run), *FAST]) == 2
    message = error_line(capsys)
    assert "already holds this experiment" in message and "--overwrite" in message
    assert "resume" in message
    assert run_files(base_run) == before


def test_a_different_experiment_in_the_folder_is_refused(base_run, capsys):
    before = run_files(base_run)
    argv = ["run", "advection-rollout", "--out", str(base_run), *FAST, "--steps", "30"]
    assert main(argv) == 2
    message = error_line(capsys)
    assert "different experiment" in message and "num_training_steps: 20 -> 30" in message
    assert main(["run", "lorenz-mlp", "--out", str(base_run), "--steps", "5"]) == 2
    assert "different experiment" in error_line(capsys)
    assert run_files(base_run) == before


def test_a_foreign_folder_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", "advection-rollout", "--out", str(tmp_path), *FAST]) == 2
    assert "no config.toml" in error_line(capsys)


def test_overwrite_starts_again(base_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    cache = (run_dir / "data" / "train.npy").stat().st_mtime_ns
    argv = ["run", "advection-rollout", "--out", str(run_dir), *FAST, "--overwrite",
            "--set", "optimizer.learning_rate=0.02", "optimizer.schedule=cosine"]
    assert main(argv) == 0
    assert [r["step"] for r in metrics(run_dir)] == [5, 10, 15, 20]  # not appended
    config = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert config["optimizer"]["learning_rate"] == 0.02
    assert config["optimizer"]["schedule"] == "cosine"
    # the same data: the cache is kept, not regenerated
    assert (run_dir / "data" / "train.npy").stat().st_mtime_ns == cache


# --------------------------------------------------------------------------
# run: config errors (one line, exit code 2, nothing written)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, expected",
    [
        (["training.num_trainig_steps=5"],
         ["num_trainig_steps", "did you mean 'num_training_steps'", "Accepted keys"]),
        (["data.kwargs.cfll=0.5"], ["[data.kwargs]", "'cfll'", "did you mean 'cfl'"]),
        (["trainig.seed=1"], ["unknown section [trainig]", "did you mean 'training'"]),
        (['optimizer.learning_rate="fast"'],
         ["[optimizer] learning_rate", "expected a number", "'fast' (string)"]),
        (["training.batch_size=3.5"],
         ["[training] batch_size", "expected an integer", "3.5 (float)"]),
        (["configuration.cut_bptt=1"], ["cut_bptt", "expected a boolean", "(integer)"]),
        (["optimizer.name=adma"], ["one of adam, adamw, sgd", "did you mean 'adam'"]),
        (["model.kind=mlp"], ["[model]", "'kernel_size'", "kind = 'mlp'"]),
        (["training.batch_size=0"], ["batch_size", "positive"]),
        (["configuration.curriculum=[1, 3]"], ["num_rollout_steps", "curriculum", "not both"]),
        (["data.kwargs.cutoff=20"], ["[data]", "cutoff"]),
        (["training.batch_size=100000"], ["[training]", "batch_size"]),
    ],
)
def test_config_errors_are_one_readable_line(tmp_path, capsys, sets, expected):
    argv = ["run", "advection-rollout", "--out", str(tmp_path / "run"), "--quiet"]
    for assignment in sets:
        argv += ["--set", assignment]
    assert main(argv) == 2
    message = error_line(capsys)
    for part in expected:
        assert part in message, (part, message)
    assert not (tmp_path / "run").exists()


def test_unknown_preset_lists_the_presets(capsys):
    assert main(["run", "advection-rollot"]) == 2
    message = error_line(capsys)
    assert "unknown preset 'advection-rollot'" in message
    assert "did you mean 'advection-rollout'" in message
    assert all(name in message for name in PRESETS)


def test_config_files_toml_and_yaml(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.toml").write_text(
        '[data]\nproblem = "burgers_1d_periodic"\n[model]\nkind = "conv_net"\n'
        'hiden_channels = 4\n'
    )
    assert main(["run", str(tmp_path / "bad.toml")]) == 2
    assert "did you mean 'hidden_channels'" in error_line(capsys)
    (tmp_path / "broken.toml").write_text("[model\n")
    assert main(["run", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in error_line(capsys)
    pytest.importorskip("yaml")
    np.save(tmp_path / "trajectories.npy", _advected_sines())
    (tmp_path / "exp.yaml").write_text(
        "data: {file: trajectories.npy}\n"
        "validation: {num_samples: 2}\n"
        "model: {kind: linear_conv}\n"
        "configuration: {kind: supervised, num_rollout_steps: 2}\n"
        "optimizer: {learning_rate: 1e-3}\n"
        "logging: {tensorboard: true, wandb: true}\n"
        "training: {num_training_steps: 10, batch_size: 8, log_every: 5}\n"
    )
    for missing in ("tensorboardX", "torch", "wandb"):  # optional loggers: a notice
        monkeypatch.setitem(sys.modules, missing, None)
    out = tmp_path / "yaml-run"
    assert main(["run", str(tmp_path / "exp.yaml"), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "tensorboard: neither tensorboardX nor torch" in err and "wandb is not" in err
    assert len(metrics(out)) == 2
    config = parse_toml((out / "config.toml").read_text(), "config")
    assert config["optimizer"]["learning_rate"] == 1e-3  # a float, not the string "1e-3"


# --------------------------------------------------------------------------
# resume and evaluate
# --------------------------------------------------------------------------


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch,
                                                                   capsys):
    argv = ["run", "advection-rollout", "--quiet", "--steps", "30",
            "--set", "training.checkpoint_every=10", "--set", "training.log_every=5",
            "--set", "evaluation.every=10"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main([*argv, "--out", str(straight)]) == 0

    write = run_module.MetricsSink.__call__

    def interrupt_at_20(self, record):
        if record["step"] == 20:
            raise KeyboardInterrupt
        write(self, record)

    monkeypatch.setattr(run_module.MetricsSink, "__call__", interrupt_at_20)
    assert main([*argv, "--out", str(broken)]) == 130
    assert f"trainax resume {broken}" in capsys.readouterr().err
    assert not (broken / "model.eqx").exists()
    assert [r["step"] for r in metrics(broken)] == [5, 10, 15]
    monkeypatch.undo()

    assert main(["resume", str(broken), "--quiet"]) == 0
    records = metrics(broken)
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert records == metrics(straight)
    like = LinearConvStepper(1, 1, 2, key=jax.random.PRNGKey(0))
    for a, b in zip(model_leaves(broken / "model.eqx", like),
                    model_leaves(straight / "model.eqx", like)):
        np.testing.assert_array_equal(a, b)


def test_resume_needs_a_run_with_a_checkpoint(base_run, tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "no config.toml" in error_line(capsys)
    run_dir = tmp_path / "early"
    shutil.copytree(base_run, run_dir)
    (run_dir / "checkpoint.eqx").unlink()
    assert main(["resume", str(run_dir)]) == 2
    assert "--overwrite" in error_line(capsys)


def test_evaluate_writes_evaluation_and_plots(base_run, capsys):
    (base_run / "evaluation.json").unlink()
    for plot in (base_run / "plots").iterdir():
        plot.unlink()
    assert main(["evaluate", str(base_run)]) == 0
    out = capsys.readouterr().out
    evaluation = json.loads((base_run / "evaluation.json").read_text())
    assert evaluation["metric"] == "nrmse" and evaluation["num_rollout_steps"] == 50
    assert f"{evaluation['mean']:.3e}" in out
    assert sorted(p.name for p in (base_run / "plots").iterdir()) == [
        "loss.png", "prediction.png", "rollout_error.png"]


def test_evaluate_without_matplotlib_skips_plots(base_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for plot in (base_run / "plots").iterdir():
        plot.unlink()
    assert main(["evaluate", str(base_run)]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert list((base_run / "plots").iterdir()) == []


def test_evaluate_needs_a_finished_run(base_run, tmp_path, capsys):
    run_dir = tmp_path / "unfinished"
    shutil.copytree(base_run, run_dir)
    (run_dir / "model.eqx").unlink()
    assert main(["evaluate", str(run_dir)]) == 2
    assert "trainax resume" in error_line(capsys)


# --------------------------------------------------------------------------
# data from files
# --------------------------------------------------------------------------


def _advected_sines(num_samples=8, num_steps=10, n=16, shift=1):
    """Exact periodic advection by one grid point per step: (S, T+1, 1, N)."""
    rng = np.random.default_rng(0)
    x = np.arange(n) / n
    k = rng.integers(1, 4, size=(num_samples, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(num_samples, 1))
    states = [np.sin(2 * np.pi * k * (x - t * shift / n) + phase) for t in range(num_steps + 1)]
    return np.stack(states, axis=1)[:, :, None, :].astype(np.float32)


FILE_CONFIG = """
[data]
file = "{file}"
{dataset}
[validation]
num_samples = 2

[model]
kind = "linear_conv"

[configuration]
kind = "supervised"
num_rollout_steps = 2

[training]
num_training_steps = 10
batch_size = 8
log_every = 5
"""


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_trajectories_from_a_file(tmp_path, suffix):
    data = _advected_sines()
    file = tmp_path / f"trajectories{suffix}"
    dataset = ""
    if suffix == ".npy":
        np.save(file, data)
    elif suffix == ".npz":
        np.savez(file, trajectories=data, other=data[:1])
        dataset = 'dataset = "trajectories"'
    else:
        h5py = pytest.importorskip("h5py")
        with h5py.File(file, "w") as handle:
            handle["group/trajectories"] = data
    config = tmp_path / "from_file.toml"
    config.write_text(FILE_CONFIG.format(file=file.name, dataset=dataset))
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 0
    records = metrics(run_dir)
    assert [r["step"] for r in records] == [5, 10]
    assert all(np.isfinite(r["loss"]) for r in records)
    resolved = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert resolved["data"]["file"] == str(file)  # absolute
    assert json.loads((run_dir / "evaluation.json").read_text())["num_trajectories"] == 2


def test_file_errors_are_one_line(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=_advected_sines(), b=_advected_sines())
    config = tmp_path / "c.toml"
    config.write_text(FILE_CONFIG.format(file="two.npz", dataset=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "name one with `dataset`" in error_line(capsys)
    config.write_text(FILE_CONFIG.format(file="missing.npy", dataset=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in error_line(capsys)


# --------------------------------------------------------------------------
# every preset, a few steps
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "advection-rollout"])
def test_every_preset_runs(name, tmp_path):
    # advection-rollout: see base_run
    run_dir = tmp_path / name
    argv = ["run", name, "--out", str(run_dir), "--quiet", "--steps", "5",
            "--set", "training.log_every=5"]
    assert main(argv) == 0
    records = metrics(run_dir)
    assert [r["step"] for r in records] == [5]
    assert np.isfinite(records[0]["loss"]) and np.isfinite(records[0]["validation_error"])
    assert (run_dir / "model.eqx").is_file()
