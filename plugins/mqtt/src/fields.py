"""The fields of the plugin's `tessera.mqtt.DeviceState` record and how raw values become them.

Each field has a documented unit (the one `mapping.toml` expects) and the catalog's range. Values
arrive from Zigbee2MQTT exposes and Home Assistant entities in whatever unit the device reports;
`normalize` converts them, and drops anything it cannot convert or that is out of range, so a
single odd reading never makes the whole record invalid.
"""

import math

# name -> (kind, unit, min, max). Kinds: "num", "bool", "onoff" ("ON"/"OFF"), or a tuple of
# allowed strings (an enum).
FIELDS = {
    "temperature": ("num", "Cel", -273.15, 2000.0),
    "humidity": ("num", "%", 0.0, 100.0),
    "pressure": ("num", "hPa", 0.0, 2000.0),
    "illuminance": ("num", "lx", 0.0, 200000.0),
    "co2": ("num", "[ppm]", 0.0, 100000.0),
    "voc": ("num", "ug/m3", 0.0, 100000.0),
    "pm25": ("num", "ug/m3", 0.0, 10000.0),
    "pm10": ("num", "ug/m3", 0.0, 10000.0),
    "carbon_monoxide": ("num", "[ppm]", 0.0, 100000.0),
    "battery": ("num", "%", 0.0, 100.0),
    "linkquality": ("num", None, 0.0, 255.0),
    "signal_strength": ("num", "dB[mW]", -150.0, 50.0),
    "voltage": ("num", "V", -100000.0, 100000.0),
    "current": ("num", "A", -100000.0, 100000.0),
    "power": ("num", "W", -10000000.0, 10000000.0),
    "energy": ("num", "kW.h", 0.0, 1000000000.0),
    "power_factor": ("num", "1", -1.0, 1.0),
    "frequency": ("num", "Hz", 0.0, 1000.0),
    "state": ("onoff", None, None, None),
    "brightness": ("num", None, 0.0, 254.0),
    "color_temp_kelvin": ("num", "K", 1000.0, 10000.0),
    "contact": ("bool", None, None, None),
    "occupancy": ("bool", None, None, None),
    "water_leak": ("bool", None, None, None),
    "smoke": ("bool", None, None, None),
    "vibration": ("bool", None, None, None),
    "tamper": ("bool", None, None, None),
    "battery_low": ("bool", None, None, None),
    "gas_leak": ("bool", None, None, None),
    "co_alarm": ("bool", None, None, None),
    "position": ("num", "%", 0.0, 100.0),
    "tilt": ("num", "%", 0.0, 100.0),
    "lock_state": (("locked", "unlocked", "jammed", "locking", "unlocking", "not_fully_locked"), None, None, None),
    "setpoint": ("num", "Cel", 5.0, 35.0),
    "system_mode": (("off", "heat", "cool", "auto", "dry", "fan_only"), None, None, None),
}

# Unit spellings seen in the wild -> (dimension, factor, offset) to the dimension's base unit.
_UNITS = {
    "Cel": ("temperature", 1.0, 0.0), "°C": ("temperature", 1.0, 0.0), "C": ("temperature", 1.0, 0.0),
    "K": ("temperature", 1.0, -273.15),
    "[degF]": ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0), "°F": ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    "%": ("ratio", 1.0, 0.0), "1": ("ratio", 100.0, 0.0),
    "hPa": ("pressure", 1.0, 0.0), "Pa": ("pressure", 0.01, 0.0), "kPa": ("pressure", 10.0, 0.0),
    "mbar": ("pressure", 1.0, 0.0), "bar": ("pressure", 1000.0, 0.0), "psi": ("pressure", 68.9476, 0.0),
    "inHg": ("pressure", 33.8639, 0.0), "mmHg": ("pressure", 1.33322, 0.0),
    "lx": ("illuminance", 1.0, 0.0), "lux": ("illuminance", 1.0, 0.0),
    "[ppm]": ("ppm", 1.0, 0.0), "ppm": ("ppm", 1.0, 0.0),
    "ug/m3": ("mass_concentration", 1.0, 0.0), "µg/m³": ("mass_concentration", 1.0, 0.0),
    "μg/m³": ("mass_concentration", 1.0, 0.0), "mg/m³": ("mass_concentration", 1000.0, 0.0),
    "dB[mW]": ("power_level", 1.0, 0.0), "dBm": ("power_level", 1.0, 0.0),
    "V": ("voltage", 1.0, 0.0), "mV": ("voltage", 0.001, 0.0), "kV": ("voltage", 1000.0, 0.0),
    "A": ("current", 1.0, 0.0), "mA": ("current", 0.001, 0.0),
    "W": ("power", 1.0, 0.0), "kW": ("power", 1000.0, 0.0), "mW": ("power", 0.001, 0.0),
    "kW.h": ("energy", 1.0, 0.0), "kWh": ("energy", 1.0, 0.0), "W.h": ("energy", 0.001, 0.0),
    "Wh": ("energy", 0.001, 0.0), "MWh": ("energy", 1000.0, 0.0),
    "Hz": ("frequency", 1.0, 0.0), "kHz": ("frequency", 1000.0, 0.0),
}


def convert(value, from_unit, to_unit):
    """`value` in `from_unit` expressed in `to_unit`, or None when the units do not convert."""
    if from_unit == to_unit or not from_unit or not to_unit:
        return value
    a, b = _UNITS.get(from_unit.strip()), _UNITS.get(to_unit)
    if a is None or b is None or a[0] != b[0]:
        return None
    return (value * a[1] + a[2] - b[2]) / b[1]


def to_number(raw):
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def normalize(field, raw, unit=None):
    """The value of `field` for a raw reading in `unit`, or None when it does not fit.

    Booleans and ON/OFF states must already be decided by the caller (they depend on each
    device's own on/off values); this checks their type only.
    """
    kind, target, low, high = FIELDS[field]
    if kind == "num":
        number = to_number(raw)
        if number is None:
            return None
        # A unit-less field accepts any unit; a "%" power factor is the one common exception.
        if target is not None and unit:
            number = convert(number, unit, target)
            if number is None:
                return None
        if (low is not None and number < low) or (high is not None and number > high):
            return None
        return round(number, 6)
    if kind == "bool":
        return raw if isinstance(raw, bool) else None
    if kind == "onoff":
        return raw if raw in ("ON", "OFF") else None
    return raw if raw in kind else None


def is_known_unit(unit):
    return unit in _UNITS
