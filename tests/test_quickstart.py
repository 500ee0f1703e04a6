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
    # the taxonomy's data (20 trajectories of 100 states) and minibatch stream
    # give 0.0341, 0.0291, 0.0170: closer to upwind as the rollout grows
    assert initial_error > 0.3
    assert errors[0] < 0.04 and errors[2] < 0.02
    assert errors[0] > errors[1] > errors[2]
    np.testing.assert_allclose(
        errors, [0.0340622253715992, 0.029111294075846672, 0.01696445606648922], rtol=1e-4
    )
    np.testing.assert_allclose(
        [(h[0], h[-1]) for h in histories],
        [(2.630321979522705, 0.002800894668325782),
         (10.357550621032715, 0.13110271096229553),
         (41.470489501953125, 4.56752872467041)],
        rtol=1e-4,
    )
