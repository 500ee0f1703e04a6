"""Every shipped trajectory preset at full size, against its baseline.

    python benchmarks/presets.py [NAME ...]

Runs `trainax run NAME` for each preset whose data are trajectories (all of
them by default) and checks what the test suite checks for the quicker ones
(`tests/test_cli.py::test_preset_beats_the_baseline_at_every_validation_step`):
the trained model's validation rollout error is below the baseline's at every
rollout step. Prints, per preset, the wall time, the mean rollout error of
the model and of the baseline, and their ratio; exits with 1 if a preset
does not beat its baseline at every step. The slowest presets (see
`FULL_ONLY`) run here only, to keep the suite within its time on CI.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from trainax._cli import main
from trainax._cli._presets import presets
from trainax._cli._schema import data_kind, resolve
from trainax._cli._toml import parse_toml

# run at full size by this script, not by the test suite (14 to 22 s each alone on
# 2 cores, 40 to 80 s inside the parallel suite)
FULL_ONLY = ("burgers-supervised", "ks-curriculum", "lorenz-mlp")


def trajectory_presets() -> list[str]:
    """The shipped presets whose data are trajectories."""
    return [
        name for name, path in sorted(presets().items())
        if data_kind(resolve(parse_toml(path.read_text(), name))) == "trajectories"
    ]


def run(name: str, folder: Path) -> bool:
    start = time.perf_counter()
    if main(["run", name, "--out", str(folder), "--quiet"]) != 0:
        print(f"{name}: the run failed")
        return False
    seconds = time.perf_counter() - start
    evaluation = json.loads((folder / "evaluation.json").read_text())
    mean, base = evaluation["mean"], evaluation["baseline_mean"]
    worse = evaluation["steps_not_better_than_baseline"]
    print(f"{name:26s} {seconds:6.1f} s  model {mean:.3g}  baseline {base:.3g}  "
          f"ratio {mean / base:.3f}  " + ("better at every step" if not worse
                                          else f"NOT better at steps {worse}"))
    return not worse


def main_script(names: list[str]) -> int:
    known = trajectory_presets()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"not trajectory presets: {unknown}; they are {known}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        ok = [run(name, Path(tmp) / name) for name in names or known]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main_script(sys.argv[1:]))
