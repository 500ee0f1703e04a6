"""Fixtures shared by the test files, and the runtime type checks.

The suite runs with jaxtyping's import hook and beartype
(`--jaxtyping-packages=trainax,beartype.beartype` in `pyproject.toml`): every
annotated function of the library checks its arguments and return values.
Users never run that hook, so inside `pytest.raises` blocks, which test what
users see (the library's own one-line errors), the runtime checks pause.
"""

from __future__ import annotations

import contextlib

import jax
import jaxtyping
import pytest

_raises = pytest.raises


@contextlib.contextmanager
def _raises_without_type_checks(*args, **kwargs):
    previous = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        with _raises(*args, **kwargs) as info:
            yield info
    finally:
        jaxtyping.config.update("jaxtyping_disable", previous)


def _raises_dispatch(*args, **kwargs):
    # the callable form, pytest.raises(Error, fn, *args), runs fn at once
    if len(args) > 1 and callable(args[1]):
        with _raises_without_type_checks(args[0], **kwargs) as info:
            args[1](*args[2:])
        return info
    return _raises_without_type_checks(*args, **kwargs)


pytest.raises = _raises_dispatch


@pytest.fixture
def x64():
    """Enable float64 for one test and restore the previous setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
