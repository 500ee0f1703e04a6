"""Presets are the TOML files in `trainax/presets/`: adding one adds a file."""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

from ._errors import CLIError
from ._toml import load_config_file, parse_toml

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")


def presets() -> dict:
    """`{name: resource}` for every shipped preset, sorted by name."""
    folder = resources.files("trainax") / "presets"
    found = {
        entry.name[: -len(".toml")]: entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    }
    return dict(sorted(found.items()))


def describe(resource) -> str:
    raw = parse_toml(resource.read_text(encoding="utf-8"), resource.name)
    return " ".join(str(raw.get("description", "")).split())


def _absolute_paths(raw: dict, base: Path) -> None:
    # file names in a config file are relative to that file
    for section in ("data", "validation"):
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for key in ("file", "targets_file"):
            if isinstance(table.get(key), str) and table[key]:
                path = Path(os.path.expanduser(table[key]))
                table[key] = str(path if path.is_absolute() else base / path)


def load_source(source: str) -> tuple[dict, str]:
    """The raw config and the run name of a preset name or a config file."""
    path = Path(source)
    if path.suffix.lower() in CONFIG_SUFFIXES or os.sep in source or path.is_file():
        raw = load_config_file(path)
        _absolute_paths(raw, path.resolve().parent)
        return raw, path.stem
    known = presets()
    if source not in known:
        close = difflib.get_close_matches(source, list(known), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CLIError(
            f"unknown preset {source!r}{hint}. Accepted presets: {', '.join(known)}; "
            "or give the path of a .toml/.yaml config file."
        )
    return parse_toml(known[source].read_text(encoding="utf-8"), f"preset {source}"), source
