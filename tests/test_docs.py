"""The README quickstart runs, the docs show it unchanged, and the site builds."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def quickstart_code(path: Path) -> str:
    text = path.read_text()
    section = text.split("## Quickstart", 1)[1] if "## Quickstart" in text else text
    blocks = python_blocks(section)
    assert blocks, f"no python code block in the quickstart of {path.name}"
    return blocks[0]


def test_readme_quickstart_runs():
    code = quickstart_code(ROOT / "README.md")
    assert "num_training_steps=1000" in code
    code = code.replace("num_training_steps=1000", "num_training_steps=30")
    code = code.replace("batch_size=32)", "batch_size=32, progress_bar=False)")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "README.md quickstart", "exec"), {"__name__": "__quickstart__"})
    lines = output.getvalue().splitlines()
    found = [re.fullmatch(r"rollout +(\d+): distance to the upwind stencil (\S+)", line)
             for line in lines]
    assert all(found) and len(found) == 3, output.getvalue()
    assert [int(m.group(1)) for m in found] == [1, 5, 20]
    assert all(math.isfinite(float(m.group(2))) for m in found), output.getvalue()


def test_readme_shows_the_quickstart_output_it_prints():
    text = (ROOT / "README.md").read_text()
    shown = re.findall(r"rollout +(\d+): distance to the upwind stencil (\d\.\d+)", text)
    assert [int(r) for r, _ in shown] == [1, 5, 20]
    # the full-size figures, pinned by tests/test_quickstart.py
    assert [float(d) for _, d in shown] == [0.0341, 0.0291, 0.0170]


def test_docs_quickstart_matches_readme():
    readme = quickstart_code(ROOT / "README.md")
    docs = python_blocks((ROOT / "docs" / "quickstart.md").read_text())[0]
    assert docs == readme, "docs/quickstart.md shows another quickstart than README.md"


def test_every_example_is_shown_in_the_docs():
    pages = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert f'--8<-- "examples/{example.name}"' in pages, example.name


def test_mkdocs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "api" / "configuration" / "index.html").exists()
