"""The command's presets that are not trajectory rollouts, at a reduced size:
generated pairs (fno-poisson) and tasks with a sweep (fno-transfer)."""

import json

import numpy as np
import pytest

from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import resolve
from trainax._cli._toml import parse_toml

from cli_helpers import error_line, metrics, strict_json

SMALL_POISSON = [
    "--quiet", "--steps", "30", "--set", "training.log_every=10", "evaluation.every=10",
    "training.checkpoint_every=10", "data.num_samples=32", "validation.num_samples=8",
    "data.kwargs.num_points=16", "model.width=8", "model.modes=4", "model.num_layers=2",
]
SMALL_TRANSFER = [
    "--quiet", "--steps", "10", "--set", "training.log_every=5", "evaluation.every=5",
    "training.checkpoint_every=5", "task.num_points=8", "task.width=4", "task.modes=2",
    "task.num_layers=1", "task.num_pretrain=16", "task.num_test=4", "task.sizes=[4]",
    "task.downstream=['poisson_e5_10']", "task.sweep_steps=5", "task.sweep_batch_size=4",
]
ROW_KEYS = ["task", "num_samples", "init", "learning_rate", "test_rel_l2"]


# --------------------------------------------------------------------------
# fno-poisson: generated pairs, an ordinary config
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poisson_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("poisson") / "run"
    assert main(["run", "fno-poisson", "--out", str(run_dir), *SMALL_POISSON]) == 0
    return run_dir


def test_fno_poisson_writes_the_run_folder(poisson_run):
    names = {p.name for p in poisson_run.iterdir()}
    assert {"config.toml", "metrics.jsonl", "checkpoint.eqx", "model.eqx",
            "evaluation.json", "data", "plots"} <= names
    cache = {p.name for p in (poisson_run / "data").iterdir()}
    assert cache == {"train_inputs.npy", "train_targets.npy", "validation_inputs.npy",
                     "validation_targets.npy", "source.json"}
    inputs = np.load(poisson_run / "data" / "train_inputs.npy")
    assert inputs.shape == (32, 4, 16, 16)  # the raw pairs: f, K11, K12, K22
    np.testing.assert_allclose(inputs[:, 1].std(axis=(1, 2)), 0, atol=1e-7)  # constant K
    evaluation = strict_json(poisson_run / "evaluation.json")
    assert evaluation["kind"] == "pairs" and evaluation["num_samples"] == 8
    assert 0 < evaluation["rel_l2_percent"] < evaluation["baseline_rel_l2_percent"]
    records = metrics(poisson_run)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(r["validation_error"] is not None for r in records)
    assert {p.name for p in (poisson_run / "plots").iterdir()} == {"loss.png",
                                                                     "prediction.png"}


def test_fno_poisson_evaluate_rebuilds_the_same_normalisation(poisson_run, capsys):
    before = strict_json(poisson_run / "evaluation.json")["rel_l2_percent"]
    assert main(["evaluate", str(poisson_run)]) == 0
    after = strict_json(poisson_run / "evaluation.json")["rel_l2_percent"]
    assert after == pytest.approx(before, rel=1e-6)
    assert "relative L2 error" in capsys.readouterr().out


def test_fno_poisson_extends_from_its_checkpoint(poisson_run, tmp_path):
    # a cosine schedule cannot be extended; a resume of the finished run is a no-op
    assert main(["resume", str(poisson_run), "--quiet"]) == 0
    assert [r["step"] for r in metrics(poisson_run)] == [10, 20, 30]


@pytest.mark.parametrize("sets, expected", [
    (["data.kwargs.e_range=[5, 1]"], "[data.kwargs] e_range: expected low <= high"),
    (["data.kwargs.e_range=3"], "[data.kwargs] e_range: expected a pair"),
    (["data.kind=trajectories"], "makes pairs (inputs, targets)"),
    (["model={kind='linear_conv'}"], "pairs need a model from inputs to targets"),
    (["data.kwargs.omega_range=[1, 2]"], "unknown key 'omega_range'"),
])
def test_pair_problem_errors_are_one_line(tmp_path, capsys, sets, expected):
    code = main(["run", "fno-poisson", "--out", str(tmp_path / "r"), "--set", *sets])
    assert code == 2
    assert expected in error_line(capsys)
    assert not (tmp_path / "r" / "config.toml").exists()


def test_normalize_inputs_is_only_for_pairs(tmp_path, capsys):
    code = main(["run", "advection-rollout", "--out", str(tmp_path / "r"),
                 "--set", "data.normalize_inputs=true"])
    assert code == 2 and "unknown key 'normalize_inputs'" in error_line(capsys)


def test_helmholtz_pairs_with_integer_ranges(tmp_path):
    run_dir = tmp_path / "h"
    assert main(["run", "fno-poisson", "--out", str(run_dir), *SMALL_POISSON, "--steps", "5",
                 "--set", "data.problem=helmholtz_2d_periodic", "data.kwargs={num_points=16, "
                 "omega_range=[1, 3]}", "training.log_every=5", "evaluation.every=5"]) == 0
    config = parse_toml((run_dir / "config.toml").read_text(), "config")
    assert config["data"]["kwargs"]["omega_range"] == [1, 3]
    inputs = np.load(run_dir / "data" / "train_inputs.npy")
    assert inputs.shape[1] == 2 and set(np.unique(inputs[:, 1])) <= {1.0, 2.0, 3.0}


# --------------------------------------------------------------------------
# fno-transfer: a [task] whose evaluation is a resumable sweep
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("transfer") / "run"
    assert main(["sweep", "fno-transfer", "--out", str(run_dir), *SMALL_TRANSFER]) == 0
    return run_dir


def test_fno_transfer_writes_sweep_json(transfer_run):
    names = {p.name for p in transfer_run.iterdir()}
    assert {"config.toml", "metrics.jsonl", "checkpoint.eqx", "model.eqx",
            "evaluation.json", "sweep.json", "plots"} <= names
    rows = strict_json(transfer_run / "sweep.json")
    assert all(list(r) == ROW_KEYS for r in rows)
    points = {(r["task"], r["num_samples"], r["init"], r["learning_rate"]) for r in rows}
    assert points == {("poisson_e5_10", 0, "zero-shot", None),
                      ("poisson_e5_10", 4, "scratch", 3e-3),
                      ("poisson_e5_10", 4, "pretrained", 3e-3)}
    assert all(r["test_rel_l2"] > 0 for r in rows)
    evaluation = strict_json(transfer_run / "evaluation.json")
    assert evaluation["kind"] == "task" and evaluation["task"] == "fno_transfer"
    assert evaluation["sweep"] == "sweep.json" and evaluation["num_points"] == 3
    assert set(evaluation["fine_tuning_beats_scratch"]["poisson_e5_10"]) == {"4"}
    assert evaluation["pretrain_rel_l2_percent"] == pytest.approx(
        metrics(transfer_run)[-1]["validation_error"])
    assert [r["step"] for r in metrics(transfer_run)] == [5, 10]
    assert {"loss.png", "sweep.png"} <= {p.name for p in (transfer_run / "plots").iterdir()}


def test_a_finished_sweep_point_is_never_run_again(transfer_run, capsys):
    path = transfer_run / "sweep.json"
    rows = strict_json(path)
    mtime = path.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", "fno-transfer", "--out", str(transfer_run), *SMALL_TRANSFER]) == 0
    err = capsys.readouterr().err
    assert "3 points already" in err and "sweep: poisson_e5_10" not in err
    assert path.stat().st_mtime_ns == mtime  # nothing new: not even rewritten
    # a lost point (e.g. a kill before it was written) is run, and only it
    kept = [r for r in rows if r["init"] != "pretrained"]
    path.write_text(json.dumps(kept))
    assert main(["sweep", "fno-transfer", "--out", str(transfer_run), *SMALL_TRANSFER]) == 0
    err = capsys.readouterr().err
    assert err.count("sweep: poisson_e5_10") == 1 and "pretrained" in err
    again = strict_json(path)
    assert again[:2] == kept and len(again) == 3
    lost = [r for r in rows if r["init"] == "pretrained"][0]
    assert again[2]["test_rel_l2"] == pytest.approx(lost["test_rel_l2"], rel=1e-5)


def test_evaluate_continues_the_sweep_too(transfer_run, capsys):
    rows = strict_json(transfer_run / "sweep.json")
    assert main(["evaluate", str(transfer_run)]) == 0
    assert strict_json(transfer_run / "sweep.json") == rows
    assert "fine-tuning beats training from scratch at" in capsys.readouterr().out


def test_a_different_sweep_needs_another_folder(transfer_run, capsys):
    code = main(["sweep", "fno-transfer", "--out", str(transfer_run), *SMALL_TRANSFER,
                 "--set", "task.sweep_steps=6"])
    assert code == 2
    assert "holds a different experiment (task.sweep_steps: 5 -> 6)" in error_line(capsys)


def test_overwrite_removes_the_old_sweep(tmp_path, transfer_run):
    run_dir = tmp_path / "copy"
    run_dir.mkdir()
    for p in transfer_run.iterdir():
        if p.is_file():
            (run_dir / p.name).write_bytes(p.read_bytes())
    (run_dir / "sweep.json").write_text("[]")
    assert main(["run", "fno-transfer", "--out", str(run_dir), "--overwrite",
                 *SMALL_TRANSFER]) == 0
    assert len(strict_json(run_dir / "sweep.json")) == 3


@pytest.mark.parametrize("raw, expected", [
    ('[task]\nname = "fno_transfer"\n[model]\nkind = "fno"\n', "remove [model]"),
    ('[task]\nname = "fno_transfr"\n', "did you mean 'fno_transfer'"),
    ('[task]\nname = "fno_transfer"\nsize = [4]\n', "unknown key 'size' (did you mean"),
    ('[task]\nname = "fno_transfer"\nsizes = 4\n', "[task] sizes: expected a list"),
    ('[task]\nname = "fno_transfer"\ndownstream = ["burgers"]\n', "[task] downstream"),
    ('[task]\nwidth = 3\n', "missing required key 'name'"),
])
def test_task_config_errors_are_one_line(tmp_path, capsys, raw, expected):
    config = tmp_path / "task.toml"
    config.write_text(raw)
    assert main(["run", str(config), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert expected in error_line(capsys)


def test_sweep_needs_a_config_with_a_sweep(tmp_path, capsys):
    assert main(["sweep", "fno-poisson", "--out", str(tmp_path / "r")]) == 2
    assert "has no sweep" in error_line(capsys)


@pytest.mark.parametrize("name", ["fno-poisson", "fno-transfer"])
def test_presets_resolve(name):
    resolved = resolve(parse_toml(presets()[name].read_text(), name))
    assert resolved["description"]
