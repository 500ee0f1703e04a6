"""Atomic file writes: a reader finds the old file or the new one, never half of one.

The new content goes to a temporary file beside the target, named
`.{name}.{pid}.{random}.tmp`, which is flushed to disk and then renamed over
the target (`os.replace` is atomic within one folder). An exception, also a
`KeyboardInterrupt`, removes the temporary file. A process killed outright
(SIGKILL, power loss) cannot clean up after itself: the next atomic write of
the same target removes such leftovers.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Union

_SUFFIX = ".tmp"
_MODES = {"wb": "xb", "w": "x", "wt": "xt"}


def _temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}{_SUFFIX}"


def _writer_pid(candidate: str, name: str) -> int | None:
    """The writer's process id if `candidate` is a temporary of `name`, else `None`."""
    pattern = re.escape(f".{name}.") + r"(\d+)\.[0-9a-f]{8}" + re.escape(_SUFFIX)
    match = re.fullmatch(pattern, candidate)
    return int(match.group(1)) if match else None


def _may_be_writing(pid: int) -> bool:
    if os.name != "posix":
        # Windows cannot remove a file that is open, so removing is safe there.
        return False
    if pid == os.getpid():  # another thread of this process
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user's process
        return True
    return True


def clean_stale_temporaries(folder: Union[str, os.PathLike], name: str) -> list[Path]:
    """Remove the temporary files that killed writes of `folder/name` left behind.

    Temporaries of writers that are still running (on this machine) are kept.

    **Arguments:**

    - `folder`: the folder of the target file.
    - `name`: the target's file name.

    **Returns:**

    The paths that were removed.

    ```python
    import tempfile
    from trainax._atomic import clean_stale_temporaries

    folder = tempfile.mkdtemp()
    clean_stale_temporaries(folder, "checkpoint.eqx")  # [] in a fresh folder
    ```
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        pid = _writer_pid(entry.name, name)
        if pid is None or _may_be_writing(pid):
            continue
        try:
            entry.unlink()
        except OSError:  # removed by another writer, or still open (Windows)
            continue
        removed.append(entry)
    return removed


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; folders cannot be opened on Windows,
    # and some file systems do not sync them.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: Union[str, os.PathLike], mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO]:
    """Open `path` for writing such that it is replaced only when the block succeeds.

    Inside the `with` block the file object writes to a temporary file in the
    same folder. On success it is flushed, synced to disk and renamed over
    `path`; on any exception (also `KeyboardInterrupt`) it is removed and
    `path` keeps its old content. Leftovers of earlier writes of `path` that
    were killed before they could clean up are removed first.

    **Arguments:**

    - `path`: the file to write; its folder must exist.
    - `mode`: `"wb"` (bytes, default), or `"w"`/`"wt"` (text).
    - `encoding`: the text encoding (text mode only), e.g. `"utf-8"`.

    **Returns:**

    A context manager giving the open file object.

    ```python
    import os, tempfile
    from trainax._atomic import atomic_write

    path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write("all or nothing\\n")
    ```
    """
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {', '.join(_MODES)}, got {mode!r}.")
    path = Path(path)
    clean_stale_temporaries(path.parent, path.name)
    temporary = path.with_name(_temporary_name(path.name))
    try:
        # "x": created new, with the permissions a plain open() would give.
        with open(temporary, _MODES[mode], encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_folder(path.parent)
