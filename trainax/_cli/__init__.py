"""The `trainax` command: experiments from a preset or a config file.

```
trainax list                                  # the shipped presets
trainax run advection-rollout                 # -> runs/advection-rollout/
trainax run my.toml --out runs/a --steps 200 --set optimizer.learning_rate=3e-3
trainax resume runs/a                         # continue from checkpoint.eqx
trainax resume runs/a --steps 2000            # extend a finished run
trainax evaluate runs/a                       # evaluation.json and plots
trainax sweep fno-transfer                    # a [task] with a sweep: run or continue
trainax --version
```

The config schema is documented in `trainax/_cli/_schema.py`; presets are the
TOML files in `trainax/presets/` (adding one is adding a file); tasks, for
experiments the tables cannot describe, are the builders of `_tasks.py`.
"""

from ._main import main

__all__ = ["main"]
