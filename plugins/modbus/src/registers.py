"""Register values: data types with word order, scale and offset, and grouping into block reads."""

import math
import struct

# type -> (registers, struct format of the big-endian bytes)
TYPES = {"u16": (1, ">H"), "i16": (1, ">h"), "u32": (2, ">I"), "i32": (2, ">i"), "f32": (2, ">f"),
         "u64": (4, ">Q"), "i64": (4, ">q"), "f64": (4, ">d")}
TABLES = ("holding", "input", "coil", "discrete")


def width(register):
    """How many 16-bit registers (or bits, for coils) a register definition spans."""
    return 1 if register["table"] in ("coil", "discrete") else TYPES[register["type"]][0]


def decode(words, kind, word_order="big"):
    """The number held by `words` (16-bit values, in address order)."""
    if word_order == "little":
        words = list(reversed(words))
    value = struct.unpack(TYPES[kind][1], b"".join(struct.pack(">H", w) for w in words))[0]
    return float(value) if kind.startswith("f") else value


def encode(value, kind, word_order="big"):
    """The words that hold `value`; raises ValueError when it does not fit the type."""
    count, fmt = TYPES[kind]
    if not kind.startswith("f"):
        value = int(round(value))
    try:
        data = struct.pack(fmt, value)
    except struct.error as e:
        raise ValueError(f"{value} does not fit a {kind}: {e}") from None
    words = [struct.unpack(">H", data[i:i + 2])[0] for i in range(0, 2 * count, 2)]
    return list(reversed(words)) if word_order == "little" else words


def scaled(register, raw):
    """A decoded raw value in the register's unit (None for NaN/inf, which meters use for 'no value').

    Rounded to the precision the type carries, so that a float32 230.1 reads 230.1, not 230.10000610.
    """
    value = raw * register.get("scale", 1.0) + register.get("offset", 0.0)
    if not math.isfinite(value):
        return None
    digits = {"f32": 7, "f64": 15}.get(register.get("type"), 12)
    return float(f"{value:.{digits}g}")


def raw_for(register, value):
    """The raw value to write so that the register reads `value`."""
    return (value - register.get("offset", 0.0)) / register.get("scale", 1.0)


def plan(registers, max_gap=0, max_count=125):
    """Groups registers into block reads: [(table, start, count, [registers])], fewest requests first.

    Registers of one table are merged when at most `max_gap` unused addresses lie between them;
    devices that refuse reads across undefined addresses need the default of 0.
    """
    blocks = []
    for table in TABLES:
        limit = 2000 if table in ("coil", "discrete") else max_count
        current = None
        for r in sorted((r for r in registers if r["table"] == table), key=lambda r: r["address"]):
            end = r["address"] + width(r)
            if current and r["address"] <= current[1] + current[2] + max_gap and end - current[1] <= limit:
                current[2] = max(current[2], end - current[1])
                current[3].append(r)
            else:
                current = [table, r["address"], width(r), [r]]
                blocks.append(current)
    return [tuple(b) for b in blocks]
