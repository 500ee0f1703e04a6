"""Trajectories kept on the host (memmap / HDF5) train exactly like in-memory ones."""

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

import trainax as tx


@pytest.fixture(scope="module")
def data():
    return np.asarray(
        tx.sample_data.advection_1d_periodic(
            cfl=-0.75, num_points=16, num_samples=6, temporal_horizon=12,
            key=jax.random.PRNGKey(0),
        )
    )


def _conv():
    return eqx.nn.Conv1d(1, 1, 2, padding="SAME", padding_mode="CIRCULAR",
                         use_bias=False, key=jax.random.PRNGKey(73))


def _train(source, **kwargs):
    trainer = tx.trainer.SupervisedTrainer(
        source, num_rollout_steps=3, optimizer=optax.adam(1e-2),
        num_training_steps=45, batch_size=8, progress_bar=False, chunk_size=16, **kwargs,
    )
    model, losses = trainer(_conv(), jax.random.PRNGKey(1))
    return trainer, model, losses


def test_host_substacker_matches_device(data):
    host = tx.trainer._substack.HostSubStacker(data, 4)
    device = tx.TrajectorySubStacker(data, 4)
    idx = np.array([[0, 5, 9], [33, 1, 0]])
    np.testing.assert_array_equal(host(idx), np.asarray(device(idx.reshape(-1))).reshape(host(idx).shape))
    assert host.num_windows == device.num_windows


def test_memmap_trains_bit_identically(data, tmp_path):
    path = tmp_path / "train.npy"
    np.save(path, data)
    memmap = np.load(path, mmap_mode="r")
    trainer_host, model_host, losses_host = _train(memmap)
    trainer_dev, model_dev, losses_dev = _train(data)
    assert trainer_host.host_data and not trainer_dev.host_data
    np.testing.assert_array_equal(np.asarray(model_host.weight), np.asarray(model_dev.weight))
    np.testing.assert_array_equal(losses_host, losses_dev)


def test_forced_host_mode_matches(data):
    _, model_host, _ = _train(data, host_data=True)
    _, model_dev, _ = _train(data, host_data=False)
    np.testing.assert_array_equal(np.asarray(model_host.weight), np.asarray(model_dev.weight))


def test_hdf5_dataset(data, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("u", data=data)
    with h5py.File(path, "r") as f:
        trainer, model_h5, _ = _train(f["u"])
        assert trainer.host_data
    _, model_dev, _ = _train(data)
    np.testing.assert_array_equal(np.asarray(model_h5.weight), np.asarray(model_dev.weight))
