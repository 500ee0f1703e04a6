"""2D Navier-Stokes as a hard-constraint PDE: the stream-function residual and its data."""

from __future__ import annotations

import inspect
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx
import trainax.constraint as tc
from constraint_helpers import Fixed
from trainax.sample_data import navier_stokes_constraint_2d

TWO_PI = 2 * np.pi
NU, HORIZON = 0.01, 1.0


class FourierSpaceFDTime(tc.AbstractDerivatives):
    """Fourier (exact) on the periodic axes, second-order finite differences in time.

    On the grid of the data generator (uniform time levels), so the residual
    of the reference isolates the time discretization.
    """

    def _scheme(self, periodic):
        return tc.Spectral() if periodic else tc.FiniteDifference()

    def nodes(self, num, extent, periodic):
        return self._scheme(periodic).nodes(num, extent, periodic)

    def min_nodes(self, order):
        return tc.FiniteDifference().min_nodes(order)

    def derivative(self, fields, axis, order, extent, periodic):
        return self._scheme(periodic).derivative(fields, axis, order, extent, periodic)


def taylor_green(t, x, y, *, nu=NU, horizon=HORIZON, rate=8.0):
    """`ψ` of the decaying Taylor-Green vortex: `w = -Δψ = sin 2πx sin 2πy exp(-8π²νTt)`."""
    decay = np.exp(-rate * np.pi**2 * nu * horizon * t)
    return np.sin(TWO_PI * x) * np.sin(TWO_PI * y) * decay / (8 * np.pi**2)


def smooth_fields(seed, num, t, x, y):
    """`num` smooth stream functions: low modes in t, x and y."""
    rng = np.random.RandomState(seed)
    fields = np.zeros((num, *t.shape))
    for n in range(num):
        for i in range(2):
            for j in range(3):
                for k in range(3):
                    a, p, q = rng.randn(), *rng.uniform(0, TWO_PI, 2)
                    fields[n] += (a * np.cos(np.pi * i * t) * np.cos(TWO_PI * j * x + p)
                                  * np.cos(TWO_PI * k * y + q))
    return fields / (4 * np.pi**2)


@eqx.filter_jit
def grid_residuals(pde, field, inputs, scheme=tc.Spectral()):
    """`tc.residuals`, compiled (much faster than op by op on these grids)."""
    return tc.residuals(pde, field, inputs, derivatives=scheme)


@eqx.filter_jit
def spectral_terms(pde, field):
    """The PDE's terms of one field `(*N)` on the Spectral grid, by name, each `(*N)`."""
    orders = [tc._pde.parse_term(n, pde.axes) for n in pde.terms]
    terms = tc.Spectral().terms(jnp.asarray(field)[None], orders, pde.extent, pde.periodic)
    return dict(zip(pde.terms, terms[:, 0]))


@pytest.fixture(scope="module")
def reference_data():
    """Two reference trajectories on a 17 x 32 x 32 grid (one solve for every test)."""
    with jax.enable_x64(True):
        data = navier_stokes_constraint_2d(2, 32, 17, nu=1e-3, horizon=1.0, key=jr.PRNGKey(0))
        return jax.block_until_ready(data)


# -- the residual ------------------------------------------------------------------


def test_taylor_green_has_zero_residual_and_zero_advection(x64):
    pde, scheme, shape = tc.NavierStokes2D(nu=NU, horizon=HORIZON), tc.Spectral(), (10, 8, 8)
    t, x, y = tc.grid_coordinates(pde, shape, scheme)
    psi = jnp.asarray(taylor_green(t, x, y))
    w0 = np.sin(TWO_PI * x[0]) * np.sin(TWO_PI * y[0])
    r = grid_residuals(pde, psi[None], pde.inputs(w0, shape[0]))
    assert r["pde"].shape == (9 * 64,) and r["initial"].shape == (64,)
    assert float(jnp.max(jnp.abs(r["pde"]))) < 1e-8
    assert float(jnp.max(jnp.abs(r["initial"]))) < 1e-12
    # the advection cancels to round-off, though each of its products does not vanish
    values = spectral_terms(pde, psi)
    advection = jax.vmap(pde.advection)({k: v.reshape(-1) for k, v in values.items()})
    assert float(jnp.max(jnp.abs(advection))) < 1e-12
    w_x = -(values["u_xxx"] + values["u_xyy"])
    assert float(jnp.max(jnp.abs(values["u_y"] * w_x))) > 0.1
    # the decay rate is the PDE's: another rate leaves a residual
    wrong = jnp.asarray(taylor_green(t, x, y, rate=4.0))
    r = grid_residuals(pde, wrong[None], pde.inputs(w0, shape[0]))
    assert float(jnp.max(jnp.abs(r["pde"]))) > 0.1


def test_residual_matches_the_spectral_vorticity_pieces(x64):
    # ψ = ψ_1 + t ψ_2 from vorticities of a few Fourier modes: w = w_1 + t w_2, exactly
    def forcing(x, y):
        return 0.1 * jnp.sin(TWO_PI * (x + y))

    pde = tc.NavierStokes2D(nu=0.02, horizon=2.0, forcing=forcing)
    scheme, shape = tc.Spectral(), (3, 16, 16)
    t, x, y = tc.grid_coordinates(pde, shape, scheme)
    rng = np.random.RandomState(1)
    w, laplacian = [np.zeros(shape[1:]), np.zeros(shape[1:])], [0.0, 0.0]
    for n in range(2):
        for j, k in [(1, 0), (0, 1), (1, 1), (2, 1), (1, -2)]:
            a, p = rng.randn(), rng.uniform(0, TWO_PI)
            mode = a * np.cos(TWO_PI * (j * x[0] + k * y[0]) + p)
            w[n] = w[n] + mode
            laplacian[n] = laplacian[n] - TWO_PI**2 * (j**2 + k**2) * mode
    psi = [np.asarray(tx.spectral.stream_function(v)) for v in w]
    field = jnp.asarray(psi[0] + t * psi[1])
    r = grid_residuals(pde, field[None], pde.inputs(w[0], 3))["pde"]
    expected = []
    for level in t[1:, 0, 0]:
        w_t = w[0] + level * w[1]
        advection = tx.spectral.vorticity_advection(w_t, dealias=False)
        diffusion = 0.02 * (laplacian[0] + level * laplacian[1])
        expected.append(w[1] / 2.0 + advection - diffusion - forcing(x[0], y[0]))
    expected = np.stack(expected).reshape(-1)
    assert float(np.max(np.abs(expected))) > 1.0
    np.testing.assert_allclose(r, expected, atol=1e-9)
    # vorticity() inverts the spectral stream function
    np.testing.assert_allclose(pde.vorticity(field)[0], w[0], atol=1e-12)


def test_initial_condition_reads_the_input(x64):
    pde, scheme, shape = tc.NavierStokes2D(nu=NU, horizon=HORIZON), tc.Spectral(), (4, 8, 8)
    t, x, y = tc.grid_coordinates(pde, shape, scheme)
    psi = jnp.asarray(taylor_green(t, x, y))[None]
    w0 = pde.vorticity(psi)[0, 0]
    inputs = pde.inputs(w0, shape[0])
    assert inputs.shape == (1, 4, 8, 8)
    np.testing.assert_array_equal(inputs[0, -1], w0)
    assert float(jnp.max(jnp.abs(grid_residuals(pde, psi, inputs)["initial"]))) < 1e-13
    # -Δ(2ψ) - w_0 = w_0; -Δ(-ψ) - w_0 = -2 w_0: nonzero
    r = grid_residuals(pde, 2 * psi, inputs)["initial"]
    np.testing.assert_allclose(r, w0.reshape(-1), atol=1e-12)
    r = grid_residuals(pde, -psi, inputs)["initial"]
    np.testing.assert_allclose(r, -2 * w0.reshape(-1), atol=1e-12)
    assert float(jnp.max(jnp.abs(w0))) > 0.9


# -- the hard constraint -----------------------------------------------------------


def test_hard_constraint_recovers_taylor_green(x64):
    pde, scheme, shape = tc.NavierStokes2D(nu=NU, horizon=HORIZON), tc.Spectral(), (10, 8, 8)
    t, x, y = tc.grid_coordinates(pde, shape, scheme)
    exact = taylor_green(t, x, y)
    basis = jnp.asarray(np.concatenate([exact[None], smooth_fields(0, 5, t, x, y)]))
    inputs = pde.inputs(np.sin(TWO_PI * x[0]) * np.sin(TWO_PI * y[0]), shape[0])
    # the default nonlinear solver (Levenberg-Marquardt), from w = 0
    layer = tc.HardConstraint(Fixed(basis), pde, num_points=128, ridge=0.0, derivatives=scheme)
    u, info = eqx.filter_jit(layer)(inputs, key=jr.PRNGKey(1))
    assert info.residual.shape == (128 + 64,)  # the PDE points and the 64 initial rows
    assert bool(info.converged) and float(info.max_residual) < 1e-8
    np.testing.assert_allclose(info.weights, np.eye(6)[0], atol=1e-8)
    np.testing.assert_allclose(u[0], exact, atol=1e-10)
    # its vorticity is the Taylor-Green vorticity
    w = np.sin(TWO_PI * x) * np.sin(TWO_PI * y) * np.exp(-8 * np.pi**2 * NU * HORIZON * t)
    np.testing.assert_allclose(pde.vorticity(u)[0], w, atol=1e-8)


# -- the reference data -----------------------------------------------------------


def test_reference_residual_is_small_and_second_order_in_time(x64, reference_data):
    inputs, reference = reference_data
    pde = tc.NavierStokes2D(nu=1e-3, horizon=1.0)
    psi = jax.vmap(jax.vmap(tx.spectral.stream_function))(reference[:, 0])[:, None]
    # the scale of the terms: the advection of the reference vorticity
    scale = float(jnp.max(jnp.abs(jax.vmap(jax.vmap(tx.spectral.vorticity_advection))(
        reference[:, 0]))))
    assert scale > 0.5
    errors = []
    for step in (4, 2, 1):  # 5, 9 and 17 time levels
        worst = 0.0
        for s in range(2):
            r = grid_residuals(pde, psi[s, :, ::step], inputs[s, :, ::step],
                               FourierSpaceFDTime())
            assert float(jnp.max(jnp.abs(r["initial"]))) < 1e-10
            worst = max(worst, float(jnp.max(jnp.abs(r["pde"]))))
        errors.append(worst / scale)
    assert errors[-1] < 1e-2, errors  # 4.2e-3 at 17 levels
    # second order in the time step: a factor 4 per halving
    assert all(coarse / fine > 3.0 for coarse, fine in zip(errors, errors[1:])), errors


def test_data_generator(x64, reference_data):
    inputs, reference = reference_data
    assert inputs.shape == reference.shape == (2, 1, 17, 32, 32)
    assert inputs.dtype == reference.dtype == jnp.float64
    np.testing.assert_allclose(reference[:, 0, 0], inputs[:, 0, 0], atol=1e-13)  # w(0) = w_0
    np.testing.assert_array_equal(inputs[:, 0, 0], inputs[:, 0, -1])               # every level
    assert float(jnp.max(jnp.abs(jnp.mean(inputs, axis=(-2, -1))))) < 1e-12       # zero mean
    assert 0.5 < float(jnp.std(inputs[:, 0, 0])) < 2.0                            # unit variance
    # the flow evolves
    assert float(jnp.max(jnp.abs(reference[:, 0, -1] - reference[:, 0, 0]))) > 0.1
    # deterministic per key
    again = navier_stokes_constraint_2d(2, 32, 17, nu=1e-3, horizon=1.0, key=jr.PRNGKey(0))
    np.testing.assert_array_equal(again[0], inputs)
    np.testing.assert_array_equal(again[1], reference)
    other, _ = navier_stokes_constraint_2d(2, 32, 17, nu=1e-3, horizon=1.0, key=jr.PRNGKey(1))
    assert float(jnp.max(jnp.abs(other - inputs))) > 0.1
    # the metric: the vorticity of the stream function against the reference
    pde = tc.NavierStokes2D(nu=1e-3, horizon=1.0)
    psi = jax.vmap(jax.vmap(tx.spectral.stream_function))(reference[:, 0])[:, None]
    prediction = jax.vmap(pde.vorticity)(psi)
    assert float(jnp.max(tx.sample_data.relative_l2_error(prediction, reference))) < 1e-8
    assert float(jnp.min(tx.sample_data.relative_l2_error(0.9 * prediction, reference))) > 0.09


# -- bad input --------------------------------------------------------------------


def test_bad_input(x64):
    with pytest.raises(ValueError, match="`nu` must be non-negative"):
        tc.NavierStokes2D(nu=-0.1)
    with pytest.raises(ValueError, match="`horizon` must be positive"):
        tc.NavierStokes2D(horizon=0.0)
    with pytest.raises(TypeError, match="`horizon` must be a real number"):
        tc.NavierStokes2D(horizon="long")
    with pytest.raises(TypeError, match="`forcing` must be None or a callable"):
        tc.NavierStokes2D(forcing=0.1)
    pde = tc.NavierStokes2D()
    with pytest.raises(ValueError, match="`w0` must be one initial vorticity"):
        pde.inputs(jnp.ones(8), 4)
    with pytest.raises(ValueError, match="`w0` must be one initial vorticity"):
        pde.inputs(jnp.ones((2, 1, 8, 8)), 4)
    with pytest.raises(ValueError, match="`num_times` must be positive"):
        pde.inputs(jnp.ones((8, 8)), 0)
    with pytest.raises(ValueError, match="`psi` must hold stream functions"):
        pde.vorticity(jnp.ones(8))
    with pytest.raises(ValueError, match="`field` must be one field"):
        tc.residuals(pde, jnp.ones((1, 4, 8)), jnp.ones((1, 4, 8, 8)))
    layer = tc.HardConstraint(Fixed(jnp.ones((2, 4, 8, 8))), pde, num_points=8)
    with pytest.raises(ValueError, match="`inputs` must live on the grid"):
        layer(jnp.ones((1, 4, 8, 4)))
    with pytest.raises(ValueError, match="`nu` must be non-negative"):
        navier_stokes_constraint_2d(1, 8, 3, nu=-1.0, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="`horizon` must be positive"):
        navier_stokes_constraint_2d(1, 8, 3, horizon=-1.0, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="`num_points` must be an int >= 2"):
        navier_stokes_constraint_2d(1, 1, 3, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="`num_times` must be an int >= 2"):
        navier_stokes_constraint_2d(1, 8, 1, key=jr.PRNGKey(0))
    with pytest.raises(TypeError, match="`key` must be one JAX PRNG key"):
        navier_stokes_constraint_2d(1, 8, 3, key=0)


# -- docstrings -------------------------------------------------------------------


@pytest.mark.parametrize("obj", [tc.NavierStokes2D, navier_stokes_constraint_2d],
                         ids=["NavierStokes2D", "navier_stokes_constraint_2d"])
def test_docstring_example_runs(x64, obj):
    # (in float64 and at the fixture's sizes, so the compiled reference is reused)
    doc = inspect.getdoc(obj)
    assert "**Arguments:**" in doc
    (block,) = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    namespace = dict(jax=jax, jnp=jnp, jr=jr, np=np, eqx=eqx, optax=optax, tx=tx)
    exec(compile(block, obj.__name__, "exec"), namespace)
