"""Every script in `examples/` runs at its small size and prints sensible numbers."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
NUMBER = r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))"
LOSS_LINE = re.compile(rf"loss: {NUMBER} -> {NUMBER}")


def run_example(path: Path) -> str:
    env = dict(os.environ, TRAINAX_EXAMPLE_SMALL="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"{path.name} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    return result.stdout


def numbers_after(label: str, text: str) -> list[float]:
    match = re.search(re.escape(label) + r"\s*" + r"\s*/?\s*".join([NUMBER] * 3), text)
    assert match, f"no line with {label!r} in:\n{text}"
    return [float(x) for x in match.groups()]


def check_supervised_advection(out):
    errors = [float(x) for x in re.findall(rf"stencil error {NUMBER}", out)]
    assert len(errors) == 3 and all(math.isfinite(e) for e in errors)


def check_diverted_chain_burgers(out):
    assert out.count("test nRMSE") == 2  # the quick run skips the baseline


def check_mix_chain(out):
    assert "explicit Euler" in out


def check_residuum_advection(out):
    floor = float(re.search(rf"the floor\): {NUMBER}", out).group(1))
    assert 0 <= floor < 1e-3  # the exact step nearly satisfies Crank-Nicolson


def check_curriculum(out):
    stages = re.findall(r"stage num_rollout_steps=\s*(\d+)", out)
    assert stages == ["1", "3"]  # the quick run stops at 3


def check_callbacks_and_checkpoints(out):
    assert "restored network equals the trained one: True" in out
    difference = float(re.search(rf"max weight difference {NUMBER}", out).group(1))
    assert difference == 0.0  # resuming reproduces the uninterrupted run


def check_lorenz(out):
    untrained = numbers_after("steps, untrained:", out)
    trained = numbers_after("steps, trained:", out)
    assert trained[0] < untrained[0]


def check_losses(out):
    rows = {}
    for line in out.splitlines():
        match = re.match(rf"(\S.*?)\s+{NUMBER}\s+{NUMBER}$", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    smooth, rough = rows["MSELoss"]
    assert smooth == pytest.approx(rough, rel=1e-4)
    smooth, rough = rows["SobolevLoss(orders=(0, 1))"]
    assert rough > 10 * smooth


def check_convexity(out):
    distances = [float(x) for x in re.findall(rf"distance to upwind {NUMBER}", out)]
    assert len(distances) == 4 and max(distances) < 1e-4  # one minimum, from every start
    assert "landscape minimum at [0.250, 0.750]" in out


def check_inr_heat(out):
    # the first training loss is the fields' mean square (the untrained
    # decoder is near zero): every forecast error must beat predicting zero
    first = float(re.search(rf"training loss: {NUMBER}", out).group(1))
    errors = [float(x) for x in re.findall(rf"mse_\w+\s+{NUMBER}", out)]
    assert len(errors) == 8 and all(math.isfinite(e) for e in errors), out
    assert max(errors) < first, out
    dynamics = re.search(rf"dynamics loss: {NUMBER} -> {NUMBER}", out)
    assert float(dynamics.group(2)) < float(dynamics.group(1)), out


def check_nsm_poisson(out):
    errors = dict(re.findall(
        rf"(spectral|grid) residual(?: \d+x\d+)?: relative L2 error {NUMBER} %", out))
    assert set(errors) == {"spectral", "grid"}, out
    spectral, grid = float(errors["spectral"]), float(errors["grid"])
    assert 0 < spectral < 10, out  # the small run reaches about 3 %
    assert spectral < grid, out  # more steps at a lower cost each


def check_transfer_learning(out):
    rows = re.findall(rf"^poisson e 5-10\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out, re.M)
    assert len(rows) == 2, out
    for _, scratch, pretrained, _zero in rows:
        assert float(pretrained) < float(scratch), out
    assert "fine-tuning beats training from scratch" in out, out


def check_hard_constraints(out):
    assert len(LOSS_LINE.findall(out)) == 3, out
    rows = {name: float(mean) for name, mean, _ in re.findall(
        rf"^\s*(soft|hard|4 experts)\s+{NUMBER}\s+{NUMBER}", out, re.M)}
    assert set(rows) == {"soft", "hard", "4 experts"}, out
    assert all(math.isfinite(v) for v in rows.values()), out
    # the order of the paper: soft above hard above the (coupled) experts
    assert rows["soft"] > rows["hard"] > rows["4 experts"], out


CHECKS = {name[len("check_"):]: f for name, f in globals().items() if name.startswith("check_")}


def test_examples_found():
    assert len(EXAMPLES) >= 9


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example(path):
    out = run_example(path)
    losses = LOSS_LINE.findall(out)
    assert losses, f"{path.name} prints no 'loss: before -> after' line:\n{out}"
    for before, after in losses:
        before, after = float(before), float(after)
        assert math.isfinite(before) and math.isfinite(after), out
        assert after < before, f"{path.name}: the loss did not decrease:\n{out}"
    if path.stem in CHECKS:
        CHECKS[path.stem](out)
