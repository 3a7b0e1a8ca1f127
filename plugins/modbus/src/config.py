"""The plugin's configuration: devices with their register maps, validated before anything runs.

Every error names the device and the register, e.g. `devices[0].registers[2].type`.
"""

import copy

import registers as regs
import units
from profiles import PROFILES

# capability -> (record field kind, the field's documented unit)
CAPABILITIES = {
    "voltage": ("num", "V"), "current": ("num", "A"), "power": ("num", "W"), "energy": ("num", "kW.h"),
    "power_factor": ("num", None), "frequency": ("num", "Hz"), "temperature": ("num", "Cel"),
    "humidity": ("num", "%"), "pressure": ("num", "hPa"), "water_flow": ("num", "L/min"),
    "water_volume": ("num", "m3"), "gas_volume": ("num", "m3"), "thermostat_setpoint": ("num", "Cel"),
    "fan_speed": ("num", "%"), "brightness": ("num", "%"), "valve_position": ("num", "%"),
    "cover_position": ("num", "%"), "switch": ("bool", None), "valve": ("bool", None),
}


class ConfigError(Exception):
    """A configuration mistake, with the path of the offending value."""


def _get(table, key, kind, default, path):
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{path}.{key} is required")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{path}.{key} must be a {kind.__name__}, got {value!r}")
    return value


def register(raw, path):
    """A validated register definition with every default filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a table")
    r = {"name": _get(raw, "name", str, None, path), "table": _get(raw, "table", str, "holding", path)}
    if r["table"] not in regs.TABLES:
        raise ConfigError(f"{path}.table must be one of {', '.join(regs.TABLES)}")
    r["address"] = _get(raw, "address", int, None, path)
    if not 0 <= r["address"] <= 65535:
        raise ConfigError(f"{path}.address must be within 0..65535")
    bits = r["table"] in ("coil", "discrete")
    r["type"] = "bool" if bits else _get(raw, "type", str, "u16", path)
    if not bits and r["type"] not in regs.TYPES:
        raise ConfigError(f"{path}.type must be one of {', '.join(regs.TYPES)}")
    r["word_order"] = _get(raw, "word_order", str, "big", path)
    if r["word_order"] not in ("big", "little"):
        raise ConfigError(f"{path}.word_order must be big or little")
    r["scale"] = _get(raw, "scale", float, 1.0, path)
    if r["scale"] == 0:
        raise ConfigError(f"{path}.scale cannot be 0")
    r["offset"] = _get(raw, "offset", float, 0.0, path)
    # Any unit may document a register; it must convert only when the register feeds a capability.
    r["unit"] = _get(raw, "unit", str, None, path) if raw.get("unit") is not None else None
    r["writable"] = _get(raw, "writable", bool, False, path)
    if r["writable"] and r["table"] not in ("coil", "holding"):
        raise ConfigError(f"{path}.writable: only coils and holding registers can be written")
    r["on_value"] = _get(raw, "on_value", int, 1, path)
    r["off_value"] = _get(raw, "off_value", int, 0, path)
    cap = raw.get("capability")
    if cap is not None:
        if cap not in CAPABILITIES:
            raise ConfigError(f"{path}.capability {cap!r} is not one of {', '.join(sorted(CAPABILITIES))}")
        kind, target = CAPABILITIES[cap]
        if kind == "num" and bits:
            raise ConfigError(f"{path}.capability {cap} needs a register, not a {r['table']}")
        if kind == "num" and r["unit"] and target and units.convert(1.0, r["unit"], target) is None:
            raise ConfigError(f"{path}.unit {r['unit']!r} cannot be converted to {cap}'s unit {target}")
        r["capability"] = cap
    return r


def device(raw, index, defaults):
    """A validated device: its connection, metadata and full register map."""
    path = f"devices[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a table")
    d = {"id": _get(raw, "id", str, None, path), "host": _get(raw, "host", str, None, path)}
    if not d["id"] or any(c in d["id"] for c in "/ "):
        raise ConfigError(f"{path}.id must be non-empty, without spaces or slashes")
    d["port"] = _get(raw, "port", int, 502, path)
    d["unit_id"] = _get(raw, "unit_id", int, 1, path)
    if not 0 <= d["unit_id"] <= 255:
        raise ConfigError(f"{path}.unit_id must be within 0..255")
    profile_name = raw.get("profile")
    profile = {"registers": []}
    if profile_name is not None:
        if profile_name not in PROFILES:
            raise ConfigError(f"{path}.profile {profile_name!r} is not one of {', '.join(sorted(PROFILES))}")
        profile = copy.deepcopy(PROFILES[profile_name])
    d["name"] = _get(raw, "name", str, d["id"], path)
    d["manufacturer"] = raw.get("manufacturer", profile.get("manufacturer"))
    d["model"] = raw.get("model", profile.get("model"))
    d["poll_interval"] = _get(raw, "poll_interval_ms", int, defaults["poll_interval_ms"], path) / 1000.0
    d["timeout"] = _get(raw, "timeout_ms", int, defaults["timeout_ms"], path) / 1000.0
    d["max_gap"] = _get(raw, "max_gap", int, 0, path)
    extra = raw.get("registers", [])
    if not isinstance(extra, list):
        raise ConfigError(f"{path}.registers must be a list")
    d["registers"] = [register(r, f"{path}.profile({profile_name}).registers[{i}]")
                      for i, r in enumerate(profile["registers"])]
    d["registers"] += [register(r, f"{path}.registers[{i}]") for i, r in enumerate(extra)]
    if not d["registers"]:
        raise ConfigError(f"{path} has no registers: give a profile or a register map")
    names, caps = set(), set()
    for r in d["registers"]:
        if r["name"] in names:
            raise ConfigError(f"{path}: two registers are named {r['name']!r}")
        names.add(r["name"])
        if "capability" in r:
            if r["capability"] in caps:
                raise ConfigError(f"{path}: two registers give capability {r['capability']!r}")
            caps.add(r["capability"])
    d["device_class"] = raw.get("device_class") or profile.get("device_class") or (
        "switch" if "switch" in caps else "power_meter" if caps & {"power", "energy"} else "sensor")
    return d


def parse(config):
    """Every device of the plugin configuration; raises ConfigError."""
    defaults = {"poll_interval_ms": int(config.get("poll_interval_ms", 5000)),
                "timeout_ms": int(config.get("timeout_ms", 2000))}
    devices = config.get("devices", [])
    if not isinstance(devices, list):
        raise ConfigError("devices must be a list")
    out = [device(raw, i, defaults) for i, raw in enumerate(devices)]
    ids = [d["id"] for d in out]
    if len(set(ids)) != len(ids):
        raise ConfigError("two devices have the same id")
    return out
