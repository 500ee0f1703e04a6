"""The README quickstart at full size: the learned stencil approaches upwind."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import trainax as tx


def test_rollout_training_learns_the_upwind_stencil():
    cfl = -0.75
    ref_data = tx.sample_data.advection_1d_periodic(cfl=cfl, key=jax.random.PRNGKey(0))
    conv = eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))
    upwind = jnp.array([1 + cfl, -cfl])
    initial_error = float(jnp.linalg.norm(conv.weight.ravel() - upwind))
    errors = []
    for r in (1, 5, 20):
        trainer = tx.trainer.SupervisedTrainer(
            ref_data, num_rollout_steps=r, optimizer=optax.adam(1e-2),
            num_training_steps=1000, batch_size=32, progress_bar=False,
        )
        learned, loss_history = trainer(conv, key=jax.random.PRNGKey(42))
        assert loss_history.shape == (1000,)
        assert loss_history[-50:].mean() < 0.25 * loss_history[:10].mean()
        errors.append(float(jnp.linalg.norm(learned.weight.ravel() - upwind)))
    # a faithful implementation gives about 0.03, 0.025, 0.017
    assert initial_error > 0.3
    assert errors[0] < 0.045 and errors[2] < 0.025
    assert errors[0] > errors[1] > errors[2]
