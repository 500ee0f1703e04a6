"""The README's shell commands run as written (at the preset's full size)."""

import re
import shlex
from pathlib import Path

from trainax._cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_trainax_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [
        shlex.split(line)[1:]
        for block in blocks
        for line in block.splitlines()
        if line.startswith("trainax ")
    ]


def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    commands = _readme_trainax_commands()
    assert [c[0] for c in commands] == ["list", "run", "evaluate"]
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert main(argv) == 0, argv
    run = tmp_path / "runs" / "advection-rollout"
    for name in ("config.toml", "metrics.jsonl", "model.eqx", "checkpoint.eqx",
                 "evaluation.json"):
        assert (run / name).is_file(), name
    assert "advection-rollout" in capsys.readouterr().out
