"""tx.inr (FourierNet, LatentODE, fit_codes, forecast) and the heat/wave point data.

Test inputs come from NumPy's generator and the references are computed with
NumPy: on CPU every new JAX operation shape costs a compilation, and the
references stay independent of the code under test.
"""

from __future__ import annotations

import functools
import inspect
import math
import re

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
import scipy.linalg

import trainax as tx
from trainax.sample_data import _heat_wave as heat_wave

class LinearField(eqx.Module):
    """The vector field `z' = A z`."""

    a: jax.Array

    def __call__(self, t, z):
        return self.a @ z


@functools.cache
def decoder(out_dim=1, input_scale=16.0):
    """float32 decoders that share their layer shapes (and so their compilations)."""
    return tx.inr.FourierNet(2, out_dim, hidden=16, code_dim=8, num_layers=3,
                             input_scale=input_scale, key=jr.key(0))


def uniform(*shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


def normal(*shape, seed=0, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def mismatch(name):
    """A shape that disagrees with another argument's: our ValueError, or the
    annotation checker's TypeError when the suite runs with it; both name `name`."""
    return pytest.raises((ValueError, TypeError), match=rf"`{name}`|'{name}'")


def grid(n):
    x = np.arange(n) / n
    gx, gy = np.meshgrid(x, x, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)


# FourierNet -----------------------------------------------------------------


def test_fourier_net_shapes_and_field_at_arbitrary_points():
    net = decoder(out_dim=3)
    points = uniform(5, 2)  # not on any grid
    codes = normal(2, 8, seed=1)
    values = net.field(codes, points)
    assert values.shape == (5, 6)
    single = eqx.filter_jit(net)
    assert single(points[0], codes[0]).shape == (3,)
    # Column c * out_dim + j is output j of code c.
    for p in range(5):
        for c in range(2):
            np.testing.assert_allclose(
                values[p, 3 * c : 3 * c + 3], single(points[p], codes[c]), rtol=1e-5, atol=1e-6
            )


def test_zero_code_ignores_the_code_projections():
    net = decoder()
    points = uniform(20, 2)
    other = eqx.tree_at(
        lambda d: [s.weight for s in d.shifts],
        net,
        [normal(*s.weight.shape, seed=i) for i, s in enumerate(net.shifts)],
    )
    zero = jnp.zeros((1, 8))
    np.testing.assert_array_equal(other.field(zero, points), net.field(zero, points))
    code = jnp.ones((1, 8))
    assert not np.allclose(other.field(code, points), net.field(code, points))


def test_code_shift_equals_shifted_biases():
    net = decoder()
    points = uniform(20, 2)
    code = normal(8, seed=1)
    shifted = eqx.tree_at(
        lambda d: [lin.bias for lin in d.linears],
        net,
        [lin.bias + s.weight @ code for lin, s in zip(net.linears, net.shifts)],
    )
    np.testing.assert_allclose(
        shifted.field(jnp.zeros((1, 8)), points), net.field(code[None], points), atol=1e-6
    )


def test_filter_scale():
    net = decoder(input_scale=64)
    assert net.filter_scale == pytest.approx(32.0)
    assert len(net.filters) == 4
    # The filters are drawn at that scale: uniform in +-32 / sqrt(2).
    weights = np.abs(np.concatenate([np.ravel(w) for w in net.filters]))
    bound = 32.0 / math.sqrt(2)
    assert weights.max() <= bound and weights.max() > 0.8 * bound
    assert weights.mean() == pytest.approx(bound / 2, rel=0.25)


def test_fourier_net_bad_input():
    net = decoder()
    with pytest.raises(ValueError, match="`coords`"):
        net.field(jnp.zeros((1, 8)), jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="`codes`"):
        net.field(jnp.zeros((1, 7)), jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="`code`"):
        net(jnp.zeros(2), jnp.zeros(9))
    with pytest.raises(ValueError, match="`x`"):
        net(jnp.zeros(3), jnp.zeros(8))
    with pytest.raises(ValueError, match="`hidden`"):
        tx.inr.FourierNet(2, hidden=15, code_dim=8, key=jr.key(0))


# Auto-decoding ----------------------------------------------------------------


def test_joint_training_auto_decodes_a_smooth_field():
    coords = jnp.asarray(grid(32), jnp.float32)
    x, y = coords[:, 0], coords[:, 1]
    target = jnp.sin(2 * jnp.pi * x) * jnp.cos(2 * jnp.pi * y) + 0.5 * jnp.sin(4 * jnp.pi * (x + y))
    net = decoder()
    params = (net, jnp.zeros((1, 8)))
    optimizer = optax.multi_transform(
        {"decoder": optax.adam(1e-2), "code": optax.adam(1e-2)}, ("decoder", "code")
    )

    def loss(params):
        net, code = params
        return jnp.mean((net.field(code, coords)[:, 0] - target) ** 2)

    @eqx.filter_jit
    def train(params, num_steps):
        def step(carry, _):
            params, state = carry
            value, grad = eqx.filter_value_and_grad(loss)(params)
            updates, state = optimizer.update(grad, state, eqx.filter(params, eqx.is_array))
            return (eqx.apply_updates(params, updates), state), value

        state = optimizer.init(eqx.filter(params, eqx.is_array))
        (params, _), history = jax.lax.scan(step, (params, state), None, length=num_steps)
        return params, history

    trained, history = train(params, 200)
    assert loss(trained) < history[0] / 100


def mse(net, codes, coords, values):
    return float(jnp.mean((net.field(codes, coords) - values) ** 2))


def test_fit_codes_never_worse_than_the_zero_code():
    net = decoder()
    coords = uniform(50, 2)
    values = jnp.stack([jnp.sin(2 * jnp.pi * coords[:, 0]), coords[:, 1] ** 2], axis=-1)
    zero_loss = mse(net, jnp.zeros((2, 8)), coords, values)
    codes, loss = tx.inr.fit_codes(net, coords, values, num_steps=20)
    assert codes.shape == (2, 8)
    assert loss < 0.9 * zero_loss
    assert float(loss) == pytest.approx(mse(net, codes, coords, values), rel=1e-5)
    # A learning rate this large throws Adam far off; the best code is kept.
    codes, loss = tx.inr.fit_codes(net, coords, values, num_steps=20, learning_rate=50.0)
    assert loss <= zero_loss
    assert float(loss) == pytest.approx(mse(net, codes, coords, values), rel=1e-5)


def test_fit_codes_sees_only_the_observed_points():
    net = decoder()
    coords = uniform(50, 2)
    values = jnp.cos(3.0 * coords[:, :1])
    mask = jnp.arange(50) % 3 != 0
    garbage = jnp.where(mask[:, None], values, 1e3)
    codes, loss = tx.inr.fit_codes(net, coords, values, mask, num_steps=20)
    codes_g, loss_g = tx.inr.fit_codes(net, coords, garbage, mask, num_steps=20)
    np.testing.assert_array_equal(codes, codes_g)
    np.testing.assert_array_equal(loss, loss_g)
    # vmap over frames: the same as one call per frame.
    frames = jnp.stack([values, 2.0 * values])
    batched, _ = jax.vmap(lambda v: tx.inr.fit_codes(net, coords, v, mask, num_steps=20))(frames)
    np.testing.assert_allclose(batched[0], codes, rtol=1e-4, atol=1e-6)


def test_fit_codes_bad_input():
    net = decoder()
    coords = jnp.zeros((10, 2))
    values = jnp.zeros((10, 1))
    with pytest.raises(ValueError, match="`coords`"):
        tx.inr.fit_codes(net, jnp.zeros((10, 3)), values)
    with pytest.raises(ValueError, match="`mask` must keep at least one point"):
        tx.inr.fit_codes(net, coords, values, jnp.zeros(10, dtype=bool))
    with pytest.raises(ValueError, match="`code_shape`"):
        tx.inr.fit_codes(net, coords, values, code_shape=(1, 9))
    with mismatch("values"):
        tx.inr.fit_codes(net, coords, jnp.zeros((9, 1)))


def test_forecast_chains_fit_integrate_decode():
    net = decoder()
    a = 0.3 * np.random.default_rng(0).normal(size=(16, 16))
    dynamics = tx.inr.LatentODE(16, vector_field=LinearField(jnp.asarray(a, jnp.float32)))
    coords = uniform(50, 2)
    first = jnp.stack([jnp.sin(2 * jnp.pi * coords[:, 0]), coords[:, 1] ** 2], axis=-1)
    mask = jnp.arange(50) % 2 == 0
    times = jnp.linspace(0.0, 0.4, 5)
    query = uniform(5, 2, seed=1)  # points that were not observed
    prediction = tx.inr.forecast(net, dynamics, first, coords, times, query, mask=mask,
                                 num_steps=20)
    assert prediction.shape == (5, 5, 2)
    codes, _ = tx.inr.fit_codes(net, coords, first, mask, num_steps=20)
    assert codes.shape == (2, 8)
    for t in (0, 4):
        exact = scipy.linalg.expm(float(times[t]) * a) @ np.ravel(codes)
        expected = net.field(jnp.asarray(exact.reshape(2, 8), jnp.float32), query)
        np.testing.assert_allclose(prediction[t], expected, rtol=1e-3, atol=1e-4)
    small = tx.inr.LatentODE(8, vector_field=LinearField(jnp.zeros((8, 8))))
    with pytest.raises(ValueError, match="`dynamics`"):
        tx.inr.forecast(net, small, first, coords, times, query)
    with mismatch("query_coords"):
        tx.inr.forecast(net, dynamics, first, coords, times, jnp.zeros((5, 1)))


# LatentODE --------------------------------------------------------------------

# z' = A z with A = [[-1/2, 2], [-2, -1/2]]: exp(tA) = exp(-t/2) R(2t), a rotation.
A = np.array([[-0.5, 2.0], [-2.0, -0.5]])
Z0 = np.array([1.0, -0.5])


def exact_linear(t):
    c, s = np.cos(2 * t), np.sin(2 * t)
    return np.exp(-t / 2) * np.array([[c, s], [-s, c]]) @ Z0


def linear_dynamics(**kwargs):
    return tx.inr.LatentODE(2, vector_field=LinearField(jnp.asarray(A)), **kwargs)


def test_rk4_step_is_the_fourth_order_taylor_polynomial(x64):
    h = 0.3
    step = linear_dynamics()(jnp.asarray(Z0), jnp.array([0.0, h]))
    taylor = sum(np.linalg.matrix_power(h * A, k) @ Z0 / math.factorial(k) for k in range(5))
    assert step.dtype == jnp.float64
    np.testing.assert_array_equal(step[0], Z0)
    np.testing.assert_allclose(step[1], taylor, rtol=0, atol=1e-12)
    assert abs(step[1] - exact_linear(h)).max() > 1e-6  # the Taylor polynomial, not exp
    np.testing.assert_allclose(linear_dynamics().vector_field(0.0, jnp.asarray(Z0)), A @ Z0)


def test_rk4_converges_at_fourth_order(x64):
    times = np.linspace(0.0, 2.0, 9)
    exact = np.stack([exact_linear(t) for t in times])
    z0, ts = jnp.asarray(Z0), jnp.asarray(times)
    errors = [np.abs(linear_dynamics(steps_per_frame=n)(z0, ts) - exact).max() for n in (2, 4)]
    assert errors[0] / errors[1] == pytest.approx(16.0, abs=2.0)


def test_solver_argument_is_used(x64):
    euler = linear_dynamics(solver=diffrax.Euler())
    step = euler(jnp.asarray(Z0), jnp.array([0.0, 0.1]))[1]
    np.testing.assert_allclose(step, Z0 + 0.1 * A @ Z0, rtol=0, atol=1e-15)


def test_teacher_forcing():
    dynamics = tx.inr.LatentODE(8, width=16, depth=2, key=jr.key(0))
    times = jnp.linspace(0.0, 1.0, 5)
    truth = normal(5, 2, 4)  # codes (C, code_dim) = (2, 4)
    free = dynamics(truth[0], times)
    assert free.shape == (5, 2, 4)
    forced0 = dynamics.teacher_forcing(truth, times, probability=0.0, key=jr.key(2))
    np.testing.assert_array_equal(forced0, free)
    forced1 = dynamics.teacher_forcing(truth, times, probability=1.0, key=jr.key(2))
    np.testing.assert_array_equal(forced1[0], truth[0])
    for i in range(4):
        one_step = dynamics(truth[i], times[i : i + 2])[1]
        np.testing.assert_allclose(forced1[i + 1], one_step, rtol=1e-6, atol=1e-6)
    assert not np.allclose(forced1[2:], free[2:], atol=1e-3)


def test_swish():
    swish = tx.inr.Swish(0.3)
    x = np.linspace(-3.0, 3.0, 7)
    expected = x / (1.0 + np.exp(-x * np.log1p(np.exp(0.3)))) / 1.1
    np.testing.assert_allclose(swish(jnp.asarray(x, jnp.float32)), expected, rtol=1e-6)
    grad = jax.grad(lambda s: jnp.sum(s(jnp.asarray(x, jnp.float32))))(swish)
    assert float(grad.beta) != 0.0


def test_latent_ode_bad_input():
    dynamics = linear_dynamics()
    with pytest.raises(ValueError, match="`times` must be strictly increasing"):
        dynamics(jnp.zeros(2), jnp.array([0.0, 0.2, 0.1]))
    with pytest.raises(ValueError, match="`z0`"):
        dynamics(jnp.zeros(3), jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="`probability`"):
        dynamics.teacher_forcing(jnp.zeros((2, 2)), jnp.array([0.0, 1.0]), probability=1.5,
                                 key=jr.key(0))
    with mismatch("times"):
        dynamics.teacher_forcing(jnp.zeros((3, 2)), jnp.array([0.0, 1.0]), probability=0.5,
                                 key=jr.key(0))
    with pytest.raises(TypeError, match="solver"):
        tx.inr.LatentODE(4, key=jr.key(0), solver="rk4")


# Masks and metrics --------------------------------------------------------------


def test_random_observation_mask():
    num_points, fraction = 4096, 0.3
    mask = heat_wave.random_observation_mask(jr.key(0), num_points, fraction)
    assert mask.shape == (num_points,) and mask.dtype == jnp.bool_
    sigma = math.sqrt(num_points * fraction * (1 - fraction))
    assert abs(int(mask.sum()) - num_points * fraction) < 4 * sigma
    np.testing.assert_array_equal(mask, heat_wave.random_observation_mask(jr.key(0), 4096, 0.3))
    assert not np.array_equal(mask, heat_wave.random_observation_mask(jr.key(1), 4096, 0.3))
    with pytest.raises(ValueError, match="`keep_fraction`"):
        heat_wave.random_observation_mask(jr.key(0), 10, 0.0)


def test_masked_mse(x64):
    target = normal(5, 30, 2, dtype=jnp.float64)  # (T, P, C)
    prediction = target + normal(5, 30, 2, seed=1, dtype=jnp.float64)
    mask = uniform(30, seed=2) < 0.4
    inside = tx.inr.masked_mse(prediction, target, mask)
    outside = tx.inr.masked_mse(prediction, target, ~mask)
    n = int(mask.sum())
    total = np.mean((np.asarray(prediction) - np.asarray(target)) ** 2)
    np.testing.assert_allclose((n * inside + (30 - n) * outside) / 30, total, rtol=1e-7)
    # One mask for every frame: the mean of the frames' masked errors.
    per_frame = [tx.inr.masked_mse(prediction[t], target[t], mask) for t in range(5)]
    np.testing.assert_allclose(inside, np.mean(per_frame), rtol=1e-12)
    with pytest.raises(ValueError, match="`mask` must keep at least one point"):
        tx.inr.masked_mse(prediction, target, jnp.zeros(30, dtype=bool))


# Heat and wave data -----------------------------------------------------------------


def minus_laplacian(n):
    """`(2 pi |k|)^2` on the FFT grid: minus the Laplacian's Fourier symbol."""
    k = 2 * np.pi * np.fft.fftfreq(n, 1.0 / n)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    return kx**2 + ky**2


def test_heat_solutions_are_exact(x64):
    n, dt, nu = 16, 0.05, 0.01
    values, coords, times = heat_wave.heat_2d_periodic(
        num_samples=3, num_points=n, num_frames=6, dt=dt, nu=nu, key=jr.key(0)
    )
    assert values.shape == (3, 6, n * n, 1) and values.dtype == jnp.float64
    np.testing.assert_array_equal(coords, grid(n))
    np.testing.assert_allclose(times, dt * np.arange(6))
    fields = np.asarray(values)[..., 0].reshape(3, 6, n, n)
    np.testing.assert_allclose(np.abs(fields[:, 0]).max(axis=(1, 2)), 1.0)
    propagator = np.exp(-nu * dt * minus_laplacian(n))
    propagated = np.fft.ifft2(np.fft.fft2(fields[:, :-1]) * propagator).real
    np.testing.assert_allclose(propagated, fields[:, 1:], rtol=0, atol=1e-12)
    assert np.abs(fields[:, 1:] - fields[:, :-1]).max() > 1e-3  # it does evolve
    np.testing.assert_allclose(fields.mean(axis=(2, 3)), 0.0, atol=1e-12)


def test_wave_solutions_are_exact(x64):
    n, dt, c = 16, 0.05, 0.5
    values, _, _ = heat_wave.wave_2d_periodic(
        num_samples=2, num_points=n, num_frames=5, dt=dt, c=c, key=jr.key(0)
    )
    assert values.shape == (2, 5, n * n, 2)
    np.testing.assert_allclose(values[:, 0, :, 1], 0.0, atol=1e-14)  # at rest at t = 0
    # (u, u_t)' = (u_t, c^2 Laplace u): mode by mode, the 2x2 matrix exponential.
    generators = np.zeros((n * n, 2, 2))
    generators[:, 0, 1] = 1.0
    generators[:, 1, 0] = -(c**2) * minus_laplacian(n).ravel()
    propagators = np.stack([scipy.linalg.expm(dt * g) for g in generators])
    spectra = np.fft.fft2(np.asarray(values).reshape(2, 5, n, n, 2), axes=(2, 3))
    stepped = np.einsum("kij,stkj->stki", propagators, spectra[:, :-1].reshape(2, 4, n * n, 2))
    fields = np.fft.ifft2(stepped.reshape(2, 4, n, n, 2), axes=(2, 3)).real
    np.testing.assert_allclose(fields, np.asarray(values[:, 1:]).reshape(2, 4, n, n, 2),
                               rtol=0, atol=1e-12)
    assert np.abs(np.asarray(values[:, -1, :, 0] - values[:, 0, :, 0])).max() > 1e-2


def test_split_horizon_and_data_bad_input():
    values = normal(2, 6, 4, 1)
    seen, beyond = heat_wave.split_horizon(values, 4)
    np.testing.assert_array_equal(jnp.concatenate([seen, beyond], axis=1), values)
    assert seen.shape[1] == 4 and beyond.shape[1] == 2
    with pytest.raises(ValueError, match="`seen_frames`"):
        heat_wave.split_horizon(values, 6)
    with pytest.raises(ValueError, match="`cutoff`"):
        heat_wave.heat_2d_periodic(num_samples=1, num_points=8, cutoff=4, key=jr.key(0))
    with pytest.raises(ValueError, match="`c`"):
        heat_wave.wave_2d_periodic(num_samples=1, c=-1.0, key=jr.key(0))


# Docstring examples ----------------------------------------------------------------

DATA = ("heat_2d_periodic", "wave_2d_periodic", "random_observation_mask", "split_horizon")


@pytest.mark.parametrize(
    "obj",
    [getattr(tx.inr, name) for name in tx.inr.__all__]
    + [tx.inr.FourierNet.field, tx.inr.LatentODE.teacher_forcing]
    + [getattr(heat_wave, name) for name in DATA],
    ids=lambda obj: obj.__qualname__,
)
def test_documented_with_one_example(obj):
    # the examples run in tests/test_docstrings.py (tx.inr, tx.sample_data and
    # tx.configuration are among its packages)
    blocks = re.findall(r"```python\n(.*?)```", inspect.cleandoc(obj.__doc__), flags=re.DOTALL)
    assert len(blocks) == 1, obj.__qualname__
