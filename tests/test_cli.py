"""Tests of the `trainax` command: presets, run folders, errors, resume, evaluate."""

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import trainax
import trainax._cli._experiment as experiment_module
import trainax._cli._lock as lock_module
import trainax._cli._main as main_module
import trainax._cli._run as run_module
from trainax._atomic import atomic_write
from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import data_kind, resolve
from trainax._cli._toml import dumps, parse_toml
from trainax.nn import LinearConvStepper

from cli_helpers import error_line, interrupt_metrics_at, metrics, strict_json

PRESETS = sorted(presets())
# presets that roll out trajectories (the others are tested in test_cli_tasks.py)
TRAJECTORY_PRESETS = [
    name for name in PRESETS
    if data_kind(resolve(parse_toml(presets()[name].read_text(), name))) == "trajectories"
]
# benchmarks/presets.py runs every trajectory preset at full size; the suite the
# quicker ones too (all but the script's FULL_ONLY)
_spec = importlib.util.spec_from_file_location(
    "presets_script", Path(__file__).parents[1] / "benchmarks" / "presets.py"
)
PRESETS_SCRIPT = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(PRESETS_SCRIPT)
FAST = ["--quiet", "--steps", "20", "--set", "training.log_every=5",
        "--set", "evaluation.every=10"]


def run_files(run_dir: Path) -> dict:
    """Every file of a run folder: {relative path: (mtime_ns, bytes)}."""
    return {
        str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock"
    }


def model_leaves(path: Path, like):
    model = eqx.tree_deserialise_leaves(path, like)
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


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
# small data in files: fast runs
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
checkpoint_every = 5

[evaluation]
every = 5
"""


def small_config(tmp_path, data=None, name="small.toml", dataset="") -> Path:
    """A config training a linear stencil on exactly advected sines."""
    file = tmp_path / "trajectories.npy"
    if not file.exists() or data is not None:
        np.save(file, _advected_sines() if data is None else data)
    config = tmp_path / name
    config.write_text(FILE_CONFIG.format(file=file.name, dataset=dataset))
    return config


# --------------------------------------------------------------------------
# list, help, version, python -m
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
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"trainax {trainax.__version__}"
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
    assert config["data"]["kwargs"]["highest_init_mode"] == 5  # a default of the problem
    records = metrics(base_run)
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert [r["step"] for r in records if "validation_error" in r] == [10, 20]
    train = np.load(base_run / "data" / "train.npy")
    assert train.shape == (20, 50, 1, 30)  # temporal_horizon = 50 states
    evaluation = strict_json(base_run / "evaluation.json")
    assert len(evaluation["per_step"]) == len(evaluation["baseline_per_step"]) == 30
    assert evaluation["mean"] == pytest.approx(np.mean(evaluation["per_step"]))
    # the baseline repeats the initial state: recompute it from the cached data
    validation = np.load(base_run / "data" / "validation.npy")[:, :31, 0]
    errors = np.linalg.norm(validation[:, 1:] - validation[:, :1], axis=-1) / np.linalg.norm(
        validation[:, 1:], axis=-1)
    np.testing.assert_allclose(evaluation["baseline_per_step"], errors.mean(0), rtol=1e-4)
    assert evaluation["baseline_mean"] == pytest.approx(np.mean(errors.mean(0)), rel=1e-4)
    worse = [s + 1 for s, (a, b) in enumerate(zip(evaluation["per_step"],
                                                   evaluation["baseline_per_step"])) if a >= b]
    assert evaluation["steps_not_better_than_baseline"] == worse


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
    out = capsys.readouterr().out
    assert "baseline, repeat the initial state" in out
    assert [r["step"] for r in metrics(run_dir)] == [5, 10, 15, 20]  # not appended
    config = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert config["optimizer"]["learning_rate"] == 0.02
    assert config["optimizer"]["schedule"] == "cosine"
    # the same data: the cache is kept, not regenerated
    assert (run_dir / "data" / "train.npy").stat().st_mtime_ns == cache


def test_set_before_the_config(tmp_path):
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    argv = ["run", "--set", "training.num_training_steps=5", "optimizer.learning_rate=0.1",
            str(config), "--out", str(run_dir), "--quiet"]
    assert main(argv) == 0
    resolved = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert resolved["training"]["num_training_steps"] == 5
    assert resolved["optimizer"]["learning_rate"] == 0.1


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
        (["data.kwargs.num_points=0"], ["[data]", "num_points"]),
        (["data.kwargs.cutoff=5"], ["[data.kwargs]", "'cutoff'", "highest_init_mode"]),
        (["training.nan_policy=ignore"], ["[training] nan_policy", "raise, continue"]),
        (["optimizer.warmup_steps=2000"], ["warmup_steps", "smaller than"]),
        (["configuration.kind=operator_learning"], ["operator_learning", "kind = 'pairs'"]),
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


def test_a_batch_larger_than_the_data_trains_full_batch(tmp_path, capsys):
    # 6 trajectories of 10 steps hold 6 * 9 = 54 windows of 2 steps
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    with pytest.warns(UserWarning, match="batch_size.*100000.*full batch"):
        code = main(["run", str(config), "--out", str(run_dir), "--quiet",
                     "--set", "training.batch_size=100000"])
    assert code == 0
    assert [r["step"] for r in metrics(run_dir)] == [5, 10]


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


def test_schedules_with_warmup():
    lr = experiment_module.learning_rate
    options = {"learning_rate": 1e-2, "schedule": "cosine", "decay_to": 0.1,
               "warmup_steps": 10}
    rate = lr(options, 110)
    assert float(rate(0)) == 0.0
    assert float(rate(5)) == pytest.approx(5e-3)
    assert float(rate(10)) == pytest.approx(1e-2)
    assert float(rate(60)) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5), rel=1e-5)
    assert float(rate(110)) == pytest.approx(1e-3, rel=1e-5)
    constant = lr({**options, "schedule": "constant"}, 110)
    assert float(constant(5)) == pytest.approx(5e-3)
    assert float(constant(100)) == pytest.approx(1e-2)
    assert lr({**options, "schedule": "constant", "warmup_steps": 0}, 110) == 1e-2


def test_clip_norm_clips_the_global_gradient_norm():
    options = {"name": "sgd", "learning_rate": 1.0, "schedule": "constant", "decay_to": 0.01,
               "warmup_steps": 0, "momentum": 0.0}
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([4.0])}  # global norm 5
    params = jax.tree_util.tree_map(jnp.zeros_like, grads)
    for clip, scale in ((0.0, 1.0), (10.0, 1.0), (1.0, 0.2)):
        optimizer = experiment_module.make_optimizer({**options, "clip_norm": clip}, 10)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        for leaf, grad in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(grads)):
            np.testing.assert_allclose(leaf, -scale * grad, rtol=1e-6)


# --------------------------------------------------------------------------
# resume and evaluate
# --------------------------------------------------------------------------


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch,
                                                                   capsys):
    config = small_config(tmp_path)
    argv = ["run", str(config), "--quiet", "--steps", "30",
            "--set", "training.checkpoint_every=10", "--set", "training.log_every=5",
            "--set", "evaluation.every=10"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main([*argv, "--out", str(straight)]) == 0

    interrupt_metrics_at(monkeypatch, 20)
    assert main([*argv, "--out", str(broken)]) == 130
    assert f"trainax resume {broken}" in capsys.readouterr().err
    assert not (broken / "model.eqx").exists()
    assert [r["step"] for r in metrics(broken)] == [5, 10, 15]
    monkeypatch.undo()
    # a kill in the middle of a line leaves it torn: dropped with a notice
    with open(broken / "metrics.jsonl", "a") as file:
        file.write('{"step": 20, "lo')

    assert main(["resume", str(broken), "--quiet"]) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    records = metrics(broken)
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert records == metrics(straight)
    like = LinearConvStepper(1, 1, 2, key=jax.random.PRNGKey(0))
    for a, b in zip(model_leaves(broken / "model.eqx", like),
                    model_leaves(straight / "model.eqx", like)):
        np.testing.assert_array_equal(a, b)


def test_a_finished_run_is_extended_bit_for_bit(tmp_path, capsys):
    config = small_config(tmp_path)
    short, long = tmp_path / "short", tmp_path / "long"
    common = ["--quiet", "--set", "training.checkpoint_every=0"]
    assert main(["run", str(config), "--out", str(short), "--steps", "10", *common]) == 0
    assert main(["run", str(config), "--out", str(long), "--steps", "20", *common]) == 0
    assert main(["resume", str(short), "--steps", "20", "--quiet"]) == 0
    assert "trained steps 10..20" in capsys.readouterr().out
    assert metrics(short) == metrics(long)
    like = LinearConvStepper(1, 1, 2, key=jax.random.PRNGKey(0))
    for a, b in zip(model_leaves(short / "model.eqx", like),
                    model_leaves(long / "model.eqx", like)):
        np.testing.assert_array_equal(a, b)
    resolved = parse_toml((short / "config.toml").read_text(), "config")
    assert resolved["training"]["num_training_steps"] == 20
    assert main(["resume", str(short), "--steps", "15"]) == 2
    assert "already at step 20" in error_line(capsys)


def test_a_schedule_over_the_run_cannot_be_extended(tmp_path, capsys):
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet",
                 "--set", "optimizer.schedule=cosine"]) == 0
    before = run_files(run_dir)
    assert main(["resume", str(run_dir), "--steps", "20"]) == 2
    message = error_line(capsys)
    assert "schedule = 'cosine'" in message and "decays over num_training_steps" in message
    assert run_files(run_dir) == before


def test_resume_needs_a_run_with_a_sound_checkpoint(base_run, tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "no config.toml" in error_line(capsys)
    run_dir = tmp_path / "early"
    shutil.copytree(base_run, run_dir)
    checkpoint = run_dir / "checkpoint.eqx"
    content = checkpoint.read_bytes()
    checkpoint.write_bytes(content[: len(content) // 2])  # truncated
    assert main(["resume", str(run_dir)]) == 2
    message = error_line(capsys)
    assert f"{checkpoint} is damaged" in message and "different model" not in message
    checkpoint.write_bytes(os.urandom(len(content)))  # random bytes
    assert main(["resume", str(run_dir)]) == 2
    assert f"{checkpoint} is damaged" in error_line(capsys)
    checkpoint.unlink()
    assert main(["resume", str(run_dir)]) == 2
    assert "--overwrite" in error_line(capsys)


def test_evaluate_writes_evaluation_and_plots(base_run, capsys):
    (base_run / "evaluation.json").unlink()
    for plot in (base_run / "plots").iterdir():
        plot.unlink()
    assert main(["evaluate", str(base_run)]) == 0
    out = capsys.readouterr().out
    evaluation = strict_json(base_run / "evaluation.json")
    assert evaluation["metric"] == "nrmse" and evaluation["num_rollout_steps"] == 30
    assert f"{evaluation['mean']:.3e}" in out and f"{evaluation['baseline_mean']:.3e}" in out
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
# the run folder is never corrupted
# --------------------------------------------------------------------------

_HOLD_LOCK = """
import sys
from pathlib import Path
from trainax._cli._lock import RunLock
lock = RunLock(Path(sys.argv[1]), "run")
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_folder_in_use_is_refused(tmp_path, capsys):
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 0
    before = run_files(run_dir)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in (["run", str(config), "--out", str(run_dir), "--overwrite"],
                     ["resume", str(run_dir)], ["evaluate", str(run_dir)]):
            assert main(argv) == 2
            message = error_line(capsys)
            assert "in use by another trainax command" in message
            assert f"(process {holder.pid})" in message
        assert run_files(run_dir) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # the lock goes with its process
    assert main(["evaluate", str(run_dir)]) == 0


def test_two_concurrent_runs_into_one_folder(tmp_path):
    """Two processes start the same run into one folder at once: one trains,
    the other refuses; the folder holds one consistent run."""
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "trainax", "run", str(config), "--out", str(run_dir),
            "--quiet", "--steps", "2000", "--set", "training.log_every=100",
            "evaluation.every=1000", "training.checkpoint_every=1000"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    # it lost the race for the lock, or (started late) found the finished run
    assert ("in use by another trainax command" in refused
            or "already holds this experiment" in refused), refused
    assert [r["step"] for r in metrics(run_dir)] == list(range(100, 2001, 100))
    resolved = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert resolved["training"]["num_training_steps"] == 2000
    assert strict_json(run_dir / "evaluation.json")["num_trajectories"] == 2


def test_stale_temporaries_of_a_killed_write_are_removed(base_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    # a process killed inside a checkpoint write leaves its temporary behind
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60)
    pid = int(dead.stdout)
    stale = run_dir / f".checkpoint.eqx.{pid}.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint" * 1000)
    stale_plot = run_dir / "plots" / f".loss.png.{pid}.89abcdef.tmp"
    stale_plot.write_bytes(b"half a picture")
    assert main(["evaluate", str(run_dir)]) == 0
    assert temporaries(run_dir) == []


def test_a_full_disk_is_reported_before_generating_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(main_module.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    generated = []
    monkeypatch.setattr(experiment_module, "load_data", lambda *a: generated.append(1))
    run_dir = tmp_path / "run"
    assert main(["run", "advection-rollout", "--out", str(run_dir), "--quiet"]) == 2
    message = error_line(capsys)
    assert f"cannot write {run_dir / 'data'}" in message and "MiB" in message
    assert generated == [] and not run_dir.exists()


def test_a_failed_write_names_the_file_and_leaves_nothing_behind(tmp_path, monkeypatch,
                                                                  capsys):
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

    real = atomic_write

    def full_for_the_model(path, mode="wb", **kwargs):
        import contextlib

        @contextlib.contextmanager
        def writer():
            with real(path, mode, **kwargs) as file:
                yield Full(file) if Path(path).name == "model.eqx" else file

        return writer()

    monkeypatch.setattr(experiment_module, "atomic_write", full_for_the_model)
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 2
    message = error_line(capsys)
    assert f"cannot write {run_dir / 'model.eqx'}: No space left on device" in message
    assert not (run_dir / "model.eqx").exists() and temporaries(run_dir) == []


def test_a_read_only_folder_is_reported_before_any_work(tmp_path, monkeypatch, capsys):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(lock_module.os, "open", read_only)
    monkeypatch.setattr(main_module, "build", lambda *a: pytest.fail("built"))
    assert main(["run", "advection-rollout", "--out", str(tmp_path / "r")]) == 2
    assert f"cannot write {tmp_path / 'r' / '.lock'}: Read-only file system" in (
        error_line(capsys))


# --------------------------------------------------------------------------
# data from files
# --------------------------------------------------------------------------


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
    assert strict_json(run_dir / "evaluation.json")["num_trajectories"] == 2
    recorded = json.loads((run_dir / "data" / "files.json").read_text())
    assert recorded[str(file)]["size"] == file.stat().st_size


def test_file_errors_are_one_line(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=_advected_sines(), b=_advected_sines())
    config = tmp_path / "c.toml"
    config.write_text(FILE_CONFIG.format(file="two.npz", dataset=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "name one with `dataset`" in error_line(capsys)
    config.write_text(FILE_CONFIG.format(file="missing.npy", dataset=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in error_line(capsys)
    assert not (tmp_path / "r").exists()


def _questioned(tmp_path, capsys, data=None, raw=None, suffix=".npy"):
    file = tmp_path / f"questioned{suffix}"
    if raw is not None:
        file.write_bytes(raw)
    else:
        np.save(file, data)
    config = tmp_path / "q.toml"
    config.write_text(FILE_CONFIG.format(file=file.name, dataset=""))
    code = main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: np.moveaxis(_advected_sines(n=30), 2, -1),
         ["(8, 11, 30, 1)", "30 channels", "channels-last", "channels_last = true"]),
        (lambda: _advected_sines()[:, :1],
         ["single time level", "at least two", "without a sample axis"]),
        (lambda: _advected_sines(num_samples=1)[0],  # (T+1, C, N): no sample axis
         ["(11, 1, 16)", "single time level", "a[None]"]),
        (lambda: _advected_sines().astype(np.int32), ["int32", "floating point"]),
        (lambda: np.zeros((4, 16), np.float32), ["(4, 16)", "(S, T+1, C, *N)"]),
    ],
)
def test_data_that_looks_wrong_is_questioned(tmp_path, capsys, make, expected):
    code, err = _questioned(tmp_path, capsys, make())
    assert code == 2
    for part in expected:
        assert part in err, (part, err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("suffix, content, expected", [
    (".npy", b"step,value\n1,2\n", "is not a NumPy array file (.npy)"),
    (".npz", b"not a zip", "is not a NumPy .npz archive"),
    (".h5", b"plain text", "is not an HDF5 file"),
])
def test_a_file_that_is_no_array_file(tmp_path, capsys, suffix, content, expected):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    code, err = _questioned(tmp_path, capsys, raw=content, suffix=suffix)
    assert code == 2 and expected in err and "pickle" not in err


def test_channels_last_data_train_when_declared(tmp_path):
    config = small_config(tmp_path, data=np.moveaxis(_advected_sines(n=30), 2, -1))
    config.write_text(config.read_text().replace('[data]\n', '[data]\nchannels_last = true\n'))
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0


def test_half_precision_is_converted_with_a_notice(tmp_path, capsys):
    code, err = _questioned(tmp_path, capsys, _advected_sines().astype(np.float16))
    assert code == 0 and "float16 values; they are converted to float32" in err


@pytest.mark.parametrize("where, index", [("[validation]", 7), ("[data]", 1)])
def test_nan_or_inf_in_the_data_is_refused(tmp_path, capsys, where, index):
    data = _advected_sines()
    data[index, 3, 0, 5] = np.nan if where == "[data]" else np.inf
    code, err = _questioned(tmp_path, capsys, data)
    assert code == 2
    what = "validation trajectory 1" if where == "[validation]" else "training trajectory 1"
    assert f"{where}: {what} holds NaN or infinite values" in err


def test_a_changed_data_file_is_not_scored_silently(tmp_path, capsys):
    config = small_config(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 0
    evaluation = (run_dir / "evaluation.json").read_bytes()
    np.save(tmp_path / "trajectories.npy", _advected_sines(shift=2))
    assert main(["evaluate", str(run_dir)]) == 2
    message = error_line(capsys)
    assert "changed since the run" in message and "--rescore" in message
    assert main(["resume", str(run_dir)]) == 2
    assert "resuming would train on other data" in error_line(capsys)
    assert main(["evaluate", str(run_dir), "--rescore"]) == 0
    assert (run_dir / "evaluation.json").read_bytes() == evaluation
    rescored = strict_json(run_dir / "evaluation-rescored.json")
    assert rescored["mean"] != json.loads(evaluation)["mean"]


# --------------------------------------------------------------------------
# failures during training
# --------------------------------------------------------------------------


def test_a_diverging_run_names_a_setting_the_config_has(tmp_path, capsys):
    config = small_config(tmp_path)
    diverge = ["--set", "optimizer.learning_rate=1e30", "--quiet"]
    assert main(["run", str(config), "--out", str(tmp_path / "a"), *diverge]) == 2
    message = error_line(capsys)
    assert "nan_policy = 'continue'" in message and "--set training.nan_policy" in message
    run_dir = tmp_path / "b"
    with pytest.warns(RuntimeWarning):
        assert main(["run", str(config), "--out", str(run_dir), *diverge,
                     "--set", "training.nan_policy=continue"]) == 0
    evaluation = strict_json(run_dir / "evaluation.json")  # null, not NaN
    assert evaluation["finite"] is False and None in evaluation["per_step"]
    assert "not finite" in capsys.readouterr().out
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(c))


def test_out_of_memory_gets_a_hint(tmp_path, monkeypatch, capsys):
    def exhausted(self, *args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                           "12.00GiB.")

    monkeypatch.setattr(run_module.GeneralTrainer, "__call__", exhausted)
    config = small_config(tmp_path)
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    message = error_line(capsys)
    for part in ("ran out of memory", "rollout of 2 steps", "batch_size 8", "MiB",
                 "remat = true", "RESOURCE_EXHAUSTED"):
        assert part in message, (part, message)


# --------------------------------------------------------------------------
# operator learning on pairs
# --------------------------------------------------------------------------


def _pairs(num_samples=24, n=16):
    """Inputs (S, 2, N) and targets (S, 1, N): the mean of the two channels,
    shifted by one point."""
    rng = np.random.default_rng(1)
    x = np.arange(n) / n
    k = rng.integers(1, 4, size=(num_samples, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(num_samples, 2, 1))
    inputs = np.sin(2 * np.pi * k * x + phase).astype(np.float32)
    targets = np.roll(inputs.mean(axis=1, keepdims=True), 1, axis=-1)
    return inputs, targets


PAIRS_CONFIG = """
[data]
kind = "pairs"
file = "{file}"
{extra}
[validation]
num_samples = 4

[model]
kind = "{model}"
{model_options}

[configuration]
kind = "operator_learning"

[optimizer]
learning_rate = 1e-2
schedule = "cosine"
warmup_steps = 10

[training]
num_training_steps = 150
batch_size = 8
log_every = 50

[evaluation]
every = 50
"""


@pytest.mark.parametrize("layout, model", [("npz", "conv_net"), ("npy", "fno"),
                                           ("two-npy", "conv_net")])
def test_operator_learning_on_pairs(tmp_path, capsys, layout, model):
    inputs, targets = _pairs()
    extra = ""
    if layout == "npz":
        np.savez(tmp_path / "pairs.npz", inputs=inputs, targets=targets)
        file = "pairs.npz"
    elif layout == "npy":  # one file, a leading pair axis: needs equal shapes
        targets = np.concatenate([targets, -targets], axis=1)
        np.save(tmp_path / "pairs.npy", np.stack([inputs, targets]))
        file = "pairs.npy"
    else:
        np.save(tmp_path / "inputs.npy", inputs)
        np.save(tmp_path / "targets.npy", targets)
        file, extra = "inputs.npy", 'targets_file = "targets.npy"'
    options = ("width = 8\nmodes = 4\nnum_layers = 2" if model == "fno"
               else "hidden_channels = 8\ndepth = 1")
    config = tmp_path / "pairs.toml"
    config.write_text(PAIRS_CONFIG.format(file=file, extra=extra, model=model,
                                          model_options=options))
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    evaluation = strict_json(run_dir / "evaluation.json")
    assert evaluation["kind"] == "pairs" and evaluation["num_samples"] == 4
    assert len(evaluation["per_sample"]) == 4
    assert evaluation["rel_l2_percent"] == pytest.approx(np.mean(evaluation["per_sample"]))
    # the model learned something the baseline (the mean target) cannot do
    assert evaluation["rel_l2_percent"] < 0.5 * evaluation["baseline_rel_l2_percent"]
    assert evaluation["samples_not_better_than_baseline"] == []
    assert "relative L2 error" in out and "%" in out
    assert [r["step"] for r in metrics(run_dir)] == [50, 100, 150]
    assert (run_dir / "plots" / "prediction.png").is_file()


def test_pair_errors_are_one_line(tmp_path, capsys):
    inputs, targets = _pairs()
    np.savez(tmp_path / "pairs.npz", inputs=inputs, targets=targets[:5])
    config = tmp_path / "pairs.toml"
    config.write_text(PAIRS_CONFIG.format(file="pairs.npz", extra="", model="conv_net",
                                          model_options=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "same number of samples; got 24 and 5" in error_line(capsys)
    config.write_text(PAIRS_CONFIG.format(file="pairs.npz", extra="", model="linear_conv",
                                          model_options=""))
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "one of conv_net, fno" in error_line(capsys)


# --------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------


def test_plots_label_their_axes_and_show_their_own_range():
    plt = pytest.importorskip("matplotlib.pyplot")
    from trainax._cli import _plots

    records = [{"step": s, "loss": 1.0 / s, "validation_error": 0.5 / s}
               for s in (10, 20, 30, 40)]
    evaluation = {"baseline": "repeat the initial state", "baseline_mean": 1.0}
    fig = plt.figure()
    _plots._loss(fig, records, "validation rollout nrmse", evaluation, [20, 30])
    top, bottom = fig.axes
    assert top.get_ylabel() == "training loss"
    assert bottom.get_ylabel() == "validation rollout nrmse"
    assert sum(line.get_linestyle() == ":" for line in top.lines) == 2  # stage boundaries
    plt.close(fig)

    steps, n = 6, 8
    reference = np.sin(np.arange(n))[None, None].repeat(steps + 1, 0)  # (T+1, 1, N)
    prediction = reference * 10.0 ** np.arange(steps + 1)[:, None, None]  # blows up
    fig = plt.figure()
    _plots._prediction(fig, reference, prediction, 3, 10)
    images = [ax for ax in fig.axes if ax.images]
    assert images[0].images[0].get_clim()[1] == pytest.approx(np.abs(reference).max())
    assert images[1].images[0].get_clim()[1] == pytest.approx(np.abs(prediction).max())
    assert "validation trajectory 3 (of 10)" in fig._suptitle.get_text()
    bars = [ax for ax in fig.axes if not ax.images]
    assert all(bar.get_ylabel() for bar in bars)  # labelled colour bars
    ticks = images[0].get_yticks()
    assert np.allclose(ticks, np.round(ticks))  # integer time steps
    plt.close(fig)


# --------------------------------------------------------------------------
# every shipped preset, at full size: a model that beats the baseline
# --------------------------------------------------------------------------


def test_the_presets_script_runs_every_trajectory_preset():
    script = PRESETS_SCRIPT
    assert script.trajectory_presets() == TRAJECTORY_PRESETS
    assert set(script.FULL_ONLY) <= set(TRAJECTORY_PRESETS)
    assert script.main_script(["not-a-preset"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [n for n in TRAJECTORY_PRESETS if n not in PRESETS_SCRIPT.FULL_ONLY]
)
def test_preset_beats_the_baseline_at_every_validation_step(name, tmp_path, capsys):
    run_dir = tmp_path / name
    start = time.perf_counter()
    assert main(["run", name, "--out", str(run_dir), "--quiet"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    evaluation = strict_json(run_dir / "evaluation.json")
    model = np.array(evaluation["per_step"], dtype=float)
    baseline = np.array(evaluation["baseline_per_step"], dtype=float)
    preset = resolve(parse_toml(presets()[name].read_text(), name))
    assert len(model) == (preset["evaluation"]["num_rollout_steps"]
                          or np.load(run_dir / "data" / "validation.npy").shape[1] - 1)
    worse = np.flatnonzero(~(model < baseline)) + 1
    assert worse.size == 0, (name, worse, model[worse - 1], baseline[worse - 1])
    assert evaluation["steps_not_better_than_baseline"] == []
    assert "better than the baseline at every step" in out
    print(f"{name}: {seconds:.1f} s, mean {evaluation['mean']:.3g}, baseline "
          f"{evaluation['baseline_mean']:.3g}")
