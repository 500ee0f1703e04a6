"""Reading config files (TOML, YAML) and writing resolved configs as TOML."""

from __future__ import annotations

import sys
from pathlib import Path

import tomli_w

from ._errors import CLIError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def parse_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CLIError(f"{where} is not valid TOML: {error}") from None


def load_config_file(path: Path) -> dict:
    """A `.toml`, `.yaml` or `.yml` config file as a nested dict."""
    if not path.is_file():
        raise CLIError(f"no config file at {str(path)!r}.")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise CLIError(
                f"reading {path.name} needs PyYAML (pip install pyyaml), or write the "
                "config as TOML."
            ) from None
        try:
            raw = yaml.load(text, Loader=_yaml_loader(yaml))
        except yaml.YAMLError as error:
            raise CLIError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise CLIError(f"{path} must hold a mapping of sections, got {type(raw).__name__}.")
        return raw
    return parse_toml(text, str(path))


def _yaml_loader(yaml):
    """PyYAML's safe loader, reading `1e-3` as a float (YAML 1.2) not a string."""
    import re

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def parse_value(text: str):
    """A `--set` value: a TOML value (`3`, `1e-3`, `true`, `[1, 5]`, `"s"`), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def dumps(config: dict) -> str:
    """Nested dicts of scalars and lists as TOML text (what `parse_toml` reads back)."""
    return tomli_w.dumps(config)
