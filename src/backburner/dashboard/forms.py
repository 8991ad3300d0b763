"""The enqueue form: fields drawn from a task's JSON schema (`TaskSignature.json_schema`),
and the posted values turned back into arguments. The task's own validation (pydantic, at
enqueue) stays the judge: this only reads text fields into JSON values."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import orjson

from backburner import codec


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    """text, integer, number, boolean, choice, or json (a textarea of JSON)."""
    required: bool
    default: str
    """The value the field shows first, as text."""
    choices: tuple[str, ...] = ()
    description: str = ""


def fields_of(schema: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[Field]:
    """The form's fields; `defaults` (the function's own, which the schema does not carry)
    fill them first."""
    required = set(schema.get("required", ()))
    found = []
    for name, prop in schema.get("properties", {}).items():
        kind, choices = _kind(prop)
        default = prop.get("default", (defaults or {}).get(name))
        if default is None:
            shown = ""
        elif kind == "json":
            try:
                shown = orjson.dumps(default).decode()
            except TypeError:  # a default JSON cannot carry: leave the field blank
                shown = ""
        elif kind == "boolean":
            shown = "true" if default else ""
        else:
            shown = str(default)
        found.append(Field(name, kind, name in required, shown, choices,
                           str(prop.get("description", prop.get("title", "")))))
    return found


def _kind(prop: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    # `x: int | None` is anyOf [int, null]: the field is the non-null member.
    options = [p for p in prop.get("anyOf", ()) if p.get("type") != "null"]
    if len(options) == 1:
        prop = options[0]
    if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
        return "choice", tuple(prop["enum"])
    kind = prop.get("type")
    if kind == "string" and prop.get("format") is None:
        return "text", ()
    if kind in ("integer", "number", "boolean"):
        return str(kind), ()
    return "json", ()


def parse(fields: list[Field], form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(keyword arguments, errors by field). A blank optional field is left out, so the
    task's default applies."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.name, "")
        if f.kind == "boolean":
            values[f.name] = raw in ("on", "true", "1")
            continue
        if raw.strip() == "":
            if f.required and f.kind not in ("text",):
                errors[f.name] = "required"
            elif f.required:
                values[f.name] = raw
            continue
        try:
            if f.kind == "integer":
                values[f.name] = int(raw)
            elif f.kind == "number":
                values[f.name] = float(raw)
            elif f.kind == "json":
                values[f.name] = codec.loads_exact(raw)  # exact past 64 bits: refused
            else:
                values[f.name] = raw
        except ValueError:
            errors[f.name] = {"integer": "not an integer", "number": "not a number"}.get(
                f.kind, "not valid JSON")
    return values, errors


def defaults_of(func: Any) -> dict[str, Any]:
    """The function's parameter defaults, by name."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not p.empty}
