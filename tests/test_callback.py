"""Tests of the callbacks: schedules, values against hand computations, files."""

import equinox as eqx
import exponax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

S, T, N = 6, 11, 16
CB = tx.callback


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
    return _make_data(stepper, jr.PRNGKey(0))


@pytest.fixture(scope="module")
def validation(stepper):
    return _make_data(stepper, jr.PRNGKey(7), num_samples=3)


def conv(seed=1):
    return eqx.nn.Conv1d(
        1, 1, 3, padding="SAME", padding_mode="CIRCULAR", key=jr.PRNGKey(seed)
    )


def params_of(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def assert_models_equal(a, b, rtol=0.0, atol=0.0):
    la, lb = params_of(a), params_of(b)
    assert len(la) == len(lb) > 0
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def hand_stream(key, num_items, batch_size, num_steps):
    """The minibatch indices of the first `num_steps` steps of a trainer's first
    stage: epoch `e` visits `permutation(k_e, n)`, `k_0` the trainer's key and
    `k_{e+1} = split(k_e)[0]`, `batch_size` at a time (the last one smaller)."""
    batches, epoch_key = [], key
    while len(batches) < num_steps:
        order = np.asarray(jr.permutation(epoch_key, num_items))
        batches += [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
        epoch_key = jr.split(epoch_key)[0]
    return batches[:num_steps]


def draws(data, configuration, batch_size, key, steps):
    """The minibatches a single-stage trainer draws at `steps`."""
    windows = tx.trainer.substack_trajectories(data, configuration.window_length)
    stream = hand_stream(key, windows.shape[0], batch_size, max(steps) + 1)
    return [windows[jnp.asarray(stream[step])] for step in steps]


class Recorder(CB.BaseCallback):
    """Returns the step and how many losses the context holds."""

    every: int

    def __call__(self, step, model, context):
        return step, len(context.loss_history)


class Silent(CB.BaseCallback):
    every: int

    def __call__(self, step, model, context):
        return None


def run(data, callback, steps, chunk_size=100, key=jr.PRNGKey(0), model=None):
    trainer = tx.GeneralTrainer(
        data, tx.configuration.Supervised(1), optax.adam(1e-2), steps, 4,
        callback_fn=callback, chunk_size=chunk_size, progress_bar=False,
    )
    return trainer(conv() if model is None else model, key)


# --------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------


def test_schedule_final_step_multiple(data):
    _, history, callback_history = run(data, Recorder(10), 50, chunk_size=100)
    expected = [0, 10, 20, 30, 40, 50]
    assert [s for s, _ in callback_history] == expected
    # the output is what the callback returned; the context holds the past losses
    assert [out for _, out in callback_history] == [(s, s) for s in expected]
    assert history.shape == (50,)


def test_schedule_composite_and_none_outputs(data):
    """55 steps (not a multiple of 10), chunks of 7; Silent (every 5) returns None."""
    callback = CB.CompositeCallback([Recorder(10), Silent(5)])
    assert callback.every == 5
    _, history, callback_history = run(data, callback, 55, chunk_size=7)
    expected = [0, 10, 20, 30, 40, 50]
    assert [s for s, _ in callback_history] == expected
    assert [out for _, out in callback_history] == [{"Recorder": (s, s)} for s in expected]
    assert history.shape == (55,)


def test_plain_callable_runs_before_every_update(data):
    """A callable that is not a BaseCallback is called as fn(update_i, model,
    minibatch) before every update step; the history holds its outputs."""
    config, key, lr, steps = tx.configuration.Supervised(1), jr.PRNGKey(2), 0.1, 5
    calls = []

    def record(update_i, model, minibatch):
        calls.append((update_i, model, np.asarray(minibatch)))
        return 10 * update_i

    model = conv()
    trainer = tx.GeneralTrainer(data, config, optax.sgd(lr), steps, 16,
                                callback_fn=record, progress_bar=False)
    trained, history, callback_history = trainer(model, key)
    assert callback_history == [0, 10, 20, 30, 40]  # no call after the last update
    assert [update_i for update_i, _, _ in calls] == list(range(steps))
    # 66 windows in minibatches of 16: step 4 is the epoch's last one, of 2
    batches = draws(data, config, 16, key, range(steps))
    assert [b.shape[0] for b in batches] == [16, 16, 16, 16, 2]
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, b: config(m, b)))
    models = [m for _, m, _ in calls] + [trained]
    assert_models_equal(models[0], model)
    for i, batch in enumerate(batches):
        # the minibatch and the model before update i, then the update itself
        np.testing.assert_array_equal(calls[i][2], np.asarray(batch))
        hand = eqx.apply_updates(
            models[i], jax.tree_util.tree_map(lambda g: -lr * g, grad(models[i], batch))
        )
        assert_models_equal(models[i + 1], hand, rtol=1e-5, atol=1e-7)
    assert history.shape == (steps,)


# --------------------------------------------------------------------------
# One run with all the callbacks, checked against hand computations
# --------------------------------------------------------------------------


KEY = jr.PRNGKey(3)
STEPS = 20
CONFIG = tx.configuration.Supervised(1)


@pytest.fixture(scope="module")
def composite_run(data, validation, tmp_path_factory):
    folder = tmp_path_factory.mktemp("networks")
    fixed = tx.trainer.substack_trajectories(data[:2], 2)[:5]  # Loss(data=...) windows
    callback = CB.CompositeCallback(
        [
            CB.Loss(every=10),
            CB.Loss(every=10, data=fixed),
            CB.GradNorm(every=5),
            CB.WeightNorm(every=10),
            CB.GetNetwork(every=10),
            CB.ValidationRollout(every=20, trajectories=validation, num_rollout_steps=4),
            CB.SaveNetwork(every=10, path=str(folder / "net_{step}.eqx")),
        ]
    )
    assert callback.every == 5
    model = conv()
    trained, history, callback_history = run(data, callback, STEPS, key=KEY, model=model)
    return dict(
        model=model, trained=trained, history=history, outputs=dict(callback_history),
        steps=[s for s, _ in callback_history], fixed=fixed, folder=folder,
    )


def test_composite_keys_follow_each_schedule(composite_run):
    outputs = composite_run["outputs"]
    assert composite_run["steps"] == [0, 5, 10, 15, 20]
    every10 = {"loss", "loss_2", "grad_norm", "weight_norm", "network", "network_saved"}
    assert set(outputs[0]) == every10 | {"validation_rollout"}
    assert set(outputs[5]) == {"grad_norm"}
    assert set(outputs[10]) == every10
    assert set(outputs[15]) == {"grad_norm"}
    assert set(outputs[20]) == every10 | {"validation_rollout"}


def test_get_network(composite_run):
    outputs = composite_run["outputs"]
    assert_models_equal(outputs[0]["network"], composite_run["model"])
    assert_models_equal(outputs[20]["network"], composite_run["trained"])
    # every returned network is still readable (not a donated buffer) and distinct
    w0, w10, w20 = (np.asarray(outputs[s]["network"].weight) for s in (0, 10, 20))
    assert not np.array_equal(w0, w10) and not np.array_equal(w10, w20)


def test_loss_callback(composite_run, data):
    outputs, history = composite_run["outputs"], composite_run["history"]
    loss = eqx.filter_jit(lambda m, b: CONFIG(m, b))
    # default data: the minibatch drawn at that step
    (batch0,) = draws(data, CONFIG, 4, KEY, [0])
    assert outputs[0]["loss"] == pytest.approx(float(loss(composite_run["model"], batch0)),
                                               rel=1e-5)
    assert outputs[0]["loss"] == pytest.approx(float(history[0]), rel=1e-5)
    assert outputs[10]["loss"] == pytest.approx(float(history[10]), rel=1e-5)
    # given data
    fixed = composite_run["fixed"]
    for step in (0, 10, 20):
        net = outputs[step]["network"]
        assert outputs[step]["loss_2"] == pytest.approx(float(loss(net, fixed)), rel=1e-5)
    assert outputs[0]["loss_2"] != pytest.approx(outputs[0]["loss"], rel=1e-3)


def test_grad_norm_by_hand(composite_run, data):
    outputs = composite_run["outputs"]
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, b: CONFIG(m, b)))
    for step, batch in zip((0, 10, 20), draws(data, CONFIG, 4, KEY, (0, 10, 20))):
        net = outputs[step]["network"]
        grads = grad(net, batch)
        g = np.concatenate([np.ravel(x) for x in params_of(grads)]).astype(np.float64)
        hand = np.sqrt(np.sum(g**2))
        assert hand > 0
        assert outputs[step]["grad_norm"] == pytest.approx(hand, rel=1e-5)
        assert outputs[step]["grad_norm"] == pytest.approx(
            float(optax.tree.norm(eqx.filter(grads, eqx.is_inexact_array))), rel=1e-6
        )


def test_weight_norm_by_hand(composite_run):
    outputs = composite_run["outputs"]
    for step in (0, 10, 20):
        net = outputs[step]["network"]
        w = np.asarray(net.weight, np.float64)
        b = np.asarray(net.bias, np.float64)
        hand = np.sqrt(np.sum(w**2) + np.sum(b**2))
        assert outputs[step]["weight_norm"] == pytest.approx(hand, rel=1e-6)
    assert outputs[0]["weight_norm"] != pytest.approx(outputs[20]["weight_norm"])


def test_save_network(composite_run):
    outputs, folder = composite_run["outputs"], composite_run["folder"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "net_0.eqx", "net_10.eqx", "net_20.eqx"
    ]
    for step in (0, 10, 20):
        path = outputs[step]["network_saved"]
        assert path == str(folder / f"net_{step}.eqx")
        loaded = eqx.tree_deserialise_leaves(path, conv(seed=99))
        assert_models_equal(loaded, outputs[step]["network"])


def test_validation_rollout_in_training(composite_run, validation):
    # called directly (the rollout taxonomy's protocol) it returns {name: value}
    direct = CB.ValidationRollout(every=1, trajectories=validation, num_rollout_steps=4)(
        20, composite_run["trained"], None
    )["validation_rollout"]
    np.testing.assert_allclose(
        composite_run["outputs"][20]["validation_rollout"], direct, rtol=1e-6
    )


# --------------------------------------------------------------------------
# ValidationRollout by hand
# --------------------------------------------------------------------------


def test_validation_rollout_perfect_and_identity(stepper, validation):
    callback = CB.ValidationRollout(every=1, trajectories=validation)
    out = callback(0, stepper, None)
    assert list(out) == ["validation_rollout"]
    perfect = out["validation_rollout"]
    assert isinstance(perfect, np.ndarray)
    assert perfect.shape == (T,)
    assert np.all(perfect < 1e-10)

    short = CB.ValidationRollout(every=1, trajectories=validation, num_rollout_steps=5)
    identity = short(0, lambda u: u, None)["validation_rollout"]
    v = np.asarray(validation, np.float64)
    hand = [np.mean((v[:, 0] - v[:, t]) ** 2) for t in range(1, 6)]
    assert identity.shape == (5,)
    assert hand[0] > 1e-3  # the identity is visibly wrong
    np.testing.assert_allclose(identity, hand, rtol=1e-5)

    mae = CB.ValidationRollout(every=2, trajectories=validation, num_rollout_steps=2,
                               metric=tx.loss.MAELoss(), name="mae")
    hand_mae = [np.mean(np.abs(v[:, 0] - v[:, t])) for t in (1, 2)]
    np.testing.assert_allclose(mae(0, lambda u: u, None)["mae"], hand_mae, rtol=1e-5)
    assert mae(1, lambda u: u, None) == {"mae": None}  # off its schedule


# --------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------


def test_bad_inputs(validation, tmp_path):
    for every in (0, -1):
        with pytest.raises(ValueError, match="every"):
            CB.GetNetwork(every=every)
        with pytest.raises(ValueError, match="every"):
            CB.Loss(every=every)
    with pytest.raises(TypeError, match="every"):
        CB.WeightNorm(every=2.5)
    with pytest.raises(ValueError, match="path"):
        CB.SaveNetwork(every=1, path=str(tmp_path / "net.eqx"))
    with pytest.raises(ValueError, match="every"):
        CB.SaveNetwork(every=0, path=str(tmp_path / "net_{step}.eqx"))
    with pytest.raises(TypeError, match="callbacks"):
        CB.CompositeCallback([])
    with pytest.raises(TypeError, match="callbacks"):
        CB.CompositeCallback([lambda step, model, context: None])
    with pytest.raises(ValueError, match="num_rollout_steps"):
        CB.ValidationRollout(every=1, trajectories=validation, num_rollout_steps=T + 1)
    with pytest.raises(ValueError, match="num_rollout_steps"):
        CB.ValidationRollout(every=1, trajectories=validation, num_rollout_steps=0)
    with pytest.raises(ValueError, match="trajectories"):
        CB.ValidationRollout(every=1, trajectories=validation[0, 0])
    # repeated names are numbered
    composite = CB.CompositeCallback([CB.WeightNorm(every=2), CB.WeightNorm(every=3)])
    assert composite.names == ("weight_norm", "weight_norm_2")
    assert composite.every == 1
