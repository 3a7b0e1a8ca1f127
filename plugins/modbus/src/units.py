"""Conversion between the units registers are declared in and the record's documented units."""

_UNITS = {
    "Cel": ("temperature", 1.0, 0.0), "°C": ("temperature", 1.0, 0.0), "K": ("temperature", 1.0, -273.15),
    "[degF]": ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0), "°F": ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    "%": ("ratio", 1.0, 0.0), "1": ("ratio", 100.0, 0.0),
    "hPa": ("pressure", 1.0, 0.0), "Pa": ("pressure", 0.01, 0.0), "kPa": ("pressure", 10.0, 0.0),
    "mbar": ("pressure", 1.0, 0.0), "bar": ("pressure", 1000.0, 0.0),
    "V": ("voltage", 1.0, 0.0), "mV": ("voltage", 0.001, 0.0), "kV": ("voltage", 1000.0, 0.0),
    "A": ("current", 1.0, 0.0), "mA": ("current", 0.001, 0.0),
    "W": ("power", 1.0, 0.0), "kW": ("power", 1000.0, 0.0), "MW": ("power", 1_000_000.0, 0.0),
    "W.h": ("energy", 0.001, 0.0), "Wh": ("energy", 0.001, 0.0), "kW.h": ("energy", 1.0, 0.0),
    "kWh": ("energy", 1.0, 0.0), "MW.h": ("energy", 1000.0, 0.0), "MWh": ("energy", 1000.0, 0.0),
    "Hz": ("frequency", 1.0, 0.0),
    "L/min": ("flow", 1.0, 0.0), "L/h": ("flow", 1.0 / 60.0, 0.0), "m3/h": ("flow", 1000.0 / 60.0, 0.0),
    "m3": ("volume", 1.0, 0.0), "L": ("volume", 0.001, 0.0),
}


def known(unit):
    return unit in _UNITS


def convert(value, from_unit, to_unit):
    """`value` in `from_unit` expressed in `to_unit`, or None when they do not convert."""
    if from_unit == to_unit or from_unit is None or to_unit is None:
        return value
    a, b = _UNITS.get(from_unit), _UNITS.get(to_unit)
    if a is None or b is None or a[0] != b[0]:
        return None
    return (value * a[1] + a[2] - b[2]) / b[1]
