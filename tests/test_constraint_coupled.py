"""Experts coupled at their interfaces: the assembled least-squares problem,
exact spans, one expert as the global layer, gradients, bad input."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import trainax.constraint as tc
from constraint_helpers import Fixed, squared_output_and_grad
from trainax.constraint._layer import _interface_nodes

NU = 0.1


def heat(linear=True):
    residual = (lambda v, i, c: v["u_t"] - NU * v["u_xx"]) if linear else (
        lambda v, i, c: v["u_t"] - NU * (1 + v["u"] ** 2) * v["u_xx"])
    value = lambda v, i, c: v["u"] - i[0]  # noqa: E731
    return tc.PDE(("t", "x"), (1.0, 1.0), ("u", "u_t", "u_xx"), residual=residual,
                  conditions={"initial": value, "x_low": value, "x_high": value}, linear=linear)


def smooth_fields(key, num, t, x):
    c = np.asarray(jr.normal(key, (num, 3, 3)))
    return jnp.asarray(sum(c[:, i, j, None, None] * np.cos(np.pi * i * t) * np.cos(np.pi * j * x + j)
                           for i in range(3) for j in range(3)))


def setup(shape=(8, 16), num_basis=6):
    t, x = tc.grid_coordinates(heat(), shape)
    basis = smooth_fields(jr.PRNGKey(4), num_basis, t, x)
    inputs = jnp.asarray(np.sin(np.pi * x) * np.exp(-t))[None]
    return t, x, basis, inputs


def coupled(basis, num_points, counts=(1, 4), pde=None, **options):
    layer = tc.HardConstraint(Fixed(basis), heat() if pde is None else pde,
                              num_points=num_points, **options)
    return tc.MixtureOfExperts(layer, counts, coupling="interface")


def test_interface_nodes_face_another_block():
    columns = lambda mask: set(np.flatnonzero(mask.any(axis=0)))  # noqa: E731
    assert columns(_interface_nodes((8, 16), (1, 4), (False, False))) == {3, 4, 7, 8, 11, 12}
    # a periodic axis wraps: its ends face each other
    assert columns(_interface_nodes((8, 16), (1, 4), (False, True))) == {0, 3, 4, 7, 8, 11, 12, 15}
    rows = _interface_nodes((8, 16), (2, 1), (False, False))
    assert set(np.flatnonzero(rows.any(axis=1))) == {3, 4} and rows[3].all()
    assert not _interface_nodes((8, 16), (1, 1), (False, False)).any()


def _numpy_rows(stitched, inputs, ridge, h_t, h_x):
    """The rows [A; ridge I] w = [b; 0] of the heat equation at every node, by hand:
    u_t - NU u_xx at the PDE nodes (second-order differences, one-sided in t on the
    last level), u - u_0 on the initial level and both boundary columns."""
    num, T, X = stitched.shape
    u_t = np.gradient(stitched, h_t, axis=1, edge_order=2)
    u_xx = np.zeros_like(stitched)
    u_xx[:, :, 1:-1] = (stitched[:, :, 2:] - 2 * stitched[:, :, 1:-1] + stitched[:, :, :-2]) / h_x**2
    pde = np.zeros((T, X), bool)
    pde[1:, 1:-1] = True
    residual = (u_t - NU * u_xx)[:, pde].T
    condition = ~pde
    A = np.concatenate([residual, stitched[:, condition].T, ridge * np.eye(num)])
    b = np.concatenate([np.zeros(pde.sum()), inputs[0][condition], np.zeros(num)])
    return A, b


def test_coupled_weights_solve_the_assembled_problem(x64):
    # every PDE node is a row (the 14 nodes off the interfaces of each strip are all
    # drawn, the interface nodes always enter), so the solve is the least squares of
    # the stitched basis, e.g. the field of expert e is phi_n on its strip, zero
    # elsewhere, differentiated across the interfaces
    t, x, basis, inputs = setup()
    ridge = 0.05
    _, info = eqx.filter_jit(coupled(basis, 14, ridge=ridge))(inputs, key=jr.PRNGKey(2))
    owner = np.arange(16) // 4
    stitched = np.concatenate([np.asarray(basis) * (owner == e) for e in range(4)])
    A, b = _numpy_rows(stitched, np.asarray(inputs), ridge, 1 / 7, 1 / 15)
    expected = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(info.weights, expected.reshape(4, 6), atol=1e-10)
    # and not the independent experts' weights, which ignore the interfaces
    independent = tc.MixtureOfExperts(coupled(basis, 14, ridge=ridge).constraint, (1, 4))
    assert float(jnp.max(jnp.abs(independent(inputs)[1].weights - info.weights))) > 1e-2


def test_coupled_experts_recover_an_exact_span(x64):
    # u = x^2 + 2 NU t solves the heat equation, and the differences are exact for it
    t, x, basis, _ = setup()
    exact = jnp.asarray(x**2 + 2 * NU * t)
    fields = jnp.concatenate([exact[None], basis[1:]])
    u, info = eqx.filter_jit(coupled(fields, 10, ridge=0.0))(exact[None], key=jr.PRNGKey(3))
    assert info.weights.shape == (4, 6) and bool(jnp.all(info.converged))
    assert float(jnp.max(info.max_residual)) < 1e-10
    np.testing.assert_allclose(info.weights, np.tile(np.eye(6)[0], (4, 1)), atol=1e-8)
    np.testing.assert_allclose(u[0], exact, atol=1e-8)


def test_coupled_weights_depend_on_the_neighbouring_blocks(x64):
    t, x, basis, inputs = setup()

    def weights(fields):
        return coupled(fields, 6)(inputs, key=jr.PRNGKey(6))[1].weights

    jac = np.abs(np.asarray(jax.jit(jax.jacrev(weights))(basis)))  # (E, N, N, T, X)
    owner = np.arange(16) // 4
    for j in range(4):
        for k in {j - 1, j + 1} & set(range(4)):
            assert jac[j][..., owner == k].max() > 1e-3


@pytest.mark.parametrize("linear", [True, False], ids=["lineax", "gauss-newton"])
def test_one_coupled_expert_equals_the_global_layer(x64, linear):
    # the same points and rows; a linear solve agrees to rounding, Gauss-Newton to
    # its tolerance (the rows enter in another order)
    _, _, basis, inputs = setup()
    options = {} if linear else {"solver": tc.GaussNewton()}
    layer = tc.HardConstraint(Fixed(basis), heat(linear), num_points=30, **options)
    one = tc.MixtureOfExperts(layer, (1, 1), coupling="interface")
    key = jr.PRNGKey(5)
    tol = 1e-13 if linear else 1e-9
    (_, (u_layer, info)), g_layer = squared_output_and_grad(layer, inputs, key)
    (_, (u_one, info_one)), g_one = squared_output_and_grad(one, inputs, key)
    np.testing.assert_allclose(u_layer, u_one, rtol=0, atol=tol)
    np.testing.assert_allclose(info.weights, info_one.weights[0], rtol=0, atol=tol)
    np.testing.assert_allclose(info.residual, info_one.residual[0], rtol=0, atol=tol)
    g_layer, g_one = g_layer.basis_net.fields, g_one.constraint.basis_net.fields
    assert float(jnp.max(jnp.abs(g_layer - g_one))) <= tol * float(jnp.max(jnp.abs(g_layer)))


@pytest.mark.parametrize("linear", [True, False], ids=["lineax", "gauss-newton"])
def test_coupled_gradient_matches_finite_differences(x64, linear):
    _, _, basis, inputs = setup()
    options = {} if linear else {"solver": tc.GaussNewton(), "max_steps": 60}
    key = jr.PRNGKey(7)

    def loss(fields):
        u, info = coupled(fields, 8, pde=heat(linear), **options)(inputs, key=key)
        return jnp.sum(u**2), info.converged

    (_, converged), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(basis)
    assert bool(jnp.all(converged))
    direction = jr.normal(jr.PRNGKey(8), basis.shape)
    eps = 1e-6
    value = jax.jit(lambda f: loss(f)[0])
    fd = (value(basis + eps * direction) - value(basis - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, direction)), float(fd), rtol=1e-5)


def test_coupled_bad_input(x64):
    _, _, basis, inputs = setup()
    layer = tc.HardConstraint(Fixed(basis), heat(), num_points=4)
    with pytest.raises(ValueError, match="`coupling` must be one of"):
        tc.MixtureOfExperts(layer, (1, 2), coupling="both")
    with pytest.raises(ValueError, match="needs parallel='vmap', got parallel='shard'"):
        tc.MixtureOfExperts(layer, (1, 1), coupling="interface", parallel="shard")
    with pytest.raises(ValueError, match="`shared_rows` must be 'local' with"):
        tc.MixtureOfExperts(layer, (1, 2), coupling="interface", shared_rows="global")
    with pytest.raises(ValueError, match="which Spectral cannot"):
        spectral = tc.HardConstraint(Fixed(basis), heat(), num_points=4, derivatives=tc.Spectral())
        tc.MixtureOfExperts(spectral, (1, 2), coupling="interface")
    with pytest.raises(ValueError, match="`basis_net` must return basis fields"):
        terms = {n: basis for n in ("u", "u_t", "u_xx")}
        tc.MixtureOfExperts(tc.HardConstraint(Fixed(terms), heat(), num_points=4), (1, 2),
                            coupling="interface")(inputs)
    with pytest.raises(ValueError, match="`num_points` \\(15\\) is more than a block holds"):
        coupled(basis, 15)(inputs)
    with pytest.raises(ValueError, match="`ridge` = 0 needs at least as many rows as weights \\(60"):
        t, x = tc.grid_coordinates(heat(), (8, 16))
        coupled(smooth_fields(jr.PRNGKey(0), 30, t, x), 1, counts=(1, 2), ridge=0.0)(inputs)
