"""PDE problems with spectral residuals (`tx.spectral` problems and Navier-Stokes pieces).

Figures marked "measured" come from an independent float64 prototype; they
are checked within a factor of 3. Test fields are built in NumPy.
"""

from __future__ import annotations

import math
import re

import exponax as ex
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import trainax as tx

S = tx.spectral
TWO_PI = 2 * math.pi
RHO = 5.0


def max_abs(a) -> float:
    return float(np.max(np.abs(np.asarray(a))))


def taylor_green(x, y):
    return np.sin(TWO_PI * x) * np.sin(TWO_PI * y)


def logistic(t, u0=0.1, rho=RHO):
    growth = np.exp(rho * t)
    return u0 * growth / (1 - u0 + u0 * growth)


def orders(errors):
    return [math.log2(a / b) for a, b in zip(errors, errors[1:])]


# --- Poisson ----------------------------------------------------------------------


def periodic_pair(x, y):
    u = np.sin(TWO_PI * x) * np.sin(2 * TWO_PI * y) + 0.3 * np.cos(TWO_PI * (3 * x + y))
    s = 4 * math.pi**2 * (
        5 * np.sin(TWO_PI * x) * np.sin(2 * TWO_PI * y) + 3.0 * np.cos(TWO_PI * (3 * x + y))
    )
    return u, s


def test_periodic_poisson_residual_of_an_analytic_pair(x64):
    problem = S.PoissonPeriodic(16)
    u, s = periodic_pair(*np.asarray(problem.basis.grid()))
    u_c, s_c = problem.basis.transform(u)[None], problem.basis.transform(s)[None]
    assert max_abs(problem.spectral_residual(s_c, u_c)) < 1e-11
    np.testing.assert_allclose(problem.solve(s_c), u_c, atol=1e-14)
    # the exact solve evaluated on a finer grid is the analytic solution there
    u_fine, _ = periodic_pair(*np.asarray(problem.grid(40)))
    np.testing.assert_allclose(problem.reference(s_c, 40)[0], u_fine, atol=1e-13)


def test_dirichlet_poisson_residual_of_a_polynomial(x64):
    problem = S.PoissonDirichlet(8)
    x, y = np.asarray(problem.basis.grid())
    u = x * (1 - x) * y * (1 - y)
    s = 2 * (x * (1 - x) + y * (1 - y))
    u_c, s_c = problem.basis.transform(u)[None], problem.basis.transform(s)[None]
    assert max_abs(problem.spectral_residual(s_c, u_c)) < 1e-12
    # the collocation reference reproduces the polynomial solution
    gx, gy = np.asarray(problem.grid(17))
    exact = gx * (1 - gx) * gy * (1 - gy)
    assert max_abs(problem.reference(s_c, 17)[0] - exact) < 1e-13


def test_parseval_spectral_loss_equals_the_grid_mean(x64):
    problem = S.PoissonPeriodic(16)
    x, y = np.asarray(problem.basis.grid())
    u, s = periodic_pair(x, y)
    s_c = problem.basis.transform(s)[None]
    perturbed = problem.basis.transform(u + 1e-3 * np.cos(TWO_PI * (x + y)))[None]
    loss = float(problem.spectral_loss(s_c, perturbed))
    residual = problem.basis.inverse(problem.spectral_residual(s_c, perturbed)[0])
    np.testing.assert_allclose(loss, np.mean(np.asarray(residual) ** 2), rtol=1e-12)
    np.testing.assert_allclose(loss, (8 * math.pi**2 * 1e-3) ** 2 / 2, rtol=1e-12)
    np.testing.assert_allclose(loss, 3.11709e-3, rtol=2e-6)
    # the five-point residual on 64^2 sees the same defect, to O(h^2) (the
    # residual is affine in u, so the defect is the difference of residuals)
    gx, gy = np.asarray(problem.grid(64))
    values = periodic_pair(gx, gy)[0]
    defect = problem.grid_residual(s_c, (values + 1e-3 * np.cos(TWO_PI * (gx + gy)))[None])
    defect = defect - problem.grid_residual(s_c, values[None])
    assert abs(float(jnp.mean(defect**2)) / loss - 1) < 0.02


def test_periodic_poisson_grid_residual_is_second_order(x64):
    problem = S.PoissonPeriodic(16)
    _, s = periodic_pair(*np.asarray(problem.basis.grid()))
    s_c = problem.basis.transform(s)[None]
    errors = []
    for n in (16, 32, 64):
        u, _ = periodic_pair(*np.asarray(problem.grid(n)))
        errors.append(max_abs(problem.grid_residual(s_c, u[None])))
    assert all(1.8 < p < 2.1 for p in orders(errors)), errors  # measured 1.88, 1.99


def test_dirichlet_reference_converges_and_satisfies_the_pde(x64):
    problem = S.PoissonDirichlet(8)
    source = problem.sample(jr.PRNGKey(0), 1)[0]
    fine = problem.reference(source, 33)
    coarse = S.PoissonDirichlet(8, reference_modes=32).reference(source, 33)
    assert max_abs(fine - coarse) < 1e-6 * max_abs(fine)  # measured 7e-7 relative
    assert max_abs(fine[0, 0]) < 1e-15 and max_abs(fine[0, :, -1]) < 1e-15
    # away from the corners (where a source that does not vanish makes the
    # solution singular), the five-point residual falls like h^2
    errors = []
    for n in (17, 33, 65):
        r = np.asarray(problem.grid_residual(source, problem.reference(source, n)))[0]
        k = (n - 1) // 4
        errors.append(max_abs(r[k:-k, k:-k]))
    assert all(1.8 < p < 2.2 for p in orders(errors)), errors


# --- reaction-diffusion ----------------------------------------------------------------


def test_logistic_solution_residual_falls_spectrally(x64):
    measured = [2.2e-5, 1.5e-8, 7.0e-12]  # sum of squared residual coefficients
    sums, losses = [], []
    for nt in (8, 12, 16):
        problem = S.ReactionDiffusion(0.01, modes=(nt, 8))
        t, _ = np.asarray(problem.basis.grid())
        params = problem.param_basis.transform(np.full(8, 0.1))[None]
        u = problem.basis.transform(logistic(t))[None]
        sums.append(float(jnp.sum(problem.spectral_residual(params, u) ** 2)))
        losses.append(float(problem.spectral_loss(params, u)))
    for value, expected in zip(sums, measured):
        assert expected / 3 < value < 3 * expected, sums
    # the Chebyshev-weighted norm: π/2 per time mode but the first
    np.testing.assert_allclose(np.array(losses) / np.array(sums), math.pi / 2, rtol=0.02)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_reaction_diffusion_fixed_points_have_zero_residual(value):
    problem = S.ReactionDiffusion(0.05, modes=(8, 16))
    u = jnp.zeros((1, 8, 16)).at[0, 0, 0].set(value)
    params = jnp.zeros((1, 16)).at[0, 0].set(value)
    assert max_abs(problem.spectral_residual(params, u)) == 0.0


def test_reaction_diffusion_reference(x64):
    problem = S.ReactionDiffusion(0.05, modes=(8, 16), reference_steps=100)
    # constant in x: the splitting is exact (exact logistic step, no diffusion)
    params = problem.param_basis.transform(np.full(16, 0.1))[None]
    t, _ = np.asarray(problem.grid((11, 16)))
    assert max_abs(problem.reference(params, (11, 16))[0] - logistic(t)) < 1e-13
    # a random initial condition: Strang splitting converges at second order
    u0 = problem.sample(jr.PRNGKey(0), 1)[0]
    refs = [
        S.ReactionDiffusion(0.05, modes=(8, 16), reference_steps=k).reference(u0, (11, 32))
        for k in (20, 40, 80, 160)
    ]
    differences = [max_abs(a - b) for a, b in zip(refs, refs[1:])]
    assert all(1.9 < p < 2.1 for p in orders(differences)), differences
    x = np.arange(32) / 32
    np.testing.assert_allclose(refs[-1][0, 0], problem.param_basis.evaluate(u0[0], x),
                               atol=1e-13)  # starts at u_0


def test_reaction_diffusion_grid_residual_of_the_logistic_solution(x64):
    problem = S.ReactionDiffusion(0.1, modes=(8, 8))
    params = problem.param_basis.transform(np.full(8, 0.1))[None]
    errors = []
    for nt in (21, 41, 81):
        t, _ = np.asarray(problem.grid((nt, 8)))
        r = problem.grid_residual(params, logistic(t)[None])
        assert r.shape == (1, nt - 2, 8)
        errors.append(max_abs(r))
    assert all(1.9 < p < 2.1 for p in orders(errors)), errors


# --- Navier-Stokes --------------------------------------------------------------------


def test_taylor_green_advection_vanishes(x64):
    x = np.arange(32) / 32
    w = taylor_green(*np.meshgrid(x, x, indexing="ij"))
    for dealias in (True, False):
        assert max_abs(S.vorticity_advection(w, dealias=dealias)) < 1e-13
    problem = S.NavierStokes(0.0, modes=(4, 8))
    _, gx, gy = np.asarray(problem.basis.grid())
    w_c = problem.basis.transform(taylor_green(gx, gy))[None]
    assert max_abs(problem.advection(w_c)) < 1e-14
    # steady without viscosity: the whole residual is the advection
    assert max_abs(problem.spectral_residual(problem.sample(jr.PRNGKey(0), 1)[0], w_c)) < 1e-14


def test_velocity_is_divergence_free_with_the_vorticity_as_curl(x64):
    basis = S.TensorBasis((S.Fourier(24), S.Fourier(24)))
    w = S.gaussian_random_field(jr.PRNGKey(0), basis, kernel="periodic")
    w = w - jnp.mean(w)
    v_x, v_y = (basis.transform(v) for v in S.velocity_from_vorticity(w))

    def d(c, axis):
        return basis.inverse(basis.derivative(c, axis=axis))

    assert max_abs(d(v_x, 0) + d(v_y, 1)) < 1e-12
    assert max_abs(d(v_y, 0) - d(v_x, 1) - w) < 1e-12
    psi = S.stream_function(w)
    laplacian = basis.inverse(
        basis.derivative(basis.transform(psi), 2, 0) + basis.derivative(basis.transform(psi), 2, 1)
    )
    assert max_abs(-laplacian - w) < 1e-12


def test_reference_keeps_the_taylor_green_decay_rate(x64):
    nu, horizon = 1e-2, 2.0
    problem = S.NavierStokes(nu, horizon=horizon, modes=(4, 8), reference_points=32)
    params = jnp.zeros((1, 8, 8)).at[0, 2, 2].set(1.0)  # sin 2πx sin 2πy
    t, x, y = np.asarray(problem.grid((5, 16, 16)))
    exact = np.exp(-8 * math.pi**2 * nu * horizon * t) * taylor_green(x, y)
    assert max_abs(problem.reference(params, (5, 16, 16))[0] - exact) < 1e-8


def test_forced_eigenmode_in_reference_and_residuals(x64):
    # f = sin 2πx sin 2πy does not advect itself: from w_0 = 0 the flow is
    # w(s) = f (1 - exp(-λνs)) / (λν), λ = 8π^2, at physical time s = T t.
    nu, horizon, lam = 0.01, 1.5, 8 * math.pi**2

    def forcing(x, y):
        return jnp.sin(TWO_PI * x) * jnp.sin(TWO_PI * y)

    def exact(t, x, y):
        return taylor_green(x, y) * (1 - np.exp(-lam * nu * horizon * t)) / (lam * nu)

    problem = S.NavierStokes(nu, horizon=horizon, forcing=forcing, modes=(10, 4),
                             reference_points=8, reference_dt=0.05)
    params = jnp.zeros((1, 4, 4))
    grid = np.asarray(problem.grid((4, 8, 8)))
    assert max_abs(problem.reference(params, (4, 8, 8))[0] - exact(*grid)) < 1e-9
    w = problem.basis.transform(exact(*np.asarray(problem.basis.grid())))[None]
    assert float(problem.spectral_loss(params, w)) < 1e-20  # exp(-λνTt) on 10 nodes
    errors = []
    for n in (8, 16, 32):
        values = exact(*np.asarray(problem.grid((n, n, n))))
        errors.append(max_abs(problem.grid_residual(params, values[None])))
    assert all(1.8 < p < 2.1 for p in orders(errors)), errors


def test_navier_stokes_residual_of_taylor_green_falls_with_time_modes(x64):
    nu, horizon = 1e-2, 2.0
    losses = []
    for nt in (4, 6, 8):
        problem = S.NavierStokes(nu, horizon=horizon, modes=(nt, 4))
        t, x, y = np.asarray(problem.basis.grid())
        w = np.exp(-8 * math.pi**2 * nu * horizon * t) * taylor_green(x, y)
        params = jnp.zeros((1, 4, 4))  # the residual does not read w_0
        losses.append(float(problem.spectral_loss(params, problem.basis.transform(w)[None])))
    assert losses[0] > 1e3 * losses[1] > 1e6 * losses[2], losses


def test_stepper_matches_exponax(x64):
    # exponax's vorticity has the opposite sign: its flow from -w_0 is -w.
    n, dt, nu = 32, 0.01, 1e-2
    # a band-limited start (|k| <= 4): the two dealiasing masks agree on it
    coarse = S.TensorBasis((S.Fourier(9), S.Fourier(9)))
    w0 = coarse.transform(S.gaussian_random_field(jr.PRNGKey(2), coarse, kernel="periodic"))
    w0 = S.TensorBasis((S.Fourier(n), S.Fourier(n))).inverse(coarse.resize(w0.at[0, 0].set(0), n))
    w0 = w0[None]
    ours = S.NavierStokesStepper(n, dt, diffusivity=nu, substeps=20)(w0)
    stepper = ex.stepper.NavierStokesVorticity(2, 1.0, n, dt, diffusivity=nu, order=4)
    theirs = jax.jit(ex.repeat(stepper, 20))(-w0)
    assert max_abs(ours - w0) > 0.05  # the flow moved
    # measured 1.3e-8 at every dt: the two 2/3 masks keep a different last mode
    assert max_abs(ours + theirs) < 1e-7
    # fourth order in time: halving dt shrinks the change 16-fold
    half = S.NavierStokesStepper(n, dt / 2, diffusivity=nu, substeps=40)(w0)
    quarter = S.NavierStokesStepper(n, dt / 4, diffusivity=nu, substeps=80)(w0)
    assert 3.5 < math.log2(max_abs(ours - half) / max_abs(half - quarter)) < 4.5


# --- sampling, constraints, grids ------------------------------------------------------------


PROBLEMS = {
    "periodic": lambda: S.PoissonPeriodic(8),
    "dirichlet": lambda: S.PoissonDirichlet(8),
    "reaction_diffusion": lambda: S.ReactionDiffusion(0.01, modes=(6, 8)),
    "navier_stokes": lambda: S.NavierStokes(1e-3, modes=(4, 8)),
}


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_sample_is_deterministic_per_key(name):
    problem = PROBLEMS[name]()
    a, b = problem.sample(jr.PRNGKey(0), 3), problem.sample(jr.PRNGKey(0), 3)
    c = problem.sample(jr.PRNGKey(1), 3)
    assert a.shape == (3, 1, *problem.param_basis.shape) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert max_abs(a - c) > 0.05 and max_abs(a[0] - a[1]) > 0.05
    inputs = jax.vmap(problem.model_input)(a)
    assert inputs.shape == (3, problem.in_channels, *problem.basis.shape)
    if name in ("periodic", "navier_stokes"):
        assert max_abs(a[:, 0, 0, 0]) == 0.0  # zero mean
    if name == "reaction_diffusion":  # scaled to [0, 1] on the nodes
        values = jax.vmap(problem.param_basis.inverse)(a[:, 0])
        np.testing.assert_allclose(values.min(axis=1), 0.0, atol=1e-6)
        np.testing.assert_allclose(values.max(axis=1), 1.0, atol=1e-6)


def test_constraints_hold_whatever_the_output(x64):
    output = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6, 8)))
    periodic = S.PoissonPeriodic((6, 8))
    gauged = periodic.constrain(jnp.zeros((1, 6, 8)), output)[0]
    assert abs(float(periodic.basis.integrate(gauged))) < 1e-15
    dirichlet = S.PoissonDirichlet((6, 8))
    u = dirichlet.constrain(jnp.zeros((1, 6, 8)), output)[0]
    edge = np.linspace(0, 1, 9)
    points = np.concatenate([np.stack([edge, np.full(9, side)], -1) for side in (0.0, 1.0)]
                            + [np.stack([np.full(9, side), edge], -1) for side in (0.0, 1.0)])
    assert max_abs(dirichlet.basis.evaluate(u, points)) < 1e-13
    rd = S.ReactionDiffusion(0.01, modes=(6, 8))
    u0 = rd.sample(jr.PRNGKey(0), 1)[0]
    u = rd.constrain(u0, output)[0]
    x = np.linspace(0, 1, 13)
    at_zero = rd.basis.evaluate(u, np.stack([np.zeros(13), x], -1))
    np.testing.assert_allclose(at_zero, rd.param_basis.evaluate(u0[0], x), atol=1e-13)
    ns = S.NavierStokes(modes=(4, 8))
    w0 = ns.sample(jr.PRNGKey(0), 1)[0]
    w = ns.constrain(w0, jnp.ones((1, 4, 8, 8)))
    np.testing.assert_allclose(ns.to_grid(w, (2, 8, 8))[0, 0], ns.param_basis.inverse(w0[0]),
                               atol=1e-13)


def test_time_channel_is_the_time_coordinate(x64):
    problem = S.ReactionDiffusion(0.01, modes=(6, 8))
    inputs = problem.model_input(problem.sample(jr.PRNGKey(0), 1)[0])
    t, _ = np.asarray(problem.basis.grid())
    np.testing.assert_allclose(problem.basis.inverse(inputs[1]), t, atol=1e-14)
    np.testing.assert_allclose(problem.basis.inverse(inputs[0])[0],
                               problem.basis.inverse(inputs[0])[-1], atol=1e-14)


def test_to_grid_matches_evaluate(x64):
    problem = S.ReactionDiffusion(0.01, modes=(6, 8))
    u = jnp.asarray(np.random.default_rng(1).standard_normal((1, 6, 8)))
    grid = problem.grid((5, 12))
    points = np.asarray(grid).reshape(2, -1).T
    expected = problem.basis.evaluate(u[0], points).reshape(5, 12)
    np.testing.assert_allclose(problem.to_grid(u, (5, 12))[0], expected, atol=1e-13)
    np.testing.assert_allclose(grid[0][:, 0], np.linspace(0, 1, 5))
    np.testing.assert_allclose(grid[1][0], np.arange(12) / 12)


# --- one time step, spectrally ---------------------------------------------------------


def crank_nicolson_step(u, dt, nu, c):
    n = u.shape[-1]
    k = TWO_PI * np.fft.rfftfreq(n, 1.0 / n)
    lam = -nu * k**2 - 1j * c * k
    factor = (1 + dt * lam / 2) / (1 - dt * lam / 2)
    return np.fft.irfft(np.fft.rfft(u) * factor, n=n)


def test_crank_nicolson_residuum_vanishes_on_the_crank_nicolson_step(x64):
    n, dt, nu, c = 32, 0.02, 0.01, 1.0
    residuum = S.SpectralCrankNicolsonResiduum(n, dt, diffusivity=nu, velocity=c)
    x = np.arange(n) / n
    u = np.stack([np.exp(np.sin(TWO_PI * x)), np.cos(3 * TWO_PI * x)])[:, None]
    exact = crank_nicolson_step(u, dt, nu, c)
    assert max_abs(residuum(exact, u)) < 1e-13
    wrong = residuum(u, u)  # a step that does nothing
    assert float(tx.loss.MSELoss()(wrong)) > 1e-3
    # the mean square is the L2 norm of the residual function (Parseval)
    basis = S.Fourier(n)
    du = basis.inverse(basis.derivative(basis.transform(u[1, 0])))
    d2u = basis.inverse(basis.derivative(basis.transform(u[1, 0]), 2))
    r = dt * (c * du - nu * d2u)
    np.testing.assert_allclose(float(jnp.mean(wrong[1] ** 2)), np.mean(np.asarray(r) ** 2),
                               rtol=1e-12)


# --- bad input ------------------------------------------------------------------------------


def dirichlet_reference_in_float32():
    problem = S.PoissonDirichlet(4)
    return problem.reference(jnp.zeros((1, 4, 4)), 8)


BAD_INPUT = {
    "float32 collocation reference": (dirichlet_reference_in_float32, TypeError,
                                      "jax_enable_x64"),
    "solution of the wrong basis size": (
        lambda: S.PoissonPeriodic(8).spectral_residual(jnp.zeros((1, 8, 8)), jnp.zeros((1, 8, 9))),
        ValueError, "`u_coeffs`"),
    "solution without a channel": (
        lambda: S.PoissonPeriodic(8).spectral_loss(jnp.zeros((1, 8, 8)), jnp.zeros((8, 8))),
        ValueError, "`u_coeffs`"),
    "parameters of the wrong size": (
        lambda: S.ReactionDiffusion(modes=(4, 8)).model_input(jnp.zeros((1, 4, 8))),
        ValueError, "`params`"),
    "another kind of basis": (
        lambda: S.PoissonPeriodic(8).model_input(
            jnp.zeros((1, 8, 8)), S.TensorBasis((S.Chebyshev(8), S.Fourier(8)))),
        ValueError, "`basis`"),
    "resolution of the wrong length": (
        lambda: S.ReactionDiffusion(modes=(4, 8)).grid((4, 8, 8)), ValueError, "`resolution`"),
    "one point on a bounded axis": (
        lambda: S.PoissonDirichlet(4).grid(1), ValueError, "`resolution`"),
    "grid too small for differences": (
        lambda: S.PoissonPeriodic(4).grid_residual(jnp.zeros((1, 4, 4)), jnp.zeros((1, 2, 8))),
        ValueError, "`u_values`"),
    "unequal space resolution": (
        lambda: S.NavierStokes(modes=(3, 4)).reference(jnp.zeros((1, 4, 4)), (3, 8, 16)),
        ValueError, "`resolution`"),
    "negative viscosity": (lambda: S.ReactionDiffusion(-0.1), ValueError, "`nu`"),
    "one Chebyshev time mode": (lambda: S.ReactionDiffusion(modes=(1, 8)), ValueError, "`n`"),
    "three modes for a square": (lambda: S.PoissonPeriodic((4, 4, 4)), ValueError, "`modes`"),
    "forcing not callable": (lambda: S.NavierStokes(forcing=1.0), TypeError, "`forcing`"),
    "zero samples": (lambda: S.PoissonPeriodic(4).sample(jr.PRNGKey(0), 0), ValueError, "`num`"),
    "vorticity with a channel": (
        lambda: S.velocity_from_vorticity(jnp.zeros((1, 8, 8))), ValueError, "`w`"),
    "stepper state without a channel": (
        lambda: S.NavierStokesStepper(8, 0.1)(jnp.zeros((8, 8))), ValueError, "`w`"),
    "forcing of the wrong shape": (
        lambda: S.NavierStokesStepper(8, 0.1, forcing=jnp.zeros((4, 4))), ValueError, "`forcing`"),
    "negative time step": (lambda: S.NavierStokesStepper(8, -0.1), ValueError, "`dt`"),
    "residuum states of the wrong size": (
        lambda: S.SpectralCrankNicolsonResiduum(16, 0.1)(
            jnp.zeros((2, 1, 8)), jnp.zeros((2, 1, 8))),
        ValueError, "`u_next`"),
    "residuum states that differ": (
        lambda: S.SpectralCrankNicolsonResiduum(8, 0.1)(
            jnp.zeros((2, 1, 8)), jnp.zeros((3, 1, 8))),
        ValueError, "`u_prev`"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_names_the_argument(case):
    call, error, name = BAD_INPUT[case]
    with pytest.raises(error, match=re.escape(name)) as info:
        call()
    assert "\n" not in str(info.value)
