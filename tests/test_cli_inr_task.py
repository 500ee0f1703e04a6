"""The inr-heat preset (DINo: an INR auto-decoder with a latent ODE) at a tiny size."""

import math

import numpy as np
import pytest

from trainax._cli import main
from trainax._cli._experiment import build
from trainax._cli._presets import presets
from trainax._cli._run import checkpoint_step, read_config
from trainax._cli._schema import resolve
from trainax._cli._toml import parse_toml

from cli_helpers import error_line, metrics, strict_json

# 8x8 training grid (16x16 fine), 4 + 2 trajectories of 6 frames (3 seen)
TINY = [
    "--quiet", "--steps", "20", "--set", "training.log_every=10", "evaluation.every=10",
    "training.checkpoint_every=10", "task.num_train=4", "task.num_test=2",
    "task.num_points=8", "task.fine_points=16", "task.num_frames=6", "task.seen_frames=3",
    "task.sparse_fraction=0.2", "task.hidden=8", "task.code_dim=4", "task.num_layers=1",
    "task.dynamics_width=8", "task.dynamics_depth=1", "task.fit_steps=10",
]
ERRORS = ["mse_in_t_in_s", "mse_in_t_out_s", "mse_out_t_in_s", "mse_out_t_out_s"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("inr") / "run"
    assert main(["run", "inr-heat", "--out", str(run_dir), *TINY]) == 0
    return run_dir


def _split_is_consistent(block: dict, num_points: int, seen: int, frames: int) -> None:
    # the errors at the observed and the unobserved points average to the
    # error over all points, inside and beyond the horizon
    n = block["num_observed"]
    m = num_points**2 - n
    for where, inside, outside in (("mse_in_t", *ERRORS[:2]), ("mse_out_t", *ERRORS[2:])):
        whole = (n * block[inside] + m * block[outside]) / (n + m)
        assert whole == pytest.approx(block["grid"][where], rel=1e-5)


def test_evaluation_holds_the_four_errors_and_the_baselines(run):
    evaluation = strict_json(run / "evaluation.json")
    assert evaluation["kind"] == "task" and evaluation["task"] == "inr_heat"
    for block, fraction in ((evaluation, 0.5), (evaluation["sparse"], 0.2)):
        assert block["observed_fraction"] == fraction
        assert all(math.isfinite(block[k]) and block[k] > 0 for k in ERRORS)
        assert 0 < block["num_observed"] < 64
        _split_is_consistent(block, 8, 3, 6)
        assert block["fine_grid"]["num_points"] == 16
        assert block["fine_grid"]["mse_in_t"] > 0 and block["fine_grid"]["mse_out_t"] > 0
        t0 = block["t0_unobserved"]
        assert t0["inr_mse"] > 0 and t0["nearest_neighbour_mse"] > 0
    assert evaluation["sparse"]["num_observed"] < evaluation["num_observed"]
    assert "from 50% of the first frame" in evaluation["summary"]
    assert "from 20% of the first frame" in evaluation["summary"]
    # validation: the 50% forecast's MSE over all frames and points, per trajectory
    grid = evaluation["grid"]
    assert evaluation["validation_error"] == pytest.approx(
        (3 * grid["mse_in_t"] + 3 * grid["mse_out_t"]) / 6, rel=1e-5)
    records = metrics(run)
    assert [r["step"] for r in records] == [10, 20]
    assert all(r["validation_error"] is not None for r in records)
    assert records[-1]["validation_error"] == pytest.approx(evaluation["validation_error"])


def test_the_animation_shows_every_frame(run):
    evaluation = strict_json(run / "evaluation.json")
    assert evaluation["animation"] == "plots/forecast.gif"
    Image = pytest.importorskip("PIL.Image")
    with Image.open(run / "plots" / "forecast.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 6


def test_evaluate_reproduces_the_errors(run, capsys):
    before = strict_json(run / "evaluation.json")
    assert main(["evaluate", str(run)]) == 0
    after = strict_json(run / "evaluation.json")
    for block_before, block_after in ((before, after), (before["sparse"], after["sparse"])):
        for k in ERRORS:
            assert block_after[k] == pytest.approx(block_before[k], rel=1e-5)
    assert "from 50% of the first frame" in capsys.readouterr().out


def test_the_checkpoint_holds_the_tasks_own_optimizer(run):
    # the task's optimizer (codes, decoder, dynamics, step counter), not the
    # [optimizer] table's: a resume reads its state back
    experiment = build(read_config(run))
    assert checkpoint_step(experiment, run / "checkpoint.eqx") == 20
    assert experiment.config["optimizer"]["learning_rate"] == 1e-3  # the unused default


@pytest.mark.parametrize("sets, expected", [
    (["task.hidden=7"], "[task] hidden: must be even"),
    (["task.fine_points=12"], "[task] fine_points: expected a multiple of num_points (8)"),
    (["task.observed_fraction=1.0"], "[task] observed_fraction: expected a fraction in (0, 1)"),
    (["task.sparse_fraction=0.001"], "[task] sparse_fraction: 0.001 of the 8x8 grid keeps none"),
    (["task.seen_frames=6"], "[task] seen_frames: expected 2 <= seen_frames < num_frames (6)"),
    (["task.cutoff=4"], "[task] cutoff: expected 2 * cutoff < num_points (8)"),
    (["task.fit_steps=0"], "[task] fit_steps: must be positive"),
    (["task.codes_learning_rate=0"], "[task] codes_learning_rate: must be a positive number"),
    (["task.num_train='many'"], "[task] num_train: expected an integer"),
    (["task.code_size=4"], "unknown key 'code_size' (did you mean 'code_dim'?)"),
    (["optimizer.learning_rate=0.1"], "[optimizer]: task 'inr_heat' brings its own optimizer"),
])
def test_bad_task_values_are_one_line_errors(tmp_path, capsys, sets, expected):
    code = main(["run", "inr-heat", "--out", str(tmp_path / "r"), *TINY, *sets])
    assert code == 2
    assert expected in error_line(capsys)
    assert not (tmp_path / "r" / "config.toml").exists()


def test_the_preset_resolves_to_the_full_size():
    config = resolve(parse_toml(presets()["inr-heat"].read_text(), "inr-heat"))
    task = config["task"]
    assert (task["num_points"], task["fine_points"], task["observed_fraction"],
            task["sparse_fraction"], task["seen_frames"], task["num_frames"]) == (
        32, 64, 0.5, 0.05, 10, 20)
    assert config["description"]
    assert np.isclose(task["codes_learning_rate"], 1e-2)
