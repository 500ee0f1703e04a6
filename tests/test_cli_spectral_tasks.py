"""The command's neural spectral method presets (nsm-poisson, nsm-reaction-diffusion,
nsm-navier-stokes) at a reduced size: trained from the spectral residual alone,
scored against each problem's reference."""

import math

import jax.random as jr
import numpy as np
import pytest

import trainax as tx

from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import resolve
from trainax._cli._tasks_spectral import _errors, _references, _zero_output
from trainax._cli._toml import parse_toml

from cli_helpers import error_line, interrupt_metrics_at, metrics, strict_json

COMMON = [
    "--quiet", "--steps", "20", "--set", "training.log_every=10", "evaluation.every=10",
    "training.checkpoint_every=10", "training.batch_size=4", "optimizer.learning_rate=1e-2",
    "task.num_validation=3", "task.num_test=4",
]
SMALL = {
    "nsm-poisson": ["task.modes=8", "task.width=8", "task.num_layers=1", "task.grid=16"],
    "nsm-reaction-diffusion": ["task.modes=[4, 8]", "task.width=8", "task.num_layers=2",
                               "task.grid=[6, 16]", "task.reference_steps=100"],
    "nsm-navier-stokes": ["task.modes=[2, 4]", "task.width=4", "task.num_layers=1",
                          "task.grid=[2, 8]"],
}
TASK = {"nsm-poisson": "nsm_poisson", "nsm-reaction-diffusion": "nsm_reaction_diffusion",
        "nsm-navier-stokes": "nsm_navier_stokes"}


def small(name):
    return [*COMMON, *SMALL[name]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`runs(name)`: the folder of the preset's small run, trained once per module."""
    done = {}

    def get(name):
        if name not in done:
            run_dir = tmp_path_factory.mktemp(name) / "run"
            assert main(["run", name, "--out", str(run_dir), *small(name)]) == 0
            done[name] = run_dir
        return done[name]

    return get


@pytest.fixture(params=list(SMALL))
def spectral_run(request, runs):
    return request.param, runs(request.param)


def test_a_spectral_run_learns_from_the_residual_alone(spectral_run):
    name, run_dir = spectral_run
    evaluation = strict_json(run_dir / "evaluation.json")
    assert evaluation["kind"] == "task" and evaluation["task"] == TASK[name]
    error = evaluation["rel_l2_percent"]
    assert math.isfinite(error) and 0 < error < evaluation["untrained_rel_l2_percent"]
    assert len(evaluation["per_sample"]) == evaluation["num_samples"] == 4
    assert error == pytest.approx(np.mean(evaluation["per_sample"]))
    assert evaluation["baseline_rel_l2_percent"] > 0
    assert "relative L2 error" in evaluation["summary"] and "\n" not in evaluation["summary"]
    records = metrics(run_dir)
    assert [r["step"] for r in records] == [10, 20]
    validation = [r["validation_error"] for r in records]
    assert all(math.isfinite(v) and v > 0 for v in validation)
    assert evaluation["validation_error"] == pytest.approx(validation[-1])
    assert {p.name for p in (run_dir / "plots").iterdir()} == {"loss.png", "prediction.png"}
    assert (run_dir / "plots" / "prediction.png").stat().st_size > 0


def test_the_score_is_a_relative_l2_error_in_percent():
    # the exact solver scores 0 %, the zero output (u = 0) 100 %, whatever the source
    problem = tx.spectral.PoissonPeriodic(4)
    params = problem.sample(jr.PRNGKey(1), 3)
    references = _references(problem, params, (8, 8))
    np.testing.assert_allclose(_errors(problem, problem.solve, params, references, (8, 8)),
                               0, atol=1e-3)
    np.testing.assert_allclose(_errors(problem, _zero_output, params, references, (8, 8)),
                               100, rtol=1e-5)


def test_evaluate_reproduces_the_error(spectral_run, capsys):
    name, run_dir = spectral_run
    before = strict_json(run_dir / "evaluation.json")
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 0
    after = strict_json(run_dir / "evaluation.json")
    assert after["rel_l2_percent"] == pytest.approx(before["rel_l2_percent"], rel=1e-6)
    assert after["per_sample"] == pytest.approx(before["per_sample"], rel=1e-6)
    assert "relative L2 error" in capsys.readouterr().out


def test_an_interrupted_run_resumes_exactly(runs, tmp_path, monkeypatch):
    name = "nsm-poisson"  # one problem shows it: every task draws through the same Sampler
    straight, broken = runs(name), tmp_path / "broken"
    interrupt_metrics_at(monkeypatch, 20)
    assert main(["run", name, "--out", str(broken), *small(name)]) == 130
    monkeypatch.undo()
    assert [r["step"] for r in metrics(broken)] == [10]
    assert main(["resume", str(broken), "--quiet"]) == 0
    # the sampler's draws follow the step index: the same sources after the resume
    assert metrics(broken) == metrics(straight)
    assert (strict_json(broken / "evaluation.json")["per_sample"]
            == strict_json(straight / "evaluation.json")["per_sample"])


@pytest.mark.parametrize("name, sets, expected", [
    ("nsm-poisson", ["task.width=0"], "[task] width: must be at least 1, got 0"),
    ("nsm-poisson", ["task.grid=[16, 16]"], "[task] grid: expected an integer"),
    ("nsm-poisson", ["task.length_scale=0"], "[task] length_scale: must be a positive"),
    ("nsm-poisson", ["task.mode=8"], "unknown key 'mode' (did you mean 'modes'?)"),
    ("nsm-reaction-diffusion", ["task.nu=-0.01"], "[task] nu: must be a non-negative"),
    ("nsm-reaction-diffusion", ["task.modes=[1, 8]"],
     "[task] modes: expected [time modes, space modes], at least [2, 1], got [1, 8]"),
    ("nsm-reaction-diffusion", ["task.grid=[64]"], "[task] grid: expected [time levels"),
    ("nsm-reaction-diffusion", ["task.modes=8"], "[task] modes: expected a list"),
    ("nsm-navier-stokes", ["task.horizon=0"], "[task] horizon: must be a positive"),
    ("nsm-navier-stokes", ["task.num_test=0"], "[task] num_test: must be at least 1"),
])
def test_bad_task_values_are_one_line_errors(tmp_path, capsys, name, sets, expected):
    assert main(["run", name, "--out", str(tmp_path / "r"), "--quiet", "--set", *sets]) == 2
    assert expected in error_line(capsys)
    assert not (tmp_path / "r" / "config.toml").exists()


@pytest.mark.parametrize("name", list(SMALL))
def test_presets_resolve(name):
    resolved = resolve(parse_toml(presets()[name].read_text(), name))
    assert resolved["description"] and resolved["task"]["name"] == TASK[name]
