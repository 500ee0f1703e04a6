"""Every example in a public docstring runs.

The examples are the ```python blocks of the docstrings of every public name
(and its public methods) of every trainax subpackage. Each runs in a fresh
namespace holding what the docstrings may assume.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

import trainax as tx

PACKAGES = [
    "trainax", "trainax.loss", "trainax.configuration", "trainax.trainer",
    "trainax.callback", "trainax.sample_data", "trainax.nn", "trainax.spectral",
    "trainax.inr", "trainax.parallel", "trainax.constraint",
]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _namespace():
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np
    import optax

    return {"jax": jax, "jnp": jnp, "jr": jr, "np": np, "eqx": eqx, "optax": optax, "tx": tx}


def _examples():
    seen, found = set(), []
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            targets = [(f"{name}.{attr}", obj)]
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if not member.startswith("_") and (inspect.isfunction(value) or isinstance(
                        value, (property, staticmethod, classmethod)
                    )):
                        targets.append((f"{name}.{attr}.{member}", value))
            for label, target in targets:
                doc = inspect.getdoc(getattr(target, "__func__", target)) or ""
                if id(target) in seen:
                    continue
                seen.add(id(target))
                for i, block in enumerate(BLOCK.findall(doc)):
                    found.append(pytest.param(block, id=f"{label}[{i}]"))
    return found


@pytest.mark.parametrize("code", _examples())
def test_docstring_example_runs(code):
    exec(compile(code, "<docstring>", "exec"), _namespace())
