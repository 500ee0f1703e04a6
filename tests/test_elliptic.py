"""Tests of the parametric elliptic families, their exact FFT solvers and the
per-channel input normaliser."""

import math
import re
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx
from trainax import sample_data as sd

KEY = jr.key(0)
# One grid and batch for most tests (and the docstring examples), so each
# family compiles once per dtype.
SMALL = dict(num_samples=8, num_points=16)
FAMILIES = {
    "poisson": (sd.poisson_2d_periodic, 4),
    "advection_diffusion": (sd.advection_diffusion_2d_periodic, 6),
    "helmholtz": (sd.helmholtz_2d_periodic, 2),
}
PUBLIC = [
    "poisson_2d_periodic",
    "advection_diffusion_2d_periodic",
    "helmholtz_2d_periodic",
    "solve_anisotropic_poisson",
    "solve_advection_diffusion",
    "solve_helmholtz",
    "InputNormalizer",
]


def _named(name):
    # Our checks quote with backticks; the type checker of the test suite,
    # which may see a wrong type first, with single quotes.
    return rf"[`']{re.escape(name)}[`']"


# --------------------------------------------------------------------------
# An independent spectral operator, written out with numpy's FFT
# --------------------------------------------------------------------------


def _d(u, orders):
    """Spectral derivative `d^a/dx^a d^b/dy^b u` of a periodic unit-square field."""
    u_hat = np.fft.fft2(np.asarray(u, np.float64))
    for axis, order in enumerate(orders):
        n = u.shape[axis]
        k = np.fft.fftfreq(n, 1 / n)
        if order % 2 and n % 2 == 0:
            k[n // 2] = 0  # an odd derivative has no real Nyquist value
        factor = (2j * np.pi * k) ** order
        u_hat = u_hat * (factor[:, None] if axis == 0 else factor[None, :])
    result = np.fft.ifft2(u_hat)
    assert np.max(np.abs(result.imag)) < 1e-9
    return result.real


def _anisotropic(u, K):
    return -(
        K[0, 0] * _d(u, (2, 0)) + 2 * K[0, 1] * _d(u, (1, 1)) + K[1, 1] * _d(u, (0, 2))
    )


def _advection_diffusion(u, K, v):
    return _anisotropic(u, K) + v[0] * _d(u, (1, 0)) + v[1] * _d(u, (0, 1))


def _helmholtz(u, omega):
    return -0.01 * (_d(u, (2, 0)) + _d(u, (0, 2))) - omega * u


def _filtered(f):
    """`f` without its mean and without the Nyquist row and column of even axes."""
    f_hat = np.fft.fft2(np.asarray(f, np.float64))
    f_hat[0, 0] = 0
    for axis, n in enumerate(f.shape):
        if n % 2 == 0:
            index = [slice(None), slice(None)]
            index[axis] = n // 2
            f_hat[tuple(index)] = 0
    return np.fft.ifft2(f_hat).real


def _coefficients(x):
    """Read the constant channels of one input sample back."""
    x = np.asarray(x)
    c = x[1:, 0, 0].astype(np.float64)
    assert np.all(x[1:] == c[:, None, None]), "channels not constant"
    return c


def _tensor(c):
    return np.array([[c[0], c[1]], [c[1], c[2]]])


def _smooth_source(shape):
    """Smooth, with a nonzero mean and (on even axes) Nyquist content."""
    x = np.arange(shape[0])[:, None] / shape[0]
    y = np.arange(shape[1])[None, :] / shape[1]
    return np.exp(np.sin(2 * np.pi * x) * np.cos(2 * np.pi * (x + y))) + 0.1 * np.cos(
        np.pi * shape[0] * x
    ) * np.cos(np.pi * shape[1] * y)


# --------------------------------------------------------------------------
# Public names and docstrings
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", PUBLIC)
def test_public_and_documented(name):
    assert name in sd.__all__
    doc = getattr(sd, name).__doc__
    assert "**Arguments:**" in doc and "```python" in doc


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_example_runs(name):
    (code,) = re.findall(r"```python\n(.*?)```", getattr(sd, name).__doc__, re.DOTALL)
    scope = dict(jax=jax, jnp=jnp, jr=jr, np=np, eqx=eqx, optax=optax, tx=tx)
    exec(compile(textwrap.dedent(code), name, "exec"), scope)


# --------------------------------------------------------------------------
# The data satisfy their discrete equations with the coefficients in the inputs
# --------------------------------------------------------------------------


def _residual(family, x, u):
    f = np.asarray(x[0], np.float64)
    c = _coefficients(x)
    if family == "poisson":
        return _anisotropic(u, _tensor(c)) - f
    if family == "advection_diffusion":
        return _advection_diffusion(u, _tensor(c[:3]), c[3:]) - f
    return _helmholtz(u, c[0]) - f


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_data_satisfy_discrete_equation(x64, family):
    function, channels = FAMILIES[family]
    inputs, targets = function(**SMALL, key=KEY)
    assert inputs.shape == (8, channels, 16, 16) and targets.shape == (8, 1, 16, 16)
    assert inputs.dtype == targets.dtype == jnp.float64
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    for x, u in zip(inputs, targets):
        # The sources already are zero-mean and Nyquist-filtered.
        np.testing.assert_allclose(_filtered(x[0]), x[0], atol=1e-13)
        np.testing.assert_allclose(_residual(family, x, u[0]), 0, atol=1e-10)
        assert abs(np.mean(u)) < 1e-13


@pytest.mark.parametrize("shape", [(16, 16), (16, 15)])
def test_solvers_satisfy_discrete_equation_on_smooth_source(x64, shape):
    f = _smooth_source(shape)
    theta, e = 0.7, 3.5
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    K = 0.01 * R.T @ np.diag([1.0, e]) @ R
    v = np.array([0.03, -0.05])

    u = sd.solve_anisotropic_poisson(jnp.asarray(f), jnp.asarray(K))
    assert u.dtype == jnp.float64
    # The equation holds for the source without its mean and Nyquist modes.
    np.testing.assert_allclose(_anisotropic(u, K), _filtered(f), atol=1e-10)
    u = sd.solve_advection_diffusion(jnp.asarray(f), jnp.asarray(K), jnp.asarray(v))
    np.testing.assert_allclose(_advection_diffusion(u, K, v), _filtered(f), atol=1e-10)
    # Helmholtz needs no filter: its symbol is real and even, and the mean
    # mode is solved too (-omega u_0 = f_0).
    u = sd.solve_helmholtz(jnp.asarray(f), 3)
    np.testing.assert_allclose(_helmholtz(u, 3), f, atol=1e-10)
    assert abs(float(jnp.mean(u)) + np.mean(f) / 3) < 1e-12


# --------------------------------------------------------------------------
# Manufactured solution u = sin(2 pi x) cos(4 pi y)
# --------------------------------------------------------------------------


def _manufactured(shape=(16, 16)):
    x = np.arange(shape[0])[:, None] / shape[0]
    y = np.arange(shape[1])[None, :] / shape[1]
    s, c = np.sin(2 * np.pi * x), np.cos(2 * np.pi * x)
    s2, c2 = np.sin(4 * np.pi * y), np.cos(4 * np.pi * y)
    return dict(u=s * c2, u_x=2 * np.pi * c * c2, u_y=-4 * np.pi * s * s2,
                u_xy=-8 * np.pi**2 * c * s2)


@pytest.mark.parametrize("shape", [(16, 16), (16, 15)])
def test_manufactured_solutions(x64, shape):
    m = _manufactured(shape)
    u = m["u"]
    theta, e = 0.3, 3.0
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    K = 0.01 * R.T @ np.diag([1.0, e]) @ R
    # -div(K grad u) = -(K11 u_xx + 2 K12 u_xy + K22 u_yy), u_xx = -(2 pi)^2 u,
    # u_yy = -(4 pi)^2 u.
    f_diffusion = (
        K[0, 0] * (2 * np.pi) ** 2 * u - 2 * K[0, 1] * m["u_xy"]
        + K[1, 1] * (4 * np.pi) ** 2 * u
    )
    got = sd.solve_anisotropic_poisson(jnp.asarray(f_diffusion), jnp.asarray(K))
    np.testing.assert_allclose(got, u, atol=1e-12)

    v = np.array([0.04, -0.02])
    f_advection = f_diffusion + v[0] * m["u_x"] + v[1] * m["u_y"]
    got = sd.solve_advection_diffusion(
        jnp.asarray(f_advection), jnp.asarray(K), jnp.asarray(v)
    )
    np.testing.assert_allclose(got, u, atol=1e-12)

    omega = 3
    f_helmholtz = (0.01 * 20 * np.pi**2 - omega) * u
    got = sd.solve_helmholtz(jnp.asarray(f_helmholtz), omega)
    np.testing.assert_allclose(got, u, atol=1e-12)


def test_scaling(x64):
    f = jnp.asarray(_smooth_source((16, 16)))
    K = jnp.array([[0.02, 0.004], [0.004, 0.01]])
    v = jnp.array([0.05, 0.01])
    poisson = sd.solve_anisotropic_poisson(f, K)
    np.testing.assert_allclose(sd.solve_anisotropic_poisson(10 * f, K), 10 * poisson,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd.solve_anisotropic_poisson(10 * f, 10 * K), poisson,
                               rtol=1e-12, atol=1e-14)
    ad = sd.solve_advection_diffusion(f, K, v)
    np.testing.assert_allclose(sd.solve_advection_diffusion(10 * f, K, v), 10 * ad,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        sd.solve_advection_diffusion(10 * f, 10 * K, 10 * v), ad, rtol=1e-12, atol=1e-14
    )
    # The advection term changes the solution.
    assert float(jnp.max(jnp.abs(ad - poisson))) > 1e-2 * float(jnp.max(jnp.abs(poisson)))
    helmholtz = sd.solve_helmholtz(f, 4.0)
    np.testing.assert_allclose(sd.solve_helmholtz(10 * f, 4.0), 10 * helmholtz,
                               rtol=1e-12, atol=1e-14)


def test_solvers_keep_float32_and_work_under_jit_and_vmap():
    f = jnp.asarray(_smooth_source((16, 16)), jnp.float32)
    K = jnp.array([[0.02, 0.004], [0.004, 0.01]])
    u = sd.solve_anisotropic_poisson(f, K)
    assert u.dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(sd.solve_anisotropic_poisson)(f, K), u, atol=1e-6)
    omegas = jnp.array([1.0, 3.0])
    batch = jax.vmap(sd.solve_helmholtz, in_axes=(None, 0))(f, omegas)
    np.testing.assert_allclose(batch[1], sd.solve_helmholtz(f, 3), atol=1e-5)


# --------------------------------------------------------------------------
# Coefficients stay in their ranges and are the constant channels
# --------------------------------------------------------------------------


def test_poisson_tensor_in_range():
    inputs, _ = sd.poisson_2d_periodic(**SMALL, e_range=(2.0, 3.0), key=KEY)
    ratios, angles = [], []
    for x in np.asarray(inputs):
        K = _tensor(_coefficients(x))
        low, high = np.linalg.eigvalsh(K / 0.01)
        np.testing.assert_allclose(low, 1, rtol=1e-5)
        assert 2 - 1e-5 <= high <= 3 + 1e-5
        ratios.append(high)
        angles.append(np.arctan2(K[0, 1], K[0, 0] - K[1, 1]))
    assert np.std(ratios) > 0.05 and np.std(angles) > 0.1  # drawn, not fixed


def test_advection_diffusion_velocity_in_range():
    inputs, _ = sd.advection_diffusion_2d_periodic(
        **SMALL, e_range=(0.5, 2.0), ratio_range=(0.3, 0.6), key=KEY
    )
    speeds = []
    for x in np.asarray(inputs):
        c = _coefficients(x)
        low, high = np.linalg.eigvalsh(_tensor(c[:3]) / 0.01)
        e = high if np.isclose(low, 1, rtol=1e-5) else low
        assert 0.5 - 1e-5 <= e <= 2 + 1e-5
        # |v| = ratio * 2 pi * lambda_min(K)
        ratio = np.linalg.norm(c[3:]) / (2 * np.pi * 0.01 * low)
        assert 0.3 - 1e-5 <= ratio <= 0.6 + 1e-5
        speeds.append(c[3:])
    assert np.std(np.arctan2(*np.array(speeds).T)) > 0.1  # random directions


def test_advection_bound_holds_at_every_mode():
    # The documented meaning of the ratio: |v . 2 pi k| <= ratio (2 pi k)^T K (2 pi k).
    inputs, _ = sd.advection_diffusion_2d_periodic(**SMALL, ratio_range=(1, 1), key=KEY)
    k = 2 * np.pi * np.stack(np.meshgrid(np.arange(-8, 9), np.arange(-8, 9)), -1)
    k = k.reshape(-1, 2)[np.any(k.reshape(-1, 2) != 0, axis=1)]
    for x in np.asarray(inputs):
        c = _coefficients(x)
        diffusion = np.einsum("ni,ij,nj->n", k, _tensor(c[:3]), k)
        assert np.all(np.abs(k @ c[3:]) <= diffusion * (1 + 1e-5))


def test_helmholtz_omega_in_range_and_bounded():
    inputs, targets = sd.helmholtz_2d_periodic(**SMALL, omega_range=(3, 7), key=KEY)
    omegas = np.array([_coefficients(x)[0] for x in np.asarray(inputs)])
    assert np.all(omegas == np.round(omegas)) and set(omegas) <= set(range(3, 8))
    assert len(set(omegas)) >= 3
    assert float(jnp.max(jnp.abs(targets))) <= 2


def test_helmholtz_redraws_enforce_the_bound():
    kwargs = dict(SMALL, omega_range=(1, 4), key=KEY)
    _, unbounded = sd.helmholtz_2d_periodic(**kwargs, max_abs_solution=1e9)
    inputs, targets = sd.helmholtz_2d_periodic(**kwargs, max_abs_solution=1.0)
    # Without the bound some samples exceed 1; with it none does, and the
    # redrawn samples still solve their equation.
    assert float(jnp.max(jnp.abs(unbounded))) > 1
    assert float(jnp.max(jnp.abs(targets))) <= 1
    for x, u in zip(np.asarray(inputs), np.asarray(targets)):
        np.testing.assert_allclose(_residual("helmholtz", x, u[0]), 0, atol=1e-4)


def test_helmholtz_raises_when_redraws_run_out():
    with pytest.raises(Exception, match="max_redraws"):
        _, u = sd.helmholtz_2d_periodic(
            **SMALL, max_abs_solution=1e-6, max_redraws=2, key=KEY
        )
        u.block_until_ready()


# --------------------------------------------------------------------------
# Keys, means, jit, speed
# --------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_deterministic_zero_mean_jit_and_fast(family):
    function, _ = FAMILIES[family]
    kwargs = dict(num_samples=16, num_points=32)
    inputs, targets = jax.block_until_ready(function(**kwargs, key=KEY))
    start = time.perf_counter()
    other, _ = jax.block_until_ready(function(**kwargs, key=jr.key(1)))
    assert time.perf_counter() - start < 0.5  # once compiled
    again = function(**kwargs, key=KEY)
    np.testing.assert_array_equal(inputs, again[0])
    np.testing.assert_array_equal(targets, again[1])
    assert not np.allclose(other[:, 0], inputs[:, 0])
    assert not np.allclose(inputs[0, 0], inputs[1, 0])  # samples differ
    np.testing.assert_allclose(jnp.mean(inputs[:, 0], axis=(1, 2)), 0, atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(targets)))
    jitted = jax.jit(lambda key: function(**kwargs, key=key))(KEY)
    np.testing.assert_allclose(jitted[0], inputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jitted[1], targets, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# InputNormalizer
# --------------------------------------------------------------------------


def test_normalizer_fits_the_training_set(x64):
    inputs, _ = sd.advection_diffusion_2d_periodic(**SMALL, key=KEY)
    normalizer = sd.InputNormalizer.fit(inputs)
    normalised = jax.vmap(normalizer)(inputs)
    np.testing.assert_allclose(jnp.mean(normalised, axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(jnp.std(normalised, axis=(0, 2, 3)), 1, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(normalizer.inverse)(normalised), inputs,
                               rtol=1e-12, atol=1e-15)


def test_normalizer_constant_channels():
    # e = 1 makes K = 0.01 I exactly in every sample: three constant channels.
    inputs, _ = sd.poisson_2d_periodic(**SMALL, e_range=(1, 1), key=KEY)
    normalizer = sd.InputNormalizer.fit(inputs)
    np.testing.assert_array_equal(normalizer.std[1:], 1)
    normalised = jax.vmap(normalizer)(inputs)
    assert bool(jnp.all(jnp.isfinite(normalised)))
    np.testing.assert_allclose(normalised[:, 1:], 0, atol=1e-9)
    np.testing.assert_allclose(jnp.std(normalised[:, 0]), 1, rtol=1e-5)
    np.testing.assert_allclose(jax.vmap(normalizer.inverse)(normalised), inputs,
                               rtol=1e-6, atol=1e-7)


def test_normalizer_is_a_module_and_jits():
    inputs, _ = sd.helmholtz_2d_periodic(**SMALL, key=KEY)
    normalizer = sd.InputNormalizer.fit(inputs)
    assert isinstance(normalizer, eqx.Module) and normalizer.mean.shape == (2,)
    apply = jax.jit(lambda normalizer, x: normalizer(x))
    np.testing.assert_allclose(apply(normalizer, inputs[0]), normalizer(inputs[0]))


def test_normalizer_bad_shapes():
    inputs, _ = sd.helmholtz_2d_periodic(**SMALL, key=KEY)
    normalizer = sd.InputNormalizer.fit(inputs)
    with pytest.raises(ValueError, match=_named("x")):
        normalizer(inputs)  # a batch: vmap it
    with pytest.raises(ValueError, match=_named("inputs")):
        sd.InputNormalizer.fit(inputs[:, 0, 0])
    with pytest.raises(ValueError, match=_named("mean")):
        sd.InputNormalizer(jnp.zeros(2), jnp.ones(3))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

_GENERATORS = {
    "poisson": sd.poisson_2d_periodic,
    "ad": sd.advection_diffusion_2d_periodic,
    "helmholtz": sd.helmholtz_2d_periodic,
}


@pytest.mark.parametrize(
    "generator, kwargs, error, name",
    [
        ("poisson", dict(e_range=(5, 1)), ValueError, "e_range"),
        ("poisson", dict(e_range=()), TypeError, "e_range"),
        ("poisson", dict(e_range=(0, 2)), ValueError, "e_range"),
        ("poisson", dict(e_range=(1, math.inf)), ValueError, "e_range"),
        ("poisson", dict(num_samples=0), ValueError, "num_samples"),
        ("poisson", dict(num_points=2), ValueError, "num_points"),
        ("poisson", dict(num_points=16.0), TypeError, "num_points"),
        ("poisson", dict(num_bumps=0), ValueError, "num_bumps"),
        ("poisson", dict(bump_width=0.0), ValueError, "bump_width"),
        ("ad", dict(e_range=(3, 2)), ValueError, "e_range"),
        ("ad", dict(ratio_range=(1, 0.2)), ValueError, "ratio_range"),
        ("ad", dict(ratio_range=(-0.5, 1)), ValueError, "ratio_range"),
        ("ad", dict(num_points=-4), ValueError, "num_points"),
        ("helmholtz", dict(omega_range=(1.5, 10)), TypeError, "omega_range"),
        ("helmholtz", dict(omega_range=(10, 1)), ValueError, "omega_range"),
        ("helmholtz", dict(max_abs_solution=0), ValueError, "max_abs_solution"),
        ("helmholtz", dict(max_redraws=-1), ValueError, "max_redraws"),
        ("helmholtz", dict(num_samples=-1), ValueError, "num_samples"),
    ],
)
def test_bad_arguments(generator, kwargs, error, name):
    with pytest.raises(error, match=_named(name)) as info:
        _GENERATORS[generator](**kwargs, key=KEY)
    if error is ValueError:  # ours, not the test suite's type checker
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "solve, args, name",
    [
        (sd.solve_anisotropic_poisson, (jnp.zeros((2, 8, 8)), jnp.eye(2)), "f"),
        (sd.solve_anisotropic_poisson, (jnp.zeros((8, 8)), jnp.ones(3)), "K"),
        (sd.solve_advection_diffusion, (jnp.zeros((8, 8)), jnp.eye(2), jnp.ones(3)), "v"),
        (sd.solve_helmholtz, (jnp.zeros(8), 1.0), "f"),
        (sd.solve_helmholtz, (jnp.zeros((8, 8)), jnp.ones(2)), "omega"),
    ],
)
def test_solver_bad_shapes(solve, args, name):
    # A shape is a type to the test suite's type checker (TypeError), a value
    # to our own check (ValueError); both name the argument.
    with pytest.raises((TypeError, ValueError), match=_named(name)):
        solve(*args)
