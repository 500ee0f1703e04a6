"""The diffusion-sorption constraint presets (constraint-ds-soft, -hard, -moe)
through the command, at a tiny size: float64 inside the command only."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import resolve
from trainax._cli._toml import dumps, parse_toml

from cli_helpers import error_line, metrics, strict_json

# a 5 x 8 grid, a one-layer FNO and two held-out states; the experts split x
# in two strips of 4 nodes (4 experts need 16 nodes)
TINY = [
    "task.num_times=5", "task.num_points=8", "task.width=4", "task.modes=[2, 2]",
    "task.num_layers=1", "task.num_basis=4", "task.collocation_points=8",
    "task.num_test=2", "task.refinement=1", "task.num_experts=2",
]
SMALL = ["--quiet", "--steps", "4", "--set", "training.log_every=2", "evaluation.every=2",
         "training.checkpoint_every=2", *TINY]


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


@pytest.fixture(scope="module")
def run_of(tmp_path_factory):
    """`run_of(kind)`: the folder of the tiny run of `constraint-ds-{kind}` (run once)."""
    done = {}

    def run(kind):
        if kind not in done:
            run_dir = tmp_path_factory.mktemp(f"constraint-{kind}") / "run"
            before = _x64()
            assert main(["run", f"constraint-ds-{kind}", "--out", str(run_dir), *SMALL]) == 0
            # the command ran in float64 and gave the previous setting back
            assert _x64() == before
            assert jnp.ones(1).dtype == (np.float64 if before else np.float32)
            done[kind] = run_dir
        return done[kind]

    return run


@pytest.mark.parametrize("kind", ["soft", "hard", "moe"])
def test_each_kind_writes_a_finite_relative_error(run_of, kind):
    run_dir = run_of(kind)
    evaluation = strict_json(run_dir / "evaluation.json")
    assert evaluation["task"] == "diffusion_sorption" and evaluation["model"] == kind
    error = evaluation["rel_l2_percent"]
    assert math.isfinite(error) and 0 < error <= evaluation["rel_l2_percent_max"]
    assert len(evaluation["per_sample"]) == 2
    assert error == pytest.approx(np.mean(evaluation["per_sample"]), rel=1e-12)
    records = metrics(run_dir)
    assert [r["step"] for r in records] == [2, 4]
    assert all(math.isfinite(r["validation_error"]) for r in records)
    # validation scores the same held-out states as the evaluation
    assert records[-1]["validation_error"] == pytest.approx(error, rel=1e-12)
    # 2 states; the preset's 2 coupled experts share one solve per state
    solves = {"soft": None, "hard": 2, "moe": 2}[kind]
    assert evaluation.get("num_solves") == solves
    if solves:
        assert 0 <= evaluation["solves_converged"] <= solves
        assert f"of {solves} solves converged" in evaluation["summary"]
    assert {"loss.png", "solution.png"} <= {p.name for p in (run_dir / "plots").iterdir()}


def test_evaluate_reproduces_the_error(run_of, capsys):
    run_dir = run_of("hard")
    before = strict_json(run_dir / "evaluation.json")
    was = _x64()
    assert main(["evaluate", str(run_dir)]) == 0
    assert _x64() == was
    after = strict_json(run_dir / "evaluation.json")
    assert after["rel_l2_percent"] == pytest.approx(before["rel_l2_percent"], rel=1e-12)
    assert after["per_sample"] == pytest.approx(before["per_sample"], rel=1e-12)
    assert "hard constraint: relative L2 error" in capsys.readouterr().out


def test_resume_builds_the_run_in_float64(run_of, capsys):
    run_dir = run_of("moe")
    # the builder refuses to run in float32: resume must switch float64 on too
    was = _x64()
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    assert _x64() == was
    assert "the run had already finished (4 steps)" in capsys.readouterr().out
    assert [r["step"] for r in metrics(run_dir)] == [2, 4]


@pytest.mark.parametrize("sets, expected", [
    (["task.kind=medium"], "[task] kind: expected one of soft, hard, moe; got 'medium'"),
    (["task.kind=1"], "[task] kind: expected a string"),
    (["task.num_times=3"], "[task] num_times: must be at least 4, got 3"),
    (["task.width=0"], "[task] width: must be positive"),
    (["task.modes=[4]"], "[task] modes: expected two positive integers"),
    (["task.num_experts=3"], "[task] num_experts: `num_experts` (3) must divide"),
    (["task.collocation_points=1000"], "[task] collocation_points: `collocation_points`"),
    ([*TINY, "task.modes=[3, 2]"], "[task] modes: `modes` must be at most 2 for spatial axis 0"),
    (["task.coupling=both"], "[task] coupling: expected one of none, interface; got 'both'"),
    (["task.num_point=8"], "[task]: unknown key 'num_point' (did you mean 'num_points'?)"),
])
def test_bad_task_values_are_one_line(tmp_path, capsys, sets, expected):
    was = _x64()
    code = main(["run", "constraint-ds-moe", "--out", str(tmp_path / "r"), "--quiet",
                 "--set", *sets])
    assert code == 2 and _x64() == was
    assert expected in error_line(capsys)
    assert not (tmp_path / "r" / "config.toml").exists()


def test_the_three_presets_differ_only_in_the_kind():
    # a fair comparison: the same grid, backbone, optimizer, steps, held-out states and
    # initial-value form; the experts coupled at their interfaces
    resolved = {kind: resolve(parse_toml(presets()[f"constraint-ds-{kind}"].read_text(), kind))
                for kind in ("soft", "hard", "moe")}
    for kind, config in resolved.items():
        assert config["task"]["kind"] == kind
        assert resolve(parse_toml(dumps(config), kind)) == config
    assert resolved["hard"]["task"]["initial_value_form"] is True
    assert resolved["moe"]["task"]["initial_value_form"] is True
    assert resolved["moe"]["task"]["coupling"] == "interface"
    assert resolved["hard"]["optimizer"]["clip_norm"] == 1.0
    strip = [{**c, "description": "",
              "task": {**c["task"], "kind": "", "coupling": None}}
             for c in resolved.values()]
    assert strip[0] == strip[1] == strip[2]
    task = resolved["hard"]["task"]
    assert (task["num_times"], task["num_points"], task["num_test"]) == (17, 32, 16)
    assert resolved["hard"]["training"]["num_training_steps"] == 1000
