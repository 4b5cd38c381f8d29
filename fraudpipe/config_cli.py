"""`fraudpipe config`: show the effective settings, or the reference table docs/configuration.md carries."""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Iterator

import click

from fraudpipe.config import DEFAULT_CONFIG_FILE, Config, load_config

_KEY_LINE = re.compile(r"^  (?P<key>\w+):(?P<value>[^#]*)(?:#\s*(?P<comment>.*))?$")
_SECTION_LINE = re.compile(r"^(?P<section>\w+):\s*(?:#.*)?$")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _comments() -> dict[str, str]:
    """`section.key` -> the comment written beside it in config.yml."""
    comments, section = {}, None
    for line in DEFAULT_CONFIG_FILE.read_text().splitlines():
        if match := _SECTION_LINE.match(line):
            section = match["section"]
        elif section and (match := _KEY_LINE.match(line)):
            comments[f"{section}.{match['key']}"] = (match["comment"] or "").strip()
    return comments


def reference_rows(config: Config | None = None) -> Iterator[tuple[str, str, str]]:
    """(`section.key`, default, meaning) for every setting the loader knows."""
    config = config or Config()
    comments = _comments()
    for section in dataclasses.fields(config):
        if section.name == "source":
            continue
        for key in dataclasses.fields(getattr(config, section.name)):
            value = _plain(getattr(getattr(config, section.name), key.name))
            shown = "(nested, see config.yml)" if isinstance(value, dict) else json.dumps(value)
            name = f"{section.name}.{key.name}"
            yield name, shown, comments.get(name, "")


def reference_markdown() -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    pipe = "\\|"  # a literal | inside a Markdown table cell
    lines += [f"| `{name}` | `{default}` | {meaning.replace('|', pipe)} |" for name, default, meaning in reference_rows()]
    return "\n".join(lines)


@click.group("config")
def config_group() -> None:
    """Inspect fraudpipe's settings (config.yml + FRAUDPIPE_<SECTION>__<KEY> overrides)."""


@config_group.command("show")
def show_command() -> None:
    """Print the effective settings as JSON, after environment overrides."""
    config = load_config()
    click.echo(json.dumps({"source": config.source, **{k: v for k, v in _plain(config).items() if k != "source"}}, indent=2))


@config_group.command("reference")
def reference_command() -> None:
    """Print every setting with its default and meaning, as a Markdown table."""
    click.echo(reference_markdown())
