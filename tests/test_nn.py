"""Tests of the small steppers in `tx.nn`: shapes, periodicity, residuals, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx
import trainax.nn  # noqa: F401  (until the package re-exports it)

KEY = jr.PRNGKey(0)


@eqx.filter_jit
def apply(model, u):
    """One compiled call (eager convolutions compile op by op: slow)."""
    return model(u)


@eqx.filter_jit
def apply_batch(model, u):
    return jax.vmap(model)(u)


def _zero_last_layer(model):
    last = model.layers[-1]
    zeroed = eqx.tree_at(
        lambda layer: (layer.weight, layer.bias),
        last,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )
    return eqx.tree_at(lambda m: m.layers[-1], model, zeroed)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spatial, kernel_size", [((24,), 2), ((24,), 3), ((12, 10), 4)])
def test_conv_net_shapes(spatial, kernel_size):
    d = len(spatial)
    net = tx.nn.ConvNet(d, 2, 3, hidden_channels=5, depth=2, kernel_size=kernel_size, key=KEY)
    u = jr.normal(KEY, (2, *spatial))
    assert apply(net, u).shape == (3, *spatial)
    assert apply_batch(net, jnp.stack([u, u])).shape == (2, 3, *spatial)
    assert len(net.layers) == 3


@pytest.mark.parametrize("spatial", [(24,), (12, 10)])
def test_linear_conv_shapes(spatial):
    stepper = tx.nn.LinearConvStepper(len(spatial), channels=2, kernel_size=3, key=KEY)
    u = jr.normal(KEY, (2, *spatial))
    assert apply(stepper, u).shape == u.shape
    assert stepper.conv.bias is None


def test_mlp_shapes():
    stepper = tx.nn.MLPStepper(3, width=8, depth=2, key=KEY)
    assert stepper(jnp.ones(3)).shape == (3,)
    assert jax.vmap(stepper)(jnp.ones((5, 3))).shape == (5, 3)


# --------------------------------------------------------------------------
# Periodicity and the stencil convention
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spatial, kernel_size", [((24,), 2), ((24,), 3), ((12, 10), 3)])
def test_conv_net_commutes_with_periodic_shifts(spatial, kernel_size):
    d = len(spatial)
    net = tx.nn.ConvNet(d, 1, 1, hidden_channels=4, depth=2, kernel_size=kernel_size,
                        residual=True, key=KEY)
    u = jr.normal(jr.PRNGKey(1), (1, *spatial))
    shifts, axes = (3,) * d, tuple(range(1, d + 1))
    np.testing.assert_allclose(
        apply(net, jnp.roll(u, shifts, axes)), jnp.roll(apply(net, u), shifts, axes),
        atol=1e-5,
    )


def test_linear_conv_two_point_stencil_is_upwind():
    cfl = -0.75
    stepper = tx.nn.LinearConvStepper(1, kernel_size=2, key=KEY)
    stepper = eqx.tree_at(lambda s: s.conv.weight, stepper,
                          jnp.array([1 + cfl, -cfl]).reshape(1, 1, 2))
    u = jr.normal(KEY, (1, 16))
    expected = (1 + cfl) * u - cfl * jnp.roll(u, -1, axis=-1)
    np.testing.assert_allclose(stepper(u), expected, atol=1e-6)
    u_shift = jnp.roll(u, 5, axis=-1)
    np.testing.assert_allclose(stepper(u_shift), jnp.roll(stepper(u), 5, axis=-1), atol=1e-6)


# --------------------------------------------------------------------------
# Residual form
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spatial", [(16,), (8, 8)])
def test_conv_net_residual_is_identity_with_zero_last_layer(spatial):
    net = tx.nn.ConvNet(len(spatial), 2, 2, hidden_channels=4, depth=2, residual=True, key=KEY)
    u = jr.normal(KEY, (2, *spatial))
    np.testing.assert_array_equal(apply(_zero_last_layer(net), u), u)
    assert not np.allclose(apply(net, u), u)


def test_mlp_residual_is_identity_with_zero_last_layer():
    stepper = tx.nn.MLPStepper(3, width=8, scale=20.0, key=KEY)
    zeroed = _zero_last_layer(stepper.mlp)
    stepper = eqx.tree_at(lambda s: s.mlp, stepper, zeroed)
    u = jnp.array([1.0, -2.0, 30.0])
    np.testing.assert_array_equal(stepper(u), u)


def test_mlp_non_residual_with_scale():
    stepper = tx.nn.MLPStepper(3, width=8, residual=False, scale=4.0, key=KEY)
    u = jnp.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(stepper(u), 4.0 * stepper.mlp(u / 4.0), rtol=1e-6)


# --------------------------------------------------------------------------
# Errors name the argument
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(num_spatial_dims=0), ValueError, "num_spatial_dims"),
        (dict(num_spatial_dims=4), ValueError, "num_spatial_dims"),
        (dict(in_channels=1.5), TypeError, "in_channels"),
        (dict(out_channels=0), ValueError, "out_channels"),
        (dict(hidden_channels=-1), ValueError, "hidden_channels"),
        (dict(depth=0), ValueError, "depth"),
        (dict(kernel_size=True), TypeError, "kernel_size"),
        (dict(activation="relu"), TypeError, "activation"),
        (dict(residual=True, out_channels=2), ValueError, "residual"),
        (dict(residual=1), TypeError, "residual"),
    ],
)
def test_conv_net_bad_arguments(kwargs, error, name):
    args = dict(num_spatial_dims=1, in_channels=1, out_channels=1) | kwargs
    with pytest.raises(error, match=f"`{name}"):
        tx.nn.ConvNet(**args, key=KEY)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(state_size=0), ValueError, "state_size"),
        (dict(width=2.0), TypeError, "width"),
        (dict(depth=-1), ValueError, "depth"),
        (dict(scale=0.0), ValueError, "scale"),
        (dict(residual="yes"), TypeError, "residual"),
    ],
)
def test_mlp_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        tx.nn.MLPStepper(**(dict(state_size=3) | kwargs), key=KEY)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(num_spatial_dims=5), "num_spatial_dims"), (dict(channels=0), "channels"),
     (dict(kernel_size=0), "kernel_size")],
)
def test_linear_conv_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        tx.nn.LinearConvStepper(**(dict(num_spatial_dims=1) | kwargs), key=KEY)


def test_wrong_state_shapes_are_explained():
    net = tx.nn.ConvNet(1, 1, 1, key=KEY)
    with pytest.raises(ValueError, match="jax.vmap"):
        net(jnp.zeros((4, 1, 16)))  # a batch, not one state
    with pytest.raises(ValueError, match="C=1"):
        net(jnp.zeros((2, 16)))  # wrong channel count
    with pytest.raises(ValueError, match=r"\(3,\)"):
        tx.nn.MLPStepper(3, key=KEY)(jnp.zeros((2, 3)))


def _skip_under_import_hook(request):
    # `--jaxtyping-packages` type-checks the annotations before the model's own checks.
    if request.config.getoption("jaxtyping_packages", default=None):
        pytest.skip("the jaxtyping import hook checks annotations first")


@pytest.mark.parametrize(
    "model, state, error, match",
    [
        (tx.nn.ConvNet(1, 1, 1, hidden_channels=2, depth=1, key=KEY), jnp.zeros((4, 1, 16)),
         ValueError, r"ConvNet acts on one state \(C=1, N0\).*got shape \(4, 1, 16\)"),
        (tx.nn.ConvNet(2, 2, 1, hidden_channels=2, depth=1, key=KEY), jnp.zeros((1, 8, 8)),
         ValueError, r"C=2, N0, N1"),
        (tx.nn.LinearConvStepper(1, key=KEY), jnp.zeros(16), ValueError,
         r"LinearConvStepper.*got shape \(16,\)"),
        (tx.nn.LinearConvStepper(1, key=KEY), jnp.zeros((1, 16), jnp.int32), TypeError,
         "floating-point.*int32"),
        (tx.nn.MLPStepper(3, width=4, key=KEY), jnp.zeros((2, 3)), ValueError,
         r"MLPStepper acts on one state \(3,\)"),
        (tx.nn.MLPStepper(3, width=4, key=KEY), jnp.zeros(3, jnp.int32), TypeError,
         "floating-point"),
    ],
    ids=["batch", "channels", "no-channel-axis", "int-conv", "mlp-batch", "int-mlp"],
)
def test_wrong_inputs_give_one_line_errors(request, model, state, error, match):
    _skip_under_import_hook(request)
    for call in (model, eqx.filter_jit(model)):  # checked at trace time too
        with pytest.raises(error, match=match) as info:
            call(state)
        assert "\n" not in str(info.value), str(info.value)


def test_circular_padding_matches_a_hand_wrapped_valid_convolution():
    # The stencil convention: a kernel of size k sees (k - 1) // 2 points on the
    # left and k // 2 on the right, wrapped periodically.
    for kernel_size in (2, 3, 4):
        stepper = tx.nn.LinearConvStepper(2, channels=2, kernel_size=kernel_size, key=KEY)
        u = jr.normal(KEY, (2, 7, 6))
        left, right = (kernel_size - 1) // 2, kernel_size // 2
        padded = jnp.pad(u, [(0, 0), (left, right), (left, right)], mode="wrap")
        expected = jax.lax.conv_general_dilated(
            padded[None], stepper.conv.weight, (1, 1), "VALID"
        )[0]
        np.testing.assert_allclose(apply(stepper, u), expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, state",
    [
        (tx.nn.ConvNet(1, 1, 1, hidden_channels=4, residual=True, key=KEY), (1, 16)),
        (tx.nn.ConvNet(2, 1, 1, hidden_channels=4, key=KEY), (1, 8, 8)),
        (tx.nn.LinearConvStepper(1, key=KEY), (1, 16)),
        (tx.nn.MLPStepper(3, width=8, key=KEY), (3,)),
    ],
    ids=["conv1d", "conv2d", "linear", "mlp"],
)
def test_jit_vmap_grad(model, state):
    batch = jr.normal(KEY, (4, *state))
    one_by_one = jnp.stack([apply(model, u) for u in batch])
    np.testing.assert_allclose(apply_batch(model, batch), one_by_one, rtol=1e-5, atol=1e-5)

    def loss(m):
        return jnp.mean((jax.vmap(m)(batch) - batch) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_conv_net_trains_with_the_trainer():
    data = jr.normal(KEY, (4, 3, 1, 16))
    net = tx.nn.ConvNet(1, 1, 1, hidden_channels=4, depth=1, residual=True, key=KEY)
    trainer = tx.trainer.SupervisedTrainer(
        data, optimizer=optax.adam(1e-3), num_training_steps=3,
        batch_size=2, progress_bar=False,
    )
    trained, losses = trainer(net, key=KEY)
    assert losses.shape == (3,) and np.all(np.isfinite(losses))
