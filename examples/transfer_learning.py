"""Transfer learning of a Fourier neural operator: pretrain, then fine-tune on less data.

An FNO is pretrained on anisotropic Poisson problems `-div(K grad u) = f`
whose diffusion tensor has an eigenvalue ratio `e` in [1, 5]. It is then
trained on two downstream tasks with few samples: Poisson with `e` in
[5, 10] (out of the pretraining range) and Helmholtz
`-0.01 lap u - omega u = f` with integer `omega` in [1, 10] (another
operator). For each downstream size it compares training from scratch,
fine-tuning the pretrained model (all weights, fresh optimizer) and the
pretrained model as it is (zero-shot), by the test relative L2 error.

Both families share one input layout, so one model reads both: channels
`(f, K11, K12, K22, omega)`. Poisson pairs have `omega = 0`; Helmholtz is
`-div(K grad u) - omega u = f` with `K = 0.01 I`. Each task's inputs are
normalised per channel by statistics of its own training set
(`tx.sample_data.InputNormalizer`); a channel constant there maps to zero.

    python examples/transfer_learning.py            # about 7 minutes: sizes 8 to 512
    TRAINAX_EXAMPLE_SMALL=1 python examples/transfer_learning.py
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1" or "--small" in sys.argv
GRID = 16 if SMALL else 32
WIDTH, MODES, LAYERS = (16, 6, 2) if SMALL else (16, 8, 3)
NUM_PRETRAIN, PRETRAIN_STEPS = (512, 300) if SMALL else (1024, 1500)
SIZES = [8, 32] if SMALL else [8, 32, 128, 512]
LEARNING_RATES = [3e-3]
DOWNSTREAM_STEPS = 80 if SMALL else 250
NUM_TEST = 64 if SMALL else 128

# Every sweep point of a given size compiles the same program for "scratch"
# and "pretrained": a compilation cache on disk compiles it once.
jax.config.update(
    "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "trainax-jax-cache")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def poisson(num, e_range, seed):
    inputs, targets = tx.sample_data.poisson_2d_periodic(
        num_samples=num, num_points=GRID, e_range=e_range, key=jr.PRNGKey(seed)
    )
    omega = jnp.zeros_like(inputs[:, :1])
    return jnp.concatenate([inputs, omega], axis=1), targets


def helmholtz(num, seed):
    inputs, targets = tx.sample_data.helmholtz_2d_periodic(
        num_samples=num, num_points=GRID, key=jr.PRNGKey(seed)
    )
    f, omega = inputs[:, :1], inputs[:, 1:]
    k = 0.01 * jnp.ones_like(f)
    return jnp.concatenate([f, k, jnp.zeros_like(f), k, omega], axis=1), targets


def split(pairs, num_train):
    inputs, targets = pairs
    return ((inputs[:num_train], targets[:num_train]),
            (inputs[num_train : num_train + NUM_TEST], targets[num_train : num_train + NUM_TEST]))


def normalised(train, test, fit_on):
    normalize = jax.vmap(tx.sample_data.InputNormalizer.fit(fit_on))
    return (normalize(train[0]), train[1]), (normalize(test[0]), test[1])


def make_model(key):
    return tx.nn.FNO(2, 5, 1, width=WIDTH, modes=MODES, num_layers=LAYERS, key=key)


def main():
    start = time.perf_counter()
    # one draw per family (one compilation each), split into train and test
    total = NUM_PRETRAIN + NUM_TEST
    pretrain, test = split(poisson(total, (1.0, 5.0), seed=0), NUM_PRETRAIN)
    downstream = {
        "poisson e 5-10": split(poisson(total, (5.0, 10.0), seed=1), max(SIZES)),
        "helmholtz": split(helmholtz(max(SIZES) + NUM_TEST, seed=2), max(SIZES)),
    }
    pretrain, test = normalised(pretrain, test, fit_on=pretrain[0])
    # normalised by the first max(SIZES) samples (a sweep point sees fewer)
    tasks = {name: normalised(train, held_out, fit_on=train[0])
             for name, (train, held_out) in downstream.items()}

    trainer = tx.GeneralTrainer(
        tx.Samples(pretrain),
        tx.configuration.OperatorLearning(),
        tx.trainer.cosine_adam(3e-3, PRETRAIN_STEPS),
        PRETRAIN_STEPS,
        16,
        progress_bar=not SMALL,
    )
    pretrained, losses = trainer(make_model(jr.PRNGKey(0)), jr.PRNGKey(1))
    print(f"pretraining on Poisson e in [1, 5], {NUM_PRETRAIN} pairs, {PRETRAIN_STEPS} "
          f"steps: loss: {losses[0]:.3e} -> {losses[-1]:.3e}")
    print(f"pretrained model, test relative L2 error in its own range: "
          f"{100 * tx.trainer.relative_l2(pretrained, *test):.2f} %")

    folder = Path(tempfile.mkdtemp() if SMALL else ".")
    rows = tx.trainer.data_scaling_sweep(
        tasks, make_model, pretrained, SIZES, LEARNING_RATES,
        num_training_steps=DOWNSTREAM_STEPS, batch_size=16, key=jr.PRNGKey(2),
        results_path=folder / "transfer_sweep.json",
    )
    print(tx.trainer.sweep_table(rows))
    print("(predicting zero scores 100 %; Helmholtz near resonance flips the sign of the "
          "slow modes, so a Poisson-like guess scores far worse)")
    best = tx.trainer.best_over_learning_rates(rows)
    error = {(r["task"], r["init"], r["num_samples"]): r["test_rel_l2"] for r in best}
    for task in tasks:
        for n in SIZES:
            verdict = ("beats" if error[(task, "pretrained", n)] < error[(task, "scratch", n)]
                       else "does not beat")
            print(f"{task}, {n} samples: fine-tuning {verdict} training from scratch")
    if not SMALL:
        try:
            tx.trainer.plot_sweep(rows, "transfer_learning.png")
            print("wrote transfer_learning.png and transfer_sweep.json")
        except ImportError:
            print("wrote transfer_sweep.json (matplotlib is not installed: no plot)")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
