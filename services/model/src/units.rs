//! Conversion between UCUM units of the same dimension (°F→°C, mV→V, Wh→kWh, mired→K, ...).
//!
//! Units are UCUM codes (`Cel`, `kW.h`, `[ppm]`). Devices and Home Assistant discovery payloads
//! often spell units with the common symbols (`°C`, `kWh`, `µg/m³`, `dBm`): [`normalize`] maps
//! those to their UCUM code, and every function here accepts either spelling.

/// How a unit relates to its dimension's base unit.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// `base = value * factor + offset`.
    Linear { factor: f64, offset: f64 },
    /// `base = numerator / value` (mired ↔ kelvin: the one reciprocal unit devices use).
    Reciprocal { numerator: f64 },
}

struct UnitDef {
    code: &'static str,
    dimension: &'static str,
    scale: Scale,
}

const fn unit(code: &'static str, dimension: &'static str, factor: f64, offset: f64) -> UnitDef {
    UnitDef { code, dimension, scale: Scale::Linear { factor, offset } }
}

/// Every known unit. A code may appear in more than one dimension (`K` is both a temperature and
/// a color temperature): conversion picks the dimension both units share.
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
    unit("[psi]", "pressure", 68.947_572_93, 0.0),
    unit("[in_i'Hg]", "pressure", 33.863_886_67, 0.0),
    unit("mm[Hg]", "pressure", 1.333_223_874, 0.0),
    unit("V", "voltage", 1.0, 0.0),
    unit("mV", "voltage", 0.001, 0.0),
    unit("kV", "voltage", 1000.0, 0.0),
    unit("A", "current", 1.0, 0.0),
    unit("mA", "current", 0.001, 0.0),
    unit("uA", "current", 0.000_001, 0.0),
    unit("W", "power", 1.0, 0.0),
    unit("kW", "power", 1000.0, 0.0),
    unit("MW", "power", 1_000_000.0, 0.0),
    unit("mW", "power", 0.001, 0.0),
    unit("W.h", "energy", 0.001, 0.0),
    unit("kW.h", "energy", 1.0, 0.0),
    unit("MW.h", "energy", 1000.0, 0.0),
    unit("J", "energy", 1.0 / 3_600_000.0, 0.0),
    unit("kJ", "energy", 1.0 / 3_600.0, 0.0),
    unit("Hz", "frequency", 1.0, 0.0),
    unit("kHz", "frequency", 1000.0, 0.0),
    unit("L/min", "flow", 1.0, 0.0),
    unit("L/h", "flow", 1.0 / 60.0, 0.0),
    unit("L/s", "flow", 60.0, 0.0),
    unit("m3/h", "flow", 1000.0 / 60.0, 0.0),
    unit("m3/s", "flow", 60_000.0, 0.0),
    unit("[gal_us]/min", "flow", 3.785_411_784, 0.0),
    unit("[cft_i]/h", "flow", 28.316_846_592 / 60.0, 0.0),
    unit("m3", "volume", 1.0, 0.0),
    unit("L", "volume", 0.001, 0.0),
    unit("mL", "volume", 0.000_001, 0.0),
    unit("[gal_us]", "volume", 0.003_785_411_784, 0.0),
    unit("[cft_i]", "volume", 0.028_316_846_592, 0.0),
    unit("s", "time", 1.0, 0.0),
    unit("min", "time", 60.0, 0.0),
    unit("h", "time", 3600.0, 0.0),
    unit("d", "time", 86_400.0, 0.0),
    unit("ms", "time", 0.001, 0.0),
    unit("lx", "illuminance", 1.0, 0.0),
    unit("K", "color_temperature", 1.0, 0.0),
    UnitDef { code: "/MK", dimension: "color_temperature", scale: Scale::Reciprocal { numerator: 1_000_000.0 } },
    unit("[ppm]", "concentration", 1.0, 0.0),
    unit("[ppb]", "concentration", 0.001, 0.0),
    unit("ug/m3", "mass_concentration", 1.0, 0.0),
    unit("mg/m3", "mass_concentration", 1000.0, 0.0),
    unit("dB", "level", 1.0, 0.0),
    unit("dB[mW]", "power_level", 1.0, 0.0),
];

/// Common spellings (Home Assistant, Zigbee2MQTT, Tasmota, ESPHome) and their UCUM codes.
const ALIASES: &[(&str, &str)] = &[
    ("°C", "Cel"),
    ("℃", "Cel"),
    ("°F", "[degF]"),
    ("℉", "[degF]"),
    ("kWh", "kW.h"),
    ("Wh", "W.h"),
    ("MWh", "MW.h"),
    ("ppm", "[ppm]"),
    ("ppb", "[ppb]"),
    ("µg/m³", "ug/m3"),
    ("μg/m³", "ug/m3"),
    ("µg/m3", "ug/m3"),
    ("mg/m³", "mg/m3"),
    ("dBm", "dB[mW]"),
    ("dBA", "dB"),
    ("m³", "m3"),
    ("m³/h", "m3/h"),
    ("m³/s", "m3/s"),
    ("l", "L"),
    ("l/min", "L/min"),
    ("l/h", "L/h"),
    ("psi", "[psi]"),
    ("inHg", "[in_i'Hg]"),
    ("mmHg", "mm[Hg]"),
    ("gal", "[gal_us]"),
    ("gal/min", "[gal_us]/min"),
    ("ft³", "[cft_i]"),
    ("ft³/h", "[cft_i]/h"),
    ("mired", "/MK"),
    ("mirek", "/MK"),
    ("MK-1", "/MK"),
    ("µA", "uA"),
    ("lux", "lx"),
];

/// The UCUM code for `code` if it is a known unit or a known spelling of one.
pub fn normalize(code: &str) -> Option<&'static str> {
    let code = code.trim();
    if let Some(def) = UNITS.iter().find(|u| u.code == code) {
        return Some(def.code);
    }
    ALIASES.iter().find(|(alias, _)| *alias == code).map(|(_, ucum)| *ucum)
}

fn defs(code: &str) -> impl Iterator<Item = &'static UnitDef> {
    let code = normalize(code);
    UNITS.iter().filter(move |u| Some(u.code) == code)
}

/// The definitions of `from` and `to` in a dimension they share.
fn pair(from: &str, to: &str) -> Option<(&'static UnitDef, &'static UnitDef)> {
    defs(from).find_map(|a| defs(to).find(|b| b.dimension == a.dimension).map(|b| (a, b)))
}

/// Whether a value in `from` can be expressed in `to`.
pub fn compatible(from: &str, to: &str) -> bool {
    from == to || pair(from, to).is_some()
}

/// Whether `code` is a known unit (or a known spelling of one).
pub fn known(code: &str) -> bool {
    normalize(code).is_some()
}

/// Converts `value` from unit `from` to unit `to`; `None` when the units are unknown or of
/// different dimensions.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    if from == to {
        return Some(value);
    }
    let (a, b) = pair(from, to)?;
    let base = match a.scale {
        Scale::Linear { factor, offset } => value * factor + offset,
        Scale::Reciprocal { numerator } => numerator / value,
    };
    Some(match b.scale {
        Scale::Linear { factor, offset } => (base - offset) / factor,
        Scale::Reciprocal { numerator } => numerator / base,
    })
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
        assert!(close(convert(400.0, "[ppb]", "[ppm]").unwrap(), 0.4));
        assert!(close(convert(1.0, "[gal_us]", "L").unwrap(), 3.785_411_784));
    }

    #[test]
    fn converts_mired_to_kelvin_reciprocally() {
        assert!(close(convert(250.0, "/MK", "K").unwrap(), 4000.0));
        assert!(close(convert(4000.0, "K", "mired").unwrap(), 250.0));
        // `K` as a temperature still converts to Celsius; as a color temperature it does not.
        assert!(close(convert(300.0, "K", "Cel").unwrap(), 26.85));
        assert_eq!(convert(250.0, "/MK", "Cel"), None);
    }

    #[test]
    fn accepts_common_spellings() {
        assert_eq!(normalize("°C"), Some("Cel"));
        assert_eq!(normalize(" kWh "), Some("kW.h"));
        assert_eq!(normalize("µg/m³"), Some("ug/m3"));
        assert_eq!(normalize("furlong"), None);
        assert!(close(convert(68.0, "°F", "Cel").unwrap(), 20.0));
        assert!(close(convert(2500.0, "Wh", "kW.h").unwrap(), 2.5));
        assert!(compatible("dBm", "dB[mW]"));
    }

    #[test]
    fn refuses_across_dimensions() {
        assert_eq!(convert(1.0, "V", "A"), None);
        assert!(!compatible("W", "kW.h"));
        assert!(compatible("W", "kW"));
        assert_eq!(convert(1.0, "furlong", "m"), None);
    }
}
