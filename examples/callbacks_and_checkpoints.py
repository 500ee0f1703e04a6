"""Callbacks, checkpoints and resuming an interrupted run.

Callbacks run every `every` steps between the compiled chunks of training and
see the model, the minibatch and the loss function; what they return is
collected in a history. `CompositeCallback` runs several, each on its own
schedule. The trainer can also save its whole state (model, optimizer state,
key, step, loss history) every `checkpoint_every` steps; a run resumed from
such a checkpoint continues exactly where the interrupted run stopped, so it
ends with the same model as an uninterrupted run.

The trainer of the first run is reused to resume: its compiled update is
cached, and its callbacks run again (their history is not needed here).

    python examples/callbacks_and_checkpoints.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/callbacks_and_checkpoints.py
"""

import os
import shutil
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
NUM_TRAINING_STEPS = 200 if SMALL else 2000
EVERY = NUM_TRAINING_STEPS // 4


class Interrupted(Exception):
    pass


class InterruptAt(tx.callback.BaseCallback):
    """A custom callback: simulates a crash when training reaches `step`."""

    every: int = eqx.field(static=True)
    step: int = eqx.field(static=True)

    def __call__(self, step, model, context):
        if step == self.step:
            raise Interrupted(f"interrupted at step {step}")
        return None


def main():
    data = tx.sample_data.advection_1d_periodic(
        cfl=-0.75, num_samples=30, key=jax.random.PRNGKey(0)
    )
    train_data, validation_data = data[:20], data[20:]
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))
    folder = tempfile.mkdtemp(prefix="trainax_example_")

    callbacks = tx.callback.CompositeCallback([
        tx.callback.Loss(every=EVERY),
        tx.callback.GradNorm(every=EVERY),
        tx.callback.WeightNorm(every=EVERY),
        tx.callback.ValidationRollout(every=2 * EVERY, trajectories=validation_data,
                                      num_rollout_steps=10,
                                      metric=tx.loss.Normalized_RMSELoss()),
        tx.callback.SaveNetwork(every=2 * EVERY,
                                path=os.path.join(folder, "conv_{step}.eqx")),
    ])
    settings = dict(
        num_rollout_steps=5,
        optimizer=optax.adam(1e-2),
        num_training_steps=NUM_TRAINING_STEPS,
        batch_size=32,
        progress_bar=False,
    )

    # 1. a run with callbacks: the trainer returns their history too
    trainer = tx.trainer.SupervisedTrainer(train_data, callback_fn=callbacks, **settings)
    learned, loss_history, history = trainer(conv, key=jax.random.PRNGKey(42))
    for step, outputs in history:
        line = (f"step {step:5d}: loss {outputs['loss']:.3e}"
                f"  grad norm {outputs['grad_norm']:.3e}"
                f"  weight norm {outputs['weight_norm']:.4f}")
        if "validation_rollout" in outputs:
            line += f"  validation nRMSE@10 {outputs['validation_rollout'][-1]:.4f}"
        if "SaveNetwork" in outputs:
            line += f"  saved {os.path.basename(outputs['SaveNetwork'])}"
        print(line)
    restored = eqx.tree_deserialise_leaves(
        os.path.join(folder, f"conv_{NUM_TRAINING_STEPS}.eqx"), conv
    )
    print("restored network equals the trained one:",
          bool(jnp.array_equal(restored.weight, learned.weight)))

    # 2. checkpoints: crash half-way, then resume from the last checkpoint
    checkpoint = os.path.join(folder, "state.eqx")
    crashing = tx.trainer.SupervisedTrainer(
        train_data, checkpoint_path=checkpoint, checkpoint_every=EVERY,
        callback_fn=InterruptAt(every=EVERY, step=2 * EVERY), **settings,
    )
    try:
        crashing(conv, key=jax.random.PRNGKey(42))
    except Interrupted as error:
        print(error)
    # any trainer with the same settings can resume; the first one is already compiled
    resumed, resumed_losses, _ = trainer(conv, resume_from=checkpoint)
    difference = float(jnp.max(jnp.abs(resumed.weight - learned.weight)))
    print(f"resumed vs uninterrupted run: max weight difference {difference:.3e}")
    print(f"loss: {resumed_losses[0]:.3e} -> {resumed_losses[-1]:.3e}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
