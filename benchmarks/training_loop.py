"""Time the quickstart trainer against the limit: a hand-written jitted
`lax.scan` of the same optax update on the same data and minibatches.

    python benchmarks/training_loop.py [--steps 1000] [--repeats 7]

Prints the compile time, steps/s of both, and the median ratio
trainer / hand-written scan (target: within 1.3x).
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


def make_data(cfl: float):
    try:
        return tx.sample_data.advection_1d_periodic(cfl=cfl, key=jax.random.PRNGKey(0))
    except AttributeError:  # sample data not available: random windows suffice to time
        return jax.random.normal(jax.random.PRNGKey(0), (20, 51, 1, 30))


def hand_written_scan(model, data, num_rollout_steps, optimizer, num_steps, batch_size, key):
    """The limit: precomputed windows and indices, one scan over all steps."""
    windows = tx.trainer.substack_trajectories(data, num_rollout_steps + 1)
    mixer = tx.PermutationMixer(windows.shape[0], batch_size, key=jax.random.fold_in(key, 0))
    indices = mixer.chunk(0, num_steps)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss_fn(params, batch):
        model = eqx.combine(params, static)
        u = batch[:, 0]
        total = 0.0
        for t in range(num_rollout_steps):
            u = jax.vmap(model)(u)
            total = total + jnp.mean((u - batch[:, t + 1]) ** 2)
        return total

    @jax.jit
    def run(params, windows, indices):
        opt_state = optimizer.init(params)

        def body(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, windows[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(body, (params, opt_state), indices)
        return params, losses

    return lambda: jax.block_until_ready(run(params, windows, indices))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rollout", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    cfl = -0.75
    data = make_data(cfl)
    model = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                          use_bias=False, key=jax.random.PRNGKey(73))
    optimizer = optax.adam(1e-2)
    key = jax.random.PRNGKey(42)
    trainer = tx.trainer.SupervisedTrainer(
        data, num_rollout_steps=args.rollout, optimizer=optimizer,
        num_training_steps=args.steps, batch_size=32, progress_bar=False,
    )

    def ours():
        learned, losses = trainer(model, key)
        jax.block_until_ready(learned)

    baseline = hand_written_scan(model, data, args.rollout, optimizer, args.steps, 32, key)

    t0 = time.perf_counter(); ours(); first_ours = time.perf_counter() - t0
    t0 = time.perf_counter(); baseline(); first_base = time.perf_counter() - t0
    times_ours, times_base = [], []
    for _ in range(args.repeats):  # interleaved, so drifts hit both alike
        t0 = time.perf_counter(); ours(); times_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); baseline(); times_base.append(time.perf_counter() - t0)
    med_ours, med_base = statistics.median(times_ours), statistics.median(times_base)
    print(f"device: {jax.devices()[0].platform}, steps: {args.steps}, rollout: {args.rollout}")
    print(f"compile (first call minus median call): trainer {first_ours - med_ours:.2f} s, "
          f"hand-written scan {first_base - med_base:.2f} s")
    print(f"trainer:           median {med_ours * 1e3:8.1f} ms  ({args.steps / med_ours:10.0f} steps/s)")
    print(f"hand-written scan: median {med_base * 1e3:8.1f} ms  ({args.steps / med_base:10.0f} steps/s)")
    print(f"ratio trainer / hand-written scan (median): {med_ours / med_base:.2f}x")


if __name__ == "__main__":
    main()
