"""Training DINo with the one trainer: AutoDecoding, AutoDecoder, the optimizers.

A trainer's update compiles once per trainer object, so the trainer tests
share one trainer and its two cached runs: 30 steps with a record at every
step, uninterrupted, and resumed from its checkpoint of step 10.
"""

from __future__ import annotations

import functools
import inspect
import re
import shutil
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx
from trainax.sample_data import _heat_wave as heat_wave

NUM_SAMPLES, NUM_FRAMES, N = 6, 3, 8
BATCH = 2


@functools.cache
def data():
    values, coords, times = heat_wave.heat_2d_periodic(
        num_samples=NUM_SAMPLES, num_points=N, num_frames=NUM_FRAMES, dt=0.2, nu=0.02,
        cutoff=2, key=jr.key(0),
    )
    mask = heat_wave.random_observation_mask(jr.key(1), N * N, 0.5)
    return values, coords, times, mask


def make_model(code_scale=0.3):
    decoder = tx.inr.FourierNet(2, hidden=8, code_dim=4, num_layers=2, input_scale=8.0,
                                key=jr.key(2))
    dynamics = tx.inr.LatentODE(4, width=8, depth=1, key=jr.key(3))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=NUM_SAMPLES,
                               num_frames=NUM_FRAMES)
    # random codes that decay in time: the dynamics have something to fit
    decay = jnp.exp(-data()[2])[:, None, None]
    codes = code_scale * jr.normal(jr.key(4), model.codes.shape[:1] + model.codes.shape[2:])
    codes = codes[:, None] * decay
    return eqx.tree_at(lambda m: m.codes, model, codes)


def configuration(**kwargs):
    _, coords, times, mask = data()
    return tx.configuration.AutoDecoding(coords, times, mask, **kwargs)


class Recorder(tx.callback.BaseCallback):
    """The model, the optimizer state and the batch's rows at every step; and
    a copy of the checkpoint written at step `keep`, to resume from."""

    keep: int = eqx.field(static=True)

    def __call__(self, step, model, context):
        if step == self.keep and not kept().exists():
            shutil.copyfile(checkpoint(), kept())
        return model, context.opt_state, context.indices


def trainer(num_steps, **kwargs):
    values = data()[0]
    return tx.GeneralTrainer(
        tx.Samples(values), configuration(), tx.inr.auto_decoder_optimizer(
            decoder=optax.adam(1e-2), dynamics=optax.adam(1e-2)),
        num_steps, BATCH, per_sample=lambda m: m.codes,
        per_sample_optimizer=optax.adam(1e-2), progress_bar=False, **kwargs,
    )


@functools.cache
def folder():
    return Path(tempfile.mkdtemp())


def checkpoint():
    return folder() / "dino.ckpt"


def kept():
    return folder() / "dino_step_10.ckpt"


@functools.cache
def runs():
    """30 steps with a record at every step, uninterrupted and resumed from step 10.

    One trainer: its update compiles once for both runs.
    """
    run = trainer(30, callback_fn=Recorder(every=1, keep=10), checkpoint_path=checkpoint(),
                  checkpoint_every=10)
    uninterrupted = run(make_model(), jr.key(5))
    resumed = run(make_model(), jr.key(5), resume_from=kept())
    return uninterrupted, resumed


def table_rows(opt_state):
    """The Adam moments of the codes in the row-sparse optimizer state."""
    adam = opt_state[1][0]
    return adam.mu.codes, adam.nu.codes


# The trainer --------------------------------------------------------------------------


def test_a_step_moves_only_the_batch_codes_and_their_moments():
    (_, _, history), _ = runs()
    assert [step for step, _ in history] == list(range(31))
    for (_, before), (_, after) in zip(history, history[1:]):
        model, state, rows = before
        next_model, next_state, _ = after
        outside = np.setdiff1d(np.arange(NUM_SAMPLES), np.asarray(rows))
        assert len(rows) == BATCH and len(outside) == NUM_SAMPLES - BATCH
        np.testing.assert_array_equal(next_model.codes[outside], model.codes[outside])
        for moment, next_moment in zip(table_rows(state), table_rows(next_state)):
            np.testing.assert_array_equal(next_moment[outside], moment[outside])
            assert not np.array_equal(next_moment[rows], moment[rows])
        for row in np.asarray(rows):
            assert not np.array_equal(next_model.codes[row], model.codes[row])
        # the decoder and the dynamics are dense: they move at every step
        assert not np.array_equal(next_model.decoder.output.weight, model.decoder.output.weight)
        assert not np.array_equal(next_model.dynamics.vector_field.layers[0].weight,
                                  model.dynamics.vector_field.layers[0].weight)
        assert float(next_model.step) == float(model.step) + 1


def test_short_training_lowers_both_losses():
    (trained, losses, _), _ = runs()
    values = data()[0]
    cfg, rows = configuration(), jnp.arange(NUM_SAMPLES)
    before = cfg.losses(make_model(), values, key=jr.key(6), indices=rows)
    after = cfg.losses(trained, values, key=jr.key(6), indices=rows)
    assert float(after[0]) < 0.7 * float(before[0])  # reconstruction
    assert float(after[1]) < 0.7 * float(before[1])  # dynamics
    assert float(trained.step) == 30.0
    assert np.all(np.isfinite(losses)) and losses[-5:].mean() < losses[:5].mean()


def test_resume_from_a_checkpoint_is_bit_identical():
    (uninterrupted, losses, _), (resumed, resumed_losses, history) = runs()
    assert history[0][0] == 10  # it did start from the checkpoint of step 10
    for a, b in zip(jax.tree_util.tree_leaves(uninterrupted),
                    jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, resumed_losses)
    # the counter, and with it the teacher-forcing schedule, came back too
    assert float(resumed.step) == 30.0


# The configuration ----------------------------------------------------------------------


def free_rollout_loss(model, rows):
    times = data()[2]
    truth = model.codes[rows]
    free = jax.vmap(lambda z: model.dynamics(z[0], times))(truth)
    return jnp.mean((free[:, 1:] - truth[:, 1:]) ** 2)


def test_teacher_forcing_zero_is_the_free_rollout():
    values, _, times, _ = data()
    model, rows = make_model(), jnp.array([4, 1, 3])
    batch = values[rows]
    free = free_rollout_loss(model, rows)
    _, dynamics = configuration(teacher_forcing=0.0).losses(model, batch, key=jr.key(7),
                                                            indices=rows)
    np.testing.assert_array_equal(dynamics, free)
    # with probability 1 every interval restarts from the truth: one-step errors
    _, forced = configuration(teacher_forcing=1.0).losses(model, batch, key=jr.key(7),
                                                          indices=rows)
    truth = model.codes[rows]
    one_step = jax.vmap(jax.vmap(lambda z, t0, t1: model.dynamics(z, jnp.stack([t0, t1]))[1],
                                 in_axes=(0, 0, 0)), in_axes=(0, None, None))(
        truth[:, :-1], times[:-1], times[1:])
    np.testing.assert_allclose(forced, jnp.mean((one_step - truth[:, 1:]) ** 2), rtol=1e-5)
    assert abs(float(forced) - float(free)) > 1e-3 * float(free)


def test_the_schedule_reads_the_models_step():
    values = data()[0]
    model, rows = make_model(), jnp.array([0, 5])
    batch = values[rows]
    cfg = configuration(teacher_forcing=lambda step: jnp.where(step < 3, 1.0, 0.0))
    early = cfg.losses(model, batch, key=jr.key(8), indices=rows)[1]
    late = cfg.losses(eqx.tree_at(lambda m: m.step, model, jnp.asarray(3.0)), batch,
                      key=jr.key(8), indices=rows)[1]
    forced = configuration(teacher_forcing=1.0).losses(model, batch, key=jr.key(8),
                                                       indices=rows)[1]
    np.testing.assert_allclose(early, forced, rtol=1e-6)
    np.testing.assert_allclose(late, free_rollout_loss(model, rows), rtol=1e-6)
    assert abs(float(early) - float(late)) > 1e-3 * float(late)
    # DINo's default: 0.99, times 0.99 every 100 updates
    default = configuration()
    for step, expected in [(0, 0.99), (99, 0.99), (100, 0.99**2), (250, 0.99**3)]:
        assert float(default.probability(float(step))) == pytest.approx(expected, rel=1e-6)


def test_the_loss_is_masked_reconstruction_plus_weighted_dynamics():
    values, coords, _, mask = data()
    model, rows = make_model(), jnp.array([2, 0])
    batch = values[rows]
    cfg = configuration(teacher_forcing=0.0, dynamics_weight=0.25)
    reconstruction, dynamics = cfg.losses(model, batch, indices=rows)
    decoded = jax.vmap(jax.vmap(lambda c: model.decoder.field(c, coords)))(model.codes[rows])
    np.testing.assert_allclose(reconstruction, tx.inr.masked_mse(decoded, batch, mask),
                               rtol=1e-6)
    # what the unobserved points hold does not matter
    garbage = jnp.where(mask[:, None], batch, 1e3)
    np.testing.assert_array_equal(cfg.losses(model, garbage, indices=rows)[0], reconstruction)
    np.testing.assert_allclose(cfg(model, batch, indices=rows),
                               reconstruction + 0.25 * dynamics, rtol=1e-6)


def test_the_dynamics_see_the_codes_through_a_stop_gradient():
    values = data()[0]
    model, rows = make_model(), jnp.array([1, 4])
    batch = values[rows]
    cfg = configuration(teacher_forcing=0.5)
    rec = lambda m: cfg.losses(m, batch, key=jr.key(9), indices=rows)[0]  # noqa: E731
    dyn = lambda m: cfg.losses(m, batch, key=jr.key(9), indices=rows)[1]  # noqa: E731
    g_rec, g_dyn = eqx.filter_grad(rec)(model), eqx.filter_grad(dyn)(model)
    zero = lambda tree: all(np.all(np.asarray(x) == 0)  # noqa: E731
                            for x in jax.tree_util.tree_leaves(tree))
    assert zero(g_dyn.codes) and zero(g_dyn.decoder)
    assert zero(g_rec.dynamics) and not zero(g_dyn.dynamics)
    outside = np.setdiff1d(np.arange(NUM_SAMPLES), np.asarray(rows))
    assert np.all(np.asarray(g_rec.codes)[outside] == 0)
    assert not np.all(np.asarray(g_rec.codes)[np.asarray(rows)] == 0)


# The model and the optimizers ----------------------------------------------------------


def test_step_counter_counts_updates():
    counter = tx.inr.step_counter()
    step = jnp.zeros(())
    state = counter.init(step)
    for n in range(1, 4):
        updates, state = counter.update(jnp.asarray(-7.0 * n), state, step)
        step = optax.apply_updates(step, updates)
        assert float(step) == n


def test_auto_decoder_optimizer_gives_each_part_its_optimizer():
    model = make_model()
    params = eqx.filter(model, eqx.is_inexact_array)
    optimizer = tx.inr.auto_decoder_optimizer(decoder=optax.sgd(1.0), dynamics=optax.sgd(0.5),
                                              codes=optax.sgd(0.25))
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    assert np.all(np.asarray(updates.codes) == -0.25)
    assert all(np.all(np.asarray(u) == -1.0) for u in jax.tree_util.tree_leaves(updates.decoder))
    assert all(np.all(np.asarray(u) == -0.5)
               for u in jax.tree_util.tree_leaves(updates.dynamics))
    assert float(updates.step) == 1.0
    with pytest.raises(ValueError, match="`codes` reach `auto_decoder_optimizer`"):
        tx.inr.auto_decoder_optimizer().init(params)
    with pytest.raises(TypeError, match="`decoder`"):
        tx.inr.auto_decoder_optimizer(decoder="adam")


def test_auto_decoder_table_and_bad_input():
    model = tx.inr.AutoDecoder(
        tx.inr.FourierNet(2, 2, hidden=8, code_dim=4, key=jr.key(0)),
        tx.inr.LatentODE(8, width=8, depth=1, key=jr.key(1)),
        num_samples=3, num_frames=5, num_channels=4,
    )
    assert model.codes.shape == (3, 5, 2, 4) and not np.any(model.codes)
    assert float(model.step) == 0.0
    # no weak types (Swish's beta comes from a Python float): an update would
    # make them strong, and the trainer compile its update a second time
    assert not any(leaf.aval.weak_type for leaf in jax.tree_util.tree_leaves(model))
    decoder = tx.inr.FourierNet(2, hidden=8, code_dim=4, key=jr.key(0))
    with pytest.raises(ValueError, match="`dynamics`"):
        tx.inr.AutoDecoder(decoder, tx.inr.LatentODE(5, width=8, depth=1, key=jr.key(1)),
                           num_samples=3, num_frames=5)
    with pytest.raises(TypeError, match="`decoder`"):
        tx.inr.AutoDecoder(None, tx.inr.LatentODE(4, width=8, depth=1, key=jr.key(1)),
                           num_samples=3, num_frames=5)
    with pytest.raises(ValueError, match="`num_frames`"):
        tx.inr.AutoDecoder(decoder, tx.inr.LatentODE(4, width=8, depth=1, key=jr.key(1)),
                           num_samples=3, num_frames=0)


def test_auto_decoding_bad_input():
    values, coords, times, mask = data()
    with pytest.raises(ValueError, match="`mask`"):
        tx.configuration.AutoDecoding(coords, times, mask[:-1])
    with pytest.raises(ValueError, match="`mask` must keep at least one point"):
        tx.configuration.AutoDecoding(coords, times, jnp.zeros_like(mask))
    with pytest.raises(ValueError, match="`times` must be strictly increasing"):
        tx.configuration.AutoDecoding(coords, times[::-1])
    with pytest.raises(ValueError, match="`times`"):
        tx.configuration.AutoDecoding(coords, times[:1])
    with pytest.raises(ValueError, match="`teacher_forcing`"):
        tx.configuration.AutoDecoding(coords, times, teacher_forcing=1.5)
    with pytest.raises(ValueError, match="`dynamics_weight`"):
        tx.configuration.AutoDecoding(coords, times, dynamics_weight=-1.0)
    cfg = configuration()
    with pytest.raises(ValueError, match="`data`"):
        cfg.losses(make_model(), values[:, :2], key=jr.key(0), indices=jnp.arange(6))
    with pytest.raises(TypeError, match="`key` is required"):
        cfg(make_model(), values, indices=jnp.arange(6))
    # the trainer asks the configuration about the model before compiling
    short = tx.inr.AutoDecoder(
        tx.inr.FourierNet(2, hidden=8, code_dim=4, key=jr.key(0)),
        tx.inr.LatentODE(4, width=8, depth=1, key=jr.key(1)),
        num_samples=NUM_SAMPLES, num_frames=NUM_FRAMES + 1,
    )
    with pytest.raises(ValueError, match="`model` codes must have shape"):
        trainer(1)(short, jr.key(0))
    with pytest.raises(TypeError, match="`model` must hold `codes`"):
        cfg.check_model(eqx.nn.Linear(2, 2, key=jr.key(0)),
                        jax.ShapeDtypeStruct(values.shape, values.dtype))


# Navier-Stokes point data ------------------------------------------------------------


def grid(n):
    x = np.arange(n) / n
    return np.meshgrid(x, x, indexing="ij")


@pytest.mark.parametrize("amplitude", [0.0, 0.1])
def test_navier_stokes_frames_match_exact_flows(x64, amplitude):
    """Two exact solutions: Taylor-Green decays as exp(-8 pi^2 nu t) (a steady
    Euler flow), and from rest DINo's forcing phi = sin + cos of 2 pi (x + y)
    drives the shear flow a / (8 pi^2 nu) (1 - exp(-8 pi^2 nu t)) phi."""
    n, nu, dt, frames = 16, 0.01, 0.5, 4
    x, y = grid(n)
    rate = 8 * np.pi**2 * nu
    t = dt * np.arange(frames)[:, None, None]
    if amplitude == 0.0:
        initial = np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y)
        exact = initial * np.exp(-rate * t)
    else:
        initial = np.zeros((n, n))
        phi = np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y))
        exact = amplitude / rate * (1 - np.exp(-rate * t)) * phi
    stepper = tx.spectral.NavierStokesStepper(
        n, dt / 10, diffusivity=nu, forcing=heat_wave._dino_forcing(amplitude), substeps=10)
    values = heat_wave._evolve(stepper, jnp.asarray(initial)[None], frames)
    assert values.shape == (1, frames, n * n, 1) and values.dtype == jnp.float64
    # exact diffusion; the forcing goes through the RK4 stages (error ~ h^4)
    atol = 1e-12 if amplitude == 0.0 else 1e-9
    np.testing.assert_allclose(np.asarray(values)[0, :, :, 0], exact.reshape(frames, -1),
                               rtol=0, atol=atol)
    assert np.abs(exact[-1] - exact[0]).max() > 0.1 * np.abs(exact).max()  # it does evolve


def test_navier_stokes_points():
    values, coords, times = heat_wave.navier_stokes_2d_points(
        num_samples=2, num_points=16, num_frames=3, dt=0.2, max_step=0.05, key=jr.key(0))
    assert values.shape == (2, 3, 256, 1) and coords.shape == (256, 2)
    np.testing.assert_allclose(times, [0.0, 0.2, 0.4], rtol=1e-6)
    again, _, _ = heat_wave.navier_stokes_2d_points(
        num_samples=2, num_points=16, num_frames=3, dt=0.2, max_step=0.05, key=jr.key(0))
    np.testing.assert_array_equal(values, again)
    np.testing.assert_allclose(values.mean(axis=2), 0.0, atol=1e-5)  # mean-free forcing
    w = np.asarray(values)[..., 0]
    assert np.std(w[:, 0]) > 0.5 and np.abs(w[:, -1] - w[:, 0]).max() > 1e-2
    with pytest.raises(ValueError, match="`max_step`"):
        heat_wave.navier_stokes_2d_points(num_samples=1, max_step=0.0, key=jr.key(0))
    with pytest.raises(ValueError, match="`nu`"):
        heat_wave.navier_stokes_2d_points(num_samples=1, nu=-1.0, key=jr.key(0))


# Docstring examples ---------------------------------------------------------------------

DOCUMENTED = [
    tx.configuration.AutoDecoding,
    tx.configuration.AutoDecoding.losses,
    tx.configuration.AutoDecoding.probability,
    tx.inr.AutoDecoder,
    tx.inr.AutoDecoder.forecast,
    tx.inr.auto_decoder_optimizer,
    tx.inr.step_counter,
    heat_wave.navier_stokes_2d_points,
]


@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda obj: obj.__qualname__)
def test_documented_with_one_example(obj):
    # the examples run in tests/test_docstrings.py (tx.inr, tx.sample_data and
    # tx.configuration are among its packages)
    blocks = re.findall(r"```python\n(.*?)```", inspect.cleandoc(obj.__doc__), flags=re.DOTALL)
    assert len(blocks) == 1, obj.__qualname__
