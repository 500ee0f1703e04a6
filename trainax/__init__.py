"""trainax: training neural PDE emulators and solvers in JAX.

```python
import trainax as tx
trainer = tx.trainer.SupervisedTrainer(data, num_rollout_steps=5,
    optimizer=optax.adam(1e-3), num_training_steps=1000, batch_size=32)
model, loss_history = trainer(model, key=jax.random.PRNGKey(0))
```
"""

from . import callback, configuration, constraint, inr, loss, nn, parallel, sample_data, spectral, trainer
from .trainer import (
    GeneralTrainer,
    PermutationMixer,
    Sampler,
    Samples,
    Trajectories,
    TrajectorySubStacker,
)

__version__ = "0.1.0"

__all__ = [
    "GeneralTrainer",
    "PermutationMixer",
    "Sampler",
    "Samples",
    "Trajectories",
    "TrajectorySubStacker",
    "callback",
    "configuration",
    "constraint",
    "inr",
    "loss",
    "nn",
    "parallel",
    "sample_data",
    "spectral",
    "trainer",
]
