"""Tests of the rollout configurations against hand-written loss formulas.

Every configuration is compared with an explicit Python loop (with
`jax.lax.stop_gradient` placed by hand where the docstrings say) for the loss
value and for the gradient w.r.t. the model parameters. All tests run in
float64 so the comparisons can be tight.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import trainax as tx

C = tx.configuration
sg = jax.lax.stop_gradient

B, CH, N = 3, 2, 8


@pytest.fixture(autouse=True)
def x64():
    """Enable float64 for every test in this file and restore the old setting."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


# --------------------------------------------------------------------------
# Helpers: a nonlinear reference stepper, small networks, hand formulas
# --------------------------------------------------------------------------


def ref_P(u):
    """A nonlinear reference stepper on one state (C, N): upwind + damping + sin."""
    return u - 0.3 * (u - jnp.roll(u, 1, axis=-1)) + 0.05 * jnp.sin(u)


class ConvNet(eqx.Module):
    """A small nonlinear circular-conv network (C, N) -> (C, N)."""

    conv1: eqx.nn.Conv1d
    conv2: eqx.nn.Conv1d

    def __init__(self, key, channels=CH, width=4):
        k1, k2 = jax.random.split(key)
        self.conv1 = eqx.nn.Conv1d(
            channels, width, 3, padding=1, padding_mode="CIRCULAR", key=k1
        )
        self.conv2 = eqx.nn.Conv1d(
            width, channels, 3, padding=1, padding_mode="CIRCULAR", key=k2
        )

    def __call__(self, u):
        return u + 0.5 * self.conv2(jnp.tanh(self.conv1(u)))


class PWrapper(eqx.Module):
    """The reference stepper as a 'network' with a (unit) parameter."""

    scale: jax.Array

    def __call__(self, u):
        return self.scale * ref_P(u)


def linear_model(key, channels=CH):
    return eqx.nn.Conv1d(
        channels, channels, 3, padding=1, padding_mode="CIRCULAR", key=key
    )


def mse(a, b=None):
    """Mean over batch, channels and points of the squared difference."""
    e = a if b is None else a - b
    return jnp.mean(e**2)


def rollout_P(u0, steps, stepper=ref_P):
    """Windows (B, steps+1, C, N) made by rolling `stepper` out from u0 (B, C, N)."""
    states = [u0]
    for _ in range(steps):
        states.append(jax.vmap(stepper)(states[-1]))
    return jnp.stack(states, axis=1)


def randn(seed, shape):
    """Standard normal samples (numpy: no JAX compile for each new shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def random_states(seed, shape=(B, CH, N)):
    return randn(100 + seed, shape)


def hand_chain(f, u0, T, cut_every=None):
    """Network chain [u_0, ..., u_T]; the input at step t is stop-gradiented
    when cut_every is given and t % cut_every == 0."""
    chain = [u0]
    for t in range(T):
        u = chain[-1]
        if cut_every is not None and t % cut_every == 0:
            u = sg(u)
        chain.append(jax.vmap(f)(u))
    return chain


def P_power(u, j):
    for _ in range(j):
        u = jax.vmap(ref_P)(u)
    return u


def grad_of(fn, model):
    """Gradient of a hand-written loss (eager: the small ops are cached)."""
    return eqx.filter_grad(fn)(model)


def value_and_grad(fn, model):
    """Loss and gradient w.r.t. the model parameters, in one jitted call."""
    return eqx.filter_jit(eqx.filter_value_and_grad(fn))(model)


def check_against_hand(cfg_fn, hand_fn, model, rtol=1e-10, atol=1e-12):
    """The configuration's loss and gradient equal the hand formula's."""
    value, grad = value_and_grad(cfg_fn, model)
    hand_value, hand_grad = eqx.filter_value_and_grad(hand_fn)(model)
    np.testing.assert_allclose(float(value), float(hand_value), rtol=rtol, atol=atol)
    tree_allclose(grad, hand_grad, rtol=rtol, atol=atol)
    return value, grad


def tree_allclose(a, b, rtol=1e-10, atol=1e-12):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def tree_distance(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return float(sum(jnp.sum((x - y) ** 2) for x, y in zip(la, lb)) ** 0.5)


def tree_norm(a):
    return float(sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(a)) ** 0.5)


def residuum_P(n, p):
    """Zero exactly when n = P(p) (batched states)."""
    return n - jax.vmap(ref_P)(p)


@pytest.fixture
def keys():
    return jax.random.split(jax.random.PRNGKey(0), 4)


# --------------------------------------------------------------------------
# 1. Supervised against hand-computed MSE
# --------------------------------------------------------------------------


def test_supervised_one_step_hand_mse(keys):
    model = linear_model(keys[0])
    data = randn(1, (B, 2, CH, N))
    loss = C.Supervised(1)(model, data)
    pred = np.asarray(jax.vmap(model)(data[:, 0]))
    hand = np.mean((pred - np.asarray(data[:, 1])) ** 2)
    assert hand > 1e-3
    np.testing.assert_allclose(float(loss), hand, rtol=1e-12)
    # the default is one step, and extra time levels in the window are ignored
    assert C.Supervised().window_length == 2
    longer = jnp.concatenate([data, data[:, :1] + 1.0], axis=1)
    np.testing.assert_allclose(float(C.Supervised()(model, longer)), hand, rtol=1e-12)


def test_supervised_multi_step_weighted_hand_sum(keys):
    model = ConvNet(keys[0])
    T = 3
    weights = np.array([0.5, 2.0, 1.5])
    data = randn(1, (B, T + 2, CH, N))  # the extra last level is ignored
    # cut_bptt_every alone (cut_bptt=False) must not truncate anything
    cfg = C.Supervised(T, time_level_weights=weights, cut_bptt_every=2)

    def hand(m):
        chain = hand_chain(m, data[:, 0], T)
        return sum(weights[t - 1] * mse(chain[t], data[:, t]) for t in range(1, T + 1))

    value, _ = check_against_hand(lambda m: cfg(m, data), hand, model)
    # the weights are really applied: the unweighted hand sum differs
    chain = hand_chain(model, data[:, 0], T)
    unweighted = sum(mse(chain[t], data[:, t]) for t in range(1, T + 1))
    assert abs(float(value) - float(unweighted)) > 1e-6


def test_supervised_uses_the_right_targets(keys):
    """Each level t is compared with data[:, t] (not shifted)."""
    data = rollout_P(random_states(0), 3)
    loss = eqx.filter_jit(C.Supervised(3))
    # the reference itself as network: zero loss only with correct alignment
    assert float(loss(ref_P, data)) < 1e-28
    shifted = jnp.concatenate([data[:, 1:], data[:, -1:]], axis=1)
    assert float(loss(ref_P, shifted)) > 1e-4


# --------------------------------------------------------------------------
# 2. Zero loss when the network is the reference
# --------------------------------------------------------------------------

ZERO_CASES = {
    "supervised_cut": lambda: C.Supervised(3, cut_bptt=True, cut_bptt_every=2),
    "diverted_chain": lambda: C.DivertedChain(3, 2),
    "branch_one": lambda: C.DivertedChainBranchOne(3),
    "mix_chain": lambda: C.MixChainPostPhysics(1, 2),
    "residuum": lambda: C.Residuum(3),
    "composite": lambda: C.Supervised(2) + 0.5 * C.DivertedChain(3, 2)
    + C.MixChainPostPhysics(2, 1) + 2.0 * C.Residuum(2),
}


@pytest.mark.parametrize("name", list(ZERO_CASES))
def test_zero_loss_for_the_reference(name, keys):
    cfg = ZERO_CASES[name]()
    data = rollout_P(random_states(0), 3)
    kwargs = dict(ref_stepper=ref_P, residuum_fn=residuum_P)
    vg = eqx.filter_jit(eqx.filter_value_and_grad(lambda m: cfg(m, data, **kwargs)))
    loss, grad = vg(PWrapper(jnp.asarray(1.0)))
    assert float(loss) == pytest.approx(0.0, abs=1e-28)
    # zero loss at the reference is a minimum: the gradient vanishes
    assert abs(float(grad.scale)) < 1e-12
    # ... and the loss is not trivially zero: a perturbed network is penalised
    loss, grad = vg(PWrapper(jnp.asarray(1.05)))
    assert float(loss) > 1e-6
    assert abs(float(grad.scale)) > 1e-6


# --------------------------------------------------------------------------
# 3. Cut gradients against explicit stop-gradient formulations
# --------------------------------------------------------------------------


@pytest.mark.parametrize("every", [1, 2])
def test_supervised_cut_bptt_matches_hand(every, keys):
    T = 4
    model = ConvNet(keys[0])
    data = randn(1, (B, T + 1, CH, N))
    weights = np.array([1.0, 0.7, 1.3, 0.4])
    cfg = C.Supervised(
        T, cut_bptt=True, cut_bptt_every=every, time_level_weights=weights
    )

    def hand(m, cut_every):
        chain = hand_chain(m, data[:, 0], T, cut_every)
        return sum(weights[t - 1] * mse(chain[t], data[:, t]) for t in range(1, T + 1))

    _, g_cfg = check_against_hand(
        lambda m: cfg(m, data), lambda m: hand(m, every), model
    )
    # not a no-op: differs from full BPTT and from the other cut frequencies
    for other in (None, 1, 2, 3):
        if other != every:
            g_other = grad_of(lambda m: hand(m, other), model)
            assert tree_distance(g_cfg, g_other) > 1e-6 * tree_norm(g_other)


@pytest.mark.parametrize(
    "cut_div_chain, cut_every", [(False, None), (True, None), (True, 2)]
)
def test_diverted_chain_matches_hand_with_cuts(cut_div_chain, cut_every, keys):
    T, Bs = 4, 2
    model = ConvNet(keys[0])
    data = randn(1, (B, 1, CH, N))
    w = np.array([1.0, 0.5, 2.0])  # T - Bs + 1 branch starts
    v = np.array([0.3, 1.7])  # Bs steps per branch
    cfg = C.DivertedChain(
        T,
        Bs,
        cut_div_chain=cut_div_chain,
        cut_bptt=cut_every is not None,
        cut_bptt_every=cut_every or 1,
        time_level_weights=w,
        branch_level_weights=v,
    )

    def hand(m, cut_div, every):
        chain = hand_chain(m, data[:, 0], T, every)
        total = 0.0
        for s in range(T - Bs + 1):
            start = sg(chain[s]) if cut_div else chain[s]
            for j in range(1, Bs + 1):
                total = total + w[s] * v[j - 1] * mse(chain[s + j], P_power(start, j))
        return total

    _, g_cfg = check_against_hand(
        lambda m: cfg(m, data, ref_stepper=ref_P),
        lambda m: hand(m, cut_div_chain, cut_every),
        model,
    )
    if cut_div_chain:
        g_nocut = grad_of(lambda m: hand(m, False, cut_every), model)
        assert tree_distance(g_cfg, g_nocut) > 1e-6 * tree_norm(g_nocut)


@pytest.mark.parametrize(
    "cut_prev, cut_next", [(False, False), (True, False), (False, True), (True, True)]
)
def test_residuum_matches_hand_with_cuts(cut_prev, cut_next, keys):
    T = 3
    model = ConvNet(keys[0])
    data = randn(1, (B, 1, CH, N))
    w = np.array([1.0, 0.25, 3.0])

    def res(n, p):  # nonlinear in both arguments
        return n - jax.vmap(ref_P)(p) + 0.1 * n * p

    cfg = C.Residuum(T, cut_prev=cut_prev, cut_next=cut_next, time_level_weights=w)

    def hand(m, cp, cn):
        chain = hand_chain(m, data[:, 0], T)
        total = 0.0
        for t in range(T):
            p = sg(chain[t]) if cp else chain[t]
            n = sg(chain[t + 1]) if cn else chain[t + 1]
            total = total + w[t] * mse(res(n, p))
        return total

    _, g_cfg = check_against_hand(
        lambda m: cfg(m, data, residuum_fn=res),
        lambda m: hand(m, cut_prev, cut_next),
        model,
    )
    g_nocut = grad_of(lambda m: hand(m, False, False), model)
    assert tree_norm(g_nocut) > 1e-6
    if cut_prev or cut_next:
        assert tree_distance(g_cfg, g_nocut) > 1e-6 * tree_norm(g_nocut)
    if cut_prev and cut_next:
        # every path to the parameters goes through a cut input
        assert tree_norm(g_cfg) == 0.0


def test_residuum_with_cut_bptt_matches_hand(keys):
    T = 4
    model = ConvNet(keys[0])
    data = randn(1, (B, 1, CH, N))
    cfg = C.Residuum(T, cut_bptt=True, cut_bptt_every=2)

    def hand(m):
        # a cut state is stop-gradiented for every later use, also as the
        # residuum's u_prev
        chain = hand_chain(m, data[:, 0], T, 2)
        prev = [sg(u) if t % 2 == 0 else u for t, u in enumerate(chain)]
        return sum(mse(residuum_P(chain[t + 1], prev[t])) for t in range(T))

    check_against_hand(lambda m: cfg(m, data, residuum_fn=residuum_P), hand, model)


# --------------------------------------------------------------------------
# 4. Diverted chain: full branch == Supervised; branch one == hand formula
# --------------------------------------------------------------------------


def test_diverted_chain_full_branch_equals_supervised_exponax(keys):
    exponax = pytest.importorskip("exponax")
    n = 16
    P = exponax.stepper.Advection(1, 1.0, n, 0.1, velocity=0.7)
    T = 3
    x = jnp.linspace(0.0, 1.0, n, endpoint=False)
    u0 = jnp.stack(
        [jnp.sin(2 * jnp.pi * k * x)[None] + 0.3 * jnp.cos(2 * jnp.pi * x)[None]
         for k in (1, 2, 3)]
    )  # (3, 1, n)
    data = rollout_P(u0, T, stepper=P)
    model = linear_model(keys[0], channels=1)
    v = np.array([1.0, 0.5, 2.0])
    div = C.DivertedChain(T, T, branch_level_weights=v)
    sup = C.Supervised(T, time_level_weights=v)
    l_div, g_div = value_and_grad(lambda m: div(m, data[:, :1], ref_stepper=P), model)
    l_sup, g_sup = value_and_grad(lambda m: sup(m, data), model)
    assert float(l_sup) > 1e-4
    np.testing.assert_allclose(float(l_div), float(l_sup), rtol=1e-10)
    tree_allclose(g_div, g_sup, rtol=1e-9, atol=1e-12)


def test_diverted_chain_full_branch_equals_supervised_nonlinear(keys):
    T = 3
    data = rollout_P(random_states(1), T)
    model = ConvNet(keys[0])
    div = C.DivertedChain(T, T)
    sup = C.Supervised(T)
    l_div, g_div = value_and_grad(lambda m: div(m, data, ref_stepper=ref_P), model)
    l_sup, g_sup = value_and_grad(lambda m: sup(m, data), model)
    np.testing.assert_allclose(float(l_div), float(l_sup), rtol=1e-10)
    tree_allclose(g_div, g_sup, rtol=1e-9)


def test_diverted_chain_branch_one_hand_formula(keys):
    T = 3
    model = ConvNet(keys[0])
    # a longer window: only the first state may be used
    data = randn(1, (B, 4, CH, N))
    w = np.array([0.2, 1.0, 3.0])
    cfg = C.DivertedChainBranchOne(T, time_level_weights=w)
    # a class of its own, equal in value to DivertedChain(T, 1)
    assert type(cfg).__name__ == "DivertedChainBranchOne"
    assert not isinstance(cfg, C.DivertedChain)
    assert cfg.window_length == 1

    def hand(m):
        chain = hand_chain(m, data[:, 0], T)
        return sum(
            w[t] * mse(jax.vmap(m)(chain[t]), jax.vmap(ref_P)(chain[t]))
            for t in range(T)
        )

    check_against_hand(lambda m: cfg(m, data, ref_stepper=ref_P), hand, model)


# --------------------------------------------------------------------------
# 5. Mix chain
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cut_every", [None])
def test_mix_chain_post_physics_hand_formula(cut_every, keys):
    T, Pn = 2, 3
    model = ConvNet(keys[0])
    # one extra time level at the end: it must be ignored
    data = randn(1, (B, T + Pn + 2, CH, N))
    w = np.array([0.5, 1.0, 2.0, 0.3, 1.4])
    cfg = C.MixChainPostPhysics(
        T,
        Pn,
        time_level_weights=w,
        cut_bptt=cut_every is not None,
        cut_bptt_every=cut_every or 1,
    )
    assert cfg.window_length == T + Pn + 1

    def hand(m):
        chain = hand_chain(m, data[:, 0], T, cut_every)
        for _ in range(Pn):
            chain.append(jax.vmap(ref_P)(chain[-1]))
        return sum(w[t - 1] * mse(chain[t], data[:, t]) for t in range(1, T + Pn + 1))

    check_against_hand(lambda m: cfg(m, data, ref_stepper=ref_P), hand, model)


def test_mix_chain_post_physics_only_gradient_flows_through_physics(keys):
    """With zero weights on the network levels, the gradient comes only
    through the reference steps (and is non-zero)."""
    T, Pn = 2, 2
    model = ConvNet(keys[0])
    data = randn(1, (B, T + Pn + 1, CH, N))
    cfg = C.MixChainPostPhysics(T, Pn, time_level_weights=[0.0, 0.0, 1.0, 1.0])

    def hand(m):
        u = data[:, 0]
        for _ in range(T):
            u = jax.vmap(m)(u)
        total = 0.0
        for t in range(T + 1, T + Pn + 1):
            u = jax.vmap(ref_P)(u)
            total = total + mse(u, data[:, t])
        return total

    _, g = check_against_hand(lambda m: cfg(m, data, ref_stepper=ref_P), hand, model)
    assert tree_norm(g) > 1e-6


# --------------------------------------------------------------------------
# 6. Composite
# --------------------------------------------------------------------------


def test_composite_weighted_sum_and_flattening(keys):
    model = ConvNet(keys[0])
    data = randn(1, (B, 4, CH, N))
    a = C.Supervised(2)
    b = C.Residuum(2)
    c = C.DivertedChainBranchOne(3)
    d = C.MixChainPostPhysics(1, 2)
    kw = dict(ref_stepper=ref_P, residuum_fn=residuum_P)

    combo = 0.5 * a + b + c * 2.0 + 3 * (d + 2.0 * b)
    assert isinstance(combo, C.Composite)
    assert not any(isinstance(x, C.Composite) for x in combo.configurations)
    assert combo.configurations == (a, b, c, d, b)
    np.testing.assert_allclose(combo.weights, [0.5, 1.0, 2.0, 3.0, 6.0])
    assert combo.window_length == 4 == d.window_length
    explicit = C.Composite((a, b, c), weights=(0.5, 0.1, 2.0))
    default = C.Composite((a, b))

    @eqx.filter_jit
    def all_losses(m):
        return [x(m, data, **kw) for x in (a, b, c, d, combo, explicit, default)]

    la, lb, lc, ld, l_combo, l_explicit, l_default = map(float, all_losses(model))
    assert min(la, lb, lc, ld) > 1e-6
    expected = 0.5 * la + lb + 2.0 * lc + 3.0 * ld + 6.0 * lb
    np.testing.assert_allclose(l_combo, expected, rtol=1e-12)
    np.testing.assert_allclose(l_explicit, 0.5 * la + 0.1 * lb + 2.0 * lc, rtol=1e-12)
    np.testing.assert_allclose(l_default, la + lb, rtol=1e-12)


def test_composite_window_length_is_max_and_checked(keys):
    model = ConvNet(keys[0])
    combo = C.Supervised(1) + C.Supervised(4) + C.Residuum(7)
    assert combo.window_length == 5
    data = randn(1, (B, 4, CH, N))
    with pytest.raises(ValueError, match="at least 5"):
        combo(model, data, residuum_fn=residuum_P)


# --------------------------------------------------------------------------
# 7. Time level weights
# --------------------------------------------------------------------------


def test_exponential_time_level_weights():
    np.testing.assert_allclose(
        C.exponential_time_level_weights(4, 0.5), [1.0, 0.5, 0.25, 0.125]
    )
    np.testing.assert_allclose(C.exponential_time_level_weights(1, 0.9), [1.0])
    np.testing.assert_allclose(
        C.exponential_time_level_weights(3, 0.9), [1.0, 0.9, 0.81], rtol=1e-14
    )
    with pytest.raises(ValueError, match="num_levels"):
        C.exponential_time_level_weights(0, 0.9)


def test_time_level_weights_exponential_and_zeros(keys):
    T = 4
    model = ConvNet(keys[0])
    data = randn(1, (B, T + 1, CH, N))
    configs = {
        "exp": C.Supervised(T, time_level_weights=C.exponential_time_level_weights(T, 0.5)),
        "long": C.Supervised(T, time_level_weights=[1.0, 2.0, 0.0, 0.0]),
        "short": C.Supervised(2, time_level_weights=[1.0, 2.0]),
        "mid": C.Supervised(T, time_level_weights=[1.0, 0.0, 1.0, 0.0]),
    }

    @eqx.filter_jit
    def losses_and_grads(m):
        return {
            k: eqx.filter_value_and_grad(lambda mm, c=c: c(mm, data))(m)
            for k, c in configs.items()
        }

    out = losses_and_grads(model)
    chain = hand_chain(model, data[:, 0], T)
    lvl = [None] + [float(mse(chain[t], data[:, t])) for t in range(1, T + 1)]
    np.testing.assert_allclose(
        float(out["exp"][0]), sum(0.5 ** (t - 1) * lvl[t] for t in range(1, T + 1)),
        rtol=1e-12,
    )
    # zero weights drop those levels: equal to the shorter hand sum
    np.testing.assert_allclose(float(out["long"][0]), lvl[1] + 2.0 * lvl[2], rtol=1e-12)
    np.testing.assert_allclose(float(out["short"][0]), lvl[1] + 2.0 * lvl[2], rtol=1e-12)
    tree_allclose(out["long"][1], out["short"][1])
    np.testing.assert_allclose(float(out["mid"][0]), lvl[1] + lvl[3], rtol=1e-12)


# --------------------------------------------------------------------------
# 8. Rematerialisation does not change anything
# --------------------------------------------------------------------------

REMAT_CASES = {
    "supervised_cut": lambda r: C.Supervised(3, cut_bptt=True, cut_bptt_every=2, remat=r),
    "diverted": lambda r: C.DivertedChain(3, 2, remat=r),
    "mix": lambda r: C.MixChainPostPhysics(2, 1, remat=r),
    "residuum": lambda r: C.Residuum(3, remat=r),
}
REMAT_KW = dict(ref_stepper=ref_P, residuum_fn=residuum_P)


@pytest.mark.parametrize("name", list(REMAT_CASES))
def test_remat_inserts_a_checkpoint(name, keys):
    """remat=True really rematerialises (a checkpoint in the traced loss)."""
    model = ConvNet(keys[0])
    data = randn(1, (B, 4, CH, N))

    def jaxpr_text(cfg):
        return str(jax.make_jaxpr(lambda d: cfg(model, d, **REMAT_KW))(data))

    def has_checkpoint(text):
        return ("remat" in text) or ("checkpoint" in text)

    assert has_checkpoint(jaxpr_text(REMAT_CASES[name](True)))
    assert not has_checkpoint(jaxpr_text(REMAT_CASES[name](False)))


@pytest.mark.parametrize("name", ["supervised_cut", "diverted"])
def test_remat_same_loss_and_gradient(name, keys):
    model = ConvNet(keys[0])
    data = randn(1, (B, 4, CH, N))
    plain, remat = REMAT_CASES[name](False), REMAT_CASES[name](True)

    @eqx.filter_jit
    def both(m):
        return [
            eqx.filter_value_and_grad(lambda mm, c=c: c(mm, data, **REMAT_KW))(m)
            for c in (plain, remat)
        ]

    (l_plain, g_plain), (l_remat, g_remat) = both(model)
    np.testing.assert_allclose(float(l_remat), float(l_plain), rtol=1e-13)
    assert tree_norm(g_plain) > 1e-6
    tree_allclose(g_remat, g_plain, rtol=1e-12)


# --------------------------------------------------------------------------
# 9. States without a spatial axis (Lorenz)
# --------------------------------------------------------------------------


class LorenzEuler(eqx.Module):
    params: jax.Array  # sigma, rho, beta
    dt: float = 0.01

    def __call__(self, u):
        sigma, rho, beta = self.params
        x, y, z = u
        rhs = jnp.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])
        return u + self.dt * rhs


def test_lorenz_states_without_spatial_axis(keys):
    true = LorenzEuler(jnp.array([10.0, 28.0, 8.0 / 3.0]))
    u0 = randn(0, (B, 3)) * 5.0
    T = 3
    data = rollout_P(u0, T, stepper=true)
    assert data.shape == (B, T + 1, 3)
    cfg = C.Supervised(T)
    model = LorenzEuler(jnp.array([9.0, 27.0, 3.0]))

    def hand(m):
        chain = hand_chain(m, data[:, 0], T)
        return sum(mse(chain[t], data[:, t]) for t in range(1, T + 1))

    loss, _ = check_against_hand(lambda m: cfg(m, data), hand, model)
    assert float(loss) > 1e-6

    # zero for the true parameters, for every configuration
    kw = dict(ref_stepper=true, residuum_fn=lambda n, p: n - jax.vmap(true)(p))
    others = (cfg, C.DivertedChain(T, 2), C.MixChainPostPhysics(2, 1), C.Residuum(T))
    losses = eqx.filter_jit(lambda m: [c(m, data, **kw) for c in others])
    for value in losses(true):
        assert float(value) == pytest.approx(0.0, abs=1e-26)
    for value in losses(model):
        assert float(value) > 1e-8


# --------------------------------------------------------------------------
# --------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0, -2])
@pytest.mark.parametrize(
    "make",
    [
        lambda T: C.Supervised(T),
        lambda T: C.DivertedChain(T, 1),
        lambda T: C.DivertedChainBranchOne(T),
        lambda T: C.MixChainPostPhysics(T, 1),
        lambda T: C.Residuum(T),
    ],
)
def test_non_positive_rollout_steps(make, T):
    with pytest.raises(ValueError, match="num_rollout_steps"):
        make(T)


def test_other_bad_integer_options():
    with pytest.raises(TypeError, match="num_rollout_steps"):
        C.Supervised(2.0)
    with pytest.raises(ValueError, match="cut_bptt_every"):
        C.Supervised(3, cut_bptt=True, cut_bptt_every=0)
    with pytest.raises(ValueError, match="num_post_physics_steps"):
        C.MixChainPostPhysics(2, 0)
    with pytest.raises(ValueError, match="num_branch_steps"):
        C.DivertedChain(3, 0)


def test_branch_longer_than_rollout():
    with pytest.raises(ValueError, match="num_branch_steps"):
        C.DivertedChain(2, 3)
    C.DivertedChain(3, 3)  # equal is fine


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: C.Supervised(3, time_level_weights=[1.0, 1.0]), "time_level_weights"),
        (lambda: C.Supervised(2, time_level_weights=[1.0, 1.0, 1.0]), "time_level_weights"),
        (lambda: C.Residuum(3, time_level_weights=[1.0]), "time_level_weights"),
        (
            lambda: C.MixChainPostPhysics(2, 2, time_level_weights=[1.0, 1.0]),
            "time_level_weights",
        ),
        # DivertedChain(3, 2) has 2 branch starts; 2 or 3 (the taxonomy) weights are accepted
        (
            lambda: C.DivertedChain(3, 2, time_level_weights=[1.0] * 4),
            "time_level_weights",
        ),
        (
            lambda: C.DivertedChain(3, 2, branch_level_weights=[1.0]),
            "branch_level_weights",
        ),
        (
            lambda: C.DivertedChainBranchOne(3, time_level_weights=[1.0, 1.0]),
            "time_level_weights",
        ),
    ],
)
def test_wrong_length_weights(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_correct_length_weights_accepted():
    C.DivertedChain(3, 2, time_level_weights=[1.0, 2.0], branch_level_weights=[1.0, 1.0])
    C.MixChainPostPhysics(2, 2, time_level_weights=[1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "make, W, needed",
    [
        (lambda: C.Supervised(3), 3, 4),
        (lambda: C.Supervised(1), 1, 2),
        (lambda: C.MixChainPostPhysics(2, 2), 4, 5),
    ],
)
def test_data_window_too_short(make, W, needed, keys):
    cfg = make()
    assert cfg.window_length == needed
    data = randn(0, (B, W, CH, N))
    with pytest.raises(ValueError, match=f"at least {needed}"):
        cfg(ConvNet(keys[1]), data, ref_stepper=ref_P)


def test_data_without_window_axis(keys):
    with pytest.raises(ValueError, match="data"):
        C.Supervised(1)(ConvNet(keys[1]), jnp.zeros((B, CH)))


def test_missing_ref_stepper_and_residuum_fn(keys):
    model = ConvNet(keys[0])
    data = randn(1, (B, 4, CH, N))
    for cfg in (
        C.DivertedChain(2, 1),
        C.DivertedChainBranchOne(2),
        C.MixChainPostPhysics(1, 1),
        C.Supervised(1) + C.DivertedChain(2, 2),
    ):
        with pytest.raises(ValueError, match="ref_stepper"):
            cfg(model, data, residuum_fn=residuum_P)
    for cfg in (C.Residuum(2), C.Supervised(1) + C.Residuum(1)):
        with pytest.raises(ValueError, match="residuum_fn"):
            cfg(model, data, ref_stepper=ref_P)
    # Supervised needs neither
    C.Supervised(1)(model, data)


def test_composite_bad_arguments():
    with pytest.raises(ValueError, match="weights"):
        C.Composite((C.Supervised(1), C.Residuum(1)), weights=(1.0,))
    with pytest.raises(ValueError, match="weights"):
        C.Composite((C.Supervised(1),), weights=(1.0, 2.0))
    with pytest.raises(TypeError, match="configurations"):
        C.Composite(())
    with pytest.raises(TypeError, match="configurations"):
        C.Composite((C.Supervised(1), "not a configuration"))


def test_sum_of_configurations_equals_composite():
    key = jax.random.PRNGKey(0)
    data = jax.random.normal(key, (3, 4, 1, 8))
    stepper = lambda u: 0.5 * u  # noqa: E731
    a, b = tx.configuration.Supervised(1), tx.configuration.Supervised(3)
    assert jnp.allclose(sum([a, b])(stepper, data), (a + b)(stepper, data))
    assert sum([a]) is a
