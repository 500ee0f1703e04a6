"""Schedules of configurations over training steps (e.g. growing rollouts)."""

from __future__ import annotations

from typing import Callable, Sequence

from .._checks import positive_int
from ..configuration import BaseConfiguration, Supervised


class Curriculum:
    """Configurations applied one after another, each for a number of steps.

    Pass it as the `configuration` of a
    [`GeneralTrainer`][trainax.trainer.GeneralTrainer]. The optimizer state
    carries over between stages; each stage compiles its update once.

    **Arguments:**

    - `stages`: a sequence of `(configuration, num_steps)` pairs.

    ```python
    curriculum = tx.trainer.Curriculum.rollout([1, 5, 20], steps_per_stage=300)
    data = jnp.zeros((4, 30, 1, 16))   # trajectories (S, T+1, C, *N)
    trainer = tx.GeneralTrainer(data, curriculum, optax.adam(1e-3), None, 32)
    ```
    """

    def __init__(self, stages: Sequence[tuple[BaseConfiguration, int]]):
        stages = list(stages)
        if not stages:
            raise ValueError("`stages` must hold at least one (configuration, num_steps) pair.")
        checked = []
        for i, stage in enumerate(stages):
            try:
                configuration, num_steps = stage
            except (TypeError, ValueError):
                raise TypeError(
                    f"`stages[{i}]` must be a (configuration, num_steps) pair, got {stage!r}."
                ) from None
            if not isinstance(configuration, BaseConfiguration):
                raise TypeError(
                    f"`stages[{i}]` must start with a configuration, got "
                    f"{type(configuration).__name__}."
                )
            checked.append((configuration, positive_int(f"stages[{i}] num_steps", num_steps)))
        self.stages = tuple(checked)

    @property
    def num_training_steps(self) -> int:
        return sum(n for _, n in self.stages)

    @classmethod
    def rollout(
        cls,
        rollout_lengths: Sequence[int],
        steps_per_stage: int | Sequence[int],
        configuration: Callable[..., BaseConfiguration] = Supervised,
        **configuration_kwargs,
    ) -> "Curriculum":
        """A rollout-length curriculum: `configuration(r, **kwargs)` for each `r`.

        `steps_per_stage` is one int for every stage or one per stage.
        """
        lengths = list(rollout_lengths)
        if isinstance(steps_per_stage, int):
            steps = [steps_per_stage] * len(lengths)
        else:
            steps = list(steps_per_stage)
        if len(steps) != len(lengths):
            raise ValueError(
                f"`steps_per_stage` must be one int or one per stage: expected "
                f"{len(lengths)} values, got {len(steps)}."
            )
        return cls(
            [(configuration(r, **configuration_kwargs), n) for r, n in zip(lengths, steps)]
        )

    def __repr__(self):
        return f"Curriculum({list(self.stages)!r})"
