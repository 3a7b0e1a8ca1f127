"""The small subset of Home Assistant value templates (Jinja) that discovery payloads use.

Supported: `{{ value }}`, `{{ value_json.a.b }}`, `{{ value_json['a']["b"][0] }}`, followed by
filters `float`, `int`, `round(n)`, `default(x)`, `lower`, `upper`, `string`, `trim`. That covers
what Tasmota, ESPHome and most firmwares publish; anything else raises TemplateError and the
entity is skipped with a warning rather than mis-read.
"""

import json
import re

_WHOLE = re.compile(r"^\s*\{\{\s*(.*?)\s*\}\}\s*$", re.S)
_ACCESS = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(\d+)\s*\]""")
_FILTER = re.compile(r"^([a-z_]+)\s*(?:\((.*)\))?$")


class TemplateError(Exception):
    """A template outside the supported subset."""


class _Missing:
    """A value_json path that does not exist (Jinja's undefined)."""


MISSING = _Missing()


def check(template):
    """Raises TemplateError when `template` is not in the supported subset."""
    render(template, b"{}", dry=True)


def _literal(text):
    text = text.strip()
    try:
        return json.loads(text.replace("'", '"'))
    except ValueError:
        raise TemplateError(f"unsupported literal {text!r}") from None


def _path(expr, payload, dry):
    expr = expr.strip()
    if expr == "value":
        return payload.decode("utf-8", errors="replace")
    if not expr.startswith("value_json"):
        raise TemplateError(f"unsupported expression {expr!r}")
    rest, keys = expr[len("value_json"):], []
    pos = 0
    for m in _ACCESS.finditer(rest):
        if m.start() != pos:
            raise TemplateError(f"unsupported expression {expr!r}")
        pos = m.end()
        keys.append(int(m.group(4)) if m.group(4) is not None else next(g for g in m.groups()[:3] if g is not None))
    if pos != len(rest):
        raise TemplateError(f"unsupported expression {expr!r}")
    if dry:
        return MISSING
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return MISSING
    for key in keys:
        if isinstance(key, int) and isinstance(value, list) and key < len(value):
            value = value[key]
        elif isinstance(key, str) and isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return MISSING
    return value


def _apply(name, arg, value):
    if name == "default":
        return _literal(arg) if value is MISSING or value is None else value
    if value is MISSING:
        return value
    try:
        if name == "float":
            return float(value)
        if name == "int":
            return int(float(value))
        if name == "round":
            return round(float(value), int(arg) if arg and arg.strip() else 0)
    except (TypeError, ValueError):
        return MISSING
    if name == "lower":
        return str(value).lower()
    if name == "upper":
        return str(value).upper()
    if name == "string":
        return str(value)
    if name == "trim":
        return str(value).strip()
    raise TemplateError(f"unsupported filter {name!r}")


def render(template, payload, dry=False):
    """The template's value for an MQTT payload (bytes); MISSING when the path is absent."""
    m = _WHOLE.match(template or "")
    if not m:
        raise TemplateError(f"unsupported template {template!r}")
    parts = m.group(1).split("|")
    value = _path(parts[0], payload, dry)
    for part in parts[1:]:
        f = _FILTER.match(part.strip())
        if not f:
            raise TemplateError(f"unsupported filter {part.strip()!r}")
        if dry:
            if f.group(1) not in ("default", "float", "int", "round", "lower", "upper", "string", "trim"):
                raise TemplateError(f"unsupported filter {f.group(1)!r}")
            continue
        value = _apply(f.group(1), f.group(2), value)
    return value
