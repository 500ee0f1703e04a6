"""Peak memory and time per training step against the rollout length, with
and without rematerialising each rollout step (`remat=True`).

    python benchmarks/rollout_memory.py [--lengths 1 5 10 20 40]

Peak memory is XLA's compiled estimate for one gradient step (temporaries
plus outputs), read from `compiled.memory_analysis()`, so it is exact and
noise-free on any backend; time is the median over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax

import trainax as tx


def conv_net(key, width=32, depth=4):
    keys = jax.random.split(key, depth)
    layers = []
    for i, k in enumerate(keys):
        c_in = 1 if i == 0 else width
        c_out = 1 if i == depth - 1 else width
        layers.append(eqx.nn.Conv1d(c_in, c_out, 5, padding="SAME",
                                    padding_mode="CIRCULAR", key=k))
        if i < depth - 1:
            layers.append(eqx.nn.Lambda(jax.nn.gelu))
    return eqx.nn.Sequential(layers)


def measure(model, data, rollout, remat, repeats):
    config = tx.configuration.Supervised(rollout, remat=remat)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def grad_step(params, batch):
        return jax.grad(lambda p: config(eqx.combine(p, static), batch))(params)

    batch = data[:, : rollout + 1]
    compiled = grad_step.lower(params, batch).compile()
    analysis = compiled.memory_analysis()
    peak = (analysis.temp_size_in_bytes + analysis.output_size_in_bytes
            + analysis.argument_size_in_bytes) if analysis is not None else float("nan")
    jax.block_until_ready(compiled(params, batch))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, batch))
        times.append(time.perf_counter() - t0)
    return peak, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 5, 10, 20, 40])
    parser.add_argument("--num-points", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = conv_net(jax.random.PRNGKey(0))
    data = jax.random.normal(
        jax.random.PRNGKey(1), (args.batch_size, max(args.lengths) + 1, 1, args.num_points)
    )
    print(f"device: {jax.devices()[0].platform}, conv net width 32 depth 4, "
          f"N={args.num_points}, batch={args.batch_size}")
    print(f"{'rollout':>7} | {'peak MiB':>9} {'ms/step':>8} | {'peak MiB remat':>14} "
          f"{'ms/step remat':>13} | memory ratio")
    for r in args.lengths:
        mem, t = measure(model, data, r, False, args.repeats)
        mem_r, t_r = measure(model, data, r, True, args.repeats)
        print(f"{r:>7} | {mem / 2**20:9.2f} {t * 1e3:8.2f} | {mem_r / 2**20:14.2f} "
              f"{t_r * 1e3:13.2f} | {mem / mem_r:6.2f}x")


if __name__ == "__main__":
    main()
