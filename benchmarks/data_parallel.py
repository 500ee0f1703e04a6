"""Data-parallel throughput on 1, 2 and 4 devices, the same trainer and model.

    python benchmarks/data_parallel.py [--steps 200] [--repeats 5]

Each device count runs in a fresh process (the count is fixed when JAX
starts); on a CPU the devices are forced host devices
(`--xla_force_host_platform_device_count`), which share the same cores, so
there the figures show that data parallelism is correct and what it costs,
not a speed-up. On a machine with several accelerators the same script
measures real scaling. Prints samples/s per device count and the scaling
efficiency `throughput(n) / (n * throughput(1))`, medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, statistics, sys, time
import jax, jax.numpy as jnp, jax.random as jr, optax
import trainax as tx

steps, repeats, devices = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
inputs = jr.normal(jr.PRNGKey(0), (512, 2, 32, 32))
targets = inputs[:, :1] * 0.5
model = tx.nn.FNO(2, 2, 1, width=16, modes=8, num_layers=2, key=jr.PRNGKey(1))
trainer = tx.GeneralTrainer(
    tx.Samples((inputs, targets)), tx.configuration.OperatorLearning(), optax.adam(1e-3),
    steps, 32, progress_bar=False, data_parallel=devices > 1,
)
trainer(model, jr.PRNGKey(0))  # compile
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    trained, losses = trainer(model, jr.PRNGKey(0))
    jax.block_until_ready(trained)
    times.append(time.perf_counter() - t0)
print(json.dumps({"devices": len(jax.devices()), "median_s": statistics.median(times),
                  "last_loss": float(losses[-1])}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for devices in (1, 2, 4):
        env = dict(os.environ)
        if env.get("JAX_PLATFORMS", "cpu") == "cpu":
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(args.steps), str(args.repeats), str(devices)],
            env=env, capture_output=True, text=True, check=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = args.steps * 32 / rows[0]["median_s"]
    print(f"{'devices':>8} {'samples/s':>12} {'efficiency':>11} {'last loss':>11}")
    for row in rows:
        throughput = args.steps * 32 / row["median_s"]
        efficiency = throughput / (row["devices"] * base)
        print(f"{row['devices']:>8} {throughput:>12.0f} {efficiency:>11.2f} {row['last_loss']:>11.4e}")


if __name__ == "__main__":
    main()
