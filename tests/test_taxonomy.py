"""The rollout-training taxonomy's semantics: where cut_bptt cuts, the minibatch
stream, full batches, full losses, the callback protocol and the named trainers.

The gradients are derived by hand for a scalar stepper `f(u) = a u` on
one-channel one-point states (MSE is then the plain square), a reference
`P(u) = b u` and a residuum `r(n, p) = n - c p`; `sg` is stop_gradient.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

CFG = tx.configuration
CB = tx.callback
A, B, C, U0 = 0.7, 0.4, 0.5, 1.3


class Scale(eqx.Module):
    a: jax.Array

    def __call__(self, u):
        return self.a * u


class Stencil(eqx.Module):
    """A three-point periodic stencil `w0 u_{i-1} + w1 u_i + w2 u_{i+1}`."""

    w: jax.Array

    def __call__(self, u):
        return (
            self.w[0] * jnp.roll(u, 1, axis=-1)
            + self.w[1] * u
            + self.w[2] * jnp.roll(u, -1, axis=-1)
        )


def ref(u):
    return B * u


def residuum(u_next, u_prev):
    return u_next - C * u_prev


def one_window(*levels):
    """One window (batch 1) of one-channel one-point states."""
    return jnp.asarray(levels, dtype=float).reshape(1, len(levels), 1, 1)


def grad_a(cfg, data, a=A):
    def loss(model):
        return cfg(model, data, ref_stepper=ref, residuum_fn=residuum)

    return float(eqx.filter_grad(loss)(Scale(jnp.asarray(a))).a)


def loss_at(cfg, data, a=A):
    return float(cfg(Scale(jnp.asarray(a)), data, ref_stepper=ref, residuum_fn=residuum))


def hand_stream(key, num_items, batch_size, num_steps):
    """Minibatch indices by the documented rule, computed here from jax.random."""
    batches, epoch_key = [], key
    while len(batches) < num_steps:
        order = np.asarray(jr.permutation(epoch_key, num_items))
        batches += [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
        epoch_key = jr.split(epoch_key)[0]
    return batches[:num_steps]


# --------------------------------------------------------------------------
# cut_bptt: a cut state is cut for every later use
# --------------------------------------------------------------------------


def test_cut_diverted_chain_branch_starts_from_the_cut_state(x64):
    # loss = (a u0 - b u0)^2 + (a sg(a u0) - b sg(a u0))^2
    a, b, u0, data = A, B, U0, one_window(U0)
    cut = CFG.DivertedChain(2, 1, cut_bptt=True)
    assert loss_at(cut, data) == pytest.approx((a - b) ** 2 * u0**2 * (1 + a**2), rel=1e-12)
    hand = 2 * (a - b) * u0**2 + 2 * (a - b) * (a * u0) ** 2
    assert grad_a(cut, data) == pytest.approx(hand, rel=1e-12)
    # without the cut: d/da [(a - b)^2 u0^2 + (a^2 - a b)^2 u0^2]
    full = 2 * (a - b) * u0**2 + 2 * (a * a - a * b) * (2 * a - b) * u0**2
    assert grad_a(CFG.DivertedChain(2, 1), data) == pytest.approx(full, rel=1e-12)


def test_cut_diverted_chain_every_two(x64):
    # u1 = a u0, u2 = a u1 (u1 is not cut), u3 = a sg(u2); branches from u0, u1, sg(u2):
    # loss = (a-b)^2 u0^2 + (a-b)^2 (a u0)^2 + (a-b)^2 sg(a^2 u0)^2
    a, b, u0, data = A, B, U0, one_window(U0)
    cfg = CFG.DivertedChain(3, 1, cut_bptt=True, cut_bptt_every=2)
    hand = (
        2 * (a - b) * u0**2
        + 2 * (a - b) * a**2 * u0**2 + (a - b) ** 2 * 2 * a * u0**2
        + 2 * (a - b) * a**4 * u0**2
    )
    assert grad_a(cfg, data) == pytest.approx(hand, rel=1e-12)


def test_cut_diverted_chain_two_step_branches(x64):
    # T=3, B=2: u1 = a u0, u2 = a sg(u1), u3 = a sg(u2); branches from u0 and
    # sg(u1), their network steps are u_{s+j} (cut at the same indices):
    # (u1 - b u0)^2 + (u2 - b^2 u0)^2 + (u2 - b sg u1)^2 + (u3 - b^2 sg u1)^2
    a, b, u0, data = A, B, U0, one_window(U0)
    cfg = CFG.DivertedChain(3, 2, cut_bptt=True)
    value = ((a - b) ** 2 + (a * a - b * b) ** 2 + (a * a - a * b) ** 2
             + (a**3 - a * b * b) ** 2) * u0**2
    assert loss_at(cfg, data) == pytest.approx(value, rel=1e-12)
    hand = (
        2 * (a - b) * u0**2                       # d u1/da = u0
        + 2 * (a * a - b * b) * u0**2 * a         # d u2/da = sg(u1) = a u0
        + 2 * (a * a - a * b) * u0**2 * a
        + 2 * (a**3 - a * b * b) * u0**2 * a * a  # d u3/da = sg(u2) = a^2 u0
    )
    assert grad_a(cfg, data) == pytest.approx(hand, rel=1e-12)


def test_cut_mix_chain_post_physics_start_from_the_cut_state(x64):
    # loss = (a u0 - d1)^2 + (b sg(a u0) - d2)^2
    a, b, u0, d1, d2 = A, B, U0, 0.9, 0.2
    data = one_window(u0, d1, d2)
    cut = CFG.MixChainPostPhysics(1, 1, cut_bptt=True)
    value = (a * u0 - d1) ** 2 + (b * a * u0 - d2) ** 2
    assert loss_at(cut, data) == pytest.approx(value, rel=1e-12)
    assert grad_a(cut, data) == pytest.approx(2 * (a * u0 - d1) * u0, rel=1e-12)
    full = 2 * (a * u0 - d1) * u0 + 2 * (b * a * u0 - d2) * b * u0
    assert grad_a(CFG.MixChainPostPhysics(1, 1), data) == pytest.approx(full, rel=1e-12)


def test_cut_mix_chain_every_two(x64):
    # T=2, every 2: u1 = a u0 (not cut), u2 = a u1 is cut before the physics:
    # loss = (a u0 - d1)^2 + (a^2 u0 - d2)^2 + (b sg(a^2 u0) - d3)^2
    a, b, u0, d1, d2, d3 = A, B, U0, 0.9, 0.6, 0.1
    data = one_window(u0, d1, d2, d3)
    cfg = CFG.MixChainPostPhysics(2, 1, cut_bptt=True, cut_bptt_every=2)
    hand = 2 * (a * u0 - d1) * u0 + 2 * (a * a * u0 - d2) * 2 * a * u0
    assert grad_a(cfg, data) == pytest.approx(hand, rel=1e-12)
    # the same chain supervised one step further: u3 = a sg(u2), while the loss
    # on u2 reaches both steps
    supervised = CFG.Supervised(3, cut_bptt=True, cut_bptt_every=2)
    hand = (
        2 * (a * u0 - d1) * u0
        + 2 * (a * a * u0 - d2) * 2 * a * u0
        + 2 * (a**3 * u0 - d3) * a * a * u0
    )
    assert grad_a(supervised, data) == pytest.approx(hand, rel=1e-12)


def test_cut_residuum_prev_is_the_cut_state(x64):
    # loss = (a u0 - c u0)^2 + (a sg(a u0) - c sg(a u0))^2
    a, c, u0, data = A, C, U0, one_window(U0)
    cut = CFG.Residuum(2, cut_bptt=True)
    hand = 2 * (a - c) * u0**2 + 2 * (a - c) * (a * u0) ** 2
    assert grad_a(cut, data) == pytest.approx(hand, rel=1e-12)
    # without the cut: d/da [(a - c)^2 u0^2 + (a^2 - a c)^2 u0^2]
    full = 2 * (a - c) * u0**2 + 2 * (a * a - a * c) * (2 * a - c) * u0**2
    assert grad_a(CFG.Residuum(2), data) == pytest.approx(full, rel=1e-12)


# --------------------------------------------------------------------------
# The minibatch stream
# --------------------------------------------------------------------------


def test_mixer_stream_listed_by_hand():
    key = jr.PRNGKey(42)
    k1 = jr.split(key)[0]
    k2 = jr.split(k1)[0]
    p0, p1, p2 = (np.asarray(jr.permutation(k, 7)) for k in (key, k1, k2))
    expected = [p0[0:3], p0[3:6], p0[6:7], p1[0:3], p1[3:6], p1[6:7], p2[0:3]]
    mixer = tx.PermutationMixer(7, 3, key=key)
    for step, indices in enumerate(expected):
        np.testing.assert_array_equal(mixer(step), indices)
    np.testing.assert_array_equal(mixer.chunk(3, 2), np.stack(expected[3:5]))
    np.testing.assert_array_equal(mixer.chunk(5, 1), expected[5][None])
    with pytest.raises(ValueError, match="different sizes"):
        mixer.chunk(1, 2)
    # a typed key gives the same stream
    np.testing.assert_array_equal(tx.PermutationMixer(7, 3, key=jr.key(42))(4), p1[3:6])


# trajectories whose states say which window they start: level t of sample s
# holds 10 s + t, so a Supervised(1) window (s, t) has index 4 s + t
LEVELS = 5
CODED = jnp.asarray(
    [[[[10.0 * s + t]] for t in range(LEVELS)] for s in range(2)]
)  # (2, 5, 1, 1): 2 * 4 = 8 windows of 2 levels


def window_index(minibatch):
    first = np.rint(np.asarray(minibatch)[:, 0, 0, 0]).astype(int)
    return 4 * (first // 10) + first % 10


class Indices(CB.BaseCallback):
    """Returns the minibatch indices the trainer shows it."""

    every: int

    def __call__(self, step, model, context):
        return np.asarray(context.indices)


def coded_trainer(steps, batch_size=3, callback=None, data=CODED, **kwargs):
    return tx.GeneralTrainer(
        data, CFG.Supervised(1), optax.sgd(1e-4), steps, batch_size,
        callback_fn=callback, progress_bar=False, **kwargs,
    )


def test_trainer_stream_short_last_batch_and_epoch_order(x64):
    key = jr.PRNGKey(3)
    coded = CODED.astype(jnp.float64)
    # 8 windows in minibatches of 3: each epoch is 3, 3, 2
    expected = hand_stream(key, 8, 3, 8)
    assert [len(b) for b in expected] == [3, 3, 2, 3, 3, 2, 3, 3]
    seen = []

    def record(update_i, model, minibatch):
        seen.append(np.asarray(minibatch))
        return update_i

    trainer = tx.GeneralTrainer(coded, CFG.Supervised(1), optax.sgd(1e-4), 7, 3,
                                callback_fn=record, progress_bar=False, chunk_size=2)
    _, history, outputs = trainer(Scale(jnp.asarray(1.0)), key)
    assert outputs == list(range(7))
    assert history.dtype == np.float64  # the loss's own dtype
    assert [len(b) for b in seen] == [3, 3, 2, 3, 3, 2, 3]
    for minibatch, indices in zip(seen, expected):
        np.testing.assert_array_equal(window_index(minibatch), indices)

    # a BaseCallback sees the same indices in its context, also after the last step
    trainer = coded_trainer(7, callback=Indices(every=1), data=coded)
    _, _, pairs = trainer(Scale(jnp.asarray(1.0)), key)
    assert [step for step, _ in pairs] == list(range(8))
    for (_, indices), hand in zip(pairs, expected):
        np.testing.assert_array_equal(indices, hand)


def test_resume_inside_an_epoch_draws_the_same_stream(tmp_path):
    key, path = jr.PRNGKey(3), tmp_path / "state.eqx"
    expected = hand_stream(key, 8, 3, 9)
    model = Scale(jnp.asarray(1.0))
    full, full_history = coded_trainer(8)(model, key)
    # stop at step 4, inside epoch 1 (steps 3, 4, 5), then go on to 8
    coded_trainer(4, checkpoint_path=path)(model, key)
    resumed, history, pairs = coded_trainer(8, callback=Indices(every=1),
                                            checkpoint_path=path)(model, resume_from=path)
    assert [step for step, _ in pairs] == [4, 5, 6, 7, 8]
    for (step, indices) in pairs:
        np.testing.assert_array_equal(indices, expected[step])
    np.testing.assert_allclose(float(resumed.a), float(full.a), rtol=1e-6)
    np.testing.assert_allclose(history, full_history, rtol=1e-6)


# --------------------------------------------------------------------------
# Full batch when batch_size exceeds the windows
# --------------------------------------------------------------------------


def test_full_batch_fallback(x64):
    coded = CODED.astype(jnp.float64)
    lr, a = 1e-3, 1.0
    with pytest.warns(UserWarning, match=r"`batch_size` \(20\).*full batch"):
        trainer = tx.GeneralTrainer(
            coded, CFG.Supervised(1), optax.sgd(lr), 2, 20,
            callback_fn=Indices(every=1), progress_bar=False,
        )
    trained, history, pairs = trainer(Scale(jnp.asarray(a)), jr.PRNGKey(0))
    for _, indices in pairs:  # every step takes all 8 windows
        np.testing.assert_array_equal(np.sort(indices), np.arange(8))
    # the two steps of full-batch gradient descent, by hand
    v = np.asarray(coded, np.float64)
    u0 = np.concatenate([v[s, :4, 0, 0] for s in range(2)])
    u1 = np.concatenate([v[s, 1:, 0, 0] for s in range(2)])
    hand_losses = []
    for _ in range(2):
        hand_losses.append(np.mean((a * u0 - u1) ** 2))
        a = a - lr * np.mean(2 * (a * u0 - u1) * u0)
    np.testing.assert_allclose(history, hand_losses, rtol=1e-12)
    assert float(trained.a) == pytest.approx(a, rel=1e-12)


# --------------------------------------------------------------------------
# full_loss and loss landscapes
# --------------------------------------------------------------------------


def test_full_loss_and_landscape(x64):
    u0 = jr.normal(jr.PRNGKey(0), (2, 1, 5), dtype=jnp.float64)
    data = jnp.stack([0.8**t * u0 for t in range(4)], axis=1)  # (2, 4, 1, 5)
    trainer = tx.trainer.SupervisedTrainer(
        data, optimizer=optax.sgd(0.1), num_training_steps=1, batch_size=2,
        num_rollout_steps=2,
    )
    # windows of 3 levels starting at t = 0, 1 of both samples
    windows = np.stack([np.asarray(data)[s, t : t + 3] for s in range(2) for t in range(2)])

    def hand(a):
        per_window = [
            sum(np.mean((a**t * w[0] - w[t]) ** 2) for t in (1, 2)) for w in windows
        ]
        return np.mean(per_window)

    assert float(trainer.full_loss(Scale(jnp.asarray(0.5)))) == pytest.approx(
        hand(0.5), rel=1e-12
    )
    grid = jnp.linspace(0.5, 1.1, 7)  # holds 0.8, the data's own factor
    landscape = jax.vmap(lambda a: trainer.full_loss(Scale(a)))(grid)
    np.testing.assert_allclose(landscape, [hand(float(a)) for a in grid],
                               rtol=1e-12, atol=1e-30)
    assert int(np.argmin(landscape)) == 3 and float(landscape[3]) < 1e-20


def test_full_loss_over_stacked_stencils(x64):
    true = np.array([0.2, 0.5, 0.3])
    u = [np.asarray(jr.normal(jr.PRNGKey(1), (3, 1, 8), dtype=jnp.float64))]
    for _ in range(3):
        u.append(true[0] * np.roll(u[-1], 1, -1) + true[1] * u[-1]
                 + true[2] * np.roll(u[-1], -1, -1))
    data = np.stack(u, axis=1)  # (3, 4, 1, 8)
    trainer = tx.GeneralTrainer(data, CFG.Supervised(1), optax.sgd(0.1), 1, 4)
    weights = jnp.asarray(true + np.array([[0.0, 0, 0], [0.1, 0, 0], [0, -0.2, 0.1]]))
    models = eqx.filter_vmap(Stencil)(weights)
    landscape = eqx.filter_vmap(trainer.full_loss)(models)
    assert landscape.shape == (3,)

    def hand(w):
        prev, nxt = data[:, :-1], data[:, 1:]  # every one-step window of Supervised(1)
        pred = w[0] * np.roll(prev, 1, -1) + w[1] * prev + w[2] * np.roll(prev, -1, -1)
        return np.mean((pred - nxt) ** 2)

    np.testing.assert_allclose(landscape, [hand(np.asarray(w)) for w in weights],
                               rtol=1e-12, atol=1e-30)
    assert float(landscape[0]) < 1e-20 < float(landscape[1])


def test_full_loss_needs_one_configuration_and_finite_data():
    data = jnp.ones((2, 4, 1, 1))
    curriculum = tx.trainer.Curriculum.rollout([1, 2], steps_per_stage=1)
    with pytest.raises(TypeError, match="curriculum"):
        tx.GeneralTrainer(data, curriculum, optax.sgd(0.1), None, 2).full_loss(
            Scale(jnp.asarray(1.0))
        )
    sampler = tx.trainer.Sampler(lambda key, n: jax.random.normal(key, (n, 2, 1, 1)))
    with pytest.raises(TypeError, match="finite"):
        tx.GeneralTrainer(sampler, CFG.Supervised(1), optax.sgd(0.1), 1, 2).full_loss(
            Scale(jnp.asarray(1.0))
        )


# --------------------------------------------------------------------------
# The callbacks' dict protocol: callback(update_i, stepper, data)
# --------------------------------------------------------------------------


def test_callback_dict_protocol(x64, tmp_path):
    # one window u0 = 2, u1 = 1 and f(u) = 0.7 u: loss 0.16, gradient 1.6
    batch, model, cfg = one_window(2.0, 1.0), Scale(jnp.asarray(0.7)), CFG.Supervised(1)
    loss = CB.Loss(every=2, loss_configuration=cfg)
    assert loss(0, model, batch) == {"loss": pytest.approx(0.16, rel=1e-12)}
    assert loss(1, model, batch) == {"loss": None}
    assert loss(4, model, batch)["loss"] == pytest.approx(0.16, rel=1e-12)
    value, grad = CB.Loss(every=1, loss_configuration=cfg, with_grad=True)(
        0, model, batch
    )["loss"]
    assert value == pytest.approx(0.16, rel=1e-12)
    assert float(grad.a) == pytest.approx(1.6, rel=1e-12)
    assert CB.Loss(every=1, loss_configuration=cfg, name="train")(3, model, batch) == {
        "train": pytest.approx(0.16, rel=1e-12)
    }
    # with the reference stepper / the residuum of the configuration evaluated
    diverted = CB.Loss(every=1, loss_configuration=CFG.DivertedChain(1, 1), ref_stepper=ref)
    assert diverted(0, model, batch)["loss"] == pytest.approx((1.4 - 2 * B) ** 2, rel=1e-12)
    residual = CB.Loss(every=1, loss_configuration=CFG.Residuum(1), residuum_fn=residuum)
    assert residual(0, model, batch)["loss"] == pytest.approx((1.4 - 2 * C) ** 2, rel=1e-12)
    with pytest.raises(ValueError, match="loss_configuration"):
        CB.Loss(every=1)(0, model, batch)

    grad_norm = CB.GradNorm(every=1, loss_configuration=cfg)
    assert grad_norm(0, model, batch) == {"grad_norm": pytest.approx(1.6, rel=1e-12)}
    squared = CB.GradNorm(every=1, loss_configuration=cfg, squared=True)
    assert squared(0, model, batch)["grad_norm"] == pytest.approx(2.56, rel=1e-12)
    assert CB.WeightNorm(every=1)(0, model, batch) == {
        "weight_norm": pytest.approx(0.7, rel=1e-12)
    }
    assert CB.WeightNorm(every=1, squared=True)(0, model, batch)["weight_norm"] == (
        pytest.approx(0.49, rel=1e-12)
    )
    got = CB.GetNetwork(every=1)(0, model, batch)
    assert list(got) == ["network"] and got["network"] is model
    saved = CB.SaveNetwork(every=1, path=str(tmp_path / "n_{step}.eqx"))(5, model, batch)
    assert saved == {"network_saved": str(tmp_path / "n_5.eqx")}
    loaded = eqx.tree_deserialise_leaves(saved["network_saved"], Scale(jnp.asarray(0.0)))
    assert float(loaded.a) == 0.7

    composite = CB.CompositeCallback(
        [loss, CB.WeightNorm(every=3), CB.GetNetwork(every=6)]
    )
    assert composite(1, model, batch) == {"loss": None, "weight_norm": None, "network": None}
    assert composite(2, model, batch) == {
        "loss": pytest.approx(0.16, rel=1e-12), "weight_norm": None, "network": None
    }
    assert composite(3, model, batch) == {
        "loss": None, "weight_norm": pytest.approx(0.7, rel=1e-12), "network": None
    }
    at6 = composite(6, model, batch)
    assert set(at6) == {"loss", "weight_norm", "network"}
    assert at6["network"] is model and at6["loss"] == pytest.approx(0.16, rel=1e-12)


class Doubled(CB.BaseCallback):
    """A user callback without a `name` field: its class name is the key."""

    every: int

    def compute(self, step, model, context):
        return 2 * float(context.batch.sum())


def test_user_callback_named_after_its_class():
    batch = one_window(2.0, 1.0)
    assert Doubled(every=2)(4, None, batch) == {"Doubled": 6.0}
    assert Doubled(every=2)(3, None, batch) == {"Doubled": None}
    # inside a trainer it gets a CallbackContext and the history holds (step, output)
    trainer = tx.GeneralTrainer(CODED, CFG.Supervised(1), optax.sgd(1e-4), 2, 8,
                                callback_fn=Doubled(every=1), progress_bar=False)
    _, _, pairs = trainer(Scale(jnp.asarray(1.0)), jr.PRNGKey(0))
    total = 2 * float(jnp.sum(tx.trainer.substack_trajectories(CODED, 2)))
    assert [step for step, _ in pairs] == [0, 1, 2]
    for _, out in pairs:  # full batch: the sum over all windows
        assert out == pytest.approx(total, rel=1e-6)


# --------------------------------------------------------------------------
# DivertedChainBranchOne and DivertedChain's weights
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"cut_bptt": True}, {"cut_bptt": True, "cut_bptt_every": 2},
     {"cut_div_chain": True}, {"time_level_weights": jnp.asarray([1.0, 0.5, 2.0])}],
)
def test_diverted_chain_branch_one_equals_diverted_chain(x64, options):
    one = CFG.DivertedChainBranchOne(3, **options)
    assert isinstance(one, CFG.DivertedChainBranchOne)
    assert isinstance(one, CFG.BaseConfiguration)
    assert repr(one).startswith("DivertedChainBranchOne(")
    chain = CFG.DivertedChain(3, 1, **options)
    data = jr.normal(jr.PRNGKey(0), (4, 1, 1, 6), dtype=jnp.float64)
    model = Stencil(jnp.asarray([0.1, 0.7, 0.3]))
    reference = Stencil(jnp.asarray([0.3, 0.4, 0.2]))

    def value_and_grad(cfg):
        return eqx.filter_value_and_grad(lambda m: cfg(m, data, ref_stepper=reference))(model)

    (l1, g1), (l2, g2) = value_and_grad(one), value_and_grad(chain)
    assert float(l1) > 0
    assert float(l1) == pytest.approx(float(l2), rel=1e-13)
    np.testing.assert_allclose(g1.w, g2.w, rtol=1e-13)


def test_diverted_chain_branch_one_trainer_holds_the_class():
    trainer = tx.trainer.DivertedChainBranchOneTrainer(
        CODED, ref_stepper=ref, optimizer=optax.sgd(0.1), num_training_steps=1,
        batch_size=2, num_rollout_steps=2,
    )
    ((config, _),) = trainer.stages
    assert isinstance(config, CFG.DivertedChainBranchOne)
    assert "DivertedChainBranchOne(" in repr(trainer)


def test_diverted_chain_time_level_weights_lengths(x64):
    data = jr.normal(jr.PRNGKey(0), (2, 1, 1, 6), dtype=jnp.float64)
    model, reference = Stencil(jnp.asarray([0.1, 0.7, 0.3])), Stencil(jnp.asarray([0.3, 0.4, 0.2]))
    # T = 3, B = 2: T - B + 1 = 2 branches; T weights are accepted, the first 2 used
    of_t = CFG.DivertedChain(3, 2, time_level_weights=jnp.asarray([2.0, 0.5, 7.0]))
    exact = CFG.DivertedChain(3, 2, time_level_weights=jnp.asarray([2.0, 0.5]))
    np.testing.assert_array_equal(of_t.time_level_weights, [2.0, 0.5])
    loss_t = float(of_t(model, data, ref_stepper=reference))
    assert loss_t == pytest.approx(float(exact(model, data, ref_stepper=reference)), rel=1e-14)
    plain = float(CFG.DivertedChain(3, 2)(model, data, ref_stepper=reference))
    assert loss_t != pytest.approx(plain, rel=1e-3)
    for bad in ([1.0], [1.0, 1.0, 1.0, 1.0]):
        with pytest.raises(ValueError, match="time_level_weights"):
            CFG.DivertedChain(3, 2, time_level_weights=jnp.asarray(bad))


# --------------------------------------------------------------------------
# The named trainers' windows
# --------------------------------------------------------------------------


@pytest.fixture
def trajectories(x64):
    return jr.normal(jr.PRNGKey(5), (3, 6, 1, 4), dtype=jnp.float64)  # S = 3, 6 levels


def supervised_hand(windows, a, steps):
    return np.mean([
        sum(np.mean((a**t * w[0] - w[t]) ** 2) for t in range(1, steps + 1)) for w in windows
    ])


def residuum_hand(starts, a, steps):
    # r(u_{t+1}, u_t) = a^t (a - c) u0 for f(u) = a u
    return np.mean([
        sum(np.mean((a**t * (a - C) * u) ** 2) for t in range(steps)) for u in starts
    ])


def test_do_sub_stacking_false_takes_first_windows(trajectories):
    v, a = np.asarray(trajectories), 0.9
    common = dict(optimizer=optax.sgd(0.1), num_training_steps=1, batch_size=3,
                  num_rollout_steps=2)
    first_only = tx.trainer.SupervisedTrainer(trajectories, do_sub_stacking=False, **common)
    ((config, _),) = first_only.stages
    assert first_only.source.num_items(config) == 3
    assert float(first_only.full_loss(Scale(jnp.asarray(a)))) == pytest.approx(
        supervised_hand(v[:, :3], a, 2), rel=1e-12
    )
    every = tx.trainer.SupervisedTrainer(data_trajectories=trajectories, **common)
    assert every.source.num_items(config) == 3 * 4
    windows = [v[s, t : t + 3] for s in range(3) for t in range(4)]
    assert float(every.full_loss(Scale(jnp.asarray(a)))) == pytest.approx(
        supervised_hand(windows, a, 2), rel=1e-12
    )


def test_named_residuum_trainer_cuts_windows_of_rollout_length(trajectories):
    v, a, T = np.asarray(trajectories), 0.9, 2
    common = dict(optimizer=optax.sgd(0.1), num_training_steps=1, batch_size=3)
    named = tx.trainer.ResiduumTrainer(trajectories, residuum_fn=residuum,
                                       num_rollout_steps=T, **common)
    ((config, _),) = named.stages
    # windows of T + 1 = 3 levels: S * (6 - 3 + 1) = 12 starts (t = 0..3)
    assert named.source.num_items(config) == 3 * (6 - (T + 1) + 1)
    starts = [v[s, t] for s in range(3) for t in range(4)]
    assert float(named.full_loss(Scale(jnp.asarray(a)))) == pytest.approx(
        residuum_hand(starts, a, T), rel=1e-12
    )
    # a GeneralTrainer cuts what the configuration needs: every state is a start
    general = tx.GeneralTrainer(trajectories, CFG.Residuum(T), optax.sgd(0.1), 1, 3,
                                residuum_fn=residuum)
    assert general.source.num_items(config) == 3 * 6
    all_starts = [v[s, t] for s in range(3) for t in range(6)]
    assert float(general.full_loss(Scale(jnp.asarray(a)))) == pytest.approx(
        residuum_hand(all_starts, a, T), rel=1e-12
    )
    # not sub-stacking: one start per trajectory
    first = tx.trainer.ResiduumTrainer(trajectories, residuum_fn=residuum,
                                       num_rollout_steps=T, do_sub_stacking=False, **common)
    assert float(first.full_loss(Scale(jnp.asarray(a)))) == pytest.approx(
        residuum_hand(list(v[:, 0]), a, T), rel=1e-12
    )


def test_named_diverted_and_mix_chain_windows(trajectories):
    common = dict(ref_stepper=ref, optimizer=optax.sgd(0.1), num_training_steps=1,
                  batch_size=3, num_rollout_steps=2)
    for trainer in (tx.trainer.DivertedChainTrainer(trajectories, **common),
                    tx.trainer.DivertedChainBranchOneTrainer(trajectories, **common)):
        ((config, _),) = trainer.stages
        assert trainer.source.num_items(config) == 3 * (6 - 3 + 1)
    mix = tx.trainer.MixChainPostPhysicsTrainer(trajectories, num_post_physics_steps=2,
                                                **common)
    ((config, _),) = mix.stages
    assert mix.source.num_items(config) == 3 * (6 - 5 + 1)  # T + P + 1 = 5 levels


# --------------------------------------------------------------------------
# Call arguments and repr
# --------------------------------------------------------------------------


def test_record_loss_every():
    trainer = coded_trainer(7)
    model, key = Scale(jnp.asarray(1.0)), jr.PRNGKey(1)
    _, full = trainer(model, key)
    _, every3 = trainer(model, key, record_loss_every=3)
    np.testing.assert_array_equal(every3, full[[0, 3, 6]])
    with pytest.raises(ValueError, match="record_loss_every"):
        trainer(model, key, record_loss_every=0)


def test_opt_state_argument(x64):
    """One full-batch SGD-with-momentum step from a given momentum m:
    trace = g + 0.9 m, a_new = a - lr * trace."""
    coded = CODED.astype(jnp.float64)
    lr, a, m = 1e-3, 1.0, 5.0
    optimizer = optax.sgd(lr, momentum=0.9)
    trainer = tx.GeneralTrainer(coded, CFG.Supervised(1), optimizer, 1, 8,
                                progress_bar=False)
    model = Scale(jnp.asarray(a))
    opt_state = jax.tree_util.tree_map(
        lambda x: jnp.full_like(x, m), optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    )
    v = np.asarray(coded)
    u0 = np.concatenate([v[s, :4, 0, 0] for s in range(2)])
    u1 = np.concatenate([v[s, 1:, 0, 0] for s in range(2)])
    g = np.mean(2 * (a * u0 - u1) * u0)
    given, _ = trainer(model, jr.PRNGKey(0), opt_state)
    assert float(given.a) == pytest.approx(a - lr * (g + 0.9 * m), rel=1e-12)
    fresh, _ = trainer(model, jr.PRNGKey(0))
    assert float(fresh.a) == pytest.approx(a - lr * g, rel=1e-12)


def test_spawn_tqdm_overrides_progress_bar(capsys):
    model, key = Scale(jnp.asarray(1.0)), jr.PRNGKey(0)
    quiet = tx.GeneralTrainer(CODED, CFG.Supervised(1), optax.sgd(1e-4), 3, 4,
                              progress_bar=True)
    quiet(model, key, spawn_tqdm=False)
    assert "training" not in capsys.readouterr().err
    loud = coded_trainer(3)  # progress_bar=False
    loud(model, key, spawn_tqdm=True)
    assert "training" in capsys.readouterr().err
    loud(model, key)
    assert "training" not in capsys.readouterr().err


def test_trainer_repr_names_its_settings():
    trainer = tx.trainer.SupervisedTrainer(
        data_trajectories=CODED, optimizer=optax.adam(1e-3), num_training_steps=3,
        batch_size=4, num_rollout_steps=2,
    )
    text = repr(trainer)
    assert text.startswith("SupervisedTrainer(")
    assert "configuration=Supervised(" in text
    assert "num_rollout_steps=2" in text
    assert "batch_size=4" in text
    assert "num_training_steps=3" in text
    general = repr(tx.GeneralTrainer(CODED, CFG.Residuum(1), optax.sgd(0.1), 5, 2,
                                     residuum_fn=residuum))
    assert general.startswith("GeneralTrainer(")
    assert "configuration=Residuum(" in general and "batch_size=2" in general
    assert "residuum_fn=residuum" in general
