"""Spectral residual against the finite-difference grid residual, same model and problem.

The problem is periodic Poisson (`tx.spectral.PoissonPeriodic(16)`, sources
from a periodic Gaussian random field, fresh at every step); the model is one
`tx.nn.SpectralOperator`. It is trained by

- `SpectralResidual`: the Parseval norm of the residual on the 16 x 16
  coefficients;
- `GridResidual(N)`: the five-point residual on an N x N grid, the model run
  with N x N modes (its nonlinearity on the grid's points), N in
  `--resolutions`.

Measured in one run and printed as a table:

1. the time per training step (median over `--repeats` timed calls of
   `--timing-steps` steps each, after a compiling call);
2. the relative L2 error (percent, on a 64 x 64 grid against the exact
   solution, 64 test sources) after the same number of steps `--steps`;
3. the error within the same wall-clock budget: the time the grid residual
   at 64 x 64 needs for `--steps` steps; every method trains for as many
   steps as fit in it (at most `--max-budget-steps`);

and the ratios spectral / grid. Targets: step time ratio at 64 x 64 below
0.1, lower error at equal wall-clock.

    python benchmarks/spectral_vs_grid.py [--steps 300] [--resolutions 32 64 128]
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

TEST_GRID = 64


def make_model(problem, width):
    return tx.nn.SpectralOperator(problem.basis, 1, 1, width=width, key=jax.random.PRNGKey(0))


def make_trainer(problem, configuration, num_steps, batch_size, chunk_size=100):
    schedule = optax.exponential_decay(1e-3, num_steps, decay_rate=1e-2)
    return tx.GeneralTrainer(
        tx.Sampler(problem.sample), configuration, optax.adam(schedule), num_steps,
        batch_size, progress_bar=False, chunk_size=min(chunk_size, num_steps),
    )


def step_time(problem, configuration, args) -> float:
    """Median seconds per step over timed calls, after a compiling call."""
    trainer = make_trainer(problem, configuration, args.timing_steps, args.batch_size)
    model = make_model(problem, args.width)
    jax.block_until_ready(trainer(model, jax.random.PRNGKey(1))[0])
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(trainer(model, jax.random.PRNGKey(2 + repeat))[0])
        times.append((time.perf_counter() - start) / args.timing_steps)
    return statistics.median(times)


@eqx.filter_jit
def relative_error(problem, model, sources):
    def one(source):
        prediction = problem.to_grid(problem.predict(model, source), TEST_GRID)
        exact = problem.reference(source, TEST_GRID)
        return jnp.linalg.norm(prediction - exact) / jnp.linalg.norm(exact)

    return 100 * jnp.mean(jax.vmap(one)(sources))


def trained_error(problem, configuration, num_steps, sources, args) -> float:
    trainer = make_trainer(problem, configuration, num_steps, args.batch_size)
    model, _ = trainer(make_model(problem, args.width), jax.random.PRNGKey(1))
    return float(relative_error(problem, model, sources))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timing-steps", type=int, default=10)
    parser.add_argument("--max-budget-steps", type=int, default=20000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    if 64 not in args.resolutions:
        parser.error("--resolutions must include 64 (the wall-clock budget's reference)")

    problem = tx.spectral.PoissonPeriodic(16)
    sources = problem.sample(jax.random.PRNGKey(123), 64)
    methods = {"spectral 16x16 modes": tx.configuration.SpectralResidual(problem)}
    for n in args.resolutions:
        methods[f"grid {n}x{n}"] = tx.configuration.GridResidual(problem, n)

    times = {name: step_time(problem, cfg, args) for name, cfg in methods.items()}
    budget = times["grid 64x64"] * args.steps
    rows = {}
    for name, cfg in methods.items():
        budget_steps = max(1, min(args.max_budget_steps, int(budget / times[name])))
        error = trained_error(problem, cfg, args.steps, sources, args)
        if budget_steps != args.steps:
            budget_error = trained_error(problem, cfg, budget_steps, sources, args)
        else:
            budget_error = error
        rows[name] = (times[name], error, budget_steps, budget_error)

    print(f"{jax.devices()[0].platform}, width {args.width}, batch {args.batch_size}, "
          f"{args.steps} steps; budget {budget:.1f} s (grid 64x64 for {args.steps} steps)")
    print(f"{'method':22} {'ms/step':>9} {'err % @steps':>13} {'budget steps':>13} "
          f"{'err % @budget':>14}")
    for name, (t, error, budget_steps, budget_error) in rows.items():
        print(f"{name:22} {1000 * t:9.2f} {error:13.3f} {budget_steps:13d} {budget_error:14.3f}")
    spectral = rows["spectral 16x16 modes"]
    for n in args.resolutions:
        grid = rows[f"grid {n}x{n}"]
        print(
            f"spectral / grid {n}x{n}: step time {spectral[0] / grid[0]:.3f}, "
            f"error at equal steps {spectral[1] / grid[1]:.3f}, "
            f"error at equal wall-clock {spectral[3] / grid[3]:.3f}"
        )


if __name__ == "__main__":
    main()
