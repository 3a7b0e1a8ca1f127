//! Reading counters out of the Prometheus text exposition that `/metrics` serves.

/// Sums every series of `name` whose labels include `label` (when given).
pub fn sum(text: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(inner) => match inner.split_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            // A longer metric name that merely starts with `name`.
            None if !rest.starts_with(' ') => continue,
            None => ("", rest),
        };
        if let Some((key, wanted)) = label
            && !labels.split(',').any(|pair| pair.split_once('=') == Some((key, &format!("\"{wanted}\""))))
        {
            continue;
        }
        if let Some(v) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            total += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE tessera_projector_records_total counter\n\
        tessera_projector_records_total{topic=\"tessera.device-events\"} 1200\n\
        tessera_projector_records_total{topic=\"tessera.governance\"} 7\n\
        tessera_projector_records_total_extra 5\n\
        tessera_mapper_lag_records{topic=\"tessera.raw.a\"} 3\n\
        tessera_mapper_lag_records{topic=\"tessera.raw.b\"} 4\n\
        tessera_api_changes_total 9\n";

    #[test]
    fn sums_series_and_filters_by_label() {
        assert_eq!(sum(TEXT, "tessera_projector_records_total", None), 1207.0);
        assert_eq!(sum(TEXT, "tessera_projector_records_total", Some(("topic", "tessera.device-events"))), 1200.0);
        assert_eq!(sum(TEXT, "tessera_mapper_lag_records", None), 7.0);
        assert_eq!(sum(TEXT, "tessera_api_changes_total", None), 9.0);
        assert_eq!(sum(TEXT, "tessera_absent_total", None), 0.0);
    }
}
