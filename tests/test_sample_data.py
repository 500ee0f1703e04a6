"""Tests of the reference-data sources, the Lorenz stepper and the CN residua."""

import math

import equinox as eqx
import exponax as ex
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from trainax import sample_data as sd

try:  # older JAX
    from jax.experimental import enable_x64 as _enable_x64
except ImportError:  # newer JAX: the config state is itself a context manager

    def _enable_x64():
        return jax.enable_x64(True)


KEY = jr.key(0)

# Small, fast configurations: id -> (function name, kwargs, expected shape).
# All exponax 1D grids share N=32, cutoff=3 (and all 2D grids N=16), so the
# random initial states compile once per dimension. The rollout taxonomy's
# advection and Lorenz data count `temporal_horizon` in states (the initial
# one included), the exponax problems in steps.
_1D = dict(num_points=32, cutoff=3)
_2D = dict(num_points=16, cutoff=3)
SMALL = {
    "advection": ("advection_1d_periodic", dict(num_points=32), (3, 5, 1, 32)),
    "diffusion_1d": ("diffusion_1d_periodic", _1D, (3, 6, 1, 32)),
    "advection_diffusion": ("advection_diffusion_1d_periodic", _1D, (3, 6, 1, 32)),
    "burgers": ("burgers_1d_periodic", _1D, (3, 6, 1, 32)),
    "kdv": ("kdv_1d_periodic", _1D, (3, 6, 1, 32)),
    "ks": (
        "kuramoto_sivashinsky_1d_periodic",
        dict(_1D, domain_extent=16.0, warmup_steps=5),
        (3, 6, 1, 32),
    ),
    "diffusion_2d": ("diffusion_2d_periodic", _2D, (3, 6, 1, 16, 16)),
    "ns_decaying": ("navier_stokes_2d_periodic", _2D, (3, 6, 1, 16, 16)),
    "ns_kolmogorov": (
        "navier_stokes_2d_periodic",
        dict(_2D, kind="kolmogorov", warmup_steps=3),
        (3, 6, 1, 16, 16),
    ),
    "lorenz": ("lorenz_rk4", dict(num_warmup_steps=20), (3, 5, 3)),
}
_CACHE = {}


def _generate(case, key=KEY, **extra):
    name, kwargs, _ = SMALL[case]
    kwargs = dict(kwargs, **extra)
    f = sd.PROBLEMS[name]
    return f(num_samples=3, temporal_horizon=5, key=key, return_stepper=True, **kwargs)


def _small(case):
    if case not in _CACHE:
        _CACHE[case] = _generate(case)
    return _CACHE[case]


def test_registry_and_public_names():
    assert {name for name, _, _ in SMALL.values()} == set(sd.PROBLEMS)
    for name, f in sd.PROBLEMS.items():
        assert f.__name__ == name and f.__doc__ and "**Arguments:**" in f.__doc__
    for name in sd.__all__:
        assert getattr(sd, name) is not None


@pytest.mark.parametrize("case", sorted(SMALL))
def test_shape_and_dtype(case):
    trajectories, stepper = _small(case)
    name, kwargs, shape = SMALL[case]
    assert trajectories.shape == shape
    assert trajectories.dtype == jnp.float32
    assert isinstance(stepper, eqx.Module)
    assert bool(jnp.all(jnp.isfinite(trajectories)))
    # Without return_stepper only the array comes back.
    plain = sd.PROBLEMS[name](num_samples=3, temporal_horizon=5, key=KEY, **kwargs)
    assert isinstance(plain, jax.Array)
    np.testing.assert_array_equal(plain, trajectories)


@eqx.filter_jit
def _step_all(stepper, trajectories):
    return jax.vmap(jax.vmap(stepper))(trajectories[:, :-1])


@pytest.mark.parametrize("case", sorted(SMALL))
def test_stepper_parity(case):
    """trajectories[:, t + 1] == vmap(stepper)(trajectories[:, t])."""
    trajectories, stepper = _small(case)
    scale = float(jnp.max(jnp.abs(trajectories)))
    np.testing.assert_allclose(
        _step_all(stepper, trajectories),
        trajectories[:, 1:],
        rtol=1e-5,
        atol=2e-6 * scale,
    )


def test_navier_stokes_kinds_use_matching_steppers():
    _, decaying = _small("ns_decaying")
    _, kolmogorov = _small("ns_kolmogorov")
    assert isinstance(decaying, ex.stepper.NavierStokesVorticity)
    assert isinstance(kolmogorov, ex.stepper.KolmogorovFlowVorticity)
    assert decaying.domain_extent == 1.0
    assert kolmogorov.domain_extent == pytest.approx(2 * math.pi)


@pytest.mark.parametrize("case", ["advection", "burgers", "lorenz"])
def test_determinism_per_key(case):
    first, _ = _small(case)
    again, _ = _generate(case, key=KEY)
    other, _ = _generate(case, key=jr.key(1))
    np.testing.assert_array_equal(first, again)  # bit for bit
    assert not np.allclose(first, other)
    # Samples in one batch differ from each other too.
    assert not np.allclose(first[0], first[1])


@pytest.mark.parametrize("cfl", [1, -1, 2])
def test_advection_integer_cfl_is_exact_shift(cfl):
    data, _ = _generate("advection", cfl=cfl)
    data = np.asarray(data)
    for t in range(4):
        np.testing.assert_allclose(
            data[:, t + 1], np.roll(data[:, t], cfl, axis=-1), atol=1e-5
        )
    np.testing.assert_allclose(
        data[:, 4], np.roll(data[:, 0], 4 * cfl, axis=-1), atol=1e-5
    )


def test_advection_fractional_cfl_is_not_a_shift_and_fits_upwind_stencil():
    """A 2-point stencil on (u[i], u[i+1]) fitted to the data is upwind."""
    cfl = -0.75
    data = sd.advection_1d_periodic(cfl=cfl, num_points=30, key=KEY)
    data = np.asarray(data)
    assert not np.allclose(data[:, 1], np.roll(data[:, 0], -1, axis=-1), atol=1e-2)
    u, u_next = data[:, :-1, 0], data[:, 1:, 0]
    features = np.stack([u, np.roll(u, -1, axis=-1)], axis=-1).reshape(-1, 2)
    weights, *_ = np.linalg.lstsq(features, u_next.reshape(-1), rcond=None)
    # Least squares on the exact (spectral) shift lands near, not on, upwind:
    # about [0.267, 0.779] for the default highest_init_mode=5.
    np.testing.assert_allclose(weights, [1 + cfl, -cfl], atol=0.04)


def test_warmup_skips_transient_steps():
    long, _ = _small("burgers")
    skipped = sd.burgers_1d_periodic(
        num_samples=3, temporal_horizon=2, warmup_steps=3, key=KEY, **_1D
    )
    np.testing.assert_allclose(skipped, long[:, 3:], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- Lorenz


def test_lorenz_fixed_points():
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    stepper = sd.LorenzStepper(dt=0.01, sigma=sigma, rho=rho, beta=beta)
    origin = jnp.zeros(3)
    np.testing.assert_array_equal(stepper(origin), origin)
    q = math.sqrt(beta * (rho - 1.0))
    for sign in (1.0, -1.0):
        point = jnp.array([sign * q, sign * q, rho - 1.0])
        state = point
        for _ in range(10):
            state = stepper(state)
        np.testing.assert_allclose(state, point, atol=1e-4)
    # A generic point moves.
    assert not np.allclose(stepper(jnp.ones(3)), jnp.ones(3))


@jax.jit
def _lorenz_endpoint(stepper, u0, num_steps):
    # Under jax.jit the stepper's float fields are traced: one compilation.
    return jax.lax.fori_loop(0, num_steps, lambda _, u: stepper(u), u0)


def test_lorenz_rk4_is_fourth_order():
    end_time = 0.5
    with _enable_x64():
        u0 = jnp.array([1.0, 2.0, 20.0], dtype=jnp.float64)
        ref_steps = 800
        reference = _lorenz_endpoint(
            sd.LorenzStepper(dt=end_time / ref_steps), u0, ref_steps
        )
        errors = []
        for num_steps in (25, 50, 100):
            end = _lorenz_endpoint(
                sd.LorenzStepper(dt=end_time / num_steps), u0, num_steps
            )
            assert end.dtype == jnp.float64
            errors.append(float(jnp.linalg.norm(end - reference)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 3.7) & (orders < 4.3)), (errors, orders)


def test_lorenz_data_follow_the_stepper_from_a_settled_state():
    """Warm-up steps are dropped: the data continue the warm-up trajectory."""
    stepper = sd.LorenzStepper(dt=0.01)
    data = sd.lorenz_rk4(2, temporal_horizon=3, num_warmup_steps=0, key=KEY)
    later = sd.lorenz_rk4(2, temporal_horizon=1, num_warmup_steps=2, key=KEY)
    np.testing.assert_allclose(later[:, 0], data[:, 2], rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(stepper)(data[:, 0]), data[:, 1], rtol=1e-6)


# ------------------------------------------------- Crank-Nicolson residuum


def _mode_1d(num_points, domain_extent, mode, phase, batch=2):
    x = np.arange(num_points) * domain_extent / num_points
    k = 2 * np.pi * mode / domain_extent
    return k, x, np.broadcast_to(k * x + phase, (batch, 1, num_points))


@pytest.mark.parametrize(
    "factory, kwargs, symbol",
    [
        (
            sd.advection_residuum,
            dict(cfl=-0.75, num_points=30, domain_extent=1.0, dt=0.1),
            # c = cfl * dx / dt = -0.25
            lambda k: 0.25j * k,
        ),
        (
            sd.diffusion_residuum,
            dict(diffusivity=0.01, num_points=32, domain_extent=2.0, dt=0.05),
            lambda k: -0.01 * k**2,
        ),
        (
            sd.advection_diffusion_residuum,
            dict(
                velocity=0.5, diffusivity=0.02, num_points=32, domain_extent=1.0, dt=0.1
            ),
            lambda k: -0.5j * k - 0.02 * k**2,
        ),
    ],
)
def test_residuum_zero_for_crank_nicolson_mode(factory, kwargs, symbol):
    residuum = factory(**kwargs)
    dt = kwargs["dt"]
    k, _, angle = _mode_1d(kwargs["num_points"], kwargs["domain_extent"], 3, 0.4)
    lam = symbol(k)
    gain = (1 + dt * lam / 2) / (1 - dt * lam / 2)
    u_prev = jnp.asarray(np.cos(angle), jnp.float32)
    u_next = jnp.asarray(np.real(gain * np.exp(1j * angle)), jnp.float32)
    r = residuum(u_next, u_prev)
    assert r.shape == u_prev.shape and r.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(r))) < 1e-5
    # Not trivially zero: a wrong update leaves a residual.
    assert float(jnp.max(jnp.abs(residuum(u_prev, u_prev)))) > 1e-2
    assert float(jnp.max(jnp.abs(residuum(-u_next, u_prev)))) > 1e-1


def test_residuum_zero_for_crank_nicolson_mode_2d():
    n, length, dt, nu = 16, 1.0, 0.01, 0.05
    residuum = sd.diffusion_residuum(
        diffusivity=nu, num_points=n, domain_extent=length, dt=dt, num_spatial_dims=2
    )
    x = np.arange(n) * length / n
    kx, ky = 2 * np.pi * 2 / length, 2 * np.pi * 3 / length
    angle = kx * x[:, None] + ky * x[None, :]
    lam = -nu * (kx**2 + ky**2)
    gain = (1 + dt * lam / 2) / (1 - dt * lam / 2)
    u_prev = jnp.asarray(np.cos(angle)[None, None], jnp.float32)
    u_next = jnp.asarray(gain * np.cos(angle)[None, None], jnp.float32)
    assert float(jnp.max(jnp.abs(residuum(u_next, u_prev)))) < 1e-5
    assert float(jnp.max(jnp.abs(residuum(u_prev, u_prev)))) > 1e-2


@eqx.filter_jit
def _exact_step(dt, u0):
    stepper = ex.stepper.AdvectionDiffusion(
        1, 1.0, 64, dt, velocity=1.0, diffusivity=0.01
    )
    return stepper(u0)


def test_residuum_of_exact_step_is_third_order():
    """The exponax (exact) step leaves a CN residual of size O(dt^3)."""
    residuals = []
    with _enable_x64():
        x = np.arange(64) / 64
        u0 = np.sin(2 * np.pi * x) + 0.5 * np.cos(2 * np.pi * 4 * x + 1.0)
        u0 = jnp.asarray(u0[None], jnp.float64)
        for dt in (0.01, 0.005, 0.0025):
            residuum = sd.advection_diffusion_residuum(
                velocity=1.0, diffusivity=0.01, num_points=64, dt=dt
            )
            u1 = _exact_step(jnp.asarray(dt), u0)
            r = residuum(u1[None], u0[None])
            assert r.dtype == jnp.float64
            residuals.append(float(jnp.max(jnp.abs(r))))
    orders = np.log2(np.array(residuals[:-1]) / np.array(residuals[1:]))
    assert np.all((orders > 2.8) & (orders < 3.2)), (residuals, orders)


def test_residuum_matches_advection_data():
    """Residuum and data built from the same arguments describe one PDE."""
    data = sd.advection_1d_periodic(cfl=-0.3, num_points=30, key=KEY)
    r = sd.advection_residuum(cfl=-0.3, num_points=30)(data[:, 1], data[:, 0])
    r_wrong = sd.advection_residuum(cfl=0.3, num_points=30)(data[:, 1], data[:, 0])
    assert float(jnp.max(jnp.abs(r))) < 0.05 * float(jnp.max(jnp.abs(r_wrong)))


def test_residuum_rejects_unbatched_or_mismatched_states():
    residuum = sd.advection_residuum(num_points=30)
    with pytest.raises(ValueError, match="u_next"):
        residuum(jnp.zeros((1, 30)), jnp.zeros((1, 30)))
    with pytest.raises(TypeError):
        residuum(jnp.zeros((2, 1, 30)), jnp.zeros((3, 1, 30)))
    with pytest.raises(ValueError, match="linear_operator"):
        sd.CrankNicolsonResiduum(jnp.zeros((1, 7), jnp.complex64), 0.1, 1, 30)


# ------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "f, kwargs, error, match",
    [
        (sd.advection_1d_periodic, dict(num_points=0), ValueError, "num_points"),
        (sd.diffusion_1d_periodic, dict(num_samples=-1), ValueError, "num_samples"),
        (
            sd.burgers_1d_periodic,
            dict(temporal_horizon=0),
            ValueError,
            "temporal_horizon",
        ),
        (sd.kdv_1d_periodic, dict(dt=0.0), ValueError, "dt"),
        (
            sd.diffusion_2d_periodic,
            dict(domain_extent=-1.0),
            ValueError,
            "domain_extent",
        ),
        (sd.advection_1d_periodic, dict(highest_init_mode=0), ValueError,
         "highest_init_mode"),
        (sd.diffusion_1d_periodic, dict(diffusivity=-0.1), ValueError, "diffusivity"),
        (
            sd.kuramoto_sivashinsky_1d_periodic,
            dict(warmup_steps=-1),
            ValueError,
            "warmup_steps",
        ),
        (sd.navier_stokes_2d_periodic, dict(kind="turbulent"), ValueError, "kind"),
        (sd.lorenz_rk4, dict(dt=-0.01), ValueError, "dt"),
        (sd.lorenz_rk4, dict(num_samples=0), ValueError, "num_samples"),
        (sd.advection_1d_periodic, dict(num_points=3.5), TypeError, "num_points"),
        (sd.advection_1d_periodic, dict(num_samples=True), TypeError, "num_samples"),
        (sd.advection_1d_periodic, dict(cfl="fast"), TypeError, "cfl"),
        (sd.advection_1d_periodic, dict(cfl=float("nan")), ValueError, "cfl"),
        (sd.lorenz_rk4, dict(num_warmup_steps=-1), ValueError, "num_warmup_steps"),
    ],
)
def test_bad_inputs_name_the_argument(f, kwargs, error, match):
    with pytest.raises(error, match=match):
        f(key=KEY, **kwargs)


def test_bad_key_and_missing_key():
    with pytest.raises(TypeError, match="key"):
        sd.advection_1d_periodic(key=0)
    with pytest.raises(TypeError, match="key"):
        sd.lorenz_rk4()
    with pytest.raises(TypeError):
        sd.lorenz_rk4(4, 50, key=KEY)  # temporal_horizon is keyword-only


def test_bad_residuum_and_stepper_arguments():
    with pytest.raises(ValueError, match="num_points"):
        sd.advection_residuum(num_points=1)
    with pytest.raises(ValueError, match="diffusivity"):
        sd.diffusion_residuum(diffusivity=-1.0)
    with pytest.raises(ValueError, match="num_spatial_dims"):
        sd.diffusion_residuum(num_spatial_dims=4)
    with pytest.raises(ValueError, match="dt"):
        sd.LorenzStepper(dt=0.0)


def _skip_under_import_hook(request):
    # `--jaxtyping-packages` type-checks the annotations before the library's own checks.
    if request.config.getoption("jaxtyping_packages", default=None):
        pytest.skip("the jaxtyping import hook checks annotations first")


@pytest.mark.parametrize(
    "f, kwargs, error, match",
    [
        (sd.advection_1d_periodic, dict(num_points=3.5), TypeError,
         r"^`num_points` must be an int, got 3\.5 \(type float\)\.$"),
        (sd.advection_1d_periodic, dict(key=0), TypeError, r"^`key` must be one JAX PRNG key"),
        (sd.burgers_1d_periodic, dict(key=jnp.zeros((3, 3))), TypeError,
         r"`key`.*shape \(3, 3\) and dtype float32"),
        (sd.kdv_1d_periodic, dict(return_stepper=1), TypeError, "`return_stepper`"),
        (sd.navier_stokes_2d_periodic, dict(kind=["decaying"]), TypeError, "`kind`"),
        (sd.navier_stokes_2d_periodic, dict(kind="kolmogorov", injection_mode=2.5),
         TypeError, "`injection_mode`"),
        (sd.diffusion_2d_periodic, dict(diffusivity="a lot"), TypeError, "`diffusivity`"),
        (sd.lorenz_rk4, dict(key="0"), TypeError, "`key`"),
    ],
)
def test_bad_inputs_give_one_line_errors(request, f, kwargs, error, match):
    _skip_under_import_hook(request)
    with pytest.raises(error, match=match) as info:
        f(**{"key": KEY, **kwargs})
    assert "\n" not in str(info.value), str(info.value)


def test_raw_and_typed_keys_are_accepted():
    raw = sd.lorenz_rk4(num_samples=2, temporal_horizon=1, key=jr.PRNGKey(0))
    typed = sd.lorenz_rk4(num_samples=2, temporal_horizon=1, key=jr.wrap_key_data(jr.PRNGKey(0)))
    np.testing.assert_array_equal(raw, typed)


def test_stepper_and_residuum_reject_wrong_states_in_one_line(request):
    _skip_under_import_hook(request)
    stepper = sd.LorenzStepper()
    residuum = sd.advection_residuum(num_points=30)
    calls = [
        (lambda: stepper(jnp.ones((2, 3))), ValueError, r"LorenzStepper.*\(3,\).*jax.vmap"),
        (lambda: stepper(jnp.ones(3, jnp.int32)), TypeError, "`u`.*floating-point"),
        (lambda: residuum(jnp.zeros((2, 1, 30)), jnp.zeros((3, 1, 30))), TypeError,
         r"`u_prev`.*expected \(2, 1, 30\), got \(3, 1, 30\)"),
        (lambda: residuum(jnp.zeros((2, 1, 30), jnp.int32), jnp.zeros((2, 1, 30))),
         TypeError, "`u_next`.*floating-point"),
    ]
    for call, error, match in calls:
        with pytest.raises(error, match=match) as info:
            call()
        assert "\n" not in str(info.value), str(info.value)
