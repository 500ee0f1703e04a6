"""The README quickstart at full size: the learned stencil approaches upwind."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax as tx


def test_rollout_training_learns_the_upwind_stencil():
    cfl = -0.75
    ref_data = tx.sample_data.advection_1d_periodic(cfl=cfl, key=jax.random.PRNGKey(0))
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))
    upwind = jnp.array([1 + cfl, -cfl])
    initial_error = float(jnp.linalg.norm(conv.weight.ravel() - upwind))
    errors, histories = [], []
    for r in (1, 5, 20):
        trainer = tx.trainer.SupervisedTrainer(
            ref_data, num_rollout_steps=r, optimizer=optax.adam(1e-2),
            num_training_steps=1000, batch_size=32, progress_bar=False,
        )
        learned, loss_history = trainer(conv, key=jax.random.PRNGKey(42))
        assert loss_history.shape == (1000,)
        assert loss_history[-50:].mean() < 0.25 * loss_history[:10].mean()
        errors.append(float(jnp.linalg.norm(learned.weight.ravel() - upwind)))
        histories.append(loss_history)
    # a faithful implementation gives about 0.03, 0.025, 0.017
    assert initial_error > 0.3
    assert errors[0] < 0.045 and errors[2] < 0.025
    assert errors[0] > errors[1] > errors[2]

    # pinned: the data model (sources, per-step keys) left these unchanged
    np.testing.assert_allclose(
        errors, [0.03421476483345032, 0.026470936834812164, 0.016676191240549088], rtol=1e-6
    )
    np.testing.assert_allclose(
        [(h[0], h[-1]) for h in histories],
        [(0.3383738398551941, 0.00032583618303760886),
         (1.3693729639053345, 0.01892172358930111),
         (4.990545272827148, 0.6418861746788025)],
        rtol=1e-6,
    )
