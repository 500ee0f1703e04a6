"""The one jitted routine behind every data source (draw, warm up, roll out),
and the one body of the exponax data sources (check, build the stepper, run it)."""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, Callable, Union

import equinox as eqx
import exponax as ex
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ._validation import check_bool, check_key, check_real, check_rollout_args

Real = Union[int, float]

# Shapes of what the public functions return.
Trajectories = Float[Array, "samples time channels *space"]
TrajectoriesOrPair = Union[Trajectories, tuple[Trajectories, eqx.Module]]


class ICSet(eqx.Module):
    """Draws `num_samples` exponax initial states: `(key, S) -> (S, C, *N)`."""

    generator: eqx.Module
    num_points: int = eqx.field(static=True)

    def __call__(self, key: PRNGKeyArray, num_samples: int):
        # exponax's own sampler: a scan over split keys, which also compiles
        # faster than a vmap of the per-sample generator.
        return ex.build_ic_set(
            self.generator,
            num_points=self.num_points,
            num_samples=num_samples,
            key=key,
        )


@eqx.filter_jit
def build_stepper(stepper_cls: type, *args, **kwargs) -> eqx.Module:
    """Construct an exponax stepper under `jit`.

    Building eagerly dispatches dozens of small ops (the ETDRK contour
    integrals); one compiled program is faster, and it is cached per
    configuration because Python scalars are static under `eqx.filter_jit`.
    """
    return stepper_cls(*args, **kwargs)


def sample_trajectories(
    stepper: Callable,
    draw_states: Callable,
    key: PRNGKeyArray,
    num_samples: int,
    temporal_horizon: int,
    warmup_steps: int,
) -> Float[Array, "samples time *state"]:
    """Draw `num_samples` states, advance `warmup_steps`, keep `T+1` states.

    Drawing and stepping are compiled separately: the random draw (slow to
    compile on CPU) is then shared by every problem on the same grid.
    Python ints are static under `eqx.filter_jit` and the stepper's arrays are
    traced, so repeated calls with one configuration reuse both programs.
    """
    initial = _draw(draw_states, key, num_samples)
    return _roll_out(stepper, initial, temporal_horizon, warmup_steps)


@eqx.filter_jit
def _draw(draw_states: Callable, key: PRNGKeyArray, num_samples: int):
    return draw_states(key, num_samples)


@eqx.filter_jit
def _roll_out(stepper, initial, temporal_horizon: int, warmup_steps: int):
    if warmup_steps > 0:
        initial = jax.vmap(ex.repeat(stepper, warmup_steps))(initial)
    rollout = ex.rollout(stepper, temporal_horizon, include_init=True)
    return jax.vmap(rollout)(initial)


def finish(trajectories, stepper, return_stepper: bool) -> TrajectoriesOrPair:
    return (trajectories, stepper) if return_stepper else trajectories


def exponax_data(
    stepper: ex.BaseStepper,
    *,
    num_spatial_dims: int,
    num_points: int,
    cutoff: int,
    num_samples: int,
    temporal_horizon: int,
    warmup_steps: int,
    key: PRNGKeyArray,
    return_stepper: bool,
) -> TrajectoriesOrPair:
    """Roll out `stepper` from zero-mean truncated Fourier series with max 1."""
    ic = ex.ic.RandomTruncatedFourierSeries(
        num_spatial_dims, cutoff=cutoff, max_one=True
    )
    trajectories = sample_trajectories(
        stepper,
        ICSet(ic, num_points),
        key,
        num_samples,
        temporal_horizon,
        warmup_steps,
    )
    return finish(trajectories, stepper, return_stepper)


# Checks of a PDE coefficient: `check(name, value) -> value`.
REAL = check_real
NONNEGATIVE = functools.partial(check_real, nonnegative=True)


def _as_given(coefficients: dict, arguments: dict) -> dict:
    return coefficients


@dataclasses.dataclass(frozen=True)
class ExponaxProblem:
    """What sets one exponax data source apart from the others.

    - `stepper`: the exponax stepper class, built as
        `stepper(num_spatial_dims, domain_extent, num_points, dt, **kwargs)`.
    - `num_spatial_dims`: the number of spatial axes `d`.
    - `coefficients`: the PDE's own arguments, in the order they are checked:
        name -> `check(name, value)`, e.g. `{"diffusivity": NONNEGATIVE}`.
    - `stepper_kwargs`: `(checked coefficients, arguments) -> kwargs` of the
        stepper; by default the checked coefficients as they are.
    - `defaults`: values for the arguments the caller leaves at `None`.
    """

    stepper: type
    num_spatial_dims: int
    coefficients: Mapping[str, Callable[[str, Any], Any]] = dataclasses.field(
        default_factory=dict
    )
    stepper_kwargs: Callable[[dict, dict], dict] = _as_given
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def exponax_trajectories(problem: ExponaxProblem, arguments: dict) -> TrajectoriesOrPair:
    """Check `arguments`, build the problem's stepper and roll it out.

    `arguments` are those of a public data function (its `locals()`): the
    grid (`num_points`, `num_samples`, `temporal_horizon`, `domain_extent`,
    `dt`, `cutoff`, optionally `warmup_steps`), `key`, `return_stepper` and
    the problem's coefficients. Arguments the problem does not name are ignored.
    """
    given = {
        **arguments,
        **{k: v for k, v in problem.defaults.items() if arguments.get(k) is None},
    }
    check_key(given["key"])
    check_bool("return_stepper", given["return_stepper"])
    warmup_steps = given.get("warmup_steps", 0)
    num_points, cutoff = given["num_points"], given["cutoff"]
    check_rollout_args(
        num_points=num_points,
        num_samples=given["num_samples"],
        temporal_horizon=given["temporal_horizon"],
        domain_extent=given["domain_extent"],
        dt=given["dt"],
        cutoff=cutoff,
        warmup_steps=warmup_steps,
    )
    coefficients = {
        name: check(name, given[name]) for name, check in problem.coefficients.items()
    }
    stepper = build_stepper(
        problem.stepper,
        problem.num_spatial_dims,
        float(given["domain_extent"]),
        num_points,
        float(given["dt"]),
        **problem.stepper_kwargs(coefficients, given),
    )
    return exponax_data(
        stepper,
        num_spatial_dims=problem.num_spatial_dims,
        num_points=num_points,
        cutoff=cutoff,
        num_samples=given["num_samples"],
        temporal_horizon=given["temporal_horizon"],
        warmup_steps=warmup_steps,
        key=given["key"],
        return_stepper=given["return_stepper"],
    )
