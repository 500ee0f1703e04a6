"""Helpers shared by the command's tests (test_cli.py, test_cli_tasks.py)."""

import json
from pathlib import Path


def metrics(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def strict_json(path: Path):
    """JSON as the standard defines it: no NaN or Infinity."""
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def error_line(capsys) -> str:
    """The command's one-line error, the last line of stderr."""
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1] if err else ""
    assert last.startswith("trainax: error: "), err
    return last


def interrupt_metrics_at(monkeypatch, step: int) -> None:
    """Make a run stop as after Ctrl-C when it writes the metrics of `step`."""
    import trainax._cli._run as run_module

    write = run_module.MetricsSink.__call__

    def interrupt(self, record):
        if record["step"] == step:
            raise KeyboardInterrupt
        write(self, record)

    monkeypatch.setattr(run_module.MetricsSink, "__call__", interrupt)
