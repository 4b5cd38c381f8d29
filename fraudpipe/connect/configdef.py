"""Connector config definitions and validation, in the shape Kafka Connect reports them.

A ConfigDef lists the keys a plugin accepts (with type, default, allowed values and
doc); validate() turns a raw string map into typed values plus every error per key,
which the REST layer reports both at create time (400) and at
`PUT /connector-plugins/{plugin}/config/validate`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

STRING, INT, LONG, BOOLEAN, LIST, PASSWORD, CLASS = "STRING", "INT", "LONG", "BOOLEAN", "LIST", "PASSWORD", "CLASS"
NO_DEFAULT = object()


@dataclass(frozen=True)
class ConfigKey:
    """One accepted key: its type, default (NO_DEFAULT = required), allowed values and doc."""

    name: str
    type: str = STRING
    default: Any = None
    doc: str = ""
    group: str = "Common"
    choices: tuple[str, ...] = ()  # case-insensitive, as Connect's CaseInsensitiveValidString
    minimum: int | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error message or None

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


def parse_value(key: ConfigKey, raw: str) -> Any:
    """Parse one raw string by the key's type; ValueError says why it is not valid."""
    text = raw.strip()
    if key.type in (INT, LONG):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"Invalid value {raw} for configuration {key.name}: Not a number of type {key.type}") from None
        if key.minimum is not None and value < key.minimum:
            raise ValueError(f"Invalid value {value} for configuration {key.name}: Value must be at least {key.minimum}")
        return value
    if key.type == BOOLEAN:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError(f"Invalid value {raw} for configuration {key.name}: Expected value to be either true or false")
    if key.type == LIST:
        return [item.strip() for item in text.split(",") if item.strip()]
    if key.choices:
        for choice in key.choices:
            if choice.lower() == text.lower():
                return choice
        raise ValueError(
            f"Invalid value {raw} for configuration {key.name}: String must be one of: {', '.join(key.choices)}"
        )
    return raw


@dataclass
class Validation:
    """Result of validating one config: typed values, errors per key, and the keys seen."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    def add_error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    @property
    def error_count(self) -> int:
        return sum(len(messages) for messages in self.errors.values())

    def messages(self) -> list[str]:
        return [f"{key}: {message}" if not message.startswith("Invalid value") else message
                for key, messages in self.errors.items() for message in messages]


class ConfigDef:
    """The keys one plugin accepts; keys matching `prefixes` or `patterns` pass through untyped."""

    def __init__(self, keys: Iterable[ConfigKey] = (), *, prefixes: Iterable[str] = (),
                 patterns: Iterable[str] = ()) -> None:
        self.keys: dict[str, ConfigKey] = {}
        self.prefixes = tuple(prefixes)
        self.patterns = tuple(re.compile(p) for p in patterns)
        for key in keys:
            self.keys[key.name] = key

    def merged(self, other: "ConfigDef") -> "ConfigDef":
        merged = ConfigDef(self.keys.values(), prefixes=self.prefixes)
        merged.patterns = self.patterns + other.patterns
        merged.prefixes += other.prefixes
        merged.keys.update(other.keys)
        return merged

    def passes_through(self, name: str) -> bool:
        return name.startswith(self.prefixes) or any(p.fullmatch(name) for p in self.patterns)

    def validate(self, raw: Mapping[str, str]) -> Validation:
        result = Validation(raw=dict(raw))
        for name, key in self.keys.items():
            if name not in raw or raw[name] is None:
                if key.required:
                    result.add_error(name, f"Missing required configuration \"{name}\" which has no default value.")
                    continue
                value = key.default
            else:
                try:
                    value = parse_value(key, raw[name])
                except ValueError as exc:
                    result.add_error(name, str(exc))
                    continue
                if key.check is not None and (problem := key.check(value)):
                    result.add_error(name, problem)
            result.values[name] = value
        for name in raw:
            if name not in self.keys and not self.passes_through(name):
                result.add_error(name, f"Unknown configuration key \"{name}\" for this connector")
        return result

    def describe(self, validation: Validation) -> list[dict[str, Any]]:
        """The `configs` array of Connect's ConfigInfos: definition + value (+ errors) per key."""
        names = list(self.keys) + [n for n in validation.raw if n not in self.keys]
        described = []
        for order, name in enumerate(names):
            key = self.keys.get(name, ConfigKey(name, doc="(passed through)" if self.passes_through(name) else "(unknown key)"))
            default = None if key.required or key.default is None else _as_text(key.default)
            described.append({
                "definition": {
                    "name": name, "type": key.type, "required": key.required, "default_value": default,
                    "importance": "HIGH" if key.required else "MEDIUM", "documentation": key.doc,
                    "group": key.group, "width": "NONE", "display_name": name, "dependents": [], "order": order,
                },
                "value": {
                    "name": name, "value": validation.raw.get(name, default), "recommended_values": list(key.choices),
                    "errors": validation.errors.get(name, []), "visible": True,
                },
            })
        return described


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value)
    return str(value)
