"""Diffusion-sorption: the constants, the residual, the reference solver and the data."""

from __future__ import annotations

import inspect
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import trainax as tx
import trainax.constraint as tc
from trainax.sample_data import _diffusion_sorption as ds

PUBLIC = ("ConstraintExperiment", "diffusion_sorption_1d", "diffusion_sorption_experiment",
          "random_initial_states", "relative_l2_error", "solve_diffusion_sorption")


def test_retardation_factor_constants(x64):
    pde = tc.DiffusionSorption()
    values = pde.retardation(jnp.array([0.05, 0.1, 1.0]))
    np.testing.assert_allclose(values, [4.146017, 3.882915, 3.156911], atol=1e-6)
    # the guard: finite at and below zero, with a finite derivative
    guarded = pde.retardation(jnp.array([0.0, -1.0]))
    assert np.all(np.isfinite(guarded)) and guarded[0] == guarded[1] > values[0]
    assert np.isfinite(jax.grad(lambda u: pde.retardation(u))(0.0))


def test_constant_one_zeroes_the_pde_and_left_boundary_rows(x64):
    pde = tc.DiffusionSorption()
    ones = jnp.ones((1, 9, 16))
    r = tc.residuals(pde, ones, 0.1 * ones)
    assert r["pde"].shape == (8 * 14,) and r["x_low"].shape == (8,)
    assert float(jnp.max(jnp.abs(r["pde"]))) == 0.0
    assert float(jnp.max(jnp.abs(r["x_low"]))) == 0.0
    np.testing.assert_allclose(r["x_high"], 1.0)          # u - D u_x = 1 at x = 1
    np.testing.assert_allclose(r["initial"], 0.9)         # u - u_0 with u_0 = 0.1


def test_residual_is_the_scaled_pde(x64):
    # u = a + b x^2 + c t: u_t = c, u_xx = 2 b exactly under finite differences
    pde = tc.DiffusionSorption()
    t, x = (jnp.asarray(c) for c in tc.grid_coordinates(pde, (9, 17)))
    u = 0.2 + 0.3 * x**2 + 1e-4 * t
    r = tc.residuals(pde, u[None], u[None])
    interior = (slice(1, None), slice(1, -1))
    expected = 500.0 * (1e-4 - 5e-4 / pde.retardation(u[interior]) * 0.6)
    np.testing.assert_allclose(r["pde"], expected.reshape(-1), rtol=1e-12)


def test_reference_solver_converges_at_second_order(x64):
    x = np.linspace(0.0, 1.0, 9)
    initial = jnp.asarray(0.1 + 0.05 * np.cos(np.pi * x))
    times = jnp.array([0.0, 250.0, 500.0])
    u = {r: ds.solve_diffusion_sorption(initial, times, refinement=r, rtol=1e-9, atol=1e-11)
         for r in (2, 4, 8)}
    np.testing.assert_array_equal(u[2][0], initial)
    np.testing.assert_allclose(u[8][1:, 0], 1.0)
    # e(h) = C h^2: |u_2 - u_8| / |u_4 - u_8| = (1/4 - 1/64) / (1/16 - 1/64) = 5
    coarse = float(jnp.max(jnp.abs(u[2][1:] - u[8][1:])))
    finer = float(jnp.max(jnp.abs(u[4][1:] - u[8][1:])))
    assert 4.5 < coarse / finer < 5.5, coarse / finer
    assert finer < 1e-3


def test_batched_reference_equals_one_by_one(x64):
    # (the shapes and options of test_data_generator: one compilation serves both)
    initial = ds.random_initial_states(jr.PRNGKey(0), 3, 9)
    times = jnp.linspace(0.0, 500.0, 3)
    batch = ds.solve_diffusion_sorption(initial, times, refinement=2)
    one = ds.solve_diffusion_sorption(initial[1], times, refinement=2)
    np.testing.assert_allclose(batch[1], one, atol=1e-7)


def test_data_generator(x64):
    inputs, reference = ds.diffusion_sorption_1d(
        num_samples=3, num_points=9, num_times=3, refinement=2, key=jr.PRNGKey(1))
    assert inputs.shape == reference.shape == (3, 1, 3, 9)
    np.testing.assert_array_equal(inputs[:, 0, 0], reference[:, 0, 0])  # u(t = 0) = u_0
    np.testing.assert_array_equal(inputs[:, 0, 0], inputs[:, 0, -1])    # u_0 on every level
    assert 0 < float(inputs.min()) and float(inputs.max()) < 0.2
    again, _ = ds.diffusion_sorption_1d(num_samples=3, num_points=9, num_times=3,
                                        refinement=2, key=jr.PRNGKey(1))
    np.testing.assert_array_equal(inputs, again)


def test_relative_l2_error():
    reference = jnp.ones((2, 1, 4, 8))
    prediction = reference.at[1].set(0.5)
    np.testing.assert_allclose(ds.relative_l2_error(prediction, reference), [0.0, 0.5])
    with pytest.raises(ValueError, match="`prediction` and `reference` must have the same shape"):
        ds.relative_l2_error(prediction[:, 0], reference)


def test_hard_constraint_solves_diffusion_sorption(x64):
    pde = tc.DiffusionSorption()
    inputs = pde.inputs(ds.random_initial_states(jr.PRNGKey(2), 1, 16)[0], 9)
    t, x = tc.grid_coordinates(pde, (9, 16))
    # fields between 0 and 1, away from the singularity of R at u = 0
    smooth = [np.exp(-x / (0.1 + 0.3 * t / 500) * k) for k in (1, 2, 3)] + [1 - x, 0.5 + 0 * x]
    basis = jnp.concatenate([inputs, jnp.asarray(np.stack(smooth))])
    layer = tc.HardConstraint(lambda x: basis, pde, num_points=40, solver=tc.GaussNewton())
    u, info = eqx.filter_jit(layer)(inputs, key=jr.PRNGKey(4))
    assert bool(info.converged) and info.residual.shape == (40 + 16 + 8 + 8,)
    # the rows are those of the grid residual, at the drawn points
    r = tc.residuals(pde, u, inputs)
    np.testing.assert_allclose(info.residual[40:56], r["initial"], atol=1e-12)
    np.testing.assert_allclose(info.residual[-8:], r["x_high"], atol=1e-12)


def test_bad_input(x64):
    times = jnp.linspace(0.0, 500.0, 3)
    with pytest.raises(ValueError, match="`initial` must be a state"):
        ds.solve_diffusion_sorption(jnp.ones((2, 3, 4)), times)
    with pytest.raises(ValueError, match="`times` must be increasing"):
        ds.solve_diffusion_sorption(jnp.ones(5), times[::-1])
    with pytest.raises(TypeError, match="`pde` must be a tx.constraint.DiffusionSorption"):
        ds.solve_diffusion_sorption(jnp.ones(5), times, pde="pdebench")
    with pytest.raises(ValueError, match="`refinement` must be a positive int"):
        ds.solve_diffusion_sorption(jnp.ones(5), times, refinement=0)
    with pytest.raises(ValueError, match="`porosity` must lie in"):
        tc.DiffusionSorption(porosity=1.5)


def test_experiment_pieces(x64):
    kw = dict(num_times=5, num_points=8, num_basis=4, width=4, modes=(2, 2), num_layers=1,
              num_test=3, key=jr.PRNGKey(3))
    soft = ds.diffusion_sorption_experiment("soft", **kw)
    hard = ds.diffusion_sorption_experiment("hard", collocation_points=16, **kw)
    moe = ds.diffusion_sorption_experiment("moe", num_experts=2, collocation_points=16, **kw)
    assert isinstance(soft.model, tx.nn.FNO) and isinstance(soft.configuration,
                                                            tx.configuration.PhysicsInformed)
    assert isinstance(hard.model.layer, tc.HardConstraint) and hard.model.layer.num_points == 16
    layer = moe.model.layer
    assert isinstance(layer, tc.MixtureOfExperts) and layer.partition == (1, 2)
    assert layer.constraint.num_points == 8  # the total split among the experts
    batch = soft.source.fn(jr.PRNGKey(4), 2)
    assert batch.shape == (2, 1, 5, 8) and 0 < float(batch.min()) and float(batch.max()) < 0.2
    for pieces in (soft, hard, moe):
        assert jnp.isfinite(eqx.filter_jit(pieces.configuration)(pieces.model, batch))
    # the metric compares with the reference solution of each held-out initial state
    times = jnp.linspace(0.0, 500.0, 5)
    oracle = lambda x: ds.solve_diffusion_sorption(x[0, 0], times, refinement=2)[None]  # noqa: E731
    assert soft.evaluate(oracle)["rel_l2_percent"] < 1e-4
    zero = soft.evaluate(lambda x: 0 * x)
    assert zero["rel_l2_percent"] == pytest.approx(100.0) and zero["rel_l2_percent_max"] >= 100.0
    assert np.isfinite(hard.evaluate(hard.model)["rel_l2_percent"])


def test_experiment_bad_input(x64):
    key = jr.PRNGKey(0)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        ds.diffusion_sorption_experiment("medium", key=key)
    with pytest.raises(ValueError, match="`num_experts` \\(3\\) must divide `num_points` \\(16\\)"):
        ds.diffusion_sorption_experiment("moe", num_experts=3, key=key)
    with pytest.raises(ValueError, match="`collocation_points` \\(500\\) is more than"):
        ds.diffusion_sorption_experiment("hard", collocation_points=500, key=key)
    with pytest.raises(ValueError, match="`coupling` must be 'none' or 'interface', got 'both'"):
        ds.diffusion_sorption_experiment("moe", coupling="both", key=key)
    # coupled strips keep their interface columns out of the drawn points: 8 x 2 per strip
    with pytest.raises(ValueError, match="at most 16 per solve, 4 solve"):
        ds.diffusion_sorption_experiment("moe", coupling="interface", collocation_points=68,
                                         key=key)
    layer = ds.diffusion_sorption_experiment(
        "moe", coupling="interface", collocation_points=64, num_test=1, width=4, modes=(2, 2),
        num_layers=1, key=key).model.layer
    assert layer.coupling == "interface" and layer.constraint.num_points == 16


def test_experiment_needs_float64():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 is on")
    with pytest.raises(RuntimeError, match="jax_enable_x64"):
        ds.diffusion_sorption_experiment("soft", key=jr.PRNGKey(0))


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_are_documented_and_exported(name):
    """Each documents its arguments and results and shows an example; the
    examples run in tests/test_docstrings.py, through tx.sample_data."""
    obj = getattr(ds, name)
    assert getattr(tx.sample_data, name) is obj
    doc = inspect.getdoc(obj)
    assert ("**Arguments:**" in doc and "**Returns:**" in doc) or "**Attributes:**" in doc
    assert len(re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)) == 1