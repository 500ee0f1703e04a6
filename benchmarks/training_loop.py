"""Time the trainer against the limit: a hand-written jitted `lax.scan` of
the same optax update on the same data and minibatches, for two sources:

- trajectories: the quickstart (rollout training of a stencil on windows);
- pairs: operator learning on `Samples((inputs, targets))` with a small
  convolution mapping 2 channels to 1.

    python benchmarks/training_loop.py [--steps 1000] [--repeats 7]

Prints, per case, the compile time, steps/s of both, and the median ratio
trainer / hand-written scan (target: within 1.1x). The scan's minibatch
indices are precomputed outside its timing (the limit). The trainer is timed
twice: called again with the same key (it reuses the permutations it drew,
which depend on the key alone) and with a fresh key each call (it draws
them, a block of epochs ahead of the device). A last line times the scan
with its own minibatch draws, one `jax.random.permutation` per epoch as a
training script draws them.
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
        return jax.random.normal(jax.random.PRNGKey(0), (20, 100, 1, 30))


def hand_written_scan(model, data, num_rollout_steps, optimizer, num_steps, batch_size, key):
    """The limit: precomputed windows and indices, one scan over all steps."""
    windows = tx.trainer.substack_trajectories(data, num_rollout_steps + 1)
    indices = full_batches(windows.shape[0], batch_size, num_steps, key)
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

    timed = lambda: jax.block_until_ready(run(params, windows, indices))  # noqa: E731
    timed.drawing = lambda: jax.block_until_ready(run(  # noqa: E731
        params, windows, script_batches(windows.shape[0], batch_size, num_steps, key)))
    return timed


def hand_written_pairs(model, inputs, targets, optimizer, num_steps, batch_size, key):
    """The limit for pairs: precomputed indices, one scan over all steps."""
    indices = full_batches(inputs.shape[0], batch_size, num_steps, key)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss_fn(params, x, y):
        return jnp.mean((jax.vmap(eqx.combine(params, static))(x) - y) ** 2)

    @jax.jit
    def run(params, inputs, targets, indices):
        opt_state = optimizer.init(params)

        def body(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, inputs[idx], targets[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(body, (params, opt_state), indices)
        return params, losses

    timed = lambda: jax.block_until_ready(run(params, inputs, targets, indices))  # noqa: E731
    timed.drawing = lambda: jax.block_until_ready(run(  # noqa: E731
        params, inputs, targets, script_batches(inputs.shape[0], batch_size, num_steps, key)))
    return timed


def script_batches(num_items, batch_size, num_steps, key):
    """A script's minibatches: a permutation per epoch, full batches only."""
    rows = []
    while len(rows) < num_steps:
        order = jax.random.permutation(key, num_items)
        key = jax.random.split(key)[0]
        for start in range(0, num_items - batch_size + 1, batch_size):
            rows.append(order[start:start + batch_size])
    return jnp.stack(rows[:num_steps])


def full_batches(num_items, batch_size, num_steps, key):
    """`num_steps` full minibatches of the trainer's stream (the smaller last
    one of each epoch left out: a scan needs one shape)."""
    mixer = tx.PermutationMixer(num_items, batch_size, key=key)
    rows, step = [], 0
    while len(rows) < num_steps:
        row = mixer(step)
        if len(row) == batch_size:
            rows.append(row)
        step += 1
    return jnp.asarray(rows)


def compare(name, trainer, model, key, baseline, steps, repeats):
    def ours(call_key=key):
        learned, losses = trainer(model, call_key)
        jax.block_until_ready(learned)

    fresh_keys = iter(jax.random.split(jax.random.PRNGKey(7), 2 * repeats + 2))

    t0 = time.perf_counter(); ours(); first_ours = time.perf_counter() - t0
    t0 = time.perf_counter(); baseline(); first_base = time.perf_counter() - t0
    baseline.drawing()
    ours(next(fresh_keys))
    times_ours, times_fresh, times_base, times_drawing = [], [], [], []
    for _ in range(repeats):  # interleaved, so drifts hit all alike
        t0 = time.perf_counter(); ours(); times_ours.append(time.perf_counter() - t0)
        fresh = next(fresh_keys)
        t0 = time.perf_counter(); ours(fresh); times_fresh.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); baseline(); times_base.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); baseline.drawing(); times_drawing.append(time.perf_counter() - t0)
    med_ours, med_base = statistics.median(times_ours), statistics.median(times_base)
    med_drawing = statistics.median(times_drawing)
    med_fresh = statistics.median(times_fresh)
    print(f"[{name}] compile (first call minus median call): trainer "
          f"{first_ours - med_ours:.2f} s, hand-written scan {first_base - med_base:.2f} s")
    print(f"[{name}] trainer:           median {med_ours * 1e3:8.1f} ms  "
          f"({steps / med_ours:10.0f} steps/s)")
    print(f"[{name}] hand-written scan: median {med_base * 1e3:8.1f} ms  "
          f"({steps / med_base:10.0f} steps/s)")
    print(f"[{name}] ratio trainer / hand-written scan (median): {med_ours / med_base:.2f}x")
    print(f"[{name}] ratio trainer with a fresh key each call (drawing its permutations, "
          f"{med_fresh * 1e3:.1f} ms) / hand-written scan: {med_fresh / med_base:.2f}x")
    print(f"[{name}] ratio trainer / hand-written scan drawing its minibatches "
          f"({med_drawing * 1e3:.1f} ms): {med_ours / med_drawing:.2f}x")


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
    print(f"device: {jax.devices()[0].platform}, steps: {args.steps}, rollout: {args.rollout}")
    baseline = hand_written_scan(model, data, args.rollout, optimizer, args.steps, 32, key)
    compare("trajectories", trainer, model, key, baseline, args.steps, args.repeats)

    inputs = jax.random.normal(jax.random.PRNGKey(1), (256, 2, 64))
    targets = 0.5 * inputs[:, :1] - 0.25 * jnp.roll(inputs[:, 1:], 1, axis=-1)
    operator = eqx.nn.Conv1d(2, 1, 3, padding=1, padding_mode="CIRCULAR",
                             key=jax.random.PRNGKey(2))
    pairs_trainer = tx.GeneralTrainer(
        tx.Samples((inputs, targets)), tx.configuration.OperatorLearning(), optimizer,
        args.steps, 32, progress_bar=False,
    )
    baseline = hand_written_pairs(operator, inputs, targets, optimizer, args.steps, 32, key)
    compare("pairs", pairs_trainer, operator, key, baseline, args.steps, args.repeats)


if __name__ == "__main__":
    main()
