"""The one jitted routine behind every data source: draw, warm up, roll out."""

from typing import Callable, Union

import equinox as eqx
import exponax as ex
import jax
from jaxtyping import Array, Float, PRNGKeyArray

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
