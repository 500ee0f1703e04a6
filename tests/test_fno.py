"""Tests of `tx.nn.FNO` and `tx.nn.SpectralConv`: shapes, symmetry, counts, training."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

KEY = jr.PRNGKey(0)
GRIDS = {1: (32,), 2: (16, 16), 3: (8, 8, 8)}


@eqx.filter_jit
def apply(model, u):
    return model(u)


@eqx.filter_jit
def apply_batch(model, u):
    return jax.vmap(model)(u)


def inexact_leaves(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


@functools.cache
def small_fno(d, coordinates=False):
    """One model per setting, shared by the tests (models are immutable)."""
    return tx.nn.FNO(d, 2, 3, width=8, modes=4, coordinate_channels=coordinates, key=KEY)


# --------------------------------------------------------------------------
# Shapes, batching, resolution
# --------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("coordinates", [False, True])
def test_shapes_with_channel_change(d, coordinates):
    model = small_fno(d, coordinates)
    u = jr.normal(KEY, (2, *GRIDS[d]))
    out = apply(model, u)
    assert out.shape == (3, *GRIDS[d]) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))


def test_vmap_and_jit_agree_with_a_loop():
    model = small_fno(1)
    batch = jr.normal(KEY, (3, 2, 32))
    batched = apply_batch(model, batch)
    assert batched.shape == (3, 3, 32)
    for u, out in zip(batch, batched):
        np.testing.assert_allclose(out, apply(model, u), atol=1e-5)


def test_same_weights_on_another_grid():
    model = small_fno(1)
    for n in (32, 64):
        out = apply(model, jr.normal(KEY, (2, n)))
        assert out.shape == (3, n) and bool(jnp.all(jnp.isfinite(out)))


def test_linear_fno_is_consistent_across_resolutions():
    """Without a nonlinearity a band-limited input gives the same function on both grids."""
    model = tx.nn.FNO(1, 2, 3, width=8, modes=4, activation=lambda h: h, key=KEY)
    field = lambda x: jnp.stack(  # noqa: E731
        [jnp.sin(2 * jnp.pi * x), 1 + 0.5 * jnp.cos(6 * jnp.pi * x)]
    )
    coarse = apply(model, field(jnp.arange(32) / 32))
    fine = apply(model, field(jnp.arange(64) / 64))
    np.testing.assert_allclose(fine[:, ::2], coarse, atol=1e-5)


# --------------------------------------------------------------------------
# Translation equivariance
# --------------------------------------------------------------------------


def _shift_defect(model, d, shift):
    """`max |model(roll(u)) - roll(model(u))|` and the output's spatial variation."""
    u = jr.normal(KEY, (2, *GRIDS[d]))
    axes = tuple(range(1, d + 1))
    out = apply(model, u)
    shifted = apply(model, jnp.roll(u, shift, axis=axes))
    defect = jnp.max(jnp.abs(shifted - jnp.roll(out, shift, axis=axes)))
    return float(defect), float(jnp.max(jnp.abs(out - out.mean(axis=axes, keepdims=True))))


@pytest.mark.parametrize("d, shift", [(1, 5), (2, (3, -7))])
def test_commutes_with_periodic_shifts(d, shift):
    defect, variation = _shift_defect(small_fno(d), d, shift)
    assert defect < 1e-5 and variation > 1e-3


@pytest.mark.parametrize("d, shift", [(1, 5), (2, (3, -7))])
def test_coordinate_channels_break_shift_equivariance(d, shift):
    defect, variation = _shift_defect(small_fno(d, coordinates=True), d, shift)
    assert defect > 1e-4 and defect > 0.1 * variation


# --------------------------------------------------------------------------
# Parameter count
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((1, 2, 3), dict(width=5, modes=7, num_layers=1, projection_width=0)),
        ((2, 3, 2), dict(width=6, modes=(3, 4), num_layers=3, projection_width=9)),
        ((3, 2, 5), dict(width=4, modes=(2, 3, 2), num_layers=1, coordinate_channels=True)),
    ],
)
def test_parameter_count_formula(args, kwargs):
    model = tx.nn.FNO(*args, **kwargs, key=KEY)
    counted = sum(leaf.size for leaf in inexact_leaves(model))
    assert tx.nn.FNO.count_parameters(*args, **kwargs) == counted


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("coordinates", [False, True])
def test_parameter_count_of_the_shared_models(d, coordinates):
    counted = sum(leaf.size for leaf in inexact_leaves(small_fno(d, coordinates)))
    expected = tx.nn.FNO.count_parameters(
        d, 2, 3, width=8, modes=4, coordinate_channels=coordinates
    )
    assert expected == counted


def test_parameter_count_by_hand():
    # lifting 2*8, layers 2*(2*4*64 + 64 + 8), projection 9*16 + 17.
    assert tx.nn.FNO.count_parameters(1, 1, 1, width=8, modes=4, num_layers=2) == 1345


# --------------------------------------------------------------------------
# The spectral layer
# --------------------------------------------------------------------------


def _cosines(grid, wavenumbers, rng):
    """Sum of `cos(2 pi k.x + phase)` with random amplitudes, channels (2,) first."""
    x = np.meshgrid(*[np.arange(n) / n for n in grid], indexing="ij")
    out = np.zeros((2, *grid))
    for k in wavenumbers:
        for c in range(2):
            phase = 2 * np.pi * sum(kj * xj for kj, xj in zip(k, x)) + rng.uniform(0, 2 * np.pi)
            out[c] += rng.normal() * np.cos(phase)
    return out


@pytest.mark.parametrize(
    "grid, modes, low, high",
    [
        ((16,), (5,), [(0,), (1,), (4,)], [(5,), (7,)]),
        ((16, 12), (5, 4), [(0, 1), (-4, 3), (4, 0), (2, -3)], [(6, 0), (-1, 4), (7, 5)]),
        ((8, 8, 8), (3, 3, 2), [(1, -2, 1), (-2, 0, 0), (2, 2, 1)], [(4, 0, 0), (0, 1, 2)]),
    ],
)
def test_identity_spectral_layer_keeps_exactly_the_low_modes(x64, grid, modes, low, high):
    """Identity weights reproduce a band-limited input and drop every higher mode."""
    rng = np.random.default_rng(0)
    d = len(grid)
    conv = tx.nn.SpectralConv(d, 2, 2, modes, dtype=jnp.float64, key=KEY)
    identity = jnp.broadcast_to(
        jnp.eye(2).reshape(2, 2, *[1] * d), conv.weight_real.shape
    )
    conv = eqx.tree_at(
        lambda c: (c.weight_real, c.weight_imag), conv, (identity, jnp.zeros_like(identity))
    )
    band_limited = _cosines(grid, low, rng)
    out = eqx.filter_jit(conv)(jnp.asarray(band_limited + _cosines(grid, high, rng)))
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, band_limited, rtol=0, atol=1e-12)


def test_spectral_weights_are_real_arrays_of_the_documented_shape():
    conv = tx.nn.SpectralConv(3, 2, 5, (2, 3, 4), key=KEY)
    assert conv.weight_real.shape == conv.weight_imag.shape == (5, 2, 4, 6, 4)
    assert conv.weight_real.dtype == conv.weight_imag.dtype == jnp.float32
    assert float(conv.weight_real.min()) >= 0 and float(conv.weight_real.max()) < 1 / 10


# --------------------------------------------------------------------------
# Training and gradients
# --------------------------------------------------------------------------


def poisson_pairs(key, n_samples=8, n=32, k_max=3):
    """Smooth zero-mean sources `f` and the solutions of `-0.01 lap u = f`, normalised."""
    k = np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    low = (np.abs(k[:, None]) <= k_max) & (np.abs(k[None, :]) <= k_max) & (k2 > 0)
    re, im = jr.normal(key, (2, n_samples, n, n))
    f = jnp.real(jnp.fft.ifft2((re + 1j * im) * low))
    inverse = np.where(k2 > 0, 1.0 / (0.01 * 4 * np.pi**2 * np.maximum(k2, 1)), 0.0)
    u = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(f) * inverse))
    return (f / f.std())[:, None], (u / u.std())[:, None]


def relative_l2(pred, target):
    error = jnp.linalg.norm((pred - target).reshape(len(pred), -1), axis=1)
    return jnp.mean(error / jnp.linalg.norm(target.reshape(len(target), -1), axis=1))


def test_overfits_eight_poisson_samples():
    f, u = poisson_pairs(jr.PRNGKey(1))
    model = tx.nn.FNO(2, 1, 1, width=16, modes=8, num_layers=4, key=KEY)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    num_steps = 200
    optimizer = optax.adam(optax.cosine_decay_schedule(1e-2, num_steps, alpha=1e-2))

    def loss(p):
        return jnp.mean((jax.vmap(eqx.combine(p, static))(f) - u) ** 2)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, state = carry
            value, grads = jax.value_and_grad(loss)(p)
            updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), value

        (p, _), history = jax.lax.scan(step, (p, optimizer.init(p)), length=num_steps)
        return p, history

    trained, history = train(params)
    assert bool(jnp.all(jnp.isfinite(history)))
    assert relative_l2(apply_batch(model, f), u) > 0.5
    assert relative_l2(apply_batch(eqx.combine(trained, static), f), u) < 1e-2


def test_every_leaf_gets_a_gradient():
    model = small_fno(1, coordinates=True)
    u = jr.normal(KEY, (2, 32))
    target = jr.normal(jr.PRNGKey(1), (3, 32))
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean((m(u) - target) ** 2)))(model)
    leaves = inexact_leaves(grads)
    assert len(leaves) == len(inexact_leaves(model)) == 2 + 4 * 4 + 4
    for leaf in leaves:
        assert bool(jnp.all(jnp.isfinite(leaf))) and float(jnp.max(jnp.abs(leaf))) > 0


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, grid, axis, limit",
    [(1, (4,), 0, 3), (2, (6, 16), 0, 3), (2, (16, 5), 1, 3), (3, (8, 7, 8), 1, 3)],
)
def test_too_many_modes_for_the_grid(d, grid, axis, limit):
    """`modes=4` needs `N >= 8` on leading axes and `N // 2 + 1 >= 4` on the last."""
    message = f"`modes` must be at most {limit} for spatial axis {axis} of {grid[axis]} points"
    with pytest.raises(ValueError, match=message):
        small_fno(d)(jnp.zeros((2, *grid)))


def test_modes_at_the_limit_fit():
    assert apply(small_fno(2), jnp.ones((2, 8, 6))).shape == (3, 8, 6)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(num_spatial_dims=4), ValueError, "num_spatial_dims"),
        (dict(num_spatial_dims=0), ValueError, "num_spatial_dims"),
        (dict(width=0), ValueError, "width"),
        (dict(width=-3), ValueError, "width"),
        (dict(modes=0), ValueError, "modes"),
        (dict(modes=(4, 4)), ValueError, "modes"),
        (dict(num_layers=0), ValueError, "num_layers"),
        (dict(in_channels=0), ValueError, "in_channels"),
        (dict(projection_width=-1), ValueError, "projection_width"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    arguments = dict(num_spatial_dims=1, in_channels=1, out_channels=1, width=4, modes=4)
    arguments.update(kwargs)
    with pytest.raises(error, match=f"`{name}`"):
        tx.nn.FNO(**arguments, key=KEY)
    with pytest.raises(error, match=f"`{name}`"):
        tx.nn.FNO.count_parameters(**arguments)


def test_wrong_states_are_explained():
    model = tx.nn.FNO(1, 2, 1, width=4, modes=4, key=KEY)
    with pytest.raises(ValueError, match=r"FNO acts on one state \(C=2, N0\).*\(3, 32\)"):
        model(jnp.zeros((3, 32)))
    with pytest.raises(ValueError, match="jax.vmap"):
        model(jnp.zeros((5, 2, 32)))
    with pytest.raises(ValueError, match="SpectralConv"):
        tx.nn.SpectralConv(2, 1, 1, 4, key=KEY)(jnp.zeros((1, 16)))
