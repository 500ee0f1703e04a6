"""The data model: Trajectories, Samples and Sampler sources, per-step keys,
operator learning, models that are not steppers, and their errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

C = tx.configuration
T = tx.trainer


def tree_equal(a, b) -> bool:
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array))
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb)
    )


def pairs(num=12, n=16, key=jr.PRNGKey(0)):
    """Inputs (S, 2, n) and targets (S, 1, n): the target is a fixed linear map."""
    inputs = jr.normal(key, (num, 2, n))
    targets = (0.5 * inputs[:, :1] - 0.25 * jnp.roll(inputs[:, 1:], 1, axis=-1))
    return inputs, targets


def operator_model(key=jr.PRNGKey(1)):
    return eqx.nn.Conv1d(2, 1, 3, padding=1, padding_mode="CIRCULAR", key=key)


class Recorder(tx.callback.BaseCallback):
    """Returns the step's sample indices and key (every step)."""

    every: int = eqx.field(static=True, default=1)

    def __call__(self, step, model, context):
        key = None if context.key is None else np.asarray(context.key)
        indices = None if context.indices is None else np.asarray(context.indices)
        return indices, key


# --------------------------------------------------------------------------
# Samples: minibatches of samples, each once per epoch, indices available
# --------------------------------------------------------------------------


def test_samples_each_sample_once_per_epoch():
    inputs, targets = pairs(num=12)
    trainer = tx.GeneralTrainer(
        tx.Samples((inputs, targets)), C.OperatorLearning(), optax.sgd(1e-3),
        12, 4, callback_fn=Recorder(), chunk_size=5, progress_bar=False,
    )
    _, _, history = trainer(operator_model(), jr.PRNGKey(3))
    steps = [step for step, _ in history]
    assert steps == list(range(13))  # every step and the final model
    rows = [out[0] for _, out in history[:12]]
    for epoch in range(4):  # 12 samples, batches of 4: 3 steps per epoch
        seen = np.concatenate(rows[3 * epoch : 3 * epoch + 3])
        assert sorted(seen.tolist()) == list(range(12))


def test_samples_batch_is_the_pytree_of_those_indices():
    inputs, targets = pairs(num=10)
    source = tx.Samples({"x": inputs, "y": targets})
    feed = source.feed(None, 3)
    idx = jnp.array([7, 2, 2])
    batch = feed(0, idx, None)
    assert set(batch) == {"x", "y"}
    np.testing.assert_array_equal(batch["x"], inputs[idx])
    np.testing.assert_array_equal(batch["y"], targets[idx])


def test_samples_on_the_host_match_the_device(tmp_path):
    inputs, targets = (np.asarray(a) for a in pairs(num=12))
    path = tmp_path / "inputs.npy"
    np.save(path, inputs)
    on_disk = np.load(path, mmap_mode="r")

    def train(samples):
        trainer = tx.GeneralTrainer(
            samples, C.OperatorLearning(), optax.adam(1e-2), 23, 5,
            chunk_size=7, progress_bar=False,
        )
        return trainer, trainer(operator_model(), jr.PRNGKey(5))

    host_trainer, (host_model, host_losses) = train(tx.Samples((on_disk, targets)))
    device_trainer, (device_model, device_losses) = train(tx.Samples((inputs, targets)))
    assert host_trainer.host_data and not device_trainer.host_data
    np.testing.assert_array_equal(host_losses, device_losses)
    assert tree_equal(host_model, device_model)


# --------------------------------------------------------------------------
# Operator learning
# --------------------------------------------------------------------------


def test_operator_learning_trains_and_resumes_bit_identically(tmp_path):
    inputs, targets = pairs(num=16)

    def trainer(steps, path=None):
        return tx.GeneralTrainer(
            tx.Samples((inputs, targets)), C.OperatorLearning(), optax.adam(3e-2),
            steps, 8, chunk_size=30, progress_bar=False, checkpoint_path=path,
        )

    model, losses = trainer(200)(operator_model(), jr.PRNGKey(0))
    assert losses[-1] < 1e-3 * losses[0]
    # stopped after 90 steps, then resumed (and extended) to 200
    trainer(90, tmp_path / "state.eqx")(operator_model(), jr.PRNGKey(0))
    resumed, resumed_losses = trainer(200)(operator_model(), resume_from=tmp_path / "state.eqx")
    np.testing.assert_array_equal(resumed_losses, losses)
    assert tree_equal(resumed, model)


def test_a_damaged_checkpoint_says_so(tmp_path):
    inputs, targets = pairs(num=8)
    trainer = tx.GeneralTrainer(tx.Samples((inputs, targets)), C.OperatorLearning(),
                                optax.adam(1e-2), 5, 4, progress_bar=False,
                                checkpoint_path=tmp_path / "c.eqx")
    trainer(operator_model(), jr.PRNGKey(0))
    data = (tmp_path / "c.eqx").read_bytes()
    (tmp_path / "c.eqx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"c.eqx' is damaged"):
        trainer(operator_model(), resume_from=tmp_path / "c.eqx")
    (tmp_path / "c.eqx").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=r"c.eqx' is damaged"):
        trainer(operator_model(), resume_from=tmp_path / "c.eqx")


def test_operator_learning_relative_l2_is_scale_free():
    inputs, targets = pairs(num=4)
    model = operator_model()
    cfg = C.OperatorLearning(loss=tx.loss.Normalized_RMSELoss())
    a = cfg(model, (inputs, targets))
    prediction = jax.vmap(model)(inputs)
    expected = jnp.mean(
        jnp.linalg.norm((prediction - targets).reshape(4, -1), axis=1)
        / jnp.linalg.norm(targets.reshape(4, -1), axis=1)
    )
    np.testing.assert_allclose(a, expected, rtol=1e-6)


def test_operator_model_with_wrong_output_is_refused():
    inputs, targets = pairs(num=8)
    wrong = eqx.nn.Conv1d(2, 3, 3, padding=1, key=jr.PRNGKey(0))  # 3 channels, not 1
    trainer = tx.GeneralTrainer(
        tx.Samples((inputs, targets)), C.OperatorLearning(), optax.adam(1e-2), 5, 4,
        progress_bar=False,
    )
    with pytest.raises(ValueError, match=r"`model` must map one input \(2, 16\) to the shape "
                                         r"of one target \(1, 16\); it returns \(3, 16\)"):
        trainer(wrong, jr.PRNGKey(0))


def test_pairs_passed_without_samples_get_advice():
    with pytest.raises(TypeError, match=r"tx.trainer.Samples\(data\)"):
        tx.GeneralTrainer(pairs(), C.OperatorLearning(), optax.adam(1e-2), 5, 4)


def test_sample_configuration_on_trajectories_is_refused():
    with pytest.raises(TypeError, match="trains on samples, not trajectory windows"):
        tx.GeneralTrainer(jnp.zeros((4, 5, 1, 8)), C.OperatorLearning(), optax.adam(1e-2), 5, 2)


# --------------------------------------------------------------------------
# Samples: bad input
# --------------------------------------------------------------------------


def test_samples_with_unequal_leading_axes():
    with pytest.raises(ValueError, match=r"`samples`: every leaf must have the same leading"
                                         r" \(sample\) axis; got leaves of shapes \(10, 2\), "
                                         r"\(9, 2\)"):
        tx.Samples((jnp.zeros((10, 2)), jnp.zeros((9, 2))))


def test_samples_with_a_scalar_leaf():
    with pytest.raises(ValueError, match="every leaf needs a leading sample axis"):
        tx.Samples((jnp.zeros((10, 2)), jnp.float32(1.0)))


def test_batch_size_above_the_number_of_samples_trains_full_batch():
    with pytest.warns(UserWarning, match=r"`batch_size` \(9\) exceeds the number of training "
                                         r"samples \(8 samples\): training full batch"):
        trainer = tx.GeneralTrainer(tx.Samples(pairs(num=8)), C.OperatorLearning(),
                                    optax.sgd(1e-3), 3, 9, callback_fn=Recorder(),
                                    progress_bar=False)
    _, _, history = trainer(operator_model(), jr.PRNGKey(0))
    assert all(sorted(out[0].tolist()) == list(range(8)) for _, out in history[:3])


# --------------------------------------------------------------------------
# Sampler: fresh draws, deterministic per key and step, exact on resume
# --------------------------------------------------------------------------


def draw_pairs(key, batch_size):
    inputs = jr.normal(key, (batch_size, 2, 16))
    return inputs, 0.5 * inputs[:, :1] - 0.25 * jnp.roll(inputs[:, 1:], 1, axis=-1)


class DrawRecorder(tx.callback.BaseCallback):
    every: int = eqx.field(static=True, default=1)

    def __call__(self, step, model, context):
        return np.asarray(context.batch[0])


def test_sampler_draws_depend_on_key_and_step_only():
    def run(key, chunk_size):
        trainer = tx.GeneralTrainer(
            tx.Sampler(draw_pairs), C.OperatorLearning(), optax.sgd(1e-3), 6, 3,
            callback_fn=DrawRecorder(), chunk_size=chunk_size, progress_bar=False,
        )
        return trainer(operator_model(), key)[2]

    a, b, c = run(jr.PRNGKey(0), 2), run(jr.PRNGKey(0), 4), run(jr.PRNGKey(1), 2)
    for (sa, xa), (sb, xb), (_, xc) in zip(a, b, c):
        assert sa == sb
        np.testing.assert_array_equal(xa, xb)
        assert not np.array_equal(xa, xc)
    # every step draws a new batch, with the draw key of tx.trainer.step_keys
    assert not np.array_equal(a[0][1], a[1][1])
    draw_key, _ = T.step_keys(jr.PRNGKey(0), 4)
    np.testing.assert_array_equal(a[4][1], draw_pairs(draw_key, 3)[0])


def test_sampler_training_resumes_bit_identically(tmp_path):
    def trainer(steps, path=None):
        return tx.GeneralTrainer(
            tx.Sampler(draw_pairs), C.OperatorLearning(), optax.adam(1e-2), steps, 4,
            chunk_size=8, progress_bar=False, checkpoint_path=path,
        )

    full, full_losses = trainer(40)(operator_model(), jr.PRNGKey(2))
    trainer(17, tmp_path / "c.eqx")(operator_model(), jr.PRNGKey(2))
    resumed, resumed_losses = trainer(40)(operator_model(), resume_from=tmp_path / "c.eqx")
    np.testing.assert_array_equal(resumed_losses, full_losses)
    assert tree_equal(resumed, full)


def test_sampler_returning_the_wrong_batch_size():
    def wrong(key, batch_size):
        return jr.normal(key, (batch_size + 1, 2, 16)), jr.normal(key, (batch_size, 1, 16))

    with pytest.raises(ValueError, match=r"`fn` must return arrays with leading axis "
                                         r"batch_size=4; it returned an array of shape "
                                         r"\(5, 2, 16\)"):
        tx.GeneralTrainer(tx.Sampler(wrong), C.OperatorLearning(), optax.sgd(1.0), 3, 4)


def test_sampler_that_is_not_callable():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        tx.Sampler(jnp.zeros(3))


# --------------------------------------------------------------------------
# The per-step key
# --------------------------------------------------------------------------


class NoisyTarget(C.BaseConfiguration):
    """Operator learning against targets with fresh noise from the step's key."""

    def __call__(self, model, data, *, ref_stepper=None, residuum_fn=None, key=None):
        inputs, targets = data
        noise = 0.1 * jr.normal(key, targets.shape, targets.dtype)
        return jnp.mean((jax.vmap(model)(inputs) - targets - noise) ** 2)


def test_the_loss_key_is_the_step_key_and_the_same_on_resume(tmp_path):
    data = tx.Samples(pairs(num=8))

    def trainer(steps, path=None):
        return tx.GeneralTrainer(
            data, NoisyTarget(), optax.adam(1e-2), steps, 4, chunk_size=6,
            callback_fn=Recorder(), progress_bar=False, checkpoint_path=path,
        )

    model, losses, history = trainer(20)(operator_model(), jr.PRNGKey(9))
    for step, (_, key) in history:
        np.testing.assert_array_equal(key, T.step_keys(jr.PRNGKey(9), step)[1])
    trainer(11, tmp_path / "k.eqx")(operator_model(), jr.PRNGKey(9))
    resumed, resumed_losses, _ = trainer(20)(operator_model(), resume_from=tmp_path / "k.eqx")
    np.testing.assert_array_equal(resumed_losses, losses)
    assert tree_equal(resumed, model)


def test_different_keys_give_different_noise():
    data = tx.Samples(pairs(num=8))
    trainer = tx.GeneralTrainer(data, NoisyTarget(), optax.sgd(0.0), 3, 8, progress_bar=False)
    _, a = trainer(operator_model(), jr.PRNGKey(0))
    _, b = trainer(operator_model(), jr.PRNGKey(1))
    assert not np.array_equal(a, b)


# --------------------------------------------------------------------------
# A model holding a trainable table of per-sample codes
# --------------------------------------------------------------------------


class CodedModel(eqx.Module):
    codes: jax.Array  # (S, K): one trainable code per sample (K >= the target size: exact fit)
    decoder: eqx.nn.Linear

    def __call__(self, code):
        return self.decoder(code)


class AutoDecode(C.BaseConfiguration):
    """Fit each sample's code (and the shared decoder) to the sample."""

    needs_indices = True

    def __call__(self, model, data, *, ref_stepper=None, residuum_fn=None, key=None,
                 indices=None):
        prediction = jax.vmap(model)(model.codes[indices])
        return jnp.mean((prediction - data) ** 2)


def test_a_model_with_a_table_of_codes_trains_only_the_batch_rows():
    targets = jr.normal(jr.PRNGKey(0), (10, 6))
    model = CodedModel(jnp.zeros((10, 8)), eqx.nn.Linear(8, 6, key=jr.PRNGKey(1)))
    trainer = tx.GeneralTrainer(
        tx.Samples(targets), AutoDecode(), optax.sgd(0.1), 1, 4,
        callback_fn=Recorder(), progress_bar=False,
    )
    trained, losses, history = trainer(model, jr.PRNGKey(4))
    batch = history[0][1][0]
    changed = np.flatnonzero(np.any(np.asarray(trained.codes) != 0.0, axis=1))
    assert sorted(changed.tolist()) == sorted(set(batch.tolist()))
    # and longer training fits the table
    long = tx.GeneralTrainer(tx.Samples(targets), AutoDecode(), optax.adam(5e-2), 400, 5,
                             progress_bar=False)
    _, long_losses = long(model, jr.PRNGKey(4))
    assert long_losses[-1] < 0.05 * long_losses[0]


def test_indices_configuration_refuses_a_sampler():
    with pytest.raises(TypeError, match="needs sample indices: train it on tx.trainer.Samples"):
        tx.GeneralTrainer(tx.Sampler(draw_pairs), AutoDecode(), optax.sgd(1.0), 3, 4)


# --------------------------------------------------------------------------
# Trajectories are still what an array means; the loss keeps its dtype
# --------------------------------------------------------------------------


def test_an_array_means_trajectories():
    data = jnp.zeros((3, 6, 1, 8))
    trainer = tx.GeneralTrainer(data, C.Supervised(2), optax.sgd(0.1), 2, 4, progress_bar=False)
    assert isinstance(trainer.source, tx.Trajectories)
    assert trainer.source.num_items(C.Supervised(2)) == 3 * 4


def test_trajectories_with_a_single_time_level():
    with pytest.raises(ValueError, match="hold a single time level"):
        tx.Trajectories(jnp.zeros((3, 1, 1, 8)))


def test_loss_history_keeps_float64(x64):
    data = jr.normal(jr.PRNGKey(0), (3, 6, 1, 8), dtype=jnp.float64)
    model = tx.nn.LinearConvStepper(1, kernel_size=2, key=jr.PRNGKey(1))
    model = jax.tree_util.tree_map(
        lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, model
    )
    trainer = tx.GeneralTrainer(data, C.Supervised(2), optax.sgd(0.1), 3, 4, progress_bar=False)
    _, losses = trainer(model, jr.PRNGKey(0))
    assert losses.dtype == np.float64


def test_loss_history_float32_by_default():
    inputs, targets = pairs(num=8)
    trainer = tx.GeneralTrainer(tx.Samples((inputs, targets)), C.OperatorLearning(),
                                optax.sgd(1e-3), 3, 4, progress_bar=False)
    _, losses = trainer(operator_model(), jr.PRNGKey(0))
    assert losses.dtype == np.float32


# --------------------------------------------------------------------------
# Fine-tuning: frozen leaves, zero steps, subsets
# --------------------------------------------------------------------------


def test_fine_tune_zero_steps_returns_the_model():
    model = operator_model()
    tuned, losses = T.fine_tune(model, tx.Samples(pairs(num=8)), C.OperatorLearning(),
                                optax.adam(1e-2), 0, 4, key=jr.PRNGKey(0))
    assert tuned is model and losses.shape == (0,)


def test_frozen_leaves_stay_bit_identical_and_have_no_optimizer_state():
    model = operator_model()
    trainer = tx.GeneralTrainer(tx.Samples(pairs(num=8)), C.OperatorLearning(),
                                optax.adam(1e-1), 20, 4, progress_bar=False,
                                trainable=lambda m: m.bias)
    tuned, losses = trainer(model, jr.PRNGKey(0))
    assert np.array_equal(tuned.weight, model.weight)
    assert not np.array_equal(tuned.bias, model.bias)
    params, _ = eqx.partition(model, trainer._trainable_mask(model))
    state_leaves = jax.tree_util.tree_leaves(optax.adam(1e-1).init(params))
    # adam's moments exist for the bias only: count, mu and nu of shape (1, 1)
    assert sorted(x.size for x in state_leaves) == [1, 1, 1]


def test_trainable_that_selects_nothing():
    with pytest.raises(ValueError, match="`trainable` selects no floating-point array"):
        tx.GeneralTrainer(tx.Samples(pairs(num=8)), C.OperatorLearning(), optax.adam(1e-1),
                          2, 4, progress_bar=False,
                          trainable=jax.tree_util.tree_map(lambda _: False, operator_model()))(
            operator_model(), jr.PRNGKey(0))


def test_subsample_is_a_prefix_and_checks_its_size():
    inputs, targets = pairs(num=12)
    small = T.subsample((inputs, targets), 3, key=jr.PRNGKey(0))
    large = T.subsample((inputs, targets), 8, key=jr.PRNGKey(0))
    np.testing.assert_array_equal(small[0], large[0][:3])
    with pytest.raises(ValueError, match=r"`num_samples` \(13\) exceeds the 12 samples"):
        T.subsample((inputs, targets), 13, key=jr.PRNGKey(0))


def test_per_sample_tables_update_row_sparse_with_adam():
    targets = jr.normal(jr.PRNGKey(0), (10, 6))
    model = CodedModel(jr.normal(jr.PRNGKey(2), (10, 8)), eqx.nn.Linear(8, 6, key=jr.PRNGKey(1)))

    def train(steps, **kwargs):
        trainer = tx.GeneralTrainer(
            tx.Samples(targets), AutoDecode(), optax.adam(1e-2), steps, 4,
            callback_fn=Recorder(), progress_bar=False, **kwargs,
        )
        return trainer

    # two steps: the second batch's rows move; rows in neither batch do not,
    # and neither do their Adam moments
    trainer = train(2, per_sample=lambda m: m.codes, per_sample_optimizer=optax.adam(1e-1))
    trained, losses, history = trainer(model, jr.PRNGKey(4))
    seen = set(history[0][1][0].tolist()) | set(history[1][1][0].tolist())
    unseen = sorted(set(range(10)) - seen)
    assert unseen
    np.testing.assert_array_equal(trained.codes[np.asarray(unseen)], model.codes[np.asarray(unseen)])
    for row in seen:
        assert not np.array_equal(trained.codes[row], model.codes[row])
    # the optimizer state: moments of the unseen rows are still zero
    params, static = eqx.partition(model, trainer._trainable_mask(model))
    updater = trainer._updater(static)
    opt_state = updater.init(params)
    step_one = updater.update(params, jax.tree_util.tree_map(jnp.ones_like, params), opt_state,
                              jnp.array([0, 1]))[1]
    mu = step_one[1][0].mu.codes
    assert np.all(np.asarray(mu[2:]) == 0) and np.all(np.asarray(mu[:2]) != 0)
    # a row of the first batch only: row-sparse, the second step leaves it
    # where the first put it; dense Adam moves it again (its momentum)
    only_first = sorted(set(history[0][1][0].tolist()) - set(history[1][1][0].tolist()))
    assert only_first
    row = only_first[0]
    sparse_one = train(1, per_sample=lambda m: m.codes,
                       per_sample_optimizer=optax.adam(1e-1))(model, jr.PRNGKey(4))[0]
    np.testing.assert_array_equal(trained.codes[row], sparse_one.codes[row])
    dense_one = train(1)(model, jr.PRNGKey(4))[0]
    dense_two = train(2)(model, jr.PRNGKey(4))[0]
    assert not np.array_equal(dense_two.codes[row], dense_one.codes[row])


def test_per_sample_needs_samples_and_indices():
    with pytest.raises(TypeError, match="configuration must set `needs_indices = True`"):
        tx.GeneralTrainer(tx.Samples(pairs(num=8)), C.OperatorLearning(), optax.sgd(1.0), 2, 4,
                          per_sample=lambda m: m.weight)
    targets = jr.normal(jr.PRNGKey(0), (10, 6))
    model = CodedModel(jnp.zeros((9, 8)), eqx.nn.Linear(8, 6, key=jr.PRNGKey(1)))
    trainer = tx.GeneralTrainer(tx.Samples(targets), AutoDecode(), optax.sgd(1.0), 2, 4,
                                per_sample=lambda m: m.codes, progress_bar=False)
    with pytest.raises(ValueError, match=r"one row per sample \(10\); got an array of shape"):
        trainer(model, jr.PRNGKey(0))
