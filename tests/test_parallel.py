"""Data parallelism: forced host devices and two processes on localhost.

Each case runs in a subprocess, since the device count is fixed when JAX
starts (`XLA_FLAGS=--xla_force_host_platform_device_count=4`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import trainax as tx

SETUP = """
import jax, jax.numpy as jnp, jax.random as jr, equinox as eqx, optax, numpy as np
import trainax as tx
inputs = jr.normal(jr.PRNGKey(0), (32, 2, 16))
targets = 0.5 * inputs[:, :1] - 0.25 * jnp.roll(inputs[:, 1:], 1, axis=-1)
model = eqx.nn.Conv1d(2, 1, 3, padding=1, padding_mode="CIRCULAR", key=jr.PRNGKey(1))

def trainer(data_parallel, batch_size=8, steps=30):
    return tx.GeneralTrainer(
        tx.Samples((inputs, targets)), tx.configuration.OperatorLearning(),
        optax.adam(1e-2), steps, batch_size, progress_bar=False, chunk_size=7,
        data_parallel=data_parallel,
    )
"""


def run_script(code: str, *, devices: int = 4, args=(), timeout=300) -> str:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_four_devices_equal_one():
    out = run_script(SETUP + """
assert len(jax.devices()) == 4
one, losses_one = trainer(False)(model, jr.PRNGKey(0))
four, losses_four = trainer(True)(model, jr.PRNGKey(0))
assert four.weight.sharding.mesh.shape["data"] == 4
# the loss and gradient of one step, on one device and sharded over four
cfg = tx.configuration.OperatorLearning()
batch = (inputs[:8], targets[:8])
mesh = tx.parallel.data_mesh()
sharded = jax.jit(lambda b: tx.parallel.shard_batch(b, mesh))(tx.parallel.replicate(batch, mesh))
grad = lambda b: eqx.filter_value_and_grad(lambda m: cfg(m, b))(model)
(l1, g1), (l4, g4) = eqx.filter_jit(grad)(batch), eqx.filter_jit(grad)(sharded)
print("step", abs(float(l1 - l4)), float(jnp.max(jnp.abs(g1.weight - g4.weight))))
print("run", float(np.max(np.abs(losses_one - losses_four))),
      float(jnp.max(jnp.abs(one.weight - four.weight))))
""")
    step = [float(x) for x in out.split("step")[1].split()[:2]]
    run = [float(x) for x in out.split("run")[1].split()[:2]]
    assert max(step) < 1e-6  # not 4x the gradient: XLA reduces a mean
    assert max(run) < 1e-5


def test_batch_not_divisible_and_bad_mesh():
    out = run_script(SETUP + """
try:
    trainer(True, batch_size=6)
except ValueError as error:
    print("divisible:", error)
from jax.sharding import Mesh
try:
    trainer(Mesh(np.asarray(jax.devices()), ("batch",)))
except ValueError as error:
    print("axis:", error)
try:
    trainer("yes")
except TypeError as error:
    print("type:", error)
""")
    assert "`batch_size` (6) must be divisible by the 4 devices" in out
    assert "the mesh needs an axis named 'data'" in out
    assert "`data_parallel` must be True, False or a jax.sharding.Mesh" in out


def test_a_users_mesh_from_make_mesh():
    # current JAX makes explicit-axis meshes by default; the trainer must not
    # depend on the axis type the user chose
    out = run_script(SETUP + """
mesh = jax.make_mesh((4,), ("data",))
one, losses_one = trainer(False)(model, jr.PRNGKey(0))
four, losses_four = trainer(mesh)(model, jr.PRNGKey(0))
print("diff", float(np.max(np.abs(losses_one - losses_four))))
""")
    assert float(out.split("diff")[1]) < 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_agree_with_one(tmp_path):
    code = SETUP.replace("import jax,", "import sys, jax\nimport jax as _jax\n_jax.config.update('jax_cpu_collectives_implementation', 'gloo')\n_pid, _port, _out = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n_jax.distributed.initialize(coordinator_address=f'127.0.0.1:{_port}', num_processes=2, process_id=_pid)\nimport jax,", 1) + """
assert jax.process_count() == 2 and len(jax.devices()) == 2
trained, losses = trainer(True)(model, jr.PRNGKey(0))
np.save(f"{_out}/losses_{_pid}.npy", losses)
"""
    port = str(_free_port())
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i), port, str(tmp_path)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-4000:]
    single = run_script(SETUP + """
_, losses = trainer(False)(model, jr.PRNGKey(0))
print(" ".join(repr(float(x)) for x in losses))
""", devices=1)
    reference = np.array([float(x) for x in single.split()])
    for i in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"losses_{i}.npy"), reference, atol=1e-5)


def test_new_style_keys_train_and_checkpoint(tmp_path):
    # typed keys (jax.random.key) cannot be serialised by equinox: the trainer
    # stores the key data
    inputs = jr.normal(jr.PRNGKey(0), (8, 2, 16))
    model = eqx.nn.Conv1d(2, 1, 3, padding=1, key=jr.PRNGKey(1))
    trainer = tx.GeneralTrainer(
        tx.Samples((inputs, inputs[:, :1])), tx.configuration.OperatorLearning(),
        optax.adam(1e-2), 6, 4, progress_bar=False, checkpoint_path=tmp_path / "c.eqx",
    )
    typed, losses_typed = trainer(model, jax.random.key(5))
    raw, losses_raw = trainer(model, jr.PRNGKey(5))
    np.testing.assert_array_equal(losses_typed, losses_raw)
    resumed, losses_resumed = trainer(model, resume_from=tmp_path / "c.eqx")
    np.testing.assert_array_equal(losses_resumed, losses_raw)
    assert jnp.array_equal(resumed.weight, raw.weight)
