"""Data from files: reading, questioning what looks wrong, fingerprints.

Trajectories `(S, T+1, C, *N)` and pairs `(inputs, targets)` come from
`.npy`, `.npz` or HDF5 files. What looks wrong is questioned before training:
a file that is no array file, a single time level or a missing sample axis,
channels stored last, half precision, NaN or infinite values. Each file's
size and SHA-256 are recorded in the run folder, so that `evaluate` and
`resume` can tell when a file changed under a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Optional

import jax.numpy as jnp
import numpy as np

from ._errors import CLIError

SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


def notice(message: str) -> None:
    print(f"trainax: {message}", file=sys.stderr)


# -- opening files -------------------------------------------------------------


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(8) == b"\x89HDF\r\n\x1a\n"


def open_array(path: str, dataset: str, where: str, files: contextlib.ExitStack,
               key: str = "dataset"):
    """A lazily readable array: a memory map (.npy), an .npz member or an h5py
    dataset; open files are closed with `files`."""
    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{where} file: no such file {path!r}.")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        if dataset:
            raise CLIError(f"{where} {key}: a .npy file holds one array; remove {key}.")
        return _open_npy(file, where)
    if suffix == ".npz":
        if not zipfile.is_zipfile(file):
            raise CLIError(f"{where} file: {path} is not a NumPy .npz archive (not a zip file).")
        archive = files.enter_context(np.load(file, allow_pickle=False))
        name = pick(list(archive.files), dataset, where, path, key)
        try:
            return archive[name]
        except ValueError as error:  # an object array needs pickles: not data
            raise CLIError(f"{where} file: {path} member {name!r} is not a numeric "
                           f"array ({' '.join(str(error).split())}).") from None
    if suffix in (".h5", ".hdf5"):
        try:
            import h5py
        except ImportError:
            raise CLIError(
                f"{where} file: reading {file.name} needs h5py (pip install h5py)."
            ) from None
        if not _is_hdf5(file):
            raise CLIError(f"{where} file: {path} is not an HDF5 file.")
        handle = files.enter_context(h5py.File(file, "r"))
        names = []
        handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return handle[pick(names, dataset, where, path, key)]
    raise CLIError(f"{where} file: expected a .npy, .npz, .h5 or .hdf5 file, got {path!r}.")


def _open_npy(file: Path, where: str):
    with open(file, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY":
        raise CLIError(f"{where} file: {file} is not a NumPy array file (.npy): it does not "
                       "start with the .npy header.")
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except ValueError as error:  # object arrays: pickles, not numbers
        raise CLIError(f"{where} file: {file} does not hold a numeric array "
                       f"({' '.join(str(error).split())}).") from None


def pick(names: list[str], dataset: str, where: str, path: str, key: str = "dataset") -> str:
    if dataset:
        if dataset not in names:
            raise CLIError(
                f"{where} {key}: no array {dataset!r} in {path}; it holds "
                f"{', '.join(names) or 'none'}."
            )
        return dataset
    if len(names) != 1:
        raise CLIError(
            f"{where} {key}: {path} holds {len(names)} arrays ({', '.join(names)}); "
            f"name one with `{key}`."
        )
    return names[0]


# -- questioning the data --------------------------------------------------------


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def looks_channels_last(state_shape: tuple) -> bool:
    """A state `(C, *N)` whose last axis is small and whose channels are many:
    most likely `(*N, C)` read the wrong way round."""
    if len(state_shape) < 2:
        return False
    return state_shape[-1] <= 4 and state_shape[0] >= 8 and state_shape[0] > state_shape[-1]


def check_dtype(array, where: str, path: str) -> None:
    dtype = np.dtype(array.dtype)
    if not np.issubdtype(dtype, np.floating):
        raise CLIError(f"{where} file: {path} holds {dtype} values; data must be "
                       "floating point (convert with a.astype(np.float32)).")


def convert_notice(array, where: str, path: str) -> None:
    if np.dtype(array.dtype) == np.float16:
        notice(f"{where} file: {path} holds float16 values; they are converted to "
               "float32 for training.")


def check_trajectories(array, where: str, path: str, channels_last: bool) -> None:
    """Raise a clear error for what cannot be trajectories `(S, T+1, C, *N)`."""
    shape = tuple(array.shape)
    layout = "(S, T+1, *N, C)" if channels_last else "(S, T+1, C, *N)"
    if len(shape) < 3:
        raise CLIError(
            f"{where} file: {path} holds an array of shape {_shape(shape)}; trajectories "
            f"need {layout} (samples, time levels, channels, space)."
        )
    check_dtype(array, where, path)
    if shape[1] < 2:
        raise CLIError(
            f"{where} file: {path} holds trajectories of shape {_shape(shape)} with a "
            "single time level; rollout training needs at least two (an initial state "
            "and its successor). If it is one trajectory (T+1, C, *N) without a sample "
            "axis, add one: np.save(path, a[None])."
        )
    state = shape[2:] if not channels_last else (shape[-1],) + shape[2:-1]
    if not channels_last and looks_channels_last(state):
        raise CLIError(
            f"{where} file: {path} holds shape {_shape(shape)}, read as {state[0]} channels "
            f"on a grid of {_shape(state[1:])} points (S, T+1, C, *N); it looks "
            f"channels-last (S, T+1, *N, C) with {state[-1]} channel(s) on "
            f"{_shape(state[:-1])} points: set [data] channels_last = true, or save it "
            "channels first (np.moveaxis(a, -1, 2))."
        )


def check_pairs(inputs, targets, where: str, path: str, channels_last: bool) -> None:
    for name, array in (("inputs", inputs), ("targets", targets)):
        shape = tuple(array.shape)
        if len(shape) < 2:
            raise CLIError(
                f"{where} {name}: {path} holds an array of shape {_shape(shape)}; pairs "
                "need (S, C, *N) per side (samples, channels, space)."
            )
        check_dtype(array, where, path)
        state = shape[1:] if not channels_last else (shape[-1],) + shape[1:-1]
        if not channels_last and looks_channels_last(state):
            raise CLIError(
                f"{where} {name}: shape {_shape(shape)} reads as {state[0]} channels on "
                f"{_shape(state[1:])} points (S, C, *N); it looks channels-last "
                "(S, *N, C): set [data] channels_last = true, or save it channels first."
            )
    if inputs.shape[0] != targets.shape[0]:
        raise CLIError(
            f"{where}: inputs and targets must hold the same number of samples; got "
            f"{inputs.shape[0]} and {targets.shape[0]} (shapes {_shape(inputs.shape)} and "
            f"{_shape(targets.shape)})."
        )


def check_finite(array, where: str, what: str) -> None:
    """Refuse NaN or infinite values, read sample by sample (a memory map or
    an HDF5 dataset stays on disk)."""
    for index in range(array.shape[0]):
        row = np.asarray(array[index])
        if not np.all(np.isfinite(row)):
            bad = np.argwhere(~np.isfinite(row))[0]
            raise CLIError(
                f"{where}: {what} {index} holds NaN or infinite values (first at index "
                f"{tuple(int(i) for i in bad)} of a {_shape(row.shape)} sample); clean the "
                "data before training."
            )


# -- views ----------------------------------------------------------------------


def _to_channels_first(row: np.ndarray, channels_last: bool, time_axis: bool):
    if not channels_last:
        return row
    return np.moveaxis(row, -1, 1 if time_axis else 0)


class LazyRows:
    """Rows `start:stop` of an on-disk array (memory map or HDF5 dataset),
    read only when indexed, channels first and as float32: the trainer
    gathers each chunk's windows on the host, so training data larger than
    memory stream from disk."""

    def __init__(self, array, start: int, stop: int, channels_last: bool = False):
        self._array, self._start, self._last = array, start, channels_last
        shape = tuple(array.shape[1:])
        if channels_last:
            shape = (shape[0], shape[-1]) + shape[1:-1]
        self.shape = (stop - start,) + shape
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, index: int):
        row = np.asarray(self._array[self._start + int(index)])
        return _to_channels_first(row, self._last, True).astype(np.float32, copy=False)


def materialise(array, start: int = 0, stop: Optional[int] = None, *,
                channels_last: bool = False, time_axis: bool = True):
    """Rows `start:stop` in memory, channels first, as float32."""
    out = np.asarray(array[start:stop])
    if channels_last:
        out = np.moveaxis(out, -1, 2 if time_axis else 1)
    return jnp.asarray(out.astype(np.float32, copy=False))


def is_on_disk(array) -> bool:
    return isinstance(array, np.memmap) or type(array).__module__.startswith("h5py")


# -- fingerprints ------------------------------------------------------------------


def fingerprint(path: str) -> dict:
    """Size and SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def data_files(config: dict) -> list[str]:
    """Every data file a config reads."""
    files = []
    for section in ("data", "validation"):
        table = config[section]
        for key in ("file", "targets_file"):
            if table.get(key):
                files.append(table[key])
    return sorted(set(files))


def fingerprints(config: dict) -> dict:
    return {path: fingerprint(path) for path in data_files(config)}


def fingerprint_text(config: dict) -> str:
    return json.dumps(fingerprints(config), indent=2, sort_keys=True) + "\n"


def changed_files(recorded: dict, config: dict) -> list[str]:
    """The data files whose content differs from what the run recorded."""
    changed = []
    for path in data_files(config):
        if path not in recorded:
            changed.append(f"{path} (not recorded)")
        elif not Path(path).is_file():
            changed.append(f"{path} (missing)")
        elif fingerprint(path) != recorded[path]:
            changed.append(path)
    return changed
