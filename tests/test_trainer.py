"""Tests of the trainers: windows, minibatch draws, updates, errors, resume."""


import math
import warnings

import equinox as eqx
import exponax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

S, T, N = 6, 11, 16  # trajectories (S, T+1, 1, N)


# --------------------------------------------------------------------------
# Shared tiny data and models
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stepper():
    return exponax.stepper.Advection(1, 1.0, N, 0.1, velocity=0.5)


def _make_data(stepper, key, num_samples=S):
    ics = exponax.build_ic_set(
        exponax.ic.RandomTruncatedFourierSeries(1, cutoff=3),
        num_points=N,
        num_samples=num_samples,
        key=key,
    )
    return jax.vmap(exponax.rollout(stepper, T, include_init=True))(ics)


@pytest.fixture(scope="module")
def data(stepper):
    trajectories = _make_data(stepper, jr.PRNGKey(0))
    assert trajectories.shape == (S, T + 1, 1, N)
    return trajectories


def conv(seed=1, channels_out=1, kernel=3):
    return eqx.nn.Conv1d(
        1, channels_out, kernel, padding="SAME", padding_mode="CIRCULAR",
        key=jr.PRNGKey(seed),
    )


def params_of(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def assert_models_equal(a, b, rtol=0.0, atol=0.0):
    la, lb = params_of(a), params_of(b)
    assert len(la) == len(lb) > 0
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def models_differ(a, b):
    return any(
        not np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(params_of(a), params_of(b))
    )


def trainer_for(data, configuration=None, optimizer=None, steps=20, batch_size=4, **kw):
    kw.setdefault("progress_bar", False)
    return tx.GeneralTrainer(
        data,
        tx.configuration.Supervised(2) if configuration is None else configuration,
        optax.adam(1e-2) if optimizer is None else optimizer,
        steps,
        batch_size,
        **kw,
    )


def stage_key(key, stage=0):
    """The key a stage permutes with: the trainer's key itself for the first
    stage, `fold_in(key, stage)` for the later ones."""
    return key if stage == 0 else jr.fold_in(key, stage)


def hand_stream(key, num_items, batch_size, num_steps):
    """The minibatch indices of the first `num_steps` steps, by the documented
    rule: epoch `e` visits `permutation(k_e, n)` with `k_{e+1} = split(k_e)[0]`,
    `batch_size` at a time, the last minibatch of an epoch the remainder."""
    batches, epoch_key = [], key
    while len(batches) < num_steps:
        order = np.asarray(jr.permutation(epoch_key, num_items))
        batches += [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
        epoch_key = jr.split(epoch_key)[0]
    return batches[:num_steps]


def first_batches(data, configuration, batch_size, key, num_steps, stage=0):
    """The minibatches a trainer draws in its first `num_steps` steps of a stage."""
    windows = tx.trainer.substack_trajectories(data, configuration.window_length)
    draws = hand_stream(stage_key(key, stage), windows.shape[0], batch_size, num_steps)
    return [windows[jnp.asarray(indices)] for indices in draws]


def loss_of(configuration, model, batch, **kwargs):
    return float(eqx.filter_jit(lambda m, b: configuration(m, b, **kwargs))(model, batch))


# --------------------------------------------------------------------------
# substack_trajectories and TrajectorySubStacker
# --------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 3, T + 1])
def test_substack_shape_and_content(data, window):
    stacked = tx.trainer.substack_trajectories(data, window)
    n = T + 2 - window
    assert stacked.shape == (S * n, window, 1, N)
    stacked, trajectories = np.asarray(stacked), np.asarray(data)
    for i in range(S * n):
        np.testing.assert_array_equal(
            stacked[i], trajectories[i // n, i % n : i % n + window]
        )


def test_substacker_matches_substacked(data):
    window = 4
    stacked = tx.trainer.substack_trajectories(data, window)
    substacker = tx.TrajectorySubStacker(data, window)
    assert substacker.num_windows == stacked.shape[0] == S * (T + 2 - window)
    assert substacker.windows_per_sample == T + 2 - window
    indices = jr.randint(jr.PRNGKey(3), (25,), 0, substacker.num_windows)
    np.testing.assert_array_equal(substacker(indices), stacked[indices])
    np.testing.assert_array_equal(
        jax.jit(substacker.__call__)(indices), stacked[indices]
    )
    np.testing.assert_array_equal(substacker.all(), stacked)


def test_substack_window_too_long(data):
    with pytest.raises(ValueError, match="windows of 13"):
        tx.trainer.substack_trajectories(data, T + 2)
    with pytest.raises(ValueError, match="windows of 13"):
        tx.TrajectorySubStacker(data, T + 2)
    with pytest.raises(ValueError, match="window"):
        tx.trainer.substack_trajectories(data, 0)
    with pytest.raises(ValueError, match="shape"):
        tx.trainer.substack_trajectories(data[0, 0], 1)


# --------------------------------------------------------------------------
# PermutationMixer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_samples, batch_size", [(10, 5), (10, 3), (7, 7), (9, 1), (7, 4)]
)
def test_mixer_every_sample_once_per_epoch(num_samples, batch_size):
    mixer = tx.PermutationMixer(num_samples, batch_size, key=jr.PRNGKey(0))
    per_epoch = math.ceil(num_samples / batch_size)
    assert mixer.steps_per_epoch == per_epoch
    # full minibatches, then the remainder (never filled from the next epoch)
    sizes = [batch_size] * (num_samples // batch_size)
    if num_samples % batch_size:
        sizes.append(num_samples % batch_size)
    epochs = []
    for epoch in range(3):
        steps = range(epoch * per_epoch, (epoch + 1) * per_epoch)
        draws = [np.asarray(mixer(step)) for step in steps]
        assert [len(d) for d in draws] == sizes
        assert [mixer.batch_size_at(step) for step in steps] == sizes
        epochs.append(np.concatenate(draws))
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(num_samples))
    if num_samples > 2:  # shuffled, and differently in different epochs
        assert any(not np.array_equal(e, np.arange(num_samples)) for e in epochs)
        assert any(not np.array_equal(e, epochs[0]) for e in epochs[1:])


def test_mixer_chunk_equals_single_draws():
    mixer = tx.PermutationMixer(10, 3, key=jr.PRNGKey(1))  # epochs of 3, 3, 3, 1
    for start, k in [(0, 3), (4, 3), (5, 2), (3, 1), (7, 1), (9, 2), (100, 3)]:
        expected = np.stack([np.asarray(mixer(i)) for i in range(start, start + k)])
        np.testing.assert_array_equal(mixer.chunk(start, k), expected)
    # a chunk never mixes the epoch's smaller last minibatch with full ones
    for start, k in [(0, 4), (2, 2), (3, 2), (2, 30)]:
        with pytest.raises(ValueError, match="different sizes"):
            mixer.chunk(start, k)
    # the stream is epoch-wise: step 3 is the remainder (position 9 alone) and
    # step 4 starts the next epoch's permutation
    epoch0 = np.concatenate([np.asarray(mixer(i)) for i in range(4)])
    epoch1 = np.concatenate([np.asarray(mixer(i)) for i in range(4, 8)])
    np.testing.assert_array_equal(mixer(3), epoch0[9:])
    np.testing.assert_array_equal(mixer(4), epoch1[:3])
    np.testing.assert_array_equal(np.sort(epoch0), np.arange(10))
    np.testing.assert_array_equal(mixer.permutation(0), epoch0)
    np.testing.assert_array_equal(mixer.permutation(1), epoch1)
    # draws far ahead (other epochs cached meanwhile) and back stay the same
    late = np.asarray(mixer.chunk(100, 3)).copy()
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(mixer(i)) for i in range(4)]), epoch0
    )
    np.testing.assert_array_equal(mixer.chunk(100, 3), late)


@pytest.mark.parametrize("float64", [False, True])
def test_mixer_draws_are_not_views_of_its_cache(float64, request):
    """Writing into what the mixer returns (where NumPy allows it) changes no
    later draw."""
    if float64:
        request.getfixturevalue("x64")
    mixer = tx.PermutationMixer(10, 3, key=jr.PRNGKey(1))
    stream = np.concatenate([np.asarray(mixer(i)).copy() for i in range(8)])
    for returned in (mixer.chunk(0, 3), mixer(0), mixer(3), mixer.permutation(1)):
        try:
            returned[...] = -1
        except ValueError:  # read-only: fine as well
            pass
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(mixer(i)) for i in range(8)]), stream
    )


def test_mixer_key_determines_stream():
    a = tx.PermutationMixer(20, 4, key=jr.PRNGKey(0)).chunk(0, 10)
    b = tx.PermutationMixer(20, 4, key=jr.PRNGKey(0)).chunk(0, 10)
    c = tx.PermutationMixer(20, 4, key=jr.PRNGKey(1)).chunk(0, 10)
    typed = tx.PermutationMixer(20, 4, key=jr.key(0)).chunk(0, 10)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, typed)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("num_samples, batch_size", [(12, 4), (10, 3)])
def test_mixer_stream_does_not_depend_on_blocks_or_look_ahead(num_samples, batch_size):
    """Blocks of epochs drawn at once, the next block drawn ahead, a jump that
    skips blocks (the key chain walked alone) and the full-minibatch fast path
    of `chunk` all give the stream of single draws from one-epoch blocks."""
    key = jr.PRNGKey(5)
    reference = tx.PermutationMixer(num_samples, batch_size, key=key, epochs_per_draw=1)
    steps = 13 * reference.steps_per_epoch
    stream = [np.asarray(reference(i)) for i in range(steps)]
    for kw in [dict(epochs_per_draw=3), dict(epochs_per_draw=3, num_epochs=13),
               dict(epochs_per_draw=4, num_epochs=2)]:
        mixer = tx.PermutationMixer(num_samples, batch_size, key=key, **kw)
        late = 10 * mixer.steps_per_epoch + 1  # blocks 0-2 never drawn
        np.testing.assert_array_equal(mixer(late), stream[late])
        if num_samples % batch_size == 0:  # a chunk across two block edges
            np.testing.assert_array_equal(mixer.chunk(1, steps - 2), np.stack(stream[1:-1]))
        for i in range(steps):
            np.testing.assert_array_equal(mixer(i), stream[i])
        # a block edge is where the next block of epochs starts
        edge = mixer.block_end(0)
        assert edge == mixer._block * mixer.steps_per_epoch
        assert mixer.block_end(edge - 1) == edge and mixer.block_end(edge) == 2 * edge


def test_mixer_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        tx.PermutationMixer(5, 6, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="batch_size"):
        tx.PermutationMixer(5, 0, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="num_samples"):
        tx.PermutationMixer(0, 1, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="num_epochs"):
        tx.PermutationMixer(5, 1, key=jr.PRNGKey(0), num_epochs=0)


# --------------------------------------------------------------------------
# What a trainer computes
# --------------------------------------------------------------------------


def test_loss_history_records_each_step(data):
    config = tx.configuration.Supervised(2)
    key = jr.PRNGKey(0)
    model = conv()
    trainer = trainer_for(data, config, steps=20, batch_size=4)
    trained, history = trainer(model, key)
    assert isinstance(history, np.ndarray)
    assert history.shape == (20,)
    assert np.all(np.isfinite(history))
    batch0 = first_batches(data, config, 4, key, 1)[0]
    assert batch0.shape == (4, 3, 1, N)
    assert history[0] == pytest.approx(loss_of(config, model, batch0), rel=1e-5)
    # Adam at 1e-2 on this easy problem: later losses are clearly lower
    assert history[-5:].mean() < history[:5].mean()
    assert models_differ(trained, model)
    # the input model is left intact (no donated buffers)
    assert np.isfinite(np.asarray(model.weight)).all()
    # return_loss_history=False returns the model alone (the same one)
    alone = trainer(model, key, return_loss_history=False)
    assert isinstance(alone, eqx.nn.Conv1d)
    assert_models_equal(alone, trained)


def test_one_sgd_step_equals_hand_update(data):
    config = tx.configuration.Supervised(2)
    key = jr.PRNGKey(5)
    model = conv()
    trained, history = trainer_for(data, config, optax.sgd(0.1), steps=1, batch_size=4)(
        model, key
    )
    (batch,) = first_batches(data, config, 4, key, 1)
    loss, grads = eqx.filter_value_and_grad(lambda m: config(m, batch))(model)
    expected = eqx.apply_updates(model, jax.tree_util.tree_map(lambda g: -0.1 * g, grads))
    assert history[0] == pytest.approx(float(loss), rel=1e-5)
    assert_models_equal(trained, expected, rtol=1e-5, atol=1e-7)
    assert models_differ(trained, model)


def test_adam_steps_across_chunks_equal_hand_loop(data):
    """Seven Adam steps in chunks of 2 across an epoch boundary: the 66 windows
    make epochs of 16, 16, 16, 16 and a last minibatch of 2 (step 4); optimizer
    state and draws carry over."""
    config = tx.configuration.Supervised(1)
    key = jr.PRNGKey(2)
    optimizer = optax.adam(3e-2)
    model = conv()
    trained, history = trainer_for(data, config, optimizer, steps=7, batch_size=16,
                                   chunk_size=2)(model, key)
    params = eqx.filter(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(lambda m, b: config(m, b)))
    hand_model, hand_losses = model, []
    batches = first_batches(data, config, 16, key, 7)
    assert [b.shape[0] for b in batches] == [16, 16, 16, 16, 2, 16, 16]
    for batch in batches:
        loss, grads = value_and_grad(hand_model, batch)
        updates, opt_state = optimizer.update(
            grads, opt_state, eqx.filter(hand_model, eqx.is_inexact_array)
        )
        hand_model = eqx.apply_updates(hand_model, updates)
        hand_losses.append(float(loss))
    np.testing.assert_allclose(history, hand_losses, rtol=1e-5)
    assert_models_equal(trained, hand_model, rtol=1e-5, atol=1e-7)


def test_determinism_key_and_chunk_size(data):
    model = conv()
    trainer = trainer_for(data, steps=30)
    a, ha = trainer(model, jr.PRNGKey(0))
    # again, with a keyword key of the new-style typed kind: the same stream
    b, hb = trainer(model, key=jr.key(0))
    assert_models_equal(a, b)
    np.testing.assert_array_equal(ha, hb)
    # chunking does not change the result
    chunked = trainer_for(data, steps=30, chunk_size=7)
    c, hc = chunked(model, jr.PRNGKey(0))
    assert_models_equal(a, c, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ha, hc, rtol=1e-6)
    # another key draws other minibatches
    d, hd = trainer(model, jr.PRNGKey(1))
    assert models_differ(a, d)
    assert not np.array_equal(ha, hd)
    # back to the first key (the trainer drew key 1's permutations meanwhile):
    # the first key's stream again
    g, hg = trainer(model, jr.PRNGKey(0))
    assert_models_equal(a, g)
    np.testing.assert_array_equal(ha, hg)
    # another model of the same kind through both (reused) trainers
    e, he = trainer(conv(seed=2), jr.PRNGKey(0))
    f, hf = chunked(conv(seed=2), jr.PRNGKey(0))
    assert models_differ(a, e)
    assert_models_equal(e, f, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(he, hf, rtol=1e-6)


def test_trainer_reused_with_another_architecture(data):
    config = tx.configuration.Supervised(2)
    key = jr.PRNGKey(0)
    trainer = trainer_for(data, config, steps=5)
    trainer(conv(), key)
    wide = conv(kernel=5)
    trained, history = trainer(wide, key)
    assert trained.weight.shape == (1, 1, 5)
    assert models_differ(trained, wide)
    (batch,) = first_batches(data, config, 4, key, 1)
    assert history[0] == pytest.approx(loss_of(config, wide, batch), rel=1e-5)


def test_host_data_memmap_matches_device_data(data, tmp_path):
    memmap = np.lib.format.open_memmap(
        tmp_path / "data.npy", mode="w+", dtype=np.float32, shape=data.shape
    )
    memmap[:] = np.asarray(data)
    memmap.flush()
    windows = tx.trainer.substack_trajectories(data, 3)
    from trainax.trainer._substack import HostSubStacker  # not exported

    host = HostSubStacker(memmap, 3)
    assert host.num_windows == windows.shape[0]
    indices = np.array([[0, 5], [59, 17]])  # any leading shape
    np.testing.assert_array_equal(host(indices), np.asarray(windows)[indices])
    model, key = conv(), jr.PRNGKey(0)
    on_host = trainer_for(memmap, steps=20, chunk_size=7,
                          callback_fn=tx.callback.Loss(every=10))
    assert on_host.host_data
    a, ha, callback_history = on_host(model, key)
    b, hb = trainer_for(data, steps=20, chunk_size=7)(model, key)
    assert not trainer_for(data).host_data
    assert_models_equal(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ha, hb, rtol=1e-6)
    assert [s for s, _ in callback_history] == [0, 10, 20]
    assert callback_history[0][1] == pytest.approx(float(ha[0]), rel=1e-5)
    assert callback_history[1][1] == pytest.approx(float(ha[10]), rel=1e-5)


def test_key_is_required_and_checked(data):
    trainer = trainer_for(data, steps=2)
    with pytest.raises(TypeError, match="key"):
        trainer(conv())
    with pytest.raises(TypeError, match="key"):
        trainer(conv(), jnp.zeros(2))  # float, not a PRNG key


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_model_of_wrong_shape(data):
    trainer = trainer_for(data, steps=2)
    with pytest.raises(ValueError, match="`model`"):
        trainer(conv(channels_out=2), jr.PRNGKey(0))
    unpadded = eqx.nn.Conv1d(1, 1, 3, key=jr.PRNGKey(0))  # maps N to N - 2
    with pytest.raises(ValueError, match="`model`"):
        trainer(unpadded, jr.PRNGKey(0))


def test_window_too_short(data):
    with pytest.raises(ValueError, match="windows of 13"):
        trainer_for(data, tx.configuration.Supervised(T + 1))
    with pytest.raises(ValueError, match="windows of 13"):
        trainer_for(data, tx.configuration.MixChainPostPhysics(T, 1),
                    ref_stepper=lambda u: u)
    with pytest.raises(ValueError, match="windows of 13"):
        tx.trainer.SupervisedTrainer(data, optimizer=optax.adam(1e-3),
                                     num_training_steps=2, batch_size=2,
                                     num_rollout_steps=T + 1)


def test_missing_ref_stepper_and_residuum_fn(data, stepper):
    for config in [tx.configuration.DivertedChain(2, 1),
                   tx.configuration.DivertedChainBranchOne(2),
                   tx.configuration.MixChainPostPhysics(2, 1)]:
        with pytest.raises(ValueError, match="ref_stepper"):
            trainer_for(data, config)
    with pytest.raises(ValueError, match="residuum_fn"):
        trainer_for(data, tx.configuration.Residuum(2))
    with pytest.raises(ValueError, match="residuum_fn"):
        trainer_for(data, tx.configuration.Supervised(1) + tx.configuration.Residuum(1))
    common = dict(optimizer=optax.adam(1e-3), num_training_steps=2, batch_size=2)
    with pytest.raises(TypeError, match="ref_stepper"):
        tx.trainer.DivertedChainTrainer(data, **common)
    with pytest.raises(ValueError, match="ref_stepper"):
        tx.trainer.DivertedChainTrainer(data, ref_stepper=None, **common)
    with pytest.raises(ValueError, match="ref_stepper"):
        tx.trainer.MixChainPostPhysicsTrainer(data, ref_stepper=None, **common)
    with pytest.raises(ValueError, match="residuum_fn"):
        tx.trainer.ResiduumTrainer(data, residuum_fn=None, **common)
    with pytest.raises(TypeError, match="num_branch_steps"):
        tx.trainer.DivertedChainBranchOneTrainer(
            data, ref_stepper=stepper, num_branch_steps=2, **common
        )
    # a reference stepper that changes the state's shape
    with pytest.raises(ValueError, match="ref_stepper"):
        trainer_for(data, tx.configuration.DivertedChain(2, 1),
                    ref_stepper=lambda u: u[:, :-1])


def test_batch_size_larger_than_windows(data):
    """More than there are windows: full batch, with a warning naming the size."""
    # Supervised(1): S * (T+1 - 1) = 66 windows; DivertedChain: S * (T+1) = 72
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly the number of windows: silent
        trainer_for(data, tx.configuration.Supervised(1), batch_size=66)
        trainer_for(data, tx.configuration.DivertedChain(2, 1), batch_size=72,
                    ref_stepper=lambda u: u)
    with pytest.warns(UserWarning, match=r"`batch_size` \(67\).*66.*full batch"):
        trainer_for(data, tx.configuration.Supervised(1), batch_size=67)
    with pytest.warns(UserWarning, match=r"`batch_size` \(73\).*72.*full batch"):
        trainer_for(data, tx.configuration.DivertedChain(2, 1), batch_size=73,
                    ref_stepper=lambda u: u)
    # a named trainer cuts windows of num_rollout_steps + 1 = 3: S * (T+2-3) = 60
    with pytest.warns(UserWarning, match=r"`batch_size` \(61\).*60.*full batch"):
        tx.trainer.DivertedChainTrainer(
            data, ref_stepper=lambda u: u, optimizer=optax.adam(1e-3),
            num_training_steps=2, batch_size=61, num_rollout_steps=2,
        )
    with pytest.raises(ValueError, match="batch_size"):
        trainer_for(data, batch_size=0)


def test_bad_trainer_arguments(data):
    for bad in [0, -3]:
        with pytest.raises(ValueError, match="num_training_steps"):
            trainer_for(data, steps=bad)
    for bad in [2.5, None, True]:
        with pytest.raises(TypeError, match="num_training_steps"):
            trainer_for(data, steps=bad)
    with pytest.raises(TypeError, match="optimizer"):
        trainer_for(data, optimizer=optax.adam)  # the factory, not a transformation
    with pytest.raises(TypeError, match="optimizer"):
        trainer_for(data, optimizer="adam")
    with pytest.raises(TypeError, match="configuration"):
        trainer_for(data, configuration=tx.loss.MSELoss())
    with pytest.raises(ValueError, match="nan_policy"):
        trainer_for(data, nan_policy="ignore")
    with pytest.raises(ValueError, match="chunk_size"):
        trainer_for(data, chunk_size=0)
    with pytest.raises(ValueError, match="checkpoint_path"):
        trainer_for(data, checkpoint_every=5)
    with pytest.raises(TypeError, match="callback_fn"):
        trainer_for(data, callback_fn=3)
    with pytest.raises(TypeError, match="trajectories"):
        trainer_for(jnp.ones((S, T + 1, 1, N), dtype=jnp.int32))


# --------------------------------------------------------------------------
# Non-finite losses
# --------------------------------------------------------------------------


def _nan_data_and_first_step(data, key, batch_size):
    """Trajectories with one NaN value, and the first step whose batch sees it."""
    bad = np.array(data)
    bad[3, 7] = np.nan  # sample 3, level 7: windows starting at 6 and 7 (W = 2)
    n = T  # windows per sample for W = 2
    poisoned = {3 * n + 6, 3 * n + 7}
    draws = hand_stream(key, S * n, batch_size, 50)
    first = next(i for i, draw in enumerate(draws) if poisoned & set(draw.tolist()))
    return jnp.asarray(bad), first


def test_nan_loss_raises_at_first_bad_step(data):
    key = jr.PRNGKey(5)
    bad, first = _nan_data_and_first_step(data, key, 4)
    # inside a chunk of 3 steps, after the first chunks
    assert first >= 3 and first % 3 != 0
    trainer = trainer_for(bad, tx.configuration.Supervised(1), steps=first + 10,
                          chunk_size=3)
    with pytest.raises(tx.trainer.NonFiniteLossError, match=f"step {first}") as info:
        trainer(conv(), key)
    assert info.value.step == first
    assert isinstance(info.value, FloatingPointError)


def test_nan_policy_continue_warns_and_finishes(data):
    key = jr.PRNGKey(5)
    bad, first = _nan_data_and_first_step(data, key, 4)
    trainer = trainer_for(bad, tx.configuration.Supervised(1), steps=first + 10,
                          chunk_size=3, nan_policy="continue")
    with pytest.warns(RuntimeWarning) as record:
        _, history = trainer(conv(), key)
    assert f"step {first}" in str(record[0].message)
    assert history.shape == (first + 10,)
    assert np.all(np.isfinite(history[:first]))
    assert np.isnan(history[first])


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


class _InterruptAt(tx.callback.BaseCallback):
    every: int

    def __call__(self, step, model, context):
        if step == self.every:
            raise KeyboardInterrupt


def test_checkpoint_resume_matches_uninterrupted_run(data, tmp_path):
    model = conv()
    key = jr.PRNGKey(4)
    path_a, path_b = tmp_path / "a.eqx", tmp_path / "b.eqx"
    full, history = trainer_for(
        data, steps=60, chunk_size=100, checkpoint_path=path_a, checkpoint_every=20
    )(model, key)
    assert path_a.exists()

    # an interrupted run: the checkpoint of step 40 is written, then it stops
    interrupted = trainer_for(
        data, steps=60, chunk_size=100, checkpoint_path=path_b, checkpoint_every=20,
        callback_fn=_InterruptAt(every=40),
    )
    with pytest.raises(KeyboardInterrupt):
        interrupted(model, key)
    assert path_b.exists()
    assert not list(tmp_path.glob("*.tmp"))

    # resume from another initial model and no key: all state comes from the file
    resumer = trainer_for(data, steps=60, chunk_size=100, checkpoint_path=path_b,
                          checkpoint_every=20)
    resumed, resumed_history = resumer(conv(seed=9), resume_from=path_b)
    assert_models_equal(resumed, full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed_history, history, rtol=1e-6)
    np.testing.assert_array_equal(resumed_history[:40], history[:40])

    # resuming a finished run does nothing more
    again, again_history = resumer(conv(seed=9), resume_from=path_a)
    assert_models_equal(again, full)
    np.testing.assert_array_equal(again_history, history)


def test_resume_errors(data, tmp_path):
    trainer = trainer_for(data, steps=3, checkpoint_path=tmp_path / "c.eqx")
    with pytest.raises(FileNotFoundError, match="resume_from"):
        trainer(conv(), jr.PRNGKey(0), resume_from=tmp_path / "missing.eqx")
    trainer(conv(), jr.PRNGKey(0))  # writes the final checkpoint
    assert (tmp_path / "c.eqx").exists()
    with pytest.raises(ValueError, match="resume_from"):
        trainer(conv(kernel=5), jr.PRNGKey(0), resume_from=tmp_path / "c.eqx")


# --------------------------------------------------------------------------
# Curriculum
# --------------------------------------------------------------------------


def test_curriculum_rollout(data):
    key = jr.PRNGKey(0)
    model = conv()
    curriculum = tx.trainer.Curriculum.rollout([1, 2, 3], steps_per_stage=10)
    assert curriculum.num_training_steps == 30
    assert [c.num_rollout_steps for c, _ in curriculum.stages] == [1, 2, 3]
    trainer = tx.GeneralTrainer(
        data, curriculum, optax.adam(1e-2), None, 4, progress_bar=False,
        callback_fn=tx.callback.GetNetwork(every=10),
    )
    assert trainer.num_training_steps == 30
    trained, history, networks = trainer(model, key)
    assert history.shape == (30,)
    assert np.all(np.isfinite(history))
    assert [s for s, _ in networks] == [0, 10, 20, 30]
    assert_models_equal(networks[-1][1], trained)
    # stage 0 draws with the key itself, stage k > 0 with the key folded with k,
    # each with its own rollout
    for stage, (step, net) in enumerate(networks[:3]):
        config = tx.configuration.Supervised(stage + 1)
        (batch,) = first_batches(data, config, 4, key, 1, stage=stage)
        assert history[step] == pytest.approx(loss_of(config, net, batch), rel=1e-5)

    # the total must match
    tx.GeneralTrainer(data, curriculum, optax.adam(1e-2), 30, 4)
    with pytest.raises(ValueError, match="num_training_steps"):
        tx.GeneralTrainer(data, curriculum, optax.adam(1e-2), 31, 4)
    with pytest.raises(ValueError, match="steps_per_stage"):
        tx.trainer.Curriculum.rollout([1, 2, 3], steps_per_stage=[10, 10])
    with pytest.raises(ValueError, match="stages"):
        tx.trainer.Curriculum([])
    with pytest.raises(ValueError, match="num_steps"):
        tx.trainer.Curriculum([(tx.configuration.Supervised(1), 0)])
    # every stage is checked against the data
    with pytest.raises(ValueError, match="windows of 13"):
        tx.GeneralTrainer(data, tx.trainer.Curriculum.rollout([1, 12], 5),
                          optax.adam(1e-2), None, 4)


# --------------------------------------------------------------------------
# The named trainers learn the advection stencil
# --------------------------------------------------------------------------


def _named_trainer(name, data, stepper):
    common = dict(optimizer=optax.adam(1e-2), num_training_steps=200, batch_size=8,
                  num_rollout_steps=2, progress_bar=False)
    if name == "supervised":
        return tx.trainer.SupervisedTrainer(data, **common), tx.configuration.Supervised
    if name == "diverted":
        return (tx.trainer.DivertedChainTrainer(data, ref_stepper=stepper,
                                                num_branch_steps=2, **common),
                tx.configuration.DivertedChain)
    if name == "diverted_one":
        return (tx.trainer.DivertedChainBranchOneTrainer(data, ref_stepper=stepper,
                                                         **common),
                tx.configuration.DivertedChainBranchOne)
    if name == "mix":
        return (tx.trainer.MixChainPostPhysicsTrainer(data, ref_stepper=stepper,
                                                      **common),
                tx.configuration.MixChainPostPhysics)
    if name == "residuum":
        def residuum_fn(u_next, u_prev):
            return u_next - jax.vmap(stepper)(u_prev)

        return (tx.trainer.ResiduumTrainer(data, residuum_fn=residuum_fn, **common),
                tx.configuration.Residuum)
    raise AssertionError(name)


@pytest.fixture(scope="module")
def named_run(data, stepper):
    """Train with a named trainer once per module (and xdist worker)."""
    runs = {}

    def get(name):
        if name not in runs:
            trainer, config_type = _named_trainer(name, data, stepper)
            model = conv()
            trained, history = trainer(model, jr.PRNGKey(0))
            runs[name] = trainer, config_type, model, trained, history
        return runs[name]

    return get


@pytest.mark.parametrize(
    "name", ["supervised", "diverted", "diverted_one", "mix", "residuum"]
)
def test_named_trainers_learn(name, named_run, stepper):
    trainer, config_type, model, trained, history = named_run(name)
    ((config, steps),) = trainer.stages
    assert isinstance(config, config_type)
    assert steps == 200 and config.num_rollout_steps == 2
    if name == "diverted_one":
        assert config.as_diverted_chain().num_branch_steps == 1
    # every named trainer cuts windows of num_rollout_steps + 1 = 3 levels (the
    # mix chain of 3 + 1 post-physics = 4), also those that use one state
    window = 4 if name == "mix" else 3
    assert trainer.source.num_items(config) == S * (T + 2 - window)
    assert history.shape == (200,)
    assert np.all(np.isfinite(history))
    assert history[-10:].mean() < history[:10].mean() / 100
    # the learned one-step map is close to the advection solver on fresh states
    fresh = _make_data(stepper, jr.PRNGKey(11), num_samples=4)[:, 0]
    error = jnp.mean((jax.vmap(trained)(fresh) - jax.vmap(stepper)(fresh)) ** 2)
    before = jnp.mean((jax.vmap(model)(fresh) - jax.vmap(stepper)(fresh)) ** 2)
    assert error < before / 100


def test_residuum_of_solver_step_equals_branch_one_chain(named_run):
    """With residuum u_next - P(u_prev) and MSE, Residuum is the one-step diverted
    chain: both read only the windows' first state and draw the same windows."""
    *_, trained_r, history_r = named_run("residuum")
    *_, trained_d, history_d = named_run("diverted_one")
    np.testing.assert_allclose(history_r, history_d, rtol=1e-4)
    assert_models_equal(trained_r, trained_d, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("num_samples", [1, 7, 1900, 70_000])
def test_mixer_permutations_are_jax_permutations_for_every_round_count(num_samples):
    # 0, 1, 1 and 2 sorting rounds inside jax.random.permutation: the mixer
    # sorts the same random words on the host and must agree exactly
    key = jr.PRNGKey(11)
    mixer = tx.PermutationMixer(num_samples, 1, key=key, epochs_per_draw=2)
    for epoch in range(5):  # across blocks of 2 epochs
        np.testing.assert_array_equal(
            mixer.permutation(epoch), np.asarray(jr.permutation(key, num_samples)))
        key = jr.split(key)[0]
