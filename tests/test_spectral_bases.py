"""Spectral bases, mollifiers and Gaussian random fields (`tx.spectral`).

The convergence figures marked "measured" come from an independent float64
prototype; the tests check each within a factor of 3. Test functions and
expectations are computed in NumPy, so that only the library compiles.
"""

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
TWO_PI = 2 * math.pi


def normal(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def nodes_of(basis) -> np.ndarray:
    return np.asarray(basis.nodes())


def grid_of(basis) -> np.ndarray:
    return np.asarray(basis.grid())


def cheb_fourier(nt: int, nx: int) -> S.TensorBasis:
    return S.TensorBasis((S.Chebyshev(nt), S.Fourier(nx)))


def quartic(x):
    return 3 * x**4 - 2 * x**2 + x - 5


def chebyshev_polynomial(k: int, x):
    return np.cos(k * np.arccos(np.clip(2 * x - 1, -1, 1)))


def max_abs(a) -> float:
    return float(np.max(np.abs(np.asarray(a))))


# --- Chebyshev ---------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 8, 33])
def test_chebyshev_round_trip(x64, n):
    basis = S.Chebyshev(n)
    a = normal(n, n)
    np.testing.assert_allclose(basis.transform(basis.inverse(a)), a, rtol=0, atol=1e-13)


def test_chebyshev_nodes_are_increasing_lobatto_points(x64):
    n = 9
    x = nodes_of(S.Chebyshev(n))
    expected = (1 - np.cos(np.pi * np.arange(n) / (n - 1))) / 2
    np.testing.assert_allclose(x, expected, atol=1e-15)
    assert x[0] == 0.0 and x[-1] == 1.0 and np.all(np.diff(x) > 0)


def test_chebyshev_coefficients_are_those_of_t_k(x64):
    basis = S.Chebyshev(8)
    c = basis.transform(chebyshev_polynomial(3, nodes_of(basis)))
    np.testing.assert_allclose(c, np.eye(8)[3], atol=1e-14)


@pytest.mark.parametrize("n", [6, 9, 16])
def test_chebyshev_derivatives_of_a_quartic_are_exact(x64, n):
    basis = S.Chebyshev(n)
    c = basis.transform(quartic(nodes_of(basis)))
    x = np.linspace(0, 1, 101)
    first = basis.evaluate(basis.derivative(c), x)
    second = basis.evaluate(basis.derivative(c, order=2), x)
    np.testing.assert_allclose(first, 12 * x**3 - 4 * x + 1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(second, 36 * x**2 - 4, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(basis.derivative(c, order=0), c)


def test_chebyshev_weighted_norm(x64):
    basis = S.Chebyshev(7)
    c = basis.transform(quartic(nodes_of(basis)))
    # Gauss-Chebyshev quadrature: ∫ g(ξ) / sqrt(1 - ξ^2) dξ = π/M sum g(ξ_j).
    m = 20
    xi = np.cos((2 * np.arange(m) + 1) * np.pi / (2 * m))
    expected = np.pi / m * np.sum(quartic((xi + 1) / 2) ** 2)
    np.testing.assert_allclose(basis.l2_norm_squared(c), expected, rtol=1e-13)


# --- Fourier -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_fourier_round_trip(x64, n):
    basis = S.Fourier(n)
    v = normal(n, n)
    np.testing.assert_allclose(basis.inverse(basis.transform(v)), v, atol=1e-14)
    np.testing.assert_allclose(basis.transform(basis.inverse(v)), v, atol=1e-14)


def test_fourier_coefficient_layout(x64):
    basis = S.Fourier(8)
    x = nodes_of(basis)
    v = 0.5 + 2 * np.cos(TWO_PI * x) - 3 * np.sin(TWO_PI * x) + 4 * np.sin(3 * TWO_PI * x)
    v = v + 5 * np.cos(8 * np.pi * x)  # the Nyquist cosine
    np.testing.assert_allclose(basis.transform(v), [0.5, 2, -3, 0, 0, 0, 4, 5], atol=1e-14)


@pytest.mark.parametrize("n", [7, 8])
def test_fourier_derivatives_of_sin_and_cos(x64, n):
    basis = S.Fourier(n)
    x = nodes_of(basis)
    w = 3 * TWO_PI
    c = basis.transform(np.sin(w * x) + 2 * np.cos(TWO_PI * x))
    expected = {
        1: w * np.cos(w * x) - 2 * TWO_PI * np.sin(TWO_PI * x),
        2: -(w**2) * np.sin(w * x) - 2 * TWO_PI**2 * np.cos(TWO_PI * x),
        3: -(w**3) * np.cos(w * x) + 2 * TWO_PI**3 * np.sin(TWO_PI * x),
    }
    for order, values in expected.items():
        got = basis.inverse(basis.derivative(c, order))
        np.testing.assert_allclose(got, values, rtol=0, atol=1e-12 * w**order)


def test_odd_derivatives_zero_the_nyquist_mode(x64):
    n = 8
    basis = S.Fourier(n)
    c = basis.transform(np.cos(np.pi * n * nodes_of(basis)))
    np.testing.assert_allclose(c, np.eye(n)[-1], atol=1e-15)
    for order in (1, 3, 5):
        np.testing.assert_array_equal(basis.derivative(c, order), np.zeros(n))
    np.testing.assert_allclose(basis.derivative(c, 2), -((np.pi * n) ** 2) * c, rtol=1e-15)
    # ∫_0^1 cos^2(πnx) = 1/2, although the grid mean of its square is 1.
    np.testing.assert_allclose(basis.l2_norm_squared(c), 0.5, rtol=1e-15)


# --- Parseval and products ---------------------------------------------------


def test_parseval_on_a_fourier_tensor_basis(x64):
    basis = S.TensorBasis((S.Fourier(16), S.Fourier(16)))
    x, y = grid_of(basis)
    u = np.sin(TWO_PI * x) * np.sin(2 * TWO_PI * y) + 0.3 * np.cos(TWO_PI * (3 * x + y))
    c = basis.transform(u)
    square = basis.multiply(c, c)
    assert square.shape == (32, 32)
    integral = basis.with_modes(32).integrate(square)
    for value in (np.mean(u**2), basis.l2_norm_squared(c), integral):
        np.testing.assert_allclose(value, 0.295, rtol=0, atol=1e-12)


def test_padded_chebyshev_product_is_exact_and_unpadded_aliases(x64):
    # T_5 T_4 = (T_9 + T_1) / 2: degree 9 needs 10 coefficients.
    def p(x):
        return chebyshev_polynomial(5, x) + 0.3 * x

    def q(x):
        return chebyshev_polynomial(4, x) - 0.2 * x**2

    a_basis, b_basis = S.Chebyshev(6), S.Chebyshev(5)
    a = a_basis.transform(p(nodes_of(a_basis)))
    b = b_basis.transform(q(nodes_of(b_basis)))
    product = a_basis.multiply(a, b, other=b_basis)
    assert product.shape == (11,)
    x = np.linspace(0, 1, 201)
    exact = p(x) * q(x)
    got = a_basis.with_modes(11).evaluate(product, x)
    # Measured 1.2e-15 relative to the values (order 1): the round-off of the
    # three length-11 DCTs plus the evaluation sum, a few ulps; 1e-14 bounds it.
    assert max_abs(got - exact) / max_abs(exact) < 1e-14
    # On 6 nodes T_9 is indistinguishable from T_1: the naive product is O(1) off.
    x6 = nodes_of(a_basis)
    naive = a_basis.transform(p(x6) * q(x6))
    assert max_abs(a_basis.evaluate(naive, x) - exact) > 0.5


def test_padded_product_of_t5_and_t4_has_the_exact_coefficients(x64):
    # T_5 T_4 = (T_9 + T_1) / 2, coefficient by coefficient
    product = S.Chebyshev(6).multiply(np.eye(6)[5], np.eye(5)[4], other=S.Chebyshev(5))
    np.testing.assert_allclose(product, (np.eye(11)[9] + np.eye(11)[1]) / 2, rtol=0, atol=1e-15)


def test_padded_fourier_product_with_nyquist_modes_is_exact(x64):
    basis = S.Fourier(6)

    def f(x):
        return np.sin(TWO_PI * x) + np.cos(6 * np.pi * x)

    def g(x):
        return 0.5 + np.cos(2 * TWO_PI * x) + np.cos(6 * np.pi * x)

    x = nodes_of(basis)
    c = basis.multiply(basis.transform(f(x)), basis.transform(g(x)))
    points = np.linspace(0, 1, 97)
    got = basis.with_modes(12).evaluate(c, points)
    np.testing.assert_allclose(got, f(points) * g(points), atol=1e-14)


def test_product_of_different_sizes_on_a_tensor_basis(x64):
    small, large = cheb_fourier(3, 5), cheb_fourier(4, 6)
    t, x = grid_of(small)
    a = small.transform(t * np.cos(TWO_PI * x))
    t, x = grid_of(large)
    b = large.transform(t**3 + np.sin(2 * TWO_PI * x))
    product = small.multiply(a, b, other=large)
    assert product.shape == (7, 11)
    points = np.random.default_rng(0).uniform(size=(40, 2))
    tp, xp = points.T
    expected = tp * np.cos(TWO_PI * xp) * (tp**3 + np.sin(2 * TWO_PI * xp))
    got = small.with_modes((7, 11)).evaluate(product, points)
    np.testing.assert_allclose(got, expected, atol=1e-13)


# --- spectral convergence ----------------------------------------------------


def assert_errors_match(errors, measured):
    for error, expected in zip(errors, measured):
        assert expected / 3 < error < 3 * expected, (errors, measured)
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:])), errors


def interpolation_errors(make_basis, f, sizes):
    fine = np.linspace(0, 1, 1001)
    errors = []
    for n in sizes:
        basis = make_basis(n)
        c = basis.transform(f(nodes_of(basis)))
        errors.append(max_abs(basis.evaluate(c, fine) - f(fine)))
    return errors


def test_fourier_interpolation_converges_spectrally(x64):
    errors = interpolation_errors(S.Fourier, lambda x: np.exp(np.sin(TWO_PI * x)), (4, 8, 16, 32))
    assert_errors_match(errors, [7.9e-2, 1.1e-3, 2.2e-8, 8.9e-16])  # measured


def test_chebyshev_interpolation_of_runge_converges(x64):
    def runge(x):
        return 1 / (1 + 25 * (2 * x - 1) ** 2)

    errors = interpolation_errors(S.Chebyshev, runge, (9, 17, 33, 65))
    assert_errors_match(errors, [2.0e-1, 3.7e-2, 1.6e-3, 2.9e-6])  # measured


# --- integrate, resize, evaluate ---------------------------------------------


def test_integrate_is_exact_on_polynomials_and_trig(x64):
    cheb = S.Chebyshev(6)
    integral = cheb.integrate(cheb.transform(quartic(nodes_of(cheb))))
    np.testing.assert_allclose(integral, 3 / 5 - 2 / 3 + 1 / 2 - 5, rtol=1e-14)
    fourier = S.Fourier(9)
    x = nodes_of(fourier)
    c = fourier.transform(2 + np.sin(TWO_PI * x) + np.cos(4 * TWO_PI * x))
    np.testing.assert_allclose(fourier.integrate(c), 2.0, rtol=1e-14)
    basis = cheb_fourier(5, 8)
    t, x = grid_of(basis)
    c = basis.transform(t**2 * np.cos(TWO_PI * x) ** 2 + t)
    np.testing.assert_allclose(basis.integrate(c), 1 / 6 + 1 / 2, rtol=1e-14)


def test_resize_pads_without_change_and_truncates_the_top_modes(x64):
    points = np.linspace(0, 1, 41)
    for small in (S.Fourier(7), S.Fourier(8), S.Chebyshev(7)):
        c = normal(0, small.shape)
        padded = small.resize(c, 12)
        np.testing.assert_array_equal(padded, np.pad(c, (0, 12 - small.num_modes)))
        np.testing.assert_allclose(
            small.with_modes(12).evaluate(padded, points), small.evaluate(c, points), atol=1e-13
        )
    # Fourier(7) -> 4 keeps the mean, (a_1, b_1) and the cosine of k = 2.
    basis = S.Fourier(7)
    x = nodes_of(basis)
    c = basis.transform(
        1 + np.sin(TWO_PI * x) + np.cos(2 * TWO_PI * x) + np.sin(3 * TWO_PI * x)
    )
    expected = 1 + np.sin(TWO_PI * points) + np.cos(2 * TWO_PI * points)
    got = S.Fourier(4).evaluate(basis.resize(c, 4), points)
    np.testing.assert_allclose(got, expected, atol=1e-14)
    # Chebyshev(6) -> 4 drops T_5 and T_4.
    cheb = S.Chebyshev(6)
    c = np.arange(1.0, 7.0)
    np.testing.assert_array_equal(cheb.resize(c, 4), [1.0, 2.0, 3.0, 4.0])
    tensor = cheb_fourier(6, 8)
    c = normal(1, tensor.shape)
    np.testing.assert_array_equal(tensor.resize(c, (3, 5)), c[:3, :5])


def test_evaluate_at_arbitrary_points_and_on_two_grids(x64):
    basis = cheb_fourier(12, 16)

    def u(t, x):
        return np.exp(-t) * np.sin(TWO_PI * x) + t**3 * np.cos(3 * TWO_PI * x)

    c = basis.transform(u(*grid_of(basis)))
    points = np.random.default_rng(0).uniform(size=(50, 2))
    # exp(-t) on 12 Chebyshev nodes is resolved to round-off.
    np.testing.assert_allclose(basis.evaluate(c, points), u(*points.T), rtol=0, atol=1e-12)

    def on_grid(m):
        tt, xx = np.meshgrid(np.arange(m) / m, np.arange(m) / m, indexing="ij")
        return np.asarray(basis.evaluate(c, np.stack([tt.ravel(), xx.ravel()], -1))).reshape(m, m)

    coarse, fine = on_grid(64), on_grid(128)
    np.testing.assert_allclose(fine[::2, ::2], coarse, rtol=0, atol=1e-12)


def test_evaluate_at_the_nodes_reproduces_the_values(x64):
    basis = S.TensorBasis((S.Fourier(6), S.Chebyshev(5)))
    v = normal(2, basis.shape)
    points = grid_of(basis).reshape(2, -1).T
    np.testing.assert_allclose(basis.evaluate(basis.transform(v), points), v.ravel(), atol=1e-13)


# --- tensor bases -------------------------------------------------------------


def test_tensor_basis_derivatives_along_each_axis(x64):
    basis = cheb_fourier(8, 12)
    t, x = grid_of(basis)
    s, c2 = np.sin(TWO_PI * x), np.cos(2 * TWO_PI * x)
    c = basis.transform(t**3 * s + t * c2)
    cases = {
        (1, 0): 3 * t**2 * s + c2,
        (2, 0): 6 * t * s,
        (1, 1): TWO_PI * t**3 * np.cos(TWO_PI * x) - 2 * TWO_PI * t * np.sin(2 * TWO_PI * x),
        (2, 1): -(TWO_PI**2) * t**3 * s - (2 * TWO_PI) ** 2 * t * c2,
    }
    for (order, axis), expected in cases.items():
        got = basis.inverse(basis.derivative(c, order=order, axis=axis))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    periodic = S.TensorBasis((S.Fourier(8), S.Fourier(8)))
    x, y = grid_of(periodic)
    c = periodic.transform(np.sin(TWO_PI * x) * np.cos(TWO_PI * y))
    got = periodic.inverse(periodic.derivative(c, axis=1))
    np.testing.assert_allclose(got, -TWO_PI * np.sin(TWO_PI * x) * np.sin(TWO_PI * y), atol=1e-12)


def test_tensor_basis_flattens_and_reports_its_shape():
    basis = S.TensorBasis((cheb_fourier(5, 8), S.Fourier(4)))
    assert basis.shape == (5, 8, 4) and basis.ndim == 3
    assert [type(a) for a in basis.axes] == [S.Chebyshev, S.Fourier, S.Fourier]
    assert [n.shape for n in basis.nodes()] == [(5,), (8,), (4,)]
    assert basis.grid().shape == (3, 5, 8, 4)
    assert S.Fourier(8).nodes().shape == (8,) and S.Fourier(8).shape == (8,)
    assert basis.with_modes(3).shape == (3, 3, 3)
    assert cheb_fourier(5, 8) == cheb_fourier(5, 8) and not jax.tree_util.tree_leaves(basis)


# --- mollifiers -----------------------------------------------------------------


@pytest.mark.parametrize("form", ["sine", "polynomial"])
def test_dirichlet_mollifier_vanishes_on_the_boundary(x64, form):
    basis = S.TensorBasis((S.Chebyshev(10), S.Chebyshev(12)))
    values = 1 + np.random.default_rng(0).uniform(size=basis.shape)
    c = basis.transform(S.dirichlet_mollify(basis, values, form=form))
    s = np.linspace(0, 1, 33)
    zeros, ones = np.zeros_like(s), np.ones_like(s)
    sides = ([zeros, s], [ones, s], [s, zeros], [s, ones])
    edges = np.concatenate([np.stack(side, -1) for side in sides])
    assert max_abs(basis.evaluate(c, edges)) < 1e-12
    assert abs(float(basis.evaluate(c, np.array([[0.5, 0.5]]))[0])) > 0.5


def test_dirichlet_mollifier_defaults_to_the_bounded_axes(x64):
    basis = S.TensorBasis((S.Fourier(8), S.Chebyshev(9)))
    factor = np.asarray(S.dirichlet_factor(basis))
    y = nodes_of(basis.axes[1])
    np.testing.assert_allclose(factor, np.broadcast_to(np.sin(np.pi * y), (8, 9)), atol=1e-15)
    assert max_abs(factor[:, [0, -1]]) == 0.0
    both = np.asarray(S.dirichlet_factor(basis, axes=(0, 1)))
    assert max_abs(both[0]) == 0.0 and max_abs(both[:, -1]) == 0.0


def test_initial_value_form_holds_the_initial_condition(x64):
    basis = cheb_fourier(9, 16)
    x = nodes_of(basis.axes[1])
    phi = np.exp(np.sin(TWO_PI * x))
    output = normal(0, basis.shape)
    c = basis.transform(S.initial_value_mollify(basis, phi, output))
    points = np.stack([np.zeros_like(x), x], -1)
    np.testing.assert_allclose(basis.evaluate(c, points), phi, rtol=0, atol=1e-12)
    swapped = S.TensorBasis((S.Fourier(16), S.Chebyshev(9)))
    u = S.initial_value_mollify(swapped, phi, output.T, time_axis=1)
    np.testing.assert_allclose(u[:, 0], phi, atol=1e-15)
    np.testing.assert_allclose(u[:, -1], phi + output.T[:, -1], atol=1e-15)  # t = 1


def test_zero_mean_gauge_removes_the_periodic_mean(x64):
    basis = S.TensorBasis((S.Fourier(8), S.Fourier(8)))
    c = basis.transform(3 + normal(0, basis.shape))
    gauged = S.zero_mean_gauge(basis, c)
    assert abs(float(basis.integrate(gauged))) < 1e-15
    np.testing.assert_array_equal(np.asarray(gauged)[1:], np.asarray(c)[1:])
    mixed = cheb_fourier(6, 8)
    values = mixed.inverse(S.zero_mean_gauge(mixed, normal(1, mixed.shape)))
    np.testing.assert_allclose(np.mean(values, axis=1), np.zeros(6), atol=1e-15)


# --- Gaussian random fields ---------------------------------------------------


def test_random_field_is_deterministic_per_key():
    basis = cheb_fourier(6, 8)
    a = S.gaussian_random_field(jr.PRNGKey(0), basis)
    b = S.gaussian_random_field(jr.PRNGKey(0), basis)
    c = S.gaussian_random_field(jr.PRNGKey(1), basis)
    assert a.shape == (6, 8) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert max_abs(np.asarray(a) - np.asarray(c)) > 0.1
    batch = np.asarray(S.gaussian_random_field(jr.PRNGKey(0), (8, 8), num_samples=3))
    assert batch.shape == (3, 8, 8) and np.std(batch[0] - batch[1]) > 0.1
    assert S.gaussian_random_field(jr.PRNGKey(0), 8).shape == (8,)


@pytest.mark.parametrize("kernel", ["squared_exponential", "periodic"])
def test_random_field_variance_and_correlation(x64, kernel):
    ell, n = 0.1, 64
    fields = np.asarray(
        S.gaussian_random_field(
            jr.PRNGKey(0), S.Fourier(n), kernel=kernel, length_scale=ell, variance=2.0,
            num_samples=2000,
        )
    )
    lags = np.arange(0, 16, 3)
    covariance = np.array([np.mean(fields * np.roll(fields, -j, axis=1)) for j in lags])
    r = lags / n
    if kernel == "periodic":
        expected = 2.0 * np.exp(-np.sin(np.pi * r) ** 2 / (2 * np.pi**2 * ell**2))
    else:
        expected = 2.0 * np.exp(-(r**2) / (2 * ell**2))
    assert abs(covariance[0] / 2.0 - 1) < 0.1
    np.testing.assert_allclose(covariance, expected, rtol=0, atol=0.1)


def test_random_field_on_a_chebyshev_axis(x64):
    basis = S.Chebyshev(17)
    fields = np.asarray(
        S.gaussian_random_field(jr.PRNGKey(3), basis, length_scale=0.2, num_samples=2000)
    )
    x = nodes_of(basis)
    covariance = fields.T @ fields / 2000
    expected = np.exp(-((x[:, None] - x[None]) ** 2) / (2 * 0.2**2))
    assert abs(np.mean(np.diag(covariance)) - 1) < 0.1
    np.testing.assert_allclose(covariance, expected, rtol=0, atol=0.1)
    # Nothing ties the two ends together, unlike the periodic kernel.
    assert np.std(fields[:, 0] - fields[:, -1]) > 1.0
    periodic = np.asarray(
        S.gaussian_random_field(jr.PRNGKey(3), basis, kernel="periodic", num_samples=5)
    )
    np.testing.assert_allclose(periodic[:, 0], periodic[:, -1], atol=1e-12)


def test_periodic_random_field_is_periodic(x64):
    basis = S.TensorBasis((S.Fourier(16), S.Fourier(16)))
    f = S.gaussian_random_field(jr.PRNGKey(0), basis, kernel="periodic", length_scale=0.2)
    c = basis.transform(f)
    s = np.linspace(0, 1, 9)
    left = basis.evaluate(c, np.stack([np.zeros_like(s), s], -1))
    right = basis.evaluate(c, np.stack([np.ones_like(s), s], -1))
    np.testing.assert_allclose(left, right, atol=1e-12)
    # The field is a function of the basis: interpolation reproduces it.
    np.testing.assert_allclose(basis.inverse(c), f, atol=1e-13)


def test_longer_length_scale_gives_a_smoother_field(x64):
    basis = S.Fourier(64)

    def mean_slope(ell):
        fields = S.gaussian_random_field(jr.PRNGKey(0), basis, length_scale=ell, num_samples=200)
        slopes = jax.vmap(lambda f: basis.inverse(basis.derivative(basis.transform(f))))(fields)
        return float(jnp.mean(jnp.abs(slopes)))

    short, long = mean_slope(0.05), mean_slope(0.2)
    # E|f'| = sqrt(2/π) σ / ℓ for the squared exponential: a ratio of 4.
    assert 3 < short / long < 5


# --- bad input --------------------------------------------------------------


BAD_INPUT = {
    "values of the wrong length": (
        lambda: S.Chebyshev(8).transform(np.zeros(7)), ValueError, "`values`"),
    "coefficients of the wrong length": (
        lambda: S.Fourier(8).inverse(np.zeros(9)), ValueError, "`coeffs`"),
    "values of the wrong shape": (
        lambda: cheb_fourier(4, 8).transform(np.zeros((8, 4))), ValueError, "`values`"),
    "negative order": (
        lambda: S.Chebyshev(8).derivative(np.zeros(8), order=-1), ValueError, "`order`"),
    "axis out of range": (
        lambda: cheb_fourier(4, 8).derivative(np.zeros((4, 8)), axis=2), ValueError, "`axis`"),
    "Chebyshev(1)": (lambda: S.Chebyshev(1), ValueError, "`n`"),
    "Fourier(0)": (lambda: S.Fourier(0), ValueError, "`n`"),
    "Fourier times Chebyshev": (
        lambda: S.Fourier(8).multiply(np.zeros(8), np.zeros(8), other=S.Chebyshev(8)),
        ValueError,
        "`other`",
    ),
    "mismatched tensor bases": (
        lambda: cheb_fourier(4, 8).multiply(
            np.zeros((4, 8)),
            np.zeros((4, 8)),
            other=S.TensorBasis((S.Fourier(4), S.Fourier(8))),
        ),
        ValueError,
        "`other`",
    ),
    "points outside the domain": (
        lambda: S.Chebyshev(8).evaluate(np.zeros(8), np.array([0.5, 1.2])), ValueError, "`points`"),
    "points of the wrong dimension": (
        lambda: cheb_fourier(4, 8).evaluate(np.zeros((4, 8)), np.zeros((3, 3))),
        ValueError,
        "`points`",
    ),
    "zero modes": (lambda: S.Fourier(8).resize(np.zeros(8), 0), ValueError, "`modes`"),
    "empty tensor basis": (lambda: S.TensorBasis(()), ValueError, "`bases`"),
    "gauge without a Fourier axis": (
        lambda: S.zero_mean_gauge(S.Chebyshev(4), np.zeros(4)), ValueError, "`basis`"),
    "Dirichlet factor without a bounded axis": (
        lambda: S.dirichlet_factor(S.Fourier(4)), ValueError, "`axes`"),
    "initial values of the wrong shape": (
        lambda: S.initial_value_mollify(cheb_fourier(4, 8), np.zeros(4), np.zeros((4, 8))),
        ValueError,
        "`initial`",
    ),
    "unknown kernel": (
        lambda: S.gaussian_random_field(jr.PRNGKey(0), 8, kernel="rbf"), ValueError, "`kernel`"),
    "negative length scale": (
        lambda: S.gaussian_random_field(jr.PRNGKey(0), 8, length_scale=-1.0),
        ValueError,
        "`length_scale`",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_names_the_argument(case):
    call, error, name = BAD_INPUT[case]
    with pytest.raises(error, match=re.escape(name)) as info:
        call()
    assert "\n" not in str(info.value)


# --- transformations ----------------------------------------------------------


def test_grad_of_the_norm_matches_finite_differences(x64):
    basis = cheb_fourier(5, 6)
    v = jnp.asarray(normal(0, basis.shape))

    def loss(v):
        return basis.l2_norm_squared(basis.transform(v))

    grad = jax.jit(jax.grad(loss))(v)
    direction = jnp.asarray(normal(1, basis.shape))
    h = 1e-6
    fd = (loss(v + h * direction) - loss(v - h * direction)) / (2 * h)
    np.testing.assert_allclose(jnp.sum(grad * direction), fd, rtol=1e-7)


def test_grad_of_evaluate_with_respect_to_the_points(x64):
    basis = cheb_fourier(7, 8)
    t, x = grid_of(basis)
    c = basis.transform(t**3 * np.sin(TWO_PI * x))

    def u(point):
        return basis.evaluate(c, point[None])[0]

    for t0, x0 in [(0.0, 0.25), (1.0, 0.1), (0.3, 1.0), (0.6, 0.7)]:
        grad = jax.grad(u)(jnp.array([t0, x0]))
        expected = [3 * t0**2 * np.sin(TWO_PI * x0), TWO_PI * t0**3 * np.cos(TWO_PI * x0)]
        np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-12)


def test_jit_and_vmap_pass_through_every_method():
    basis = cheb_fourier(5, 8)
    values = jnp.asarray(normal(0, (3, *basis.shape)), dtype=jnp.float32)

    @eqx.filter_jit
    def pipeline(basis, v):
        c = basis.transform(v)
        product = basis.multiply(c, basis.derivative(c, 2, axis=1))
        points = jnp.array([[0.1, 0.2], [0.9, 0.5]])
        return (
            basis.with_modes((7, 6)).inverse(basis.resize(c, (7, 6))).sum()
            + basis.integrate(c)
            + basis.l2_norm_squared(c)
            + basis.with_modes((10, 16)).integrate(product)
            + basis.evaluate(c, points).sum()
        )

    batched = jax.vmap(pipeline, in_axes=(None, 0))(basis, values)
    eager = [pipeline(basis, v) for v in values]
    np.testing.assert_allclose(batched, eager, rtol=1e-5)
    keys = jr.split(jr.PRNGKey(0), 2)
    fields = jax.jit(jax.vmap(lambda k: S.gaussian_random_field(k, basis)))(keys)
    np.testing.assert_allclose(fields[1], S.gaussian_random_field(keys[1], basis), atol=1e-6)


def test_results_keep_float32_by_default():
    basis = cheb_fourier(5, 8)
    c = basis.transform(np.ones(basis.shape, np.float32))
    assert c.dtype == jnp.float32 and basis.derivative(c, axis=1).dtype == jnp.float32


# --- docstring examples -------------------------------------------------------


@pytest.mark.parametrize("name", S.__all__)
def test_docstring_example_runs(name):
    doc = inspect.getdoc(getattr(S, name))
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    assert len(blocks) == 1, name
    scope = {"jax": jax, "jnp": jnp, "jr": jr, "np": np, "eqx": eqx, "optax": optax, "tx": tx}
    exec(compile(blocks[0], f"tx.spectral.{name}", "exec"), scope)
