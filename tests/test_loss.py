"""Numerical tests of the time-level losses against hand-derived values."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import trainax as tx

L = tx.loss

# One state (C=2, N=2) and its target; e = p - t = [[1, -1], [2, 0]].
P = jnp.array([[2.0, 0.0], [3.0, 1.0]])
T = jnp.array([[1.0, 1.0], [1.0, 1.0]])
# Hand values for P vs T: sum e^2 = 6, sum |e| = 4, sum t^2 = 4, sum |t| = 4.
HAND = {
    L.MSELoss: 6 / 4,
    L.MAELoss: 4 / 4,
    L.RMSELoss: np.sqrt(6 / 4),
    L.Normalized_MSELoss: 6 / 4,
    L.Normalized_MAELoss: 4 / 4,
    L.Normalized_RMSELoss: np.sqrt(6 / 4),
}
# Hand values for P vs zero: sum p^2 = 14, sum |p| = 6.
HAND_NO_TARGET = {
    L.MSELoss: 14 / 4,
    L.MAELoss: 6 / 4,
    L.RMSELoss: np.sqrt(14 / 4),
}
POINTWISE = list(HAND)
NORMALIZED = [L.Normalized_MSELoss, L.Normalized_MAELoss, L.Normalized_RMSELoss]


@pytest.fixture
def x64():
    """Enable float64 for one test and restore the previous setting."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _normal(seed, shape):
    # NumPy draws: no per-shape compilation of JAX's PRNG in eager tests.
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _batch(seed, shape=(3, 2, 5)):
    return _normal(seed, shape), _normal(seed + 100, shape) + 1.0


# --------------------------------------------------------------------------
# Pointwise and normalized losses
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", POINTWISE)
def test_hand_values_single_and_batched(cls):
    loss = cls()
    assert loss.single_batch(P, T) == pytest.approx(HAND[cls], rel=1e-6)
    # A batch of two: (P, T) and (2P, 2T) where e doubles.
    p = jnp.stack([P, 2 * P])
    t = jnp.stack([T, 2 * T])
    scale = 1.0 if cls in NORMALIZED else (4.0 if cls is L.MSELoss else 2.0)
    expected = (HAND[cls] + scale * HAND[cls]) / 2
    assert loss(p, t) == pytest.approx(expected, rel=1e-6)
    assert loss.multi_batch(p, t) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("cls", list(HAND_NO_TARGET))
def test_no_target_compares_with_zero(cls):
    loss = cls()
    assert loss.single_batch(P) == pytest.approx(HAND_NO_TARGET[cls], rel=1e-6)
    assert loss.single_batch(P, jnp.zeros_like(P)) == loss.single_batch(P)
    assert loss(P[None]) == pytest.approx(HAND_NO_TARGET[cls], rel=1e-6)


@pytest.mark.parametrize("cls", POINTWISE + [L.SobolevLoss])
def test_batched_is_mean_of_single(cls):
    p, t = _batch(0)
    loss = cls()
    singles = [loss.single_batch(p[i], t[i]) for i in range(p.shape[0])]
    assert loss(p, t) == pytest.approx(float(np.mean(singles)), rel=1e-6)


@pytest.mark.parametrize("cls", POINTWISE)
def test_state_without_spatial_axis(cls):
    # A Lorenz-like state (3,): e = [1, -2, 2], sum e^2 = 9, sum |e| = 5,
    # t = [1, 1, 1]: sum t^2 = 3, sum |t| = 3.
    p = jnp.array([2.0, -1.0, 3.0])
    t = jnp.ones(3)
    expected = {
        L.MSELoss: 3.0,
        L.MAELoss: 5 / 3,
        L.RMSELoss: np.sqrt(3.0),
        L.Normalized_MSELoss: 3.0,
        L.Normalized_MAELoss: 5 / 3,
        L.Normalized_RMSELoss: np.sqrt(3.0),
    }[cls]
    assert cls().single_batch(p, t) == pytest.approx(expected, rel=1e-6)
    assert cls()(jnp.stack([p, p]), jnp.stack([t, t])) == pytest.approx(
        expected, rel=1e-6
    )


@pytest.mark.parametrize("cls", NORMALIZED)
def test_normalized_scale_invariant(cls):
    p, t = _batch(1)
    loss = cls()
    assert loss(3.7 * p, 3.7 * t) == pytest.approx(float(loss(p, t)), rel=1e-5)
    # The plain losses are not scale invariant; the normalized ones divide.
    assert loss.single_batch(5 * P, 5 * T) == pytest.approx(HAND[cls], rel=1e-6)


def test_normalized_distinguishes_target_norm():
    # Same error, target twice as large: nMSE / 4, nMAE / 2, nRMSE / 2.
    e = P - T
    for cls, factor in [
        (L.Normalized_MSELoss, 4.0),
        (L.Normalized_MAELoss, 2.0),
        (L.Normalized_RMSELoss, 2.0),
    ]:
        value = cls().single_batch(2 * T + e, 2 * T)
        assert value == pytest.approx(HAND[cls] / factor, rel=1e-6)


@pytest.mark.parametrize("cls", NORMALIZED)
def test_normalized_requires_target(cls):
    with pytest.raises(ValueError, match="needs a `target`"):
        cls().single_batch(P)
    with pytest.raises(ValueError, match="needs a `target`"):
        cls()(P[None])


def test_rmse_is_sqrt_mse():
    p, t = _batch(2, (2, 7))
    assert L.RMSELoss().single_batch(p, t) == pytest.approx(
        float(jnp.sqrt(L.MSELoss().single_batch(p, t))), rel=1e-6
    )
    assert L.Normalized_RMSELoss().single_batch(p, t) == pytest.approx(
        float(jnp.sqrt(L.Normalized_MSELoss().single_batch(p, t))), rel=1e-6
    )


def test_rmse_gradient_finite_at_zero_error():
    grad = jax.grad(lambda p: L.RMSELoss().single_batch(p, P))(P)
    assert jnp.all(grad == 0.0)


def test_numpy_inputs_accepted():
    assert L.MSELoss().single_batch(np.asarray(P), np.asarray(T)) == pytest.approx(
        1.5
    )


# --------------------------------------------------------------------------
# Sobolev
# --------------------------------------------------------------------------


def _grid_1d(n, extent):
    return extent * jnp.arange(n) / n


def test_sobolev_order_zero_is_mse():
    p, t = _batch(3, (4, 3, 8, 6))
    sobolev = L.SobolevLoss(orders=(0,))
    assert sobolev(p, t) == pytest.approx(float(L.MSELoss()(p, t)), rel=1e-5)
    assert sobolev(p) == pytest.approx(float(L.MSELoss()(p)), rel=1e-5)
    normalized = L.SobolevLoss(orders=(0,), normalized=True)
    assert normalized(p, t) == pytest.approx(
        float(L.Normalized_MSELoss()(p, t)), rel=1e-5
    )


def test_sobolev_order_zero_is_mse_float64(x64):
    p, t = _batch(3, (2, 3, 16, 8))
    assert p.dtype == jnp.float64
    value = L.SobolevLoss(orders=(0,), domain_extent=3.0)(p, t)
    assert value == pytest.approx(float(L.MSELoss()(p, t)), rel=1e-12)


@pytest.mark.parametrize("m", [1, 3])
def test_sobolev_order_one_sine_1d(x64, m):
    extent, n = 2.5, 32
    x = _grid_1d(n, extent)
    u = jnp.sin(2 * jnp.pi * m * x / extent)[None]  # (1, N)
    k = 2 * jnp.pi * m / extent
    first = L.SobolevLoss(domain_extent=extent, orders=(1,))
    assert first.single_batch(u) == pytest.approx(k**2 / 2, rel=1e-12)
    # The same via a target: e = (u + 1) - 1.
    assert first.single_batch(u + 1.0, jnp.ones_like(u)) == pytest.approx(
        k**2 / 2, rel=1e-12
    )
    both = L.SobolevLoss(domain_extent=extent, orders=(0, 1), weights=(2.0, 0.5))
    assert both.single_batch(u) == pytest.approx(2 * 0.5 + 0.5 * k**2 / 2, rel=1e-12)
    # Fractional order s: |k|^(2s) * 1/2.
    half = L.SobolevLoss(domain_extent=extent, orders=(0.5,))
    assert half.single_batch(u) == pytest.approx(k / 2, rel=1e-12)


def test_sobolev_2d_analytic_gradient(x64):
    extent, n = 3.0, 16
    a, b = 2, 1
    x = _grid_1d(n, extent)
    ka, kb = 2 * jnp.pi * a / extent, 2 * jnp.pi * b / extent
    u = jnp.sin(ka * x)[:, None] * jnp.cos(kb * x)[None, :]
    # Explicit gradient on the grid; its mean squared norm is (ka^2 + kb^2) / 4.
    ux = ka * jnp.cos(ka * x)[:, None] * jnp.cos(kb * x)[None, :]
    uy = -kb * jnp.sin(ka * x)[:, None] * jnp.sin(kb * x)[None, :]
    grad_sq = float(jnp.mean(ux**2 + uy**2))
    assert grad_sq == pytest.approx((ka**2 + kb**2) / 4, rel=1e-12)
    state = jnp.stack([u, 2 * u])  # (C=2, N, N): channel 1 is 4x channel 0
    first = L.SobolevLoss(domain_extent=extent, orders=(1,))
    assert first.single_batch(state) == pytest.approx(
        (1 + 4) / 2 * grad_sq, rel=1e-12
    )
    # Order 2: mean |Laplacian u|^2 = (ka^2 + kb^2)^2 / 4.
    second = L.SobolevLoss(domain_extent=extent, orders=(2,))
    assert second.single_batch(u[None]) == pytest.approx(
        (ka**2 + kb**2) ** 2 / 4, rel=1e-12
    )


def test_sobolev_normalized(x64):
    extent, n = 1.0, 16
    x = _grid_1d(n, extent)
    t = jnp.sin(2 * jnp.pi * x / extent)[None]
    p = t + 0.1 * jnp.sin(2 * jnp.pi * 3 * x / extent)[None]
    k1, k3 = 2 * jnp.pi, 2 * jnp.pi * 3
    loss = L.SobolevLoss(domain_extent=extent, orders=(0, 1), normalized=True)
    expected = (0.01 * (1 + k3**2) / 2) / ((1 + k1**2) / 2)
    assert loss.single_batch(p, t) == pytest.approx(expected, rel=1e-12)
    assert loss.single_batch(7 * p, 7 * t) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="needs a `target`"):
        loss.single_batch(p)


def test_sobolev_errors():
    with pytest.raises(ValueError, match="spatial axis"):
        L.SobolevLoss().single_batch(jnp.ones(3))
    with pytest.raises(ValueError, match="spatial axis"):
        L.SobolevLoss()(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match=r"`weights`.*expected 2, got 1"):
        L.SobolevLoss(orders=(0, 1), weights=(1.0,))
    with pytest.raises(ValueError, match="non-negative"):
        L.SobolevLoss(orders=(-1,))
    with pytest.raises(ValueError, match="domain_extent"):
        L.SobolevLoss(domain_extent=0.0)


# --------------------------------------------------------------------------
# Channel weighting and loss algebra
# --------------------------------------------------------------------------


def test_channel_weighted_hand_values():
    # Per-channel MSE of P vs T: channel 0: (1 + 1)/2 = 1, channel 1: 4/2 = 2.
    loss = L.ChannelWeightedLoss(L.MSELoss(), weights=(0.5, 3.0))
    assert loss.single_batch(P, T) == pytest.approx(0.5 * 1 + 3.0 * 2, rel=1e-6)
    # Without target: channel 0: 4/2 = 2, channel 1: 10/2 = 5.
    assert loss.single_batch(P) == pytest.approx(0.5 * 2 + 3.0 * 5, rel=1e-6)
    p, t = jnp.stack([P, T]), jnp.stack([T, T])
    assert loss(p, t) == pytest.approx((6.5 + 0.0) / 2, rel=1e-6)
    # Normalized per channel: channel 0: 2/2, channel 1: 4/2.
    nloss = L.ChannelWeightedLoss(L.Normalized_MSELoss(), jnp.array([1.0, 10.0]))
    assert nloss.single_batch(P, T) == pytest.approx(1.0 + 10.0 * 2.0, rel=1e-6)


def test_channel_weighted_uniform_equals_full_mse():
    p, t = _batch(4, (3, 4, 6))
    loss = L.ChannelWeightedLoss(L.MSELoss(), weights=jnp.full(4, 0.25))
    assert loss(p, t) == pytest.approx(float(L.MSELoss()(p, t)), rel=1e-6)


def test_channel_weighted_errors():
    loss = L.ChannelWeightedLoss(L.MSELoss(), weights=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"`weights`.*expected 2, got 3"):
        loss.single_batch(P, T)
    with pytest.raises(ValueError, match=r"`weights`.*expected 2, got 3"):
        loss(P[None], T[None])
    with pytest.raises(ValueError, match="one-dimensional"):
        L.ChannelWeightedLoss(L.MSELoss(), weights=jnp.ones((2, 2)))


def test_sum_and_scale():
    mse, mae = L.MSELoss(), L.MAELoss()
    combined = mse + 2 * mae
    assert isinstance(combined, L.SumLoss)
    assert combined.single_batch(P, T) == pytest.approx(1.5 + 2 * 1.0, rel=1e-6)
    assert (mse * 3).single_batch(P, T) == pytest.approx(4.5, rel=1e-6)
    assert (mse / 2).single_batch(P, T) == pytest.approx(0.75, rel=1e-6)
    assert (0.5 * mse + mae + L.RMSELoss()).single_batch(P, T) == pytest.approx(
        0.75 + 1.0 + np.sqrt(1.5), rel=1e-6
    )
    assert sum([mse, mae]).single_batch(P, T) == pytest.approx(2.5, rel=1e-6)
    p, t = jnp.stack([P, 2 * P]), jnp.stack([T, 2 * T])
    # Batched: MSE (1.5 + 6) / 2, MAE (1 + 2) / 2.
    assert combined(p, t) == pytest.approx(3.75 + 2 * 1.5, rel=1e-6)
    assert L.ScaledLoss(mae, 4.0)(p, t) == pytest.approx(6.0, rel=1e-6)
    assert L.SumLoss((mse, mae))(p, t) == pytest.approx(5.25, rel=1e-6)


def test_algebra_rejects_non_losses():
    with pytest.raises(TypeError):
        L.MSELoss() + 1.0
    with pytest.raises(TypeError):
        L.MSELoss() * "a"
    with pytest.raises(TypeError):
        L.MSELoss() * L.MAELoss()


# --------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------

ALL_LOSSES = [cls() for cls in POINTWISE] + [
    L.SobolevLoss(orders=(0, 1)),
    L.SobolevLoss(orders=(1,), normalized=True),
    L.ChannelWeightedLoss(L.MAELoss(), (1.0, 2.0)),
    L.MSELoss() + 0.5 * L.Normalized_RMSELoss(),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda l: type(l).__name__)
def test_jit_and_grad(loss):
    p, t = _batch(5, (2, 2, 8))
    eager = loss(p, t)
    assert eqx.filter_jit(loss)(p, t) == pytest.approx(float(eager), rel=1e-5)
    # The loss as a jit argument (a PyTree), not only as a closure.
    jitted = jax.jit(lambda l, a, b: l(a, b))(loss, p, t)
    assert jitted == pytest.approx(float(eager), rel=1e-5)
    grad = jax.jit(jax.grad(lambda a: loss(a, t)))(p)
    assert grad.shape == p.shape and bool(jnp.all(jnp.isfinite(grad)))


def test_mse_gradient_analytic_and_finite_difference(x64):
    p, t = _batch(6, (2, 3, 4))
    loss = L.MSELoss()
    grad = jax.grad(lambda a: loss(a, t))(p)
    # Batch mean of per-state means = mean over all B*C*N entries.
    np.testing.assert_allclose(grad, 2 * (p - t) / p.size, rtol=1e-12)
    direction = _normal(7, p.shape)
    h = 1e-6
    fd = (loss(p + h * direction, t) - loss(p - h * direction, t)) / (2 * h)
    assert float(fd) == pytest.approx(float(jnp.sum(grad * direction)), rel=1e-7)
    single = jax.grad(lambda a: loss.single_batch(a, t[0]))(p[0])
    np.testing.assert_allclose(single, 2 * (p[0] - t[0]) / p[0].size, rtol=1e-12)


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", POINTWISE + [L.SobolevLoss])
def test_target_shape_mismatch(cls):
    with pytest.raises(ValueError, match=r"`target`.*expected \(2, 2\), got \(2, 3\)"):
        cls().single_batch(P, jnp.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"`target`.*expected \(1, 2, 2\), got \(1, 2, 3\)"
    ):
        cls()(P[None], jnp.ones((1, 2, 3)))


def test_missing_axes():
    with pytest.raises(ValueError, match=r"`prediction`.*\(B, C, \*N\)"):
        L.MSELoss()(jnp.ones(3))
    with pytest.raises(ValueError, match=r"`prediction`.*\(C, \*N\)"):
        L.MSELoss().single_batch(jnp.ones(()))


def test_type_checked_at_entry():
    # jaxtyping + beartype reject non-float arrays.
    with pytest.raises(Exception, match="prediction"):
        L.MSELoss().single_batch(jnp.ones((2, 2), dtype=jnp.int32))
    with pytest.raises(Exception, match="target"):
        L.MSELoss()(P[None], jnp.ones((1, 2, 2), dtype=jnp.int32))


def _wrong_shape_calls():
    cw = L.ChannelWeightedLoss(L.MSELoss(), (1.0, 2.0, 3.0))
    return [
        (lambda: L.MSELoss()(jnp.ones((2, 2, 2)), jnp.ones((2, 2, 3))), ValueError,
         "`target`"),
        (lambda: L.Normalized_RMSELoss().single_batch(P, jnp.ones((3, 2))), ValueError,
         "`target`"),
        (lambda: L.MAELoss()(jnp.ones(3)), ValueError, "`prediction`"),
        (lambda: L.SobolevLoss().single_batch(jnp.ones(())), ValueError, "`prediction`"),
        (lambda: L.MSELoss().single_batch(jnp.ones((2, 2), jnp.int32)), TypeError,
         "`prediction`.*floating-point.*int32"),
        (lambda: L.Normalized_MAELoss()(P[None], T[None].astype(jnp.int32)), TypeError,
         "`target`.*floating-point"),
        (lambda: (L.MSELoss() + L.MAELoss())(P[None], jnp.ones((2, 2, 2))), ValueError,
         "`target`"),
        (lambda: cw(P[None], T[None]), ValueError, "`weights`"),
    ]


@pytest.mark.parametrize("index", range(len(_wrong_shape_calls())))
def test_bad_inputs_give_one_line_errors(index):
    call, error, match = _wrong_shape_calls()[index]
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value), str(info.value)


def test_shape_mismatch_is_caught_under_jit():
    p, t = _batch(8, (2, 2, 4))
    with pytest.raises(ValueError, match=r"`target`.*expected \(2, 2, 4\), got \(2, 2, 3\)"):
        eqx.filter_jit(L.Normalized_MSELoss())(p, t[..., :3])
