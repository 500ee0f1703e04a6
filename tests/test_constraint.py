"""Hard constraints: exact spans, closed forms, implicit gradients, experts, bad input."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import optimistix as optx
import pytest

import trainax as tx
import trainax.constraint as tc
from constraint_helpers import Fixed, squared_output_and_grad

NU = 0.05


def smooth_fields(key, num, t, x, *, periodic_x=True):
    """`num` smooth random fields: low modes in t and x."""
    coefficients = np.asarray(jr.normal(key, (num, 3, 3)))
    fields = 0.0
    for i in range(3):
        for j in range(3):
            mode_x = np.cos(2 * np.pi * j * x + j) if periodic_x else np.cos(np.pi * j * x)
            fields = fields + coefficients[:, i, j, None, None] * np.cos(np.pi * i * t) * mode_x
    return jnp.asarray(fields)


def advection():
    return tc.PDE(
        ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_x"),
        residual=lambda v, inputs, coords: v["u_t"] + v["u_x"],
        conditions={"initial": lambda v, inputs, coords: v["u"] - inputs[0]},
        periodic=(False, True), linear=True,
    )


def burgers():
    dirichlet = lambda v, inputs, coords: v["u"] - inputs[0]  # noqa: E731
    return tc.PDE(
        ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_x", "u_xx"),
        residual=lambda v, inputs, coords: v["u_t"] + v["u"] * v["u_x"] - NU * v["u_xx"],
        conditions={"initial": dirichlet, "x_low": dirichlet, "x_high": dirichlet},
    )


def wave(t, x):
    return 0.5 - 0.5 * jnp.tanh((x - 0.3 - 0.5 * t) / (4 * NU))


def analytic_terms(functions, t, x):
    """The exact terms u, u_t, u_x, u_xx of scalar functions f(t, x) on the grid."""
    grid = lambda f: jax.vmap(jax.vmap(f))(t, x)  # noqa: E731
    terms = {"u": [], "u_t": [], "u_x": [], "u_xx": []}
    for f in functions:
        terms["u"].append(grid(f))
        terms["u_t"].append(grid(jax.grad(f, 0)))
        terms["u_x"].append(grid(jax.grad(f, 1)))
        terms["u_xx"].append(grid(jax.grad(jax.grad(f, 1), 1)))
    return {name: jnp.stack(values) for name, values in terms.items()}


def burgers_basis(t, x, *, first=wave):
    def sine(a, b, c):
        return lambda t, x: jnp.sin(a * x + b * t + c)

    parameters = 3 * np.random.RandomState(0).randn(7, 3)
    return analytic_terms([first] + [sine(*p) for p in parameters], t, x)


def burgers_setup(shape=(16, 24)):
    t, x = (jnp.asarray(c) for c in tc.grid_coordinates(burgers(), shape))
    return t, x, wave(t, x)[None]


# -- exact spans and closed forms -------------------------------------------------


def test_linear_exact_span(x64):
    pde, scheme = advection(), tc.Spectral()
    t, x = tc.grid_coordinates(pde, (32, 64), scheme)
    exact = jnp.asarray(np.sin(2 * np.pi * (x - t)))
    basis = jnp.concatenate([exact[None], smooth_fields(jr.PRNGKey(0), 7, t, x)])
    layer = tc.HardConstraint(Fixed(basis), pde, num_points=256, ridge=0.0, derivatives=scheme)
    u, info = eqx.filter_jit(layer)(exact[None], key=jr.PRNGKey(1))
    assert info.residual.shape == (256 + 64,)  # the PDE points and the 64 initial rows
    assert info.converged and float(info.max_residual) < 1e-10
    np.testing.assert_allclose(info.weights, np.eye(8)[0], atol=1e-8)
    np.testing.assert_allclose(u[0], exact, atol=1e-8)


def test_nonlinear_exact_span(x64):
    # with the default solver for nonlinear PDEs, Levenberg-Marquardt (optimistix)
    t, x, inputs = burgers_setup((12, 16))
    layer = tc.HardConstraint(Fixed(burgers_basis(t, x)), burgers(), num_points=100, ridge=0.0)
    u, info = eqx.filter_jit(layer)(inputs, key=jr.PRNGKey(0))
    assert info.converged and float(info.max_residual) < 1e-10
    np.testing.assert_allclose(info.weights, np.eye(8)[0], atol=1e-8)


@pytest.mark.parametrize("solver", [None, tc.GaussNewton()], ids=["lineax", "gauss-newton"])
def test_linear_closed_form(x64, solver):
    # a PDE without derivatives: rows [A w - b; ridge w] at every node
    pde = tc.PDE(("t", "x"), (1.0, 1.0), ("u",), linear=True,
                 residual=lambda v, inputs, coords: v["u"] - inputs[0])
    basis = jr.normal(jr.PRNGKey(0), (5, 6, 7))
    b = jr.normal(jr.PRNGKey(1), (1, 6, 7))
    ridge = 0.3
    layer = tc.HardConstraint(Fixed(basis), pde, num_points=42, ridge=ridge, solver=solver)
    _, info = eqx.filter_jit(layer)(b, key=jr.PRNGKey(2))
    A, rhs = basis.reshape(5, -1).T, b.reshape(-1)
    expected = np.linalg.solve(A.T @ A + ridge**2 * np.eye(5), A.T @ rhs)
    np.testing.assert_allclose(info.weights, expected, atol=1e-10)


@pytest.mark.parametrize("solver", [None, tc.GaussNewton()], ids=["lineax", "gauss-newton"])
def test_particular_field_closed_form(x64, solver):
    # u = p + A w: the rows [A w - (b - p); ridge w], the ridge on w alone
    pde = tc.PDE(("t", "x"), (1.0, 1.0), ("u",), linear=True,
                 residual=lambda v, inputs, coords: v["u"] - inputs[0])
    fields = jr.normal(jr.PRNGKey(0), (6, 6, 7))  # the particular field, then 5
    b = jr.normal(jr.PRNGKey(1), (1, 6, 7))
    ridge = 0.3
    layer = tc.HardConstraint(Fixed(fields), pde, num_points=42, ridge=ridge, solver=solver,
                              particular=True)
    u, info = eqx.filter_jit(layer)(b, key=jr.PRNGKey(2))
    A, rhs = fields[1:].reshape(5, -1).T, (b - fields[:1]).reshape(-1)
    expected = np.linalg.solve(A.T @ A + ridge**2 * np.eye(5), A.T @ rhs)
    assert info.weights.shape == (5,)
    np.testing.assert_allclose(info.weights, expected, atol=1e-10)
    np.testing.assert_allclose(u[0], fields[0] + jnp.einsum("n,ntx->tx", expected, fields[1:]),
                               atol=1e-10)


def test_particular_exact_solution_needs_no_weights(x64):
    # the particular field solves the PDE and its initial condition: w = 0
    pde, scheme = advection(), tc.Spectral()
    t, x = tc.grid_coordinates(pde, (32, 64), scheme)
    exact = jnp.asarray(np.sin(2 * np.pi * (x - t)))
    fields = jnp.concatenate([exact[None], smooth_fields(jr.PRNGKey(0), 7, t, x)])
    layer = tc.HardConstraint(Fixed(fields), pde, num_points=256, ridge=0.0,
                              derivatives=scheme, particular=True)
    u, info = eqx.filter_jit(layer)(exact[None], key=jr.PRNGKey(1))
    assert info.converged and float(info.max_residual) < 1e-10
    np.testing.assert_allclose(info.weights, np.zeros(7), atol=1e-8)
    np.testing.assert_allclose(u[0], exact, atol=1e-8)


@pytest.mark.parametrize("experts", [None, (1, 4)])
def test_initial_value_form_holds_the_initial_state_exactly(x64, experts):
    """Whatever the backbone and the weights, the output's first level is u_0
    and the initial rows vanish (for the global layer and for experts)."""
    pde = tc.DiffusionSorption()
    u0 = jnp.asarray(np.random.RandomState(0).uniform(0.0, 0.2, 16))
    inputs = pde.inputs(u0, 9)
    t, x = tc.grid_coordinates(pde, (9, 16))
    form = tc.InitialValueBasis(Fixed(smooth_fields(jr.PRNGKey(3), 5, t / 500.0, x,
                                                    periodic_x=False)))
    fields = form(inputs)
    assert fields.shape == (6, 9, 16)
    np.testing.assert_array_equal(fields[0], jnp.broadcast_to(u0, (9, 16)))
    np.testing.assert_array_equal(fields[1:, 0], 0.0)
    np.testing.assert_array_equal(fields[1:, 1:], form.net(inputs)[:, 1:])
    layer = tc.HardConstraint(form, pde, num_points=12, solver=tc.GaussNewton(),
                              particular=True, max_steps=5, on_failure="ignore")
    if experts is not None:
        layer = tc.MixtureOfExperts(layer, experts)
    u, info = eqx.filter_jit(layer)(inputs, key=jr.PRNGKey(4))
    np.testing.assert_array_equal(u[0, 0], u0)
    num_points = 12
    initial_rows = info.residual[..., num_points : num_points + 16 // (experts or (1, 1))[1]]
    np.testing.assert_array_equal(initial_rows, 0.0)
    assert info.weights.shape[-1] == 5


def test_particular_and_initial_value_form_bad_input(x64):
    pde = advection()
    one = jnp.ones((1, 4, 8))
    with pytest.raises(ValueError, match="particular field and at least one basis field"):
        tc.HardConstraint(Fixed(one), pde, num_points=4, particular=True)(one)
    with pytest.raises(TypeError, match="`particular` must be True or False"):
        tc.HardConstraint(Fixed(one), pde, num_points=4, particular="yes")
    with pytest.raises(TypeError, match="`net` must be callable"):
        tc.InitialValueBasis(3)
    with pytest.raises(ValueError, match=r"`net` must map inputs \(1, 4, 8\)"):
        tc.InitialValueBasis(Fixed(jnp.ones((2, 4, 9))))(one)
    with pytest.raises(ValueError, match="`initial` must return the initial state of shape"):
        tc.InitialValueBasis(Fixed(jnp.ones((2, 4, 8))), initial=lambda inputs: inputs[0])(one)


# -- gradients -------------------------------------------------------------------


def _burgers_loss(solver, adjoint):
    t, x, inputs = burgers_setup((12, 16))
    slower = lambda t, x: wave(0.8 * t, x)  # noqa: E731  (not a solution: r != 0)
    base = burgers_basis(t, x, first=slower)
    bumps = [(lambda k: (lambda t, x: jnp.cos(k * x - t) * t))(k) for k in range(1, 9)]
    direction = analytic_terms(bumps, t, x)

    def loss(theta):
        terms = {k: v + theta[:, None, None] * direction[k] for k, v in base.items()}
        layer = tc.HardConstraint(
            Fixed(terms), burgers(), num_points=60, ridge=1e-3, solver=solver,
            adjoint=adjoint, max_steps=60,
        )
        u, info = layer(inputs, key=jr.PRNGKey(0))
        return jnp.sum(jnp.sin(3 * u)), info

    return loss


def test_implicit_gradient_matches_unrolled_and_finite_differences(x64):
    theta = 0.1 * jr.normal(jr.PRNGKey(3), (8,))
    implicit = jax.jit(jax.value_and_grad(
        _burgers_loss(tc.GaussNewton(), optx.ImplicitAdjoint()), has_aux=True))
    unrolled = jax.jit(jax.value_and_grad(
        _burgers_loss(tc.GaussNewton(), optx.RecursiveCheckpointAdjoint()), has_aux=True))
    (value, info), g_implicit = implicit(theta)
    assert info.converged and float(info.max_residual) > 1e-3  # a genuine least-squares fit
    _, g_unrolled = unrolled(theta)
    scale = float(jnp.max(jnp.abs(g_implicit)))
    assert float(jnp.max(jnp.abs(g_implicit - g_unrolled))) < 1e-8 * scale
    eps = 1e-4  # central differences: O(eps^2) truncation, far below the tolerance
    for i in (0, 3):
        e = jnp.zeros(8).at[i].set(eps)
        (up, _), _ = implicit(theta + e)
        (down, _), _ = implicit(theta - e)
        central = (up - down) / (2 * eps)
        assert abs(float(central - g_implicit[i])) < 1e-4 * max(1.0, abs(float(central)))


# -- experts ---------------------------------------------------------------------


def _heat(linear=True):
    residual = (lambda v, i, c: v["u_t"] - 0.1 * v["u_xx"]) if linear else (
        lambda v, i, c: v["u_t"] - 0.1 * (1 + v["u"] ** 2) * v["u_xx"])
    value = lambda v, i, c: v["u"] - i[0]  # noqa: E731
    return tc.PDE(("t", "x"), (1.0, 1.0), ("u", "u_t", "u_xx"), residual=residual,
                  conditions={"initial": value, "x_low": value, "x_high": value}, linear=linear)


def _heat_setup(shape=(8, 16), num_basis=6):
    t, x = tc.grid_coordinates(_heat(), shape)
    basis = smooth_fields(jr.PRNGKey(4), num_basis, t, x, periodic_x=False)
    inputs = jnp.asarray(np.sin(np.pi * x) * np.exp(-t))[None]
    return basis, inputs


def test_one_expert_equals_the_global_layer(x64):
    basis, inputs = _heat_setup()
    layer = tc.HardConstraint(Fixed(basis), _heat(), num_points=30)
    one = tc.MixtureOfExperts(layer, (1, 1), shared_rows="global")
    key = jr.PRNGKey(5)
    (_, (u_layer, info)), g_layer = squared_output_and_grad(layer, inputs, key)
    (_, (u_one, info_one)), g_one = squared_output_and_grad(one, inputs, key)
    np.testing.assert_array_equal(u_layer, u_one)
    np.testing.assert_array_equal(info.residual, info_one.residual[0])
    g_layer, g_one = g_layer.basis_net.fields, g_one.constraint.basis_net.fields
    assert float(jnp.max(jnp.abs(g_layer - g_one))) <= 1e-14 * float(jnp.max(jnp.abs(g_layer)))


def test_partition_round_trip_and_ownership():
    field = jnp.arange(3 * 8 * 12.0).reshape(3, 8, 12)
    counts = (2, 3)
    blocks = tc.partition(field, counts)
    assert blocks.shape == (6, 3, 4, 4)
    np.testing.assert_array_equal(tc.stitch(blocks, counts), field)
    for e in range(6):
        i, j = np.unravel_index(e, counts)
        np.testing.assert_array_equal(blocks[e], field[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4])


@pytest.mark.parametrize("shared_rows", ["local", "global"])
def test_expert_weights_depend_only_on_their_block(x64, shared_rows):
    basis, inputs = _heat_setup()
    counts = (1, 4)

    def weights(fields):
        layer = tc.HardConstraint(Fixed(fields), _heat(), num_points=12)
        moe = tc.MixtureOfExperts(layer, counts, shared_rows=shared_rows)
        return moe(inputs, key=jr.PRNGKey(6))[1].weights

    jac = np.abs(np.asarray(jax.jit(jax.jacrev(weights))(basis)))      # (E, N, N, T, X)
    owner = np.repeat(np.arange(4), 4)[None, :].repeat(8, 0)  # the expert of each node
    condition = np.zeros((8, 16), bool)
    condition[0] = condition[:, 0] = condition[:, -1] = True  # initial and boundary nodes
    for j in range(4):
        elsewhere = owner != j
        if shared_rows == "local":
            assert jac[j][..., elsewhere].max() == 0.0
        else:
            # every expert fits the global condition rows, and nothing else outside its block
            assert jac[j][..., elsewhere & condition].max() > 1e-3
            assert jac[j][..., elsewhere & ~condition].max() == 0.0


def test_experts_draw_points_in_their_blocks_and_stitch(x64):
    basis, inputs = _heat_setup()
    layer = tc.HardConstraint(Fixed(basis), _heat(), num_points=12)
    moe = tc.MixtureOfExperts(layer, (2, 2))
    u, info = eqx.filter_jit(moe)(inputs, key=jr.PRNGKey(7))
    assert info.weights.shape == (4, 6) and bool(jnp.all(info.converged))
    for e in range(4):
        i, j = np.unravel_index(e, (2, 2))
        block = basis[:, 4 * i : 4 * i + 4, 8 * j : 8 * j + 8]
        np.testing.assert_allclose(
            u[0, 4 * i : 4 * i + 4, 8 * j : 8 * j + 8],
            jnp.einsum("n,nij->ij", info.weights[e], block), atol=1e-13,
        )


SHARD = """
import jax, jax.numpy as jnp, jax.random as jr, numpy as np, equinox as eqx
jax.config.update("jax_enable_x64", True)
import trainax.constraint as tc
assert len(jax.devices()) == 4

class Fixed(eqx.Module):
    fields: jax.Array
    def __call__(self, inputs):
        return self.fields

value = lambda v, i, c: v["u"] - i[0]
pde = tc.PDE(("t", "x"), (1.0, 1.0), ("u", "u_t", "u_xx"),
             residual=lambda v, i, c: v["u_t"] - 0.1 * (1 + v["u"] ** 2) * v["u_xx"],
             conditions={"initial": value, "x_low": value, "x_high": value})
basis = jr.normal(jr.PRNGKey(0), (5, 8, 32))
inputs = jr.normal(jr.PRNGKey(1), (1, 8, 32))
layer = tc.HardConstraint(Fixed(basis), pde, num_points=12, solver=tc.GaussNewton())
out = {}
for parallel in ("vmap", "shard"):
    moe = tc.MixtureOfExperts(layer, (1, 8), parallel=parallel)
    u, info = eqx.filter_jit(moe)(inputs, key=jr.PRNGKey(2))
    out[parallel] = (u, info.weights)
    print(parallel, "devices", len(info.weights.sharding.device_set))
print("output", float(jnp.max(jnp.abs(out["vmap"][0] - out["shard"][0]))))
print("weights", float(jnp.max(jnp.abs(out["vmap"][1] - out["shard"][1]))))
try:
    tc.MixtureOfExperts(layer, (1, 2), parallel="shard")
except ValueError as error:
    print("error:", error)
"""


def test_shard_matches_vmap():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SHARD)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    for label in ("output", "weights"):
        assert float(re.search(label + r" (\S+)", out).group(1)) < 1e-12, out
    assert "shard devices 4" in out and "vmap devices 1" in out  # the experts' solves spread
    assert "a multiple of the 4 devices" in out and "got 2 experts" in out


# -- configurations --------------------------------------------------------------


def test_a_hard_constrained_model_trains_under_operator_learning(x64):
    pde = _heat()
    t, x = tc.grid_coordinates(pde, (8, 16))
    amplitudes = jr.uniform(jr.PRNGKey(0), (16, 1, 1, 1), minval=0.5, maxval=1.5)
    exact = jnp.asarray(np.sin(np.pi * x) * np.exp(-0.1 * np.pi**2 * t))
    inputs = amplitudes * jnp.asarray(np.sin(np.pi * x))[None, None]
    targets = amplitudes * exact[None, None]
    net = tx.nn.FNO(2, 1, 4, width=8, modes=(3, 4), num_layers=1, coordinate_channels=True,
                    key=jr.PRNGKey(1))
    model = tc.Constrained(tc.HardConstraint(net, pde, num_points=40))
    trainer = tx.GeneralTrainer(
        tx.trainer.Samples((inputs, targets)), tx.configuration.OperatorLearning(),
        optax.adam(3e-3), 20, 8, progress_bar=False,
    )
    trained, losses = trainer(model, jr.PRNGKey(2))
    assert losses.dtype == np.float64 and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


class SlabStepper(eqx.Module):
    """A stepper `u^n -> u^{n+1}`: a hard constraint on the space-time slab `[0, dt] x [0, 1]`."""

    layer: tc.HardConstraint
    num_levels: int = eqx.field(static=True)

    def __call__(self, state):
        slab = jnp.broadcast_to(state[:, None], (state.shape[0], self.num_levels, state.shape[-1]))
        return self.layer(slab)[0][:, -1]


def test_a_hard_constrained_stepper_trains_under_supervised_with_a_rollout(x64):
    # heat u_t = 0.1 u_xx with u = 0 at both ends; the layer imposes the PDE on each step's slab
    dt, num_x = 0.1, 16
    zero = lambda v, i, c: v["u"]  # noqa: E731
    pde = tc.PDE(("t", "x"), (dt, 1.0), ("u", "u_t", "u_xx"),
                 residual=lambda v, i, c: v["u_t"] - 0.1 * v["u_xx"],
                 conditions={"initial": lambda v, i, c: v["u"] - i[0], "x_low": zero, "x_high": zero},
                 linear=True)
    x = np.linspace(0.0, 1.0, num_x)
    times = dt * np.arange(5)
    a, b = (np.asarray(c)[:, None, None] for c in jr.uniform(jr.PRNGKey(0), (2, 8), minval=0.5, maxval=1.5))
    exact = (a * np.sin(np.pi * x) * np.exp(-0.1 * np.pi**2 * times[:, None])
             + 0.5 * b * np.sin(2 * np.pi * x) * np.exp(-0.4 * np.pi**2 * times[:, None]))
    trajectories = jnp.asarray(exact)[:, :, None]                                  # (S, T + 1, 1, X)
    net = tx.nn.FNO(2, 1, 4, width=8, modes=(2, 4), num_layers=1, coordinate_channels=True,
                    key=jr.PRNGKey(1))
    model = SlabStepper(tc.HardConstraint(net, pde, num_points=40), num_levels=5)
    assert model(trajectories[0, 0]).shape == (1, num_x)
    configuration = tx.configuration.Supervised(num_rollout_steps=3)
    trainer = tx.GeneralTrainer(tx.trainer.Trajectories(trajectories), configuration,
                                optax.adam(3e-3), 20, 4, progress_bar=False)
    trained, losses = trainer(model, jr.PRNGKey(2))
    assert losses.dtype == np.float64 and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    # the rollout of the trained stepper follows the reference over the window
    windows = trajectories[:, :4]
    before = float(eqx.filter_jit(configuration)(model, windows))
    after = float(eqx.filter_jit(configuration)(trained, windows))
    assert after < 0.5 * before


def test_physics_informed_draws_points_per_sample(x64):
    pde = _heat()
    inputs = jnp.asarray(np.sin(np.pi * tc.grid_coordinates(pde, (8, 16))[1]))[None, None]
    inputs = inputs * jr.uniform(jr.PRNGKey(0), (16, 1, 1, 1), minval=0.5, maxval=1.5)
    cfg = tx.configuration.PhysicsInformed(pde)
    net = lambda out: tx.nn.FNO(2, 1, out, width=8, modes=(3, 4), num_layers=1,  # noqa: E731
                                coordinate_channels=True, key=jr.PRNGKey(1))
    soft, hard = net(1), tc.Constrained(tc.HardConstraint(net(4), pde, num_points=40))
    assert not tc.draws_points(soft) and tc.draws_points(hard)
    # the configuration gives every sample its own points: the loss depends on the key
    loss = eqx.filter_jit(lambda m, key: cfg(m, inputs, key=key))
    assert float(loss(hard, jr.PRNGKey(0))) != float(loss(hard, jr.PRNGKey(1)))
    assert float(loss(soft, jr.PRNGKey(0))) == float(loss(soft, jr.PRNGKey(1)))
    cfg.check_model(hard, jax.ShapeDtypeStruct(inputs.shape, inputs.dtype))
    with pytest.raises(ValueError, match="`model` must map one input"):
        cfg.check_model(net(2), jax.ShapeDtypeStruct((4, 1, 8, 16), jnp.float64))


def test_physics_informed_residual_matches_the_grid_residual(x64):
    pde = tc.DiffusionSorption()
    inputs = pde.inputs(jr.uniform(jr.PRNGKey(0), (3, 16), maxval=0.2), 9)
    delta = 0.01 * jr.normal(jr.PRNGKey(1), inputs.shape[1:])
    model = lambda x: x + delta  # noqa: E731
    cfg = tx.configuration.PhysicsInformed(pde, condition_weight={"initial": 2.0})
    expected = 0.0
    grid_residuals = jax.jit(lambda f, i: tc.residuals(pde, f, i))
    for i in inputs:
        r = grid_residuals(i + delta, i)
        assert r["initial"].shape == (16,) and r["x_low"].shape == (8,)
        np.testing.assert_allclose(r["initial"], delta[0, 0], atol=1e-15)
        expected += (jnp.mean(r["pde"] ** 2) + 2 * jnp.mean(r["initial"] ** 2)
                     + jnp.mean(r["x_low"] ** 2) + jnp.mean(r["x_high"] ** 2)) / 3
    np.testing.assert_allclose(jax.jit(lambda x: cfg(model, x))(inputs), expected, rtol=1e-12)


# -- derivative schemes ----------------------------------------------------------


def test_finite_differences_are_second_order(x64):
    fd = tc.FiniteDifference()
    errors = {1: [], 2: []}
    for n in (17, 33, 65):
        x = fd.nodes(n, 2.0, False)
        u = jnp.asarray(np.exp(np.sin(x)))[None]
        exact = {1: np.cos(x) * np.exp(np.sin(x)),
                 2: (np.cos(x) ** 2 - np.sin(x)) * np.exp(np.sin(x))}
        for order in (1, 2):
            errors[order].append(float(jnp.max(jnp.abs(fd.derivative(u, 0, order, 2.0, False)[0] - exact[order]))))
    for order in (1, 2):
        rates = np.log2(np.array(errors[order][:-1]) / np.array(errors[order][1:]))
        assert np.all(rates > 1.8), (order, rates)
    x = fd.nodes(32, 1.0, True)
    u = jnp.asarray(np.sin(2 * np.pi * x))[None]
    h = 1 / 32
    np.testing.assert_allclose(
        fd.derivative(u, 0, 1, 1.0, True)[0], np.sin(2 * np.pi * h) / h * np.cos(2 * np.pi * x), atol=1e-12
    )


def test_spectral_derivatives_are_exact(x64):
    spectral = tc.Spectral()
    t = spectral.nodes(12, 2.0, False)
    x = spectral.nodes(16, 1.0, True)
    tt, xx = np.meshgrid(t, x, indexing="ij")
    u = jnp.asarray((tt**3) * np.sin(2 * np.pi * xx))[None]
    u_t = spectral.derivative(u, 0, 1, 2.0, False)[0]
    u_xx = spectral.derivative(u, 1, 2, 1.0, True)[0]
    np.testing.assert_allclose(u_t, 3 * tt**2 * np.sin(2 * np.pi * xx), atol=1e-11)
    np.testing.assert_allclose(u_xx, -(2 * np.pi) ** 2 * tt**3 * np.sin(2 * np.pi * xx), atol=1e-9)


# -- bad input --------------------------------------------------------------------


def test_float32_mode_is_refused():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 is on")
    basis, inputs = jnp.ones((2, 8, 16)), jnp.ones((1, 8, 16))
    layer = tc.HardConstraint(Fixed(basis), _heat(), num_points=4)
    with pytest.raises(RuntimeError, match="jax_enable_x64"):
        layer(inputs)


def test_bad_input(x64):
    basis, inputs = _heat_setup()
    layer = tc.HardConstraint(Fixed(basis), _heat(), num_points=12)
    with pytest.raises(ValueError, match="`partition` must divide the grid"):
        tc.MixtureOfExperts(layer, (1, 3))(inputs)
    with pytest.raises(ValueError, match="`partition` must hold one positive int per axis"):
        tc.MixtureOfExperts(layer, (4,))
    with pytest.raises(ValueError, match="`num_points` \\(50\\) is more than a block holds"):
        tc.MixtureOfExperts(tc.HardConstraint(Fixed(basis), _heat(), num_points=50), (1, 4))(inputs)
    with pytest.raises(ValueError, match="`ridge` = 0 needs at least as many rows"):
        pde = tc.PDE(("t", "x"), (1.0, 1.0), ("u", "u_t"), residual=lambda v, i, c: v["u_t"],
                     linear=True)
        tc.HardConstraint(Fixed(basis), pde, num_points=4, ridge=0.0)(inputs)
    with pytest.raises(ValueError, match="`inputs` must live on the grid"):
        layer(inputs[:, :4])
    with pytest.raises(ValueError, match="`shared_rows` must be one of"):
        tc.MixtureOfExperts(layer, (1, 2), shared_rows="all")
    with pytest.raises(ValueError, match="`on_failure` must be one of"):
        tc.HardConstraint(Fixed(basis), _heat(), num_points=4, on_failure="quiet")
    with pytest.raises(ValueError, match="`solver` is a linear solver"):
        import lineax as lx

        tc.HardConstraint(Fixed(basis), _heat(False), num_points=4, solver=lx.QR())
    with pytest.raises(ValueError, match="`parallel='shard'` needs"):
        lm = tc.HardConstraint(Fixed(basis), _heat(), num_points=4, solver=optx.LevenbergMarquardt(1e-8, 1e-8))
        tc.MixtureOfExperts(lm, (1, 1), parallel="shard")
    with pytest.raises(ValueError, match="`terms` entries must be"):
        tc.PDE(("t", "x"), (1.0, 1.0), ("v_t",), residual=lambda v, i, c: 0.0)
    with pytest.raises(ValueError, match="`conditions`: 'x_low' is a boundary of the periodic"):
        tc.PDE(("t", "x"), (1.0, 1.0), ("u",), residual=lambda v, i, c: 0.0,
               conditions={"x_low": lambda v, i, c: 0.0}, periodic=(False, True))
    with pytest.raises(ValueError, match="Spectral differentiates on whole axes"):
        spectral = tc.HardConstraint(Fixed(basis), _heat(), num_points=4, derivatives=tc.Spectral())
        tc.MixtureOfExperts(spectral, (1, 2))(inputs)


def test_a_solve_that_does_not_converge_is_never_silent(x64):
    t, x, inputs = burgers_setup((12, 16))
    basis = burgers_basis(t, x)

    def layer(on_failure):
        return tc.HardConstraint(Fixed(basis), burgers(), num_points=60, solver=tc.GaussNewton(),
                                 max_steps=1, on_failure=on_failure)

    with pytest.warns(RuntimeWarning, match="did not converge within max_steps=1"):
        _, info = eqx.filter_jit(layer("warn"))(inputs)
        jax.block_until_ready(info)
        jax.effects_barrier()
    assert not bool(info.converged) and int(info.num_steps) == 1
    with pytest.raises(Exception, match="did not converge within max_steps=1"):
        u, _ = eqx.filter_jit(layer("raise"))(inputs)
        jax.block_until_ready(u)


# -- docstrings -------------------------------------------------------------------
# (their examples run in tests/test_docstrings.py)


def test_every_public_name_has_a_documented_example():
    names = [getattr(tc, name) for name in tc.__all__] + [tx.configuration.PhysicsInformed]
    for obj in names:
        doc = inspect.getdoc(obj) or ""
        assert len(re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)) == 1, obj
        if inspect.isfunction(obj) or (inspect.isclass(obj) and not inspect.isabstract(obj)
                                       and obj.__init__ is not object.__init__
                                       and inspect.signature(obj).parameters):
            assert "**Arguments:**" in doc or "**Attributes:**" in doc, obj
