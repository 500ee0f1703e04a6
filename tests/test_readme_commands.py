"""The README's shell commands run as written (at the preset's full size), and
print what the README says they print."""

import json
import re
import shlex
from pathlib import Path

import pytest

from trainax._cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _readme_trainax_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [
        shlex.split(line)[1:]
        for block in blocks
        for line in block.splitlines()
        if line.startswith("trainax ")
    ]


def _readme_demo_output() -> list[str]:
    """The lines the README shows `trainax run` printing."""
    block = re.search(r"```\n(trained .*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "the README shows no output of the demo"
    return block.group(1).strip().splitlines()


def _numbers(line: str) -> list[float]:
    return [float(n) for n in NUMBER.findall(line)]


def test_readme_commands_run_and_print_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    commands = _readme_trainax_commands()
    assert [c[0] for c in commands] == ["list", "run", "evaluate"]
    monkeypatch.chdir(tmp_path)
    outputs = []
    for argv in commands:
        assert main(argv) == 0, argv
        outputs.append(capsys.readouterr().out)
    run = tmp_path / "runs" / "advection-rollout"
    for name in ("config.toml", "metrics.jsonl", "model.eqx", "checkpoint.eqx",
                 "evaluation.json", "data/train.npy", "data/validation.npy",
                 "plots/loss.png", "plots/rollout_error.png", "plots/prediction.png"):
        assert (run / name).is_file(), name
    assert "advection-rollout" in outputs[0]

    expected = _readme_demo_output()
    printed = outputs[1].strip().splitlines()
    assert len(printed) == len(expected)
    for shown, actual in zip(expected, printed):
        # the same words; the numbers as shown, up to the machine (and the time)
        assert NUMBER.sub("#", shown) == NUMBER.sub("#", actual), (shown, actual)
    shown, actual = _numbers(expected[1]), _numbers(printed[1])
    assert actual[0] == pytest.approx(shown[0], rel=0.02)  # the model's mean error
    assert actual[-1] == pytest.approx(shown[-1], rel=1e-3)  # the baseline's: exact data
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["steps_not_better_than_baseline"] == []
