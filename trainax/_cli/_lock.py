"""One command at a time per run folder: an advisory lock on `RUN/.lock`.

The lock is an OS file lock (`fcntl.flock` on POSIX, `msvcrt.locking` on
Windows) held by the open file for as long as the command runs: the operating
system releases it when the process ends, however it ends (also SIGKILL), so a
crashed run never leaves a stale lock behind. The file itself stays in the
folder and records the holder's process id, for the message a second command
gets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .._atomic import clean_stale_temporaries
from ._errors import CLIError

LOCK = ".lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f" (process {pid})" if pid.isdigit() else ""


def writable_error(path: Path, error: OSError) -> CLIError:
    """A one-line error naming `path` for a write that failed."""
    reason = error.strerror or str(error)
    return CLIError(
        f"cannot write {path}: {reason}. Free some space, fix the folder's permissions "
        "or choose another --out."
    )


class RunLock:
    """Hold the lock of `run_dir` (created if missing) until `release()`.

    Raises [`CLIError`][] if another process holds it, or if the folder
    cannot be written (which is so checked before any work is done).
    """

    def __init__(self, run_dir: Path, command: str):
        self.run_dir = Path(run_dir)
        self.created = not self.run_dir.exists()
        path = self.run_dir / LOCK
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._fd: Optional[int] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise writable_error(path, error) from None
        if not _try_lock(self._fd):
            os.close(self._fd)
            self._fd = None
            raise CLIError(
                f"{self.run_dir} is in use by another trainax command{_holder(path)}: "
                f"wait for it to finish before `trainax {command}` on this folder, or "
                "choose another --out."
            )
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError as error:
            self.release()
            raise writable_error(path, error) from None
        self._clean_temporaries()

    def _clean_temporaries(self) -> None:
        # leftovers of atomic writes killed mid-way (SIGKILL, power loss):
        # `.{name}.{pid}.{hex}.tmp`, removed when their writer is gone
        for folder in (self.run_dir, self.run_dir / "data", self.run_dir / "plots"):
            if not folder.is_dir():
                continue
            names = set()
            for entry in folder.iterdir():
                parts = entry.name.split(".")
                if entry.name.startswith(".") and parts[-1] == "tmp" and len(parts) >= 5:
                    names.add(".".join(parts[1:-3]))
            for name in names:
                clean_stale_temporaries(folder, name)

    def release(self, *, remove_if_unused: bool = False) -> None:
        """Release the lock; remove the folder if this command created it and
        left nothing but the lock file in it."""
        if self._fd is None:
            return
        if remove_if_unused and self.created:
            entries = [p.name for p in self.run_dir.iterdir()]
            if entries == [LOCK]:
                (self.run_dir / LOCK).unlink()
                self.run_dir.rmdir()
        os.close(self._fd)
        self._fd = None
