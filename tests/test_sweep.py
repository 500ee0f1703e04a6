"""Tests of the best-model callback and the data-scaling sweep."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx


class Scale(eqx.Module):
    """u -> w u: one weight, so the path of training is known."""

    w: jax.Array

    def __call__(self, u):
        return self.w * u


def _pairs(factor, num=16, seed=0):
    inputs = jr.normal(jr.PRNGKey(seed), (num, 1, 8))
    return inputs, factor * inputs


# --------------------------------------------------------------------------
# BestModel: the model of the best step, not of the last
# --------------------------------------------------------------------------


def test_best_model_keeps_the_best_step_not_the_last():
    # training pulls w from 1 to 2; the held-out set is best at w = 1.5, which
    # training passes half way: the best step is neither the first nor the last
    train, held_out = _pairs(2.0), _pairs(1.5, seed=1)
    best = tx.callback.BestModel(every=1, data=held_out)
    everything = tx.callback.CompositeCallback([best, tx.callback.GetNetwork(every=1)])
    trainer = tx.GeneralTrainer(tx.Samples(train), tx.configuration.OperatorLearning(),
                                optax.sgd(0.05), 40, 16, callback_fn=everything,
                                progress_bar=False, chunk_size=7)
    last, _, history = trainer(Scale(jnp.array(1.0)), jr.PRNGKey(0))
    steps = [s for s, _ in history]
    scores = np.array([out["best_model"] for _, out in history])
    weights = np.array([float(out["network"].w) for _, out in history])
    # the score is the relative L2 error on the held-out pairs: |w - 1.5| / 1.5
    np.testing.assert_allclose(scores, np.abs(weights - 1.5) / 1.5, rtol=1e-5, atol=1e-6)
    i = int(np.argmin(scores))
    assert 0 < i < len(steps) - 1
    assert best.best_step == steps[i] and best.best_value == pytest.approx(scores[i])
    assert float(best.best_model.w) == weights[i]
    assert abs(float(last.w) - 1.5) > abs(float(best.best_model.w) - 1.5)
    best.reset()
    assert best.best_model is None and best.best_step is None


def test_best_model_with_a_metric_function_and_max_mode():
    values = iter([3.0, 5.0, float("nan"), 4.0])
    best = tx.callback.BestModel(every=1, data=None, metric=lambda m, d: next(values),
                                 mode="max")
    for step in range(4):
        best(step, Scale(jnp.array(float(step))), {})
    assert best.best_step == 1 and best.best_value == 5.0
    assert float(best.best_model.w) == 1.0


def test_best_model_bad_arguments():
    with pytest.raises(ValueError, match="`mode`"):
        tx.callback.BestModel(every=1, data=_pairs(1.0), mode="lowest")
    with pytest.raises(ValueError, match="`data` must be a pair"):
        tx.callback.BestModel(every=1, data=jnp.ones(3))
    with pytest.raises(TypeError, match="`metric`"):
        tx.callback.BestModel(every=1, data=_pairs(1.0), metric=3)


# --------------------------------------------------------------------------
# the data-scaling sweep
# --------------------------------------------------------------------------


def _task(factor, seed):
    (x, y), (xt, yt) = _pairs(factor, num=12, seed=seed), _pairs(factor, num=4, seed=seed + 50)
    return (x, y), (xt, yt)


TASKS = {"double": _task(2.0, 0), "triple": _task(3.0, 1)}


def _sweep(path, counter, rates=(0.2,), sizes=(4, 8), **kwargs):
    def make(key):
        counter["models"] += 1
        return Scale(jnp.array(1.0))

    def optimizer(rate, steps):
        counter["trainings"] += 1
        return optax.sgd(rate)

    return tx.trainer.data_scaling_sweep(
        TASKS, make, Scale(jnp.array(2.5)), list(sizes), list(rates),
        num_training_steps=30, batch_size=4, key=jr.PRNGKey(0),
        make_optimizer=optimizer, results_path=path, **kwargs,
    )


def test_sweep_rows_and_their_values(tmp_path):
    counter = {"models": 0, "trainings": 0}
    rows = _sweep(tmp_path / "sweep.json", counter)
    # per task: 1 zero-shot + 2 sizes x 2 inits x 1 rate
    assert len(rows) == 10 and counter["trainings"] == 8
    assert all(list(r) == ["task", "num_samples", "init", "learning_rate", "test_rel_l2"]
               for r in rows)
    zero = {r["task"]: r for r in rows if r["init"] == "zero-shot"}
    # w = 2.5 untrained: |2.5 - f| / f exactly
    assert zero["double"]["test_rel_l2"] == pytest.approx(0.25, rel=1e-5)
    assert zero["triple"]["test_rel_l2"] == pytest.approx(0.5 / 3, rel=1e-5)
    assert zero["double"]["num_samples"] == 0 and zero["double"]["learning_rate"] is None
    for row in rows:
        if row["init"] != "zero-shot":  # trained to the exact factor: tiny error
            assert row["test_rel_l2"] < 1e-3, row
    assert json.loads((tmp_path / "sweep.json").read_text()) == rows
    table = tx.trainer.sweep_table(rows)
    assert "double" in table and "zero-shot" in table and "25.00" in table


def test_a_finished_point_is_never_run_twice(tmp_path):
    path = tmp_path / "sweep.json"
    counter = {"models": 0, "trainings": 0}

    class Stop(Exception):
        pass

    def stop_after_three(row, seen=[]):
        seen.append(row)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        _sweep(path, counter, on_row=stop_after_three)
    assert len(json.loads(path.read_text())) == 3  # zero-shot + 2 trained points
    assert counter["trainings"] == 2
    counter["trainings"] = 0
    rows = _sweep(path, counter)
    assert counter["trainings"] == 6 and len(rows) == 10  # only the 6 missing ones
    first = json.loads(path.read_text())
    counter["trainings"] = 0
    again = _sweep(path, counter)
    assert counter["trainings"] == 0 and again == rows  # nothing left to run
    assert json.loads(path.read_text()) == first
    # a new learning rate runs only its own points
    more = _sweep(path, counter, rates=(0.2, 0.1))
    assert counter["trainings"] == 8 and len(more) == 18


def test_the_same_points_give_the_same_errors(tmp_path):
    a = _sweep(tmp_path / "a.json", {"models": 0, "trainings": 0}, rates=(0.001,))
    b = _sweep(None, {"models": 0, "trainings": 0}, rates=(0.001,))
    assert a == b


def test_best_over_learning_rates_and_plot(tmp_path):
    rows = [dict(task="a", num_samples=n, init=i, learning_rate=r, test_rel_l2=e)
            for n, i, r, e in ((8, "scratch", 1e-3, 0.5), (8, "scratch", 1e-2, 0.3),
                               (16, "scratch", 1e-2, 0.2), (8, "pretrained", 1e-2, 0.05),
                               (0, "zero-shot", None, 0.4))]
    best = tx.trainer.best_over_learning_rates(rows)
    assert [(r["init"], r["num_samples"], r["test_rel_l2"]) for r in best] == [
        ("scratch", 8, 0.3), ("scratch", 16, 0.2), ("pretrained", 8, 0.05),
        ("zero-shot", 0, 0.4)]
    pytest.importorskip("matplotlib")
    fig = tx.trainer.plot_sweep(rows, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "relative L2" in ax.get_ylabel()


def test_sweep_bad_input(tmp_path):
    counter = {"models": 0, "trainings": 0}
    with pytest.raises(ValueError, match="`num_samples` \\(64\\) exceeds"):
        _sweep(None, counter, sizes=(64,))
    with pytest.raises(ValueError, match="`inits`"):
        _sweep(None, counter, inits=("finetuned",))
    with pytest.raises(ValueError, match="`learning_rates`"):
        _sweep(None, counter, rates=(-1.0,))
    (tmp_path / "bad.json").write_text('{"not": "rows"}')
    with pytest.raises(ValueError, match="not a sweep results file"):
        _sweep(tmp_path / "bad.json", counter)
    with pytest.raises(ValueError, match="`pretrained` is None"):
        tx.trainer.data_scaling_sweep(TASKS, lambda k: Scale(jnp.array(1.0)), None, [4],
                                      [0.1], num_training_steps=1, batch_size=4,
                                      key=jr.PRNGKey(0))
