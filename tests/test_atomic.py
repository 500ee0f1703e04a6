"""Tests of the atomic file writes: all or nothing, and no temporary files left."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import trainax._atomic as atomic_module
from trainax._atomic import atomic_write, clean_stale_temporaries


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def test_bytes_and_text_round_trip(tmp_path):
    path = tmp_path / "state.bin"
    payload = bytes(range(256)) * 3
    with atomic_write(path) as file:
        file.write(payload)
    assert path.read_bytes() == payload
    text = "config = 'ü'\nsecond line\n"
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write(text)
    assert path.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]


def test_new_file_has_the_permissions_of_a_plain_open(tmp_path):
    with atomic_write(tmp_path / "atomic.txt", "w") as file:
        file.write("x")
    with open(tmp_path / "plain.txt", "w") as file:
        file.write("x")
    assert (tmp_path / "atomic.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_write_keeps_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "config.toml"
    path.write_text("old = 1\n")
    with pytest.raises(error):
        with atomic_write(path, "w") as file:
            file.write("new = 2\n")
            file.flush()
            assert _leftovers(tmp_path, path.name)  # the content went elsewhere
            raise error("stop")
    assert path.read_text() == "old = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_an_error_before_the_first_write_leaves_no_file(tmp_path):
    path = tmp_path / "model.eqx"
    with pytest.raises(ValueError, match="boom"):
        with atomic_write(path):
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


_KILLED_WRITER = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
with atomic.atomic_write(sys.argv[2]) as file:
    file.write(b"half of the new")
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_the_leftover_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "checkpoint.eqx"
    path.write_bytes(b"old")
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, atomic_module.__file__, str(path)],
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL
    assert path.read_bytes() == b"old"  # the kill left the target untouched ...
    (leftover,) = _leftovers(tmp_path, path.name)  # ... and one temporary
    assert leftover.endswith(".tmp")
    with atomic_write(path) as file:
        file.write(b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.eqx"]


def test_cleaning_keeps_live_writers_and_other_files(tmp_path):
    name = "metrics.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60)
    dead_pid = int(dead.stdout)  # exited: its temporaries are stale
    stale = tmp_path / f".{name}.{dead_pid}.0123abcd.tmp"
    live = tmp_path / f".{name}.{os.getpid()}.89abcdef.tmp"  # this process: kept
    other_target = tmp_path / f".{name}.1.{dead_pid}.0123abcd.tmp"  # of "metrics.jsonl.1"
    unrelated = [tmp_path / name, tmp_path / f"{name}.tmp", tmp_path / f".{name}.x.tmp"]
    for path in [stale, live, other_target, *unrelated]:
        path.write_text("x")
    assert clean_stale_temporaries(tmp_path, name) == [stale]
    assert not stale.exists()
    assert all(p.exists() for p in [live, other_target, *unrelated])
    assert clean_stale_temporaries(tmp_path / "missing", name) == []


def test_bad_mode():
    with pytest.raises(ValueError, match="`mode` must be one of wb, w, wt, got 'a'"):
        with atomic_write("unused.txt", "a"):
            pass
