"""A global hard constraint against mixtures of K = 2, 4, 8 experts, on diffusion-sorption.

    python benchmarks/moe_constraint.py [--times 33] [--points 64] [--batch 8] [--repeats 5]

The backbone is one untrained FNO (the same weights for every variant), so
the figures measure the constraint layer, not training. The global layer
draws `P` PDE points; the experts cut the grid into K strips along `x` and
are compared (i) at the same total number of points (`P / K` per expert)
and (ii) at the same number per expert (`P` each), independent
(`coupling="none"`) and coupled at their interfaces (`coupling="interface"`:
one joint solve of all experts' weights, with the PDE rows at every
interface node on top of the drawn points). For each variant it prints,
for one minibatch:

- forward: the median time of the model on the batch;
- backward: the median time of the value and gradient of the
  physics-informed loss (what one training step costs);
- memory: the peak XLA reports for the compiled value-and-gradient
  (`jax.jit(f).lower(...).compile().memory_analysis()`: arguments, outputs
  and temporaries);
- steps: the mean solver iterations per solve;
- residual: the mean root-mean-square residual of the rows at the points;
- error: the mean relative L2 error of the output against the reference.

and the ratios of each to the global layer's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402

import trainax as tx  # noqa: E402

tc = tx.constraint


def median_seconds(fn, repeats):
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_mib(fn, *args):
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        return float("nan")
    total = sum(
        getattr(analysis, name, 0)
        for name in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")
    )
    return total / 2**20


def measure(layer, inputs, reference, pde, repeats):
    params, static = eqx.partition(layer, eqx.is_inexact_array)
    keys = jr.split(jr.PRNGKey(3), inputs.shape[0])
    configuration = tx.configuration.PhysicsInformed(pde)

    def forward(params):
        model = eqx.combine(params, static)
        return jax.vmap(lambda x, k: model(x, key=k))(inputs, keys)

    def loss(params):
        return configuration(tc.Constrained(eqx.combine(params, static)), inputs, key=jr.PRNGKey(3))

    step = jax.jit(jax.value_and_grad(loss))
    fwd = jax.jit(forward)
    field, info = fwd(params)
    rms = jnp.sqrt(jnp.mean(info.residual**2, axis=-1))
    return {
        "forward ms": 1e3 * median_seconds(lambda: fwd(params), repeats),
        "backward ms": 1e3 * median_seconds(lambda: step(params), repeats),
        "memory MiB": peak_mib(jax.value_and_grad(loss), params),
        "steps": float(jnp.mean(info.num_steps)),
        "residual": float(jnp.mean(rms)),
        "error %": 100 * float(jnp.mean(tx.sample_data.relative_l2_error(field, reference))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", type=int, default=33)
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--basis", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    pde = tc.DiffusionSorption()
    inputs, reference = tx.sample_data.diffusion_sorption_1d(
        num_samples=args.batch, num_points=args.points, num_times=args.times, key=jr.PRNGKey(0)
    )
    backbone = tx.nn.FNO(2, 1, args.basis, width=16, modes=(8, 8), num_layers=3,
                         coordinate_channels=True, key=jr.PRNGKey(1))
    # the most PDE points the smallest block of the 8-way split holds
    per_block = (args.times - 1) * (args.points // 8 - 1)
    total = per_block

    def layer(num_points, experts, coupling="none"):
        constraint = tc.HardConstraint(backbone, pde, num_points=num_points,
                                       solver=tc.GaussNewton(), on_failure="ignore")
        if experts == 1:
            return constraint
        return tc.MixtureOfExperts(constraint, (1, experts), coupling=coupling)

    variants = [("global", layer(total, 1))]
    for k in (2, 4, 8):
        variants.append((f"K={k}, same total", layer(total // k, k)))
    for k in (2, 4, 8):
        variants.append((f"K={k}, same per expert", layer(total, k)))
    # coupled strips draw their points off the interface columns
    for k in (2, 4, 8):
        variants.append((f"K={k} coupled, same total", layer(total // k, k, "interface")))
    for k in (2, 4):
        variants.append((f"K={k} coupled, same per expert", layer(total, k, "interface")))

    print(f"diffusion-sorption, grid {args.times} x {args.points}, {args.basis} basis fields, "
          f"batch {args.batch}, P = {total} points for the global layer\n")
    results = {}
    for name, model in variants:
        results[name] = measure(model, inputs, reference, pde, args.repeats)
    columns = list(results["global"])
    print(f"{'variant':>30}  " + "  ".join(f"{c:>11}" for c in columns))
    for name, row in results.items():
        print(f"{name:>30}  " + "  ".join(f"{row[c]:11.4g}" for c in columns))
    print("\nratios to the global layer")
    print(f"{'variant':>30}  " + "  ".join(f"{c:>11}" for c in columns))
    for name, row in results.items():
        ratios = [row[c] / results["global"][c] for c in columns]
        print(f"{name:>30}  " + "  ".join(f"{r:11.3f}" for r in ratios))


if __name__ == "__main__":
    main()
