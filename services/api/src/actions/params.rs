//! Parameters of an invocation, checked against the catalog's definition of the action and then
//! against the plugin's narrower constraints from its `actions.toml`.

use serde_json::{Map, Value as Json};
use tessera_model::Catalog;
use tessera_model::actions::ParamRange;
use tessera_model::catalog::ValueType;

fn bound(b: Option<f64>) -> String {
    b.map_or_else(|| "unbounded".to_owned(), |v| v.to_string())
}

/// Checks `params` of `action`; `narrower(param)` yields the plugin's range for a parameter.
/// Returns the parameters as an object (`null` becomes `{}`), or why they are refused.
pub fn check(
    action: &str,
    params: &Json,
    narrower: impl Fn(&str) -> Option<ParamRange>,
) -> Result<Map<String, Json>, String> {
    let Some((_, def)) = Catalog::builtin().action(action) else {
        return Err(format!("`{action}` is not a catalog action"));
    };
    let given = match params {
        Json::Null => Map::new(),
        Json::Object(map) => map.clone(),
        _ => return Err("params must be an object".into()),
    };
    if let Some(unknown) = given.keys().find(|k| !def.params.iter().any(|p| &p.name == *k)) {
        return Err(format!("`{action}` has no parameter `{unknown}`"));
    }
    for p in &def.params {
        let value = given.get(&p.name).ok_or_else(|| format!("parameter `{}` is required", p.name))?;
        match p.value_type {
            ValueType::Float | ValueType::Int => {
                let n = value.as_f64().ok_or_else(|| format!("parameter `{}` must be a number", p.name))?;
                if p.value_type == ValueType::Int && n.fract() != 0.0 {
                    return Err(format!("parameter `{}` must be an integer", p.name));
                }
                if p.min.is_some_and(|min| n < min) || p.max.is_some_and(|max| n > max) {
                    return Err(format!(
                        "parameter `{}` = {n} is outside [{}, {}]",
                        p.name,
                        bound(p.min),
                        bound(p.max)
                    ));
                }
                if let Some(range) = narrower(&p.name)
                    && (range.min.is_some_and(|min| n < min) || range.max.is_some_and(|max| n > max))
                {
                    return Err(format!(
                        "parameter `{}` = {n} is outside [{}, {}], the range this device's plugin accepts",
                        p.name,
                        bound(range.min),
                        bound(range.max)
                    ));
                }
            }
            ValueType::Bool => {
                value.as_bool().ok_or_else(|| format!("parameter `{}` must be a boolean", p.name))?;
            }
            ValueType::Enum => {
                let s = value.as_str().ok_or_else(|| format!("parameter `{}` must be a string", p.name))?;
                if !p.values.iter().any(|v| v == s) {
                    return Err(format!("parameter `{}` must be one of {:?}", p.name, p.values));
                }
            }
            ValueType::String | ValueType::Color => {}
        }
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn none(_: &str) -> Option<ParamRange> {
        None
    }

    #[test]
    fn parameters_are_checked_against_the_catalog() {
        assert!(check("set_brightness", &json!({"level": 50}), none).is_ok());
        assert!(check("set_brightness", &json!({"level": 150}), none).unwrap_err().contains("outside"));
        assert!(check("set_brightness", &json!({}), none).unwrap_err().contains("required"));
        assert!(check("set_brightness", &json!({"level": 5, "x": 1}), none).unwrap_err().contains("no parameter"));
        assert_eq!(check("toggle", &Json::Null, none), Ok(Map::new()));
        assert!(check("toggle", &json!([1]), none).is_err());
        assert!(check("set_thermostat_mode", &json!({"mode": "warp"}), none).is_err());
        assert!(check("set_color", &json!({"r": 1.5, "g": 0, "b": 0}), none).unwrap_err().contains("integer"));
    }

    #[test]
    fn the_plugin_range_narrows_the_catalog_range() {
        let plugin = |p: &str| (p == "level").then_some(ParamRange { min: Some(10.0), max: Some(80.0) });
        assert!(check("set_brightness", &json!({"level": 80}), plugin).is_ok());
        let refused = check("set_brightness", &json!({"level": 90}), plugin).unwrap_err();
        assert!(refused.contains("[10, 80]") && refused.contains("plugin"), "{refused}");
        assert!(check("set_brightness", &json!({"level": 5}), plugin).is_err());
    }
}
