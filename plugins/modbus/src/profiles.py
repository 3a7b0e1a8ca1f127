"""Register maps of common energy meters, from their vendors' Modbus protocol documents.

Addresses are 0-based protocol addresses (the register number in the documents minus its
30001/40001 base). A device's own `registers` are added to its profile's.
"""


def _reg(name, table, address, kind, unit=None, capability=None, scale=1.0, word_order="big"):
    out = {"name": name, "table": table, "address": address, "type": kind, "word_order": word_order, "scale": scale}
    if unit:
        out["unit"] = unit
    if capability:
        out["capability"] = capability
    return out


def _sdm630():
    # Eastron SDM630 Modbus V2: input registers (function 4), IEEE 754 float32, high word first.
    f = lambda name, addr, unit, cap=None: _reg(name, "input", addr, "f32", unit, cap)  # noqa: E731
    return [
        f("voltage_l1", 0x0000, "V"), f("voltage_l2", 0x0002, "V"), f("voltage_l3", 0x0004, "V"),
        f("current_l1", 0x0006, "A"), f("current_l2", 0x0008, "A"), f("current_l3", 0x000A, "A"),
        f("power_l1", 0x000C, "W"), f("power_l2", 0x000E, "W"), f("power_l3", 0x0010, "W"),
        f("voltage_ln_average", 0x002A, "V", "voltage"),  # 30043 average line to neutral volts
        f("current_sum", 0x0030, "A", "current"),  # 30049 sum of line currents
        f("power_total", 0x0034, "W", "power"),  # 30053 total system power
        f("power_factor_total", 0x003E, None, "power_factor"),  # 30063
        f("frequency", 0x0046, "Hz", "frequency"),  # 30071
        f("energy_import", 0x0048, "kWh", "energy"),  # 30073 import kWh
        f("energy_export", 0x004A, "kWh"),  # 30075 export kWh
        f("energy_total", 0x0156, "kWh"),  # 30343 total kWh
    ]


def _em24():
    # Carlo Gavazzi EM24 (Ethernet / application H): holding registers (function 3), INT32 with
    # the least significant word first, fixed-point scales.
    def i32(name, addr, unit, scale, cap=None):
        return _reg(name, "holding", addr, "i32", unit, cap, scale, "little")
    return [
        i32("voltage_l1", 0x0000, "V", 0.1), i32("voltage_l2", 0x0002, "V", 0.1), i32("voltage_l3", 0x0004, "V", 0.1),
        i32("current_l1", 0x000C, "A", 0.001), i32("current_l2", 0x000E, "A", 0.001),
        i32("current_l3", 0x0010, "A", 0.001),
        i32("power_l1", 0x0012, "W", 0.1), i32("power_l2", 0x0014, "W", 0.1), i32("power_l3", 0x0016, "W", 0.1),
        i32("voltage_ln_system", 0x0024, "V", 0.1, "voltage"),
        i32("power_system", 0x0028, "W", 0.1, "power"),
        _reg("power_factor_system", "holding", 0x0031, "i16", None, "power_factor", 0.001),
        _reg("frequency", "holding", 0x0033, "u16", "Hz", "frequency", 0.1),
        i32("energy_import", 0x0034, "kWh", 0.1, "energy"),
        i32("energy_export", 0x004E, "kWh", 0.1),
    ]


PROFILES = {
    "eastron_sdm630": {"manufacturer": "Eastron", "model": "SDM630", "device_class": "power_meter",
                       "registers": _sdm630()},
    "carlo_gavazzi_em24": {"manufacturer": "Carlo Gavazzi", "model": "EM24", "device_class": "power_meter",
                           "registers": _em24()},
}
