"""The `trainax` command line: list, run, resume, evaluate."""

from __future__ import annotations

import argparse
import errno
import shutil
import sys
from pathlib import Path
from typing import Optional


from ._errors import CLIError
from ._experiment import (
    build,
    changed_data,
    depends_on_length,
    generated_bytes,
    precision,
)
from ._lock import RunLock, writable_error
from ._presets import describe, load_source, presets
from ._run import (
    CHECKPOINT,
    CONFIG,
    EVALUATION,
    Timer,
    Training,
    check_run_dir,
    checkpoint_step,
    clear_run_dir,
    evaluate,
    load_model,
    read_config,
    start_run_dir,
    write_config,
)
from ._schema import experiment_part, resolve, set_override


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (via main)
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _version() -> str:
    from .. import __version__

    return f"trainax {__version__}"


def _experiment_arguments(command, *, source: str, overwrite: str, steps: str) -> None:
    """The arguments `run` and `sweep` share (their help texts differ)."""
    command.add_argument("source", metavar="PRESET_OR_CONFIG", nargs="?", help=source)
    command.add_argument("--out", type=Path, help="the run folder (default runs/NAME)")
    command.add_argument("--overwrite", action="store_true", help=overwrite)
    command.add_argument("--steps", type=int, metavar="N", help=steps)
    command.add_argument("--set", action="extend", nargs="+", default=[],
                         metavar="SECTION.KEY=VALUE", dest="sets",
                         help="override config values (each value read as TOML, else a string)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainax",
        description="Train neural PDE emulators from presets or config files.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the presets")

    run = commands.add_parser("run", help="run an experiment from a preset or config file")
    _experiment_arguments(
        run, source="a preset name (see `trainax list`) or a .toml/.yaml file",
        overwrite="replace the run in the folder (data cache kept if it fits)",
        steps="override [training] num_training_steps")

    sweep = commands.add_parser(
        "sweep", help="run a config whose [task] ends in a sweep, or continue it: the "
                      "finished points of sweep.json are never run again")
    _experiment_arguments(
        sweep, source="a preset name (e.g. fno-transfer) or a .toml/.yaml file",
        overwrite="start again: replace the run and its sweep.json",
        steps="override [training] num_training_steps (the pretraining)")

    resume = commands.add_parser(
        "resume", help="continue a run from its checkpoint (or extend a finished one)"
    )
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--steps", type=int, metavar="N",
                        help="train to N steps in all (extends a finished run)")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate_ = commands.add_parser(
        "evaluate", help="evaluate a run's model.eqx: evaluation.json and plots"
    )
    evaluate_.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate_.add_argument(
        "--rescore", action="store_true",
        help="when a data file changed since the run: score on the new data into "
             "evaluation-rescored.json (and plots-rescored/) instead of refusing",
    )
    return parser


_DISK_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in _DISK_ERRORS and error.filename:
        error = writable_error(Path(error.filename), error)
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, (CLIError, ValueError, TypeError, OSError)):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 1000 else text[:997] + "..."


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command with `argv` (default `sys.argv[1:]`); return the exit code."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    wants_traceback = "--traceback" in argv
    try:
        args = parser.parse_args(argv)
        return _COMMANDS[args.command](args)
    except SystemExit as exit_:  # --help, --version
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


def _value(value) -> str:
    return "not finite" if value is None else f"{value:.3e}"


def result_line(evaluation: dict) -> str:
    """The model's validation error beside the baseline's, in words."""
    if evaluation["kind"] == "task":
        return evaluation["summary"]
    if evaluation["kind"] == "pairs":
        worse = evaluation["samples_not_better_than_baseline"]
        verdict = ("better than the baseline on every pair" if not worse
                   else f"not better than the baseline on {len(worse)} of "
                        f"{evaluation['num_samples']} pairs")
        return (f"validation relative L2 error {_value(evaluation['rel_l2_percent'])} % "
                f"over {evaluation['num_samples']} pairs (baseline, "
                f"{evaluation['baseline']}: {_value(evaluation['baseline_mean'])} %); "
                f"{verdict}")
    steps = evaluation["num_rollout_steps"]
    worse = evaluation["steps_not_better_than_baseline"]
    verdict = ("better than the baseline at every step" if not worse
               else f"not better than the baseline at {len(worse)} of {steps} steps "
                    f"(first: step {worse[0]})")
    return (f"validation rollout {evaluation['metric']} {_value(evaluation['mean'])} "
            f"(mean over {steps} steps; baseline, {evaluation['baseline']}: "
            f"{_value(evaluation['baseline_mean'])}); {verdict}")


def _report(run_dir: Path, loss_history, evaluation, seconds: float, start: int = 0) -> None:
    total = len(loss_history)
    done = f"trained {total} steps" if start == 0 else f"trained steps {start}..{total}"
    if start == total:
        done = f"the run had already finished ({total} steps)"
    print(f"{done} in {seconds:.1f} s: final loss {float(loss_history[-1]):.3e}")
    print(result_line(evaluation))
    print(f"wrote {run_dir}")


def _split_source(args) -> None:
    """`run --set a=1 b=2 CONFIG`: `--set` takes several values, so a config
    given after it lands among them; it is the one without `=`."""
    plain = [s for s in args.sets if "=" not in s]
    if args.source is None and len(plain) == 1:
        args.source = plain[0]
        args.sets = [s for s in args.sets if s is not plain[0]]
    if args.source is None:
        raise CLIError("run: the argument PRESET_OR_CONFIG is required (see "
                       "`trainax run --help`)")


def _check_free_space(run_dir: Path, config: dict) -> None:
    """Refuse before generating data that would not fit on the disk."""
    needed = generated_bytes(config)
    if needed is None or (run_dir / "data" / "source.json").is_file():
        return
    free = shutil.disk_usage(run_dir).free
    if free < needed + (1 << 20):
        raise writable_error(
            run_dir / "data",
            OSError(errno.ENOSPC, f"the generated data need {needed / 2**20:.1f} MiB, "
                    f"only {free / 2**20:.1f} MiB are free"),
        )


def _config_of(args) -> tuple[dict, Path]:
    """The resolved config of `run`/`sweep` arguments, and the run folder."""
    _split_source(args)
    raw, name = load_source(args.source)
    if args.steps is not None:
        set_override(raw, f"training.num_training_steps={args.steps}")
    for assignment in args.sets:
        set_override(raw, assignment)
    config = resolve(raw)
    return config, args.out if args.out is not None else Path("runs") / name


def _sweep(args) -> int:
    """Start the run of a sweep task, or continue the one in the folder."""
    from ._tasks import TASKS

    config, run_dir = _config_of(args)
    task = config.get("task", {}).get("name")
    if task is None or not getattr(TASKS[task], "sweeps", False):
        sweeps = ", ".join(n for n, b in TASKS.items() if getattr(b, "sweeps", False))
        raise CLIError(f"sweep: {args.source} has no sweep (a [task] with one: {sweeps}); "
                       "train it with `trainax run`.")
    if not args.overwrite and (run_dir / CONFIG).is_file():
        try:
            same = experiment_part(read_config(run_dir)) == experiment_part(config)
        except CLIError:
            same = False
        if same:  # continue: training from its checkpoint, then the missing points
            return _resume(argparse.Namespace(run_dir=run_dir, steps=None, quiet=args.quiet))
    return _run(args, (config, run_dir))


def _run(args, resolved=None) -> int:
    config, run_dir = resolved if resolved is not None else _config_of(args)
    with precision(config):  # float64 for the tasks that need it, restored after
        return _run_config(args, config, run_dir)


def _run_config(args, config: dict, run_dir: Path) -> int:
    if run_dir.exists() and not run_dir.is_dir():
        raise CLIError(f"--out {run_dir} is a file, not a folder.")
    lock = RunLock(run_dir, "run")  # also checks that the folder can be written
    written = False
    try:
        check_run_dir(run_dir, config, args.overwrite)
        _check_free_space(run_dir, config)
        experiment = build(config, run_dir)
        training = Training(experiment, run_dir, progress_bar=not args.quiet)
        if args.overwrite:
            clear_run_dir(run_dir)
        written = True
        start_run_dir(run_dir, experiment)
        try:
            with Timer() as timer:
                model, losses, scores = training.run()
        except KeyboardInterrupt:
            return _interrupted(run_dir)
        _report(run_dir, losses, evaluate(experiment, model, run_dir, scores), timer.seconds)
        return 0
    finally:
        lock.release(remove_if_unused=not written)


def _refuse_changed_data(run_dir: Path, config: dict, command: str) -> list[str]:
    changed = changed_data(run_dir, config)
    if changed and command == "resume":
        raise CLIError(
            f"the data of {run_dir} changed since the run started ({'; '.join(changed)}): "
            "resuming would train on other data; restore the file, or start a new run."
        )
    return changed


def _extend(run_dir: Path, config: dict, steps: int) -> dict:
    """The config of the run extended (or cut back) to `steps` steps in all."""
    current = config["training"]["num_training_steps"]
    if steps == current:
        return config
    if config.get("configuration", {}).get("curriculum"):
        raise CLIError(
            f"resume --steps: the run's curriculum splits its {current} steps into stages; "
            f"{steps} steps would move the stage boundaries the run already trained "
            "through. Start a new run with --steps instead."
        )
    optimizer = config["optimizer"]
    if depends_on_length(optimizer):
        raise CLIError(
            f"resume --steps: [optimizer] schedule = {optimizer['schedule']!r} decays over "
            f"num_training_steps ({current}); the steps already trained followed that "
            f"schedule, so {steps} steps cannot continue it. Extend runs with schedule = "
            "'constant', or start a new run with --steps."
        )
    raw = {k: v for k, v in config.items()}
    raw["training"] = {**config["training"], "num_training_steps": steps}
    return resolve(raw)


def _resume(args) -> int:
    config = read_config(args.run_dir)
    with precision(config):
        return _resume_config(args, config)


def _resume_config(args, config: dict) -> int:
    run_dir = args.run_dir
    lock = RunLock(run_dir, "resume")
    try:
        if not (run_dir / CHECKPOINT).is_file():
            raise CLIError(f"{run_dir} has no {CHECKPOINT} to resume from (it stopped "
                           "before the first checkpoint): start it again with `trainax "
                           f"run ... --out {run_dir} --overwrite`.")
        _refuse_changed_data(run_dir, config, "resume")
        if args.steps is not None:
            config = _extend(run_dir, config, args.steps)
        experiment = build(config, run_dir)
        start = checkpoint_step(experiment, run_dir / CHECKPOINT)
        if start > experiment.num_training_steps:
            raise CLIError(f"resume --steps {args.steps}: the checkpoint is already at "
                           f"step {start}; ask for {start} or more.")
        training = Training(experiment, run_dir, progress_bar=not args.quiet)
        write_config(run_dir, config)
        try:
            with Timer() as timer:
                model, losses, scores = training.run(resume=True)
        except KeyboardInterrupt:
            return _interrupted(run_dir)
        _report(run_dir, losses, evaluate(experiment, model, run_dir, scores),
                timer.seconds, training.start_step)
        return 0
    finally:
        lock.release()


def _evaluate(args) -> int:
    config = read_config(args.run_dir)
    with precision(config):
        return _evaluate_config(args, config)


def _evaluate_config(args, config: dict) -> int:
    run_dir = args.run_dir
    lock = RunLock(run_dir, "evaluate")
    try:
        changed = _refuse_changed_data(run_dir, config, "evaluate")
        name, plots = EVALUATION, "plots"
        if changed:
            if not args.rescore:
                raise CLIError(
                    f"the data of {run_dir} changed since the run ({'; '.join(changed)}): "
                    f"its {EVALUATION} describes the old data and is kept; pass --rescore "
                    "to score the model on the new data into evaluation-rescored.json."
                )
            name, plots = "evaluation-rescored.json", "plots-rescored"
        experiment = build(config, run_dir)
        result = evaluate(experiment, load_model(experiment, run_dir), run_dir,
                          name=name, plots=plots)
        if result["kind"] == "trajectories":
            errors = result["per_step"]
            shown = ", ".join(_value(e) for e in errors[:5])
            if len(errors) > 5:
                shown += f", ..., {_value(errors[-1])}"
            print(f"validation rollout {result['metric']} per step: {shown}")
        print(result_line(result))
        print(f"wrote {run_dir / name}")
        return 0
    finally:
        lock.release()


_COMMANDS = {"list": _list, "run": _run, "sweep": _sweep, "resume": _resume,
             "evaluate": _evaluate}
