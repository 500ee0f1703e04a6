"""The neural spectral operator and the spectral and grid residual configurations."""

from __future__ import annotations

import inspect
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

S = tx.spectral
C = tx.configuration
KEY = jr.PRNGKey(0)
TWO_PI = 2 * math.pi


def operator(problem, *, width=8, num_layers=2, key=KEY, **kwargs):
    return tx.nn.SpectralOperator(
        problem.basis, problem.in_channels, 1, width=width, num_layers=num_layers,
        key=key, **kwargs,
    )


def max_abs(a) -> float:
    return float(np.max(np.abs(np.asarray(a))))


# --- the operator ------------------------------------------------------------------


@pytest.mark.parametrize(
    "basis",
    [
        S.TensorBasis((S.Fourier(8), S.Fourier(6))),
        S.TensorBasis((S.Chebyshev(5), S.Fourier(8))),
        S.TensorBasis((S.Chebyshev(3), S.Fourier(4), S.Fourier(4))),
        S.Chebyshev(7),
    ],
    ids=["fourier2", "chebyshev_fourier", "space_time3", "chebyshev1"],
)
def test_operator_shapes(basis):
    num_fourier = sum(isinstance(b, S.Fourier) for b in basis.axes)
    model = tx.nn.SpectralOperator(basis, 2, 3, width=4, num_layers=2, key=KEY)
    x = jr.normal(KEY, (5, 2, *basis.shape))
    out = jax.vmap(model)(x)
    assert out.shape == (5, 3, *basis.shape) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))
    # one weight array per subset of the Fourier axes (quarter turns)
    assert [w.shape for w in model.weights] == [(2**num_fourier, 4, 4, *basis.shape)] * 2


def test_operator_retains_the_lowest_modes_only(x64):
    basis = S.TensorBasis((S.Fourier(8), S.Fourier(8)))
    identity = lambda h: h  # noqa: E731
    model = tx.nn.SpectralOperator(basis, 1, 1, width=4, modes=3, num_layers=1,
                                   activation=identity, projection_width=0, key=KEY)
    assert model.weights[0].shape == (4, 4, 4, 3, 3)
    # with no activation the model is linear and, above the retained block,
    # sees each coefficient through the pointwise layers alone
    skip = model.projection[0].weight @ model.skips[0].weight @ model.lifting.weight
    x = jnp.zeros((1, 8, 8)).at[0, 5, 6].set(1.0)
    zero = model(jnp.zeros((1, 8, 8)))
    np.testing.assert_allclose((model(x) - zero)[0, 5, 6], skip[0, 0], rtol=1e-12)


def linear_operator(basis, weight, *, key=KEY):
    """A one-channel, one-layer linear operator whose spectral weights are `weight`
    (one per subset of the Fourier axes): it computes `sum_S weight[S] Q_S x`."""
    model = tx.nn.SpectralOperator(basis, 1, 1, width=1, num_layers=1,
                                   activation=lambda h: h, projection_width=0, key=key)
    one, zero = jnp.ones((1, 1)), jnp.zeros(1)
    model = eqx.tree_at(lambda m: (m.lifting.weight, m.lifting.bias, m.projection[0].weight,
                                   m.projection[0].bias, m.skips[0].weight, m.skips[0].bias),
                        model, (one, zero, one, zero, jnp.zeros((1, 1)), zero))
    return eqx.tree_at(lambda m: m.weights, model, (jnp.asarray(weight)[:, None, None],))


@pytest.mark.parametrize("n", [7, 8])
def test_operator_represents_a_first_derivative(x64, n):
    """The quarter turn carries a cosine into a sine: with the turned term's weight
    `2πk` the layer is d/dx exactly, which a per-coefficient weight cannot be
    (it maps even fields to even fields)."""
    basis = S.Fourier(n)
    k = (np.arange(n) + 1) // 2
    model = linear_operator(basis, np.stack([np.zeros(n), 2 * np.pi * k]))
    c = jr.normal(KEY, (n,), jnp.float64)
    np.testing.assert_allclose(model(c[None])[0], basis.derivative(c), atol=1e-12)
    # the identity term alone is diagonal: an even field (cosines) stays even
    even = jnp.zeros(n).at[1::2].set(1.0)
    diagonal = linear_operator(basis, np.stack([np.arange(1.0, n + 1), np.zeros(n)]))
    assert max_abs(diagonal(even[None])[0, 2::2]) == 0.0


def test_operator_represents_a_two_dimensional_shift(x64):
    """Along each Fourier axis a shift by δ is `cos φ_k I - sin φ_k Q`
    (`φ_k = 2πkδ`); the four subset terms of a 2-D basis give their product,
    `f(x - δx, y - δy)`, exactly: every real 4 x 4 block of a frequency pair is
    reachable, and the subset order of `weights` is as documented."""
    basis = S.TensorBasis((S.Fourier(7), S.Fourier(9)))
    (dx, dy) = (0.13, -0.31)
    phase = lambda n, d: 2 * np.pi * ((np.arange(n) + 1) // 2) * d  # noqa: E731
    cx, sx = np.cos(phase(7, dx))[:, None], np.sin(phase(7, dx))[:, None]
    cy, sy = np.cos(phase(9, dy))[None, :], np.sin(phase(9, dy))[None, :]
    # index 0: no turn, 1: turn along axis 0, 2: along axis 1, 3: both
    weight = np.stack([cx * cy, -sx * cy, -cx * sy, sx * sy])
    model = linear_operator(basis, weight)
    c = jr.normal(KEY, (7, 9), jnp.float64)
    points = jr.uniform(jr.PRNGKey(1), (20, 2), jnp.float64)
    shifted = jnp.mod(points - jnp.array([dx, dy]), 1.0)
    np.testing.assert_allclose(basis.evaluate(model(c[None])[0], points),
                               basis.evaluate(c, shifted), atol=1e-12)


def test_operator_is_resolution_independent(x64):
    problem = S.PoissonPeriodic(8)
    s = problem.sample(KEY, 1)[0]
    # linear (no activation): a finer basis gives the same function, zero-padded
    linear = operator(problem, activation=lambda h: h)
    coarse = linear(s)
    fine = linear(problem.basis.resize(s[0], 16)[None])
    np.testing.assert_allclose(fine, problem.basis.resize(coarse[0], 16)[None], atol=1e-12)
    # nonlinear: runs in the finer basis; one call serves every output grid
    model = operator(problem)
    assert model(problem.basis.resize(s[0], 16)[None]).shape == (1, 16, 16)
    u = problem.predict(model, s)
    on_64, on_128 = problem.to_grid(u, 64), problem.to_grid(u, 128)
    np.testing.assert_allclose(on_128[:, ::2, ::2], on_64, atol=1e-12)


def test_spectral_loss_gradient_matches_finite_differences(x64):
    problem = S.ReactionDiffusion(0.05, modes=(4, 8))
    cfg = C.SpectralResidual(problem)
    batch = problem.sample(KEY, 2)
    model = operator(problem, width=4)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def loss(p):
        return cfg(eqx.combine(p, static), batch)

    grads = jax.grad(loss)(params)
    direction = jax.tree.map(lambda a: jnp.asarray(np.random.default_rng(0).standard_normal(
        a.shape)), params)
    h = 1e-6
    shifted = lambda t: jax.tree.map(lambda a, d: a + t * d, params, direction)  # noqa: E731
    fd = (loss(shifted(h)) - loss(shifted(-h))) / (2 * h)
    directional = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                     jax.tree.leaves(direction)))
    np.testing.assert_allclose(directional, fd, rtol=1e-6)


# --- the configurations ---------------------------------------------------------------


def test_spectral_residual_is_the_mean_parseval_norm(x64):
    problem = S.PoissonPeriodic(8)
    batch = problem.sample(KEY, 3)
    model = operator(problem)
    per_sample = [
        problem.residual_basis.l2_norm_squared(
            problem.spectral_residual(p, problem.predict(model, p))[0])
        for p in batch
    ]
    np.testing.assert_allclose(C.SpectralResidual(problem)(model, batch), np.mean(per_sample),
                               rtol=1e-12)
    # the exact solver has zero loss, the grid loss only the O(h^2) defect
    exact = lambda x: problem.solve(x)  # noqa: E731
    assert float(C.SpectralResidual(problem)(exact, batch)) < 1e-20
    grid = C.GridResidual(problem, 8)
    assert grid.resolution == (8, 8)


def test_space_time_problems_train_through_the_configurations():
    for problem in (S.ReactionDiffusion(0.05, modes=(4, 8)), S.NavierStokes(1e-2, modes=(3, 4))):
        batch = problem.sample(KEY, 2)
        model = operator(problem, width=4)
        resolution = (5, 10) if problem.basis.ndim == 2 else (4, 6, 6)
        for cfg in (C.SpectralResidual(problem), C.GridResidual(problem, resolution)):
            value, grads = eqx.filter_jit(eqx.filter_value_and_grad(cfg))(model, batch)
            assert np.isfinite(float(value)) and float(value) > 0
            assert max_abs(grads.lifting.weight) > 0


def spectral_trainer(problem, num_steps, **kwargs):
    return tx.GeneralTrainer(
        tx.Sampler(problem.sample),
        C.SpectralResidual(problem),
        optax.adam(3e-3),
        num_steps,
        8,
        progress_bar=False,
        **kwargs,
    )


def test_training_on_fresh_sources_lowers_the_loss_and_the_error():
    problem = S.PoissonPeriodic(8)
    model = operator(problem)
    trained, losses = spectral_trainer(problem, 40, chunk_size=20)(model, jr.PRNGKey(1))
    assert losses.shape == (40,) and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    test = problem.sample(jr.PRNGKey(7), 8)

    @eqx.filter_jit
    def error(m):
        pred = jax.vmap(lambda p: problem.to_grid(problem.predict(m, p), 16))(test)
        exact = jax.vmap(lambda p: problem.reference(p, 16))(test)
        return jnp.linalg.norm(pred - exact) / jnp.linalg.norm(exact)

    assert float(error(trained)) < 0.5 * float(error(model))


def test_training_resumes_bit_identically_from_a_checkpoint(tmp_path):
    problem = S.PoissonPeriodic(8)
    model, key = operator(problem), jr.PRNGKey(3)
    path = tmp_path / "nsm.eqx"
    trainer = spectral_trainer(problem, 20, chunk_size=10)
    full, history = trainer(model, key)
    spectral_trainer(problem, 10, chunk_size=10, checkpoint_path=path)(model, key)
    # the same trainer (and compiled loop) goes on from step 10 of the file
    resumed, resumed_history = trainer(operator(problem, key=jr.PRNGKey(9)), resume_from=path)
    for a, b in zip(jax.tree.leaves(eqx.filter(full, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(resumed, eqx.is_array))):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed_history, history)


def test_grid_residual_trains_the_same_model_on_the_grid():
    problem = S.PoissonPeriodic(8)
    sources = problem.sample(jr.PRNGKey(2), 16)
    trainer = tx.GeneralTrainer(
        tx.Samples(sources), C.GridResidual(problem, 16), optax.adam(3e-3), 30, 8,
        progress_bar=False,
    )
    trained, losses = trainer(operator(problem), jr.PRNGKey(1))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# --- composing with the rollout taxonomy ----------------------------------------------


def test_spectral_step_residual_trains_a_stepper_with_residuum():
    n, dt, c = 32, 0.01, 1.0
    residuum = S.SpectralCrankNicolsonResiduum(n, dt, velocity=c)
    x = np.arange(n) / n
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (2, 16, 3))
    states = sum(a[:, k, None] * np.sin((k + 1) * TWO_PI * x) + b[:, k, None]
                 * np.cos((k + 1) * TWO_PI * x) for k in range(3))
    data = jnp.asarray(np.stack([states, states], axis=1)[:, :, None], jnp.float32)
    model = tx.nn.LinearConvStepper(1, kernel_size=3, key=KEY)
    trainer = tx.GeneralTrainer(
        data, C.Residuum(1), optax.adam(optax.cosine_decay_schedule(3e-2, 200)), 200, 8,
        residuum_fn=residuum, progress_bar=False,
    )
    trained, losses = trainer(model, jr.PRNGKey(1))
    assert np.mean(losses[-5:]) < 0.01 * np.mean(losses[:5])
    # the learned stencil advects: the residual of its step is well below the
    # one of standing still (measured 0.15 of it)
    u = data[:, 0]
    assert float(tx.loss.MSELoss()(residuum(jax.vmap(trained)(u), u))) < 0.3 * float(
        tx.loss.MSELoss()(residuum(u, u)))


# --- bad input ----------------------------------------------------------------------


def wrong_output_model(x):
    return x[:, :4]


BAD_INPUT = {
    "not a problem": (lambda: C.SpectralResidual(S.Fourier(8)), TypeError, "`problem`"),
    "bad resolution": (lambda: C.GridResidual(S.PoissonPeriodic(8), (8, 8, 8)), ValueError,
                       "`resolution`"),
    "model of the wrong output": (
        lambda: C.SpectralResidual(S.PoissonPeriodic(8)).check_model(
            wrong_output_model, jax.ShapeDtypeStruct((4, 1, 8, 8), jnp.float32)),
        ValueError, "`model`"),
    "model that fails on the grid's basis": (
        lambda: C.GridResidual(S.PoissonPeriodic(8), 16).check_model(
            eqx.nn.Linear(8, 8, key=KEY), jax.ShapeDtypeStruct((4, 1, 8, 8), jnp.float32)),
        ValueError, "`model`"),
    "batch of the wrong shape": (
        lambda: C.SpectralResidual(S.PoissonPeriodic(8))(lambda x: x, jnp.zeros((4, 8, 8))),
        ValueError, "`data`"),
    "operator on a batch": (
        lambda: tx.nn.SpectralOperator(S.Fourier(8), 1, 1, key=KEY)(jnp.zeros((2, 1, 8))),
        ValueError, "SpectralOperator"),
    "operator on too few modes": (
        lambda: tx.nn.SpectralOperator(S.Fourier(8), 1, 1, key=KEY)(jnp.zeros((1, 4))),
        ValueError, "SpectralOperator"),
    "too many retained modes": (
        lambda: tx.nn.SpectralOperator(S.Fourier(8), 1, 1, modes=9, key=KEY),
        ValueError, "`modes`"),
    "not a basis": (lambda: tx.nn.SpectralOperator(8, 1, 1, key=KEY), TypeError, "`basis`"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_names_the_argument(case):
    call, error, name = BAD_INPUT[case]
    with pytest.raises(error, match=re.escape(name)) as info:
        call()
    assert "\n" not in str(info.value)


def test_trainer_checks_the_model_before_compiling():
    problem = S.PoissonPeriodic(8)
    trainer = tx.GeneralTrainer(tx.Sampler(problem.sample), C.SpectralResidual(problem),
                                optax.adam(1e-3), 2, 4, progress_bar=False)
    with pytest.raises(ValueError, match="`model`"):
        trainer(wrong_output_model, KEY)


@pytest.mark.parametrize(
    "obj", [tx.nn.SpectralOperator, C.SpectralResidual, C.GridResidual],
    ids=lambda o: o.__name__,
)
def test_docstring_example_runs(obj):
    (block,) = re.findall(r"```python\n(.*?)```", inspect.getdoc(obj), flags=re.DOTALL)
    scope = {"jax": jax, "jnp": jnp, "jr": jr, "np": np, "eqx": eqx, "optax": optax, "tx": tx}
    exec(compile(block, obj.__name__, "exec"), scope)
