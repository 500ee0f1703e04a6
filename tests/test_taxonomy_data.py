"""The rollout taxonomy's sample data: shapes and first values by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from trainax.sample_data._taxonomy import (
    FourierShiftStepper,
    advection_1d_periodic,
    lorenz_rk4,
    make_lorenz_stepper_rk4,
)


def test_advection_shape_and_defaults():
    data = advection_1d_periodic(key=jr.PRNGKey(0))
    assert data.shape == (20, 100, 1, 30)
    assert advection_1d_periodic(16, 3, temporal_horizon=7, key=jr.PRNGKey(0)).shape == (
        3, 7, 1, 16
    )


def test_advection_initial_state_by_hand(x64):
    key, n, m = jr.PRNGKey(3), 12, 4
    data = advection_1d_periodic(n, 2, highest_init_mode=m, temporal_horizon=3, key=key)
    for s, sample_key in enumerate(jr.split(key, 2)):
        k_sin, k_cos, _ = jr.split(sample_key, 3)
        a = np.asarray(jr.uniform(k_sin, (m,), minval=-1.0, maxval=1.0))
        b = np.asarray(jr.uniform(k_cos, (m,), minval=-1.0, maxval=1.0))
        x = 2 * np.pi * np.arange(n) / n
        u0 = sum(a[i - 1] * np.sin(i * x) + b[i - 1] * np.cos(i * x) for i in range(1, m + 1))
        np.testing.assert_allclose(data[s, 0, 0], u0, atol=1e-12)
        assert np.all(np.abs(a) <= 1) and np.all(np.abs(b) <= 1)


def test_advection_step_is_the_exact_shift(x64):
    n, cfl = 16, 0.75
    data = advection_1d_periodic(n, 2, cfl=cfl, temporal_horizon=5, key=jr.PRNGKey(1))
    x = 2 * np.pi * np.arange(n) / n
    # one mode by hand: sin(i x) shifted by cfl cells is sin(i (x - 2 pi cfl / n))
    u = jnp.sin(3 * x)[None]
    np.testing.assert_allclose(
        FourierShiftStepper(n, cfl)(u)[0], np.sin(3 * (x - 2 * np.pi * cfl / n)), atol=1e-12
    )
    # and the trajectory: u_t = shift^t(u_0), an exact rotation for integer cfl
    whole = advection_1d_periodic(n, 1, cfl=2.0, temporal_horizon=4, key=jr.PRNGKey(1))
    for t in range(4):
        np.testing.assert_allclose(whole[0, t, 0], np.roll(whole[0, 0, 0], 2 * t), atol=1e-12)
    k = np.arange(n // 2 + 1)
    expected = np.fft.irfft(np.fft.rfft(data[:, 0, 0]) * np.exp(-2j * np.pi * k * cfl / n), n=n)
    np.testing.assert_allclose(data[:, 1, 0], expected, atol=1e-12)


def test_advection_same_key_same_numbers():
    a = advection_1d_periodic(key=jr.PRNGKey(0))
    b = advection_1d_periodic(key=jr.PRNGKey(0))
    c = advection_1d_periodic(key=jr.PRNGKey(1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_advection_bad_input():
    with pytest.raises(TypeError, match="`num_points` must be an int"):
        advection_1d_periodic(3.5, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="`temporal_horizon`"):
        advection_1d_periodic(temporal_horizon=0, key=jr.PRNGKey(0))


def test_lorenz_shape_and_first_values_by_hand(x64):
    key = jr.PRNGKey(0)
    data = lorenz_rk4(3, temporal_horizon=40, num_warmup_steps=25, init_std=2.0, key=key)
    assert data.shape == (3, 40, 3)
    u = 2.0 * np.asarray(jr.normal(key, (3, 3)))
    dt, sigma, rho, beta = 0.01, 10.0, 28.0, 8.0 / 3.0

    def f(u):
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=1)

    states = [u]
    for _ in range(25 + 1):
        k1 = f(u)
        k2 = f(u + dt / 2 * k1)
        k3 = f(u + dt / 2 * k2)
        k4 = f(u + dt * k3)
        u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        states.append(u)
    np.testing.assert_allclose(data[:, 0], states[25], rtol=1e-10)  # warm-up dropped
    np.testing.assert_allclose(data[:, 1], states[26], rtol=1e-10)
    assert lorenz_rk4(key=key).shape == (20, 1000, 3)


def test_lorenz_stepper_matches_data():
    data, stepper = lorenz_rk4(2, temporal_horizon=5, key=jr.PRNGKey(0), return_stepper=True)
    np.testing.assert_allclose(jax.vmap(stepper)(data[:, 2]), data[:, 3], rtol=1e-6)
    made = make_lorenz_stepper_rk4(0.01, sigma=10.0, rho=28.0, beta=8.0 / 3.0)
    np.testing.assert_array_equal(made(data[0, 0]), stepper(data[0, 0]))
