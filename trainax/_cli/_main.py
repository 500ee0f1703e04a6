"""The `trainax` command line: list, run, resume, evaluate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from ._errors import CLIError
from ._experiment import build
from ._presets import describe, load_source, presets
from ._run import (
    Timer,
    Training,
    check_run_dir,
    clear_run_dir,
    evaluate,
    load_model,
    read_config,
    start_run_dir,
)
from ._schema import resolve, set_override


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (via main)
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainax",
        description="Train neural PDE emulators from presets or config files.",
    )
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the presets")

    run = commands.add_parser("run", help="run an experiment from a preset or config file")
    run.add_argument("source", metavar="PRESET_OR_CONFIG",
                     help="a preset name (see `trainax list`) or a .toml/.yaml file")
    run.add_argument("--out", type=Path, help="the run folder (default runs/NAME)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run in the folder (data cache kept if it fits)")
    run.add_argument("--steps", type=int, metavar="N",
                     help="override [training] num_training_steps")
    run.add_argument("--set", action="extend", nargs="+", default=[],
                     metavar="SECTION.KEY=VALUE", dest="sets",
                     help="override config values (each value read as TOML, else a string)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    resume = commands.add_parser("resume", help="continue a run from its checkpoint")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate_ = commands.add_parser(
        "evaluate", help="evaluate a run's model.eqx: evaluation.json and plots"
    )
    evaluate_.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, (CLIError, ValueError, TypeError, OSError)):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 1000 else text[:997] + "..."


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command with `argv` (default `sys.argv[1:]`); return the exit code."""
    parser = _parser()
    wants_traceback = "--traceback" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        return _COMMANDS[args.command](args)
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        print("trainax: interrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        if wants_traceback:
            raise
        print(f"trainax: error: {_one_line(error)}", file=sys.stderr)
        return 2


# -- commands ----------------------------------------------------------------


def _list(args) -> int:
    found = presets()
    width = max(map(len, found), default=0)
    for name, resource in found.items():
        print(f"{name:<{width}}  {describe(resource)}")
    return 0


def _interrupted(run_dir: Path) -> int:
    print(f"trainax: interrupted; continue with `trainax resume {run_dir}` (from the "
          "last checkpoint).", file=sys.stderr)
    return 130


def _report(run_dir: Path, loss_history, evaluation, seconds: float, start: int = 0) -> None:
    total = len(loss_history)
    done = f"trained {total} steps" if start == 0 else f"trained steps {start}..{total}"
    if start == total:
        done = f"the run had already finished ({total} steps)"
    print(f"{done} in {seconds:.1f} s: final loss "
          f"{float(loss_history[-1]):.3e}; validation rollout {evaluation['metric']} "
          f"{evaluation['mean']:.3e} (mean over {evaluation['num_rollout_steps']} steps)")
    print(f"wrote {run_dir}")


def _run(args) -> int:
    raw, name = load_source(args.source)
    if args.steps is not None:
        set_override(raw, f"training.num_training_steps={args.steps}")
    for assignment in args.sets:
        set_override(raw, assignment)
    config = resolve(raw)
    run_dir = args.out if args.out is not None else Path("runs") / name
    check_run_dir(run_dir, config, args.overwrite)
    experiment = build(config, run_dir)
    training = Training(experiment, run_dir, progress_bar=not args.quiet)
    if args.overwrite:
        clear_run_dir(run_dir)
    start_run_dir(run_dir, experiment)
    try:
        with Timer() as timer:
            model, losses, rollout = training.run()
    except KeyboardInterrupt:
        return _interrupted(run_dir)
    _report(run_dir, losses, evaluate(experiment, model, run_dir, rollout), timer.seconds)
    return 0


def _resume(args) -> int:
    run_dir = args.run_dir
    config = read_config(run_dir)
    if not (run_dir / "checkpoint.eqx").is_file():
        raise CLIError(f"{run_dir} has no checkpoint.eqx to resume from (it stopped before "
                       "the first checkpoint): start it again with `trainax run ... "
                       f"--out {run_dir} --overwrite`.")
    experiment = build(config, run_dir)
    training = Training(experiment, run_dir, progress_bar=not args.quiet)
    try:
        with Timer() as timer:
            model, losses, rollout = training.run(resume=True)
    except KeyboardInterrupt:
        return _interrupted(run_dir)
    _report(run_dir, losses, evaluate(experiment, model, run_dir, rollout), timer.seconds,
            training.start_step)
    return 0


def _evaluate(args) -> int:
    run_dir = args.run_dir
    experiment = build(read_config(run_dir), run_dir)
    result = evaluate(experiment, load_model(experiment, run_dir), run_dir)
    errors = np.asarray(result["per_step"])
    shown = ", ".join(f"{e:.3e}" for e in errors[:5])
    if len(errors) > 5:
        shown += f", ..., {errors[-1]:.3e}"
    print(f"validation rollout {result['metric']} per step: {shown}")
    print(f"mean over {result['num_rollout_steps']} steps and "
          f"{result['num_trajectories']} trajectories: {result['mean']:.3e}")
    print(f"wrote {run_dir / 'evaluation.json'}")
    return 0


_COMMANDS = {"list": _list, "run": _run, "resume": _resume, "evaluate": _evaluate}
