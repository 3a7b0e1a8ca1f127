//! Conversion between UCUM units of the same dimension (°F→°C, mV→V, Wh→kWh, ...).

/// A unit expressed in its dimension's base unit: `base = value * factor + offset`.
struct UnitDef {
    code: &'static str,
    dimension: &'static str,
    factor: f64,
    offset: f64,
}

const fn unit(code: &'static str, dimension: &'static str, factor: f64, offset: f64) -> UnitDef {
    UnitDef { code, dimension, factor, offset }
}

const UNITS: &[UnitDef] = &[
    unit("Cel", "temperature", 1.0, 0.0),
    unit("K", "temperature", 1.0, -273.15),
    unit("[degF]", "temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    unit("%", "ratio", 1.0, 0.0),
    unit("1", "ratio", 100.0, 0.0),
    unit("Pa", "pressure", 0.01, 0.0),
    unit("hPa", "pressure", 1.0, 0.0),
    unit("kPa", "pressure", 10.0, 0.0),
    unit("bar", "pressure", 1000.0, 0.0),
    unit("mbar", "pressure", 1.0, 0.0),
    unit("V", "voltage", 1.0, 0.0),
    unit("mV", "voltage", 0.001, 0.0),
    unit("kV", "voltage", 1000.0, 0.0),
    unit("A", "current", 1.0, 0.0),
    unit("mA", "current", 0.001, 0.0),
    unit("W", "power", 1.0, 0.0),
    unit("kW", "power", 1000.0, 0.0),
    unit("mW", "power", 0.001, 0.0),
    unit("W.h", "energy", 0.001, 0.0),
    unit("kW.h", "energy", 1.0, 0.0),
    unit("MW.h", "energy", 1000.0, 0.0),
    unit("J", "energy", 1.0 / 3_600_000.0, 0.0),
    unit("Hz", "frequency", 1.0, 0.0),
    unit("L/min", "flow", 1.0, 0.0),
    unit("L/h", "flow", 1.0 / 60.0, 0.0),
    unit("m3/h", "flow", 1000.0 / 60.0, 0.0),
    unit("m3", "volume", 1.0, 0.0),
    unit("L", "volume", 0.001, 0.0),
    unit("s", "time", 1.0, 0.0),
    unit("min", "time", 60.0, 0.0),
    unit("h", "time", 3600.0, 0.0),
    unit("ms", "time", 0.001, 0.0),
    unit("lx", "illuminance", 1.0, 0.0),
    unit("K_color", "color_temperature", 1.0, 0.0),
    unit("[ppm]", "concentration", 1.0, 0.0),
    unit("ug/m3", "mass_concentration", 1.0, 0.0),
    unit("dB", "level", 1.0, 0.0),
    unit("dB[mW]", "power_level", 1.0, 0.0),
];

fn lookup(code: &str) -> Option<&'static UnitDef> {
    UNITS.iter().find(|u| u.code == code)
}

/// Whether a value in `from` can be expressed in `to`.
pub fn compatible(from: &str, to: &str) -> bool {
    from == to || matches!((lookup(from), lookup(to)), (Some(a), Some(b)) if a.dimension == b.dimension)
}

/// Converts `value` from unit `from` to unit `to`; `None` when the units are unknown or of
/// different dimensions.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    if from == to {
        return Some(value);
    }
    let (a, b) = (lookup(from)?, lookup(to)?);
    if a.dimension != b.dimension {
        return None;
    }
    let base = value * a.factor + a.offset;
    Some((base - b.offset) / b.factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn converts_common_units() {
        assert!(close(convert(212.0, "[degF]", "Cel").unwrap(), 100.0));
        assert!(close(convert(0.0, "Cel", "K").unwrap(), 273.15));
        assert!(close(convert(3300.0, "mV", "V").unwrap(), 3.3));
        assert!(close(convert(1500.0, "W.h", "kW.h").unwrap(), 1.5));
        assert!(close(convert(101_325.0, "Pa", "hPa").unwrap(), 1013.25));
        assert!(close(convert(0.5, "1", "%").unwrap(), 50.0));
    }

    #[test]
    fn refuses_across_dimensions() {
        assert_eq!(convert(1.0, "V", "A"), None);
        assert!(!compatible("W", "kW.h"));
        assert!(compatible("W", "kW"));
        assert_eq!(convert(1.0, "furlong", "m"), None);
    }
}
