"""Time the trainer against the limit: a hand-written jitted `lax.scan` of
the same optax update on the same data and minibatches, for two sources:

- trajectories: the quickstart (rollout training of a stencil on windows);
- pairs: operator learning on `Samples((inputs, targets))` with a small
  convolution mapping 2 channels to 1.

    python benchmarks/training_loop.py [--steps 1000] [--repeats 7]

Prints, per case, the compile time, steps/s of both, and the median ratio
trainer / hand-written scan (target: within 1.1x).
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


def hand_written_pairs(model, inputs, targets, optimizer, num_steps, batch_size, key):
    """The limit for pairs: precomputed indices, one scan over all steps."""
    mixer = tx.PermutationMixer(inputs.shape[0], batch_size, key=jax.random.fold_in(key, 0))
    indices = mixer.chunk(0, num_steps)
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

    return lambda: jax.block_until_ready(run(params, inputs, targets, indices))


def compare(name, trainer, model, key, baseline, steps, repeats):
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
