"""FNO training: throughput and compiled peak memory against width, modes and
resolution, and the trainer against a hand-written jitted step.

    python benchmarks/fno.py [--steps 100] [--repeats 5]

For each setting it prints samples/s of the trainer (operator learning on
pairs, batch 16), the peak memory XLA reports for one compiled update
(`memory_analysis`), and, for the base setting, the median ratio of the
trainer to a hand-written `lax.scan` of the same FNO, loss and optax update
on the same minibatches (target: within 1.1x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax

import trainax as tx

BATCH = 16


def pairs(resolution):
    inputs = jr.normal(jr.PRNGKey(0), (128, 2, resolution, resolution))
    return inputs, 0.5 * inputs[:, :1] - 0.1 * jnp.roll(inputs[:, 1:], 1, axis=-1)


def peak_memory(model, inputs, targets, optimizer):
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step(params, opt_state, x, y):
        def loss(p):
            return jnp.mean((jax.vmap(eqx.combine(p, static))(x) - y) ** 2)

        grads = jax.grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    compiled = jax.jit(step).lower(
        params, optimizer.init(params), inputs[:BATCH], targets[:BATCH]
    ).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        return float("nan")
    total = getattr(analysis, "temp_size_in_bytes", 0) + getattr(
        analysis, "argument_size_in_bytes", 0
    ) + getattr(analysis, "output_size_in_bytes", 0)
    return total / 2**20


def hand_written(model, inputs, targets, optimizer, steps, key):
    mixer = tx.PermutationMixer(inputs.shape[0], BATCH, key=key)
    indices = mixer.chunk(0, steps) if inputs.shape[0] % BATCH == 0 else None
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def run(params, inputs, targets, indices):
        opt_state = optimizer.init(params)

        def body(carry, idx):
            params, opt_state = carry

            def loss(p):
                return jnp.mean((jax.vmap(eqx.combine(p, static))(inputs[idx]) - targets[idx]) ** 2)

            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        return jax.lax.scan(body, (params, opt_state), indices)

    return lambda: jax.block_until_ready(run(params, inputs, targets, indices))


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    optimizer = optax.adam(1e-3)
    key = jr.PRNGKey(42)
    settings = [
        # (width, modes, resolution)
        (16, 8, 32), (32, 8, 32), (64, 8, 32), (32, 4, 32), (32, 16, 32), (32, 8, 64),
    ]
    print(f"device: {jax.devices()[0].platform}, steps: {args.steps}, batch: {BATCH}")
    print(f"{'width':>6} {'modes':>6} {'N':>5} {'params':>9} {'samples/s':>10} {'peak MiB':>9}")
    for width, modes, resolution in settings:
        inputs, targets = pairs(resolution)
        model = tx.nn.FNO(2, 2, 1, width=width, modes=modes, num_layers=4, key=jr.PRNGKey(1))
        trainer = tx.GeneralTrainer(
            tx.Samples((inputs, targets)), tx.configuration.OperatorLearning(), optimizer,
            args.steps, BATCH, progress_bar=False,
        )
        seconds = timed(lambda: jax.block_until_ready(trainer(model, key)[0]), args.repeats)
        count = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
        print(f"{width:>6} {modes:>6} {resolution:>5} {count:>9} "
              f"{args.steps * BATCH / seconds:>10.0f} "
              f"{peak_memory(model, inputs, targets, optimizer):>9.1f}")
        if (width, modes, resolution) == (32, 8, 32):
            ours, base = [], []
            baseline = hand_written(model, inputs, targets, optimizer, args.steps, key)
            run_ours = lambda: jax.block_until_ready(trainer(model, key)[0])  # noqa: E731
            run_ours(), baseline()
            for _ in range(args.repeats):  # interleaved, so drifts hit both alike
                t0 = time.perf_counter(); run_ours(); ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter(); baseline(); base.append(time.perf_counter() - t0)
            base_setting = (statistics.median(ours), statistics.median(base))
    ours, base = base_setting
    print(f"trainer / hand-written step (width 32, modes 8, 32^2), median: {ours / base:.2f}x "
          f"({ours * 1e3 / args.steps:.2f} ms vs {base * 1e3 / args.steps:.2f} ms per step)")


if __name__ == "__main__":
    main()
