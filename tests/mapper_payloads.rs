//! Mapping over real payload shapes, through the real path: each fixture package of
//! `tests/fixtures/payloads` (Zigbee2MQTT state messages, Home Assistant MQTT discovery entities
//! from Tasmota and ESPHome, Modbus holding registers) is validated and its raw envelope
//! registered; its messages are encoded and written to `raw.<plugin>` on an embedded log; the
//! mapper role decodes and maps them; the test reads `device-events` and `dlq` back.

mod mapper_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mapper_support::{Bench, latest_metadata, latest_states, messages};
use serde_json::json;
use tessera_codec::wire;
use tessera_log::membership::LocalGroup;
use tessera_model::{EventBody, StateValue};

const PACKAGES: [&str; 3] = ["zigbee2mqtt", "ha-discovery", "modbus"];
const WAIT: Duration = Duration::from_secs(90);

fn float(states: &BTreeMap<String, StateValue>, key: &str) -> f64 {
    match states.get(key) {
        Some(StateValue::Float(f)) => *f,
        other => panic!("{key}: expected a number, found {other:?}"),
    }
}

fn assert_close(states: &BTreeMap<String, StateValue>, key: &str, expected: f64) {
    let found = float(states, key);
    assert!((found - expected).abs() < 1e-6, "{key}: expected {expected}, found {found}");
}

fn state_count(events: &[tessera_model::DeviceEvent]) -> usize {
    events.iter().filter(|e| matches!(e.body, EventBody::StateReported { .. })).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_map_to_unified_values() {
    let bench = Bench::open().await;
    let mut dirs = Vec::new();
    let mut good = 0;
    for name in PACKAGES {
        let (dir, package, envelope) = bench.package(name).await;
        dirs.push(dir);
        for m in messages(name).into_iter().filter(|m| m.expect.is_none()) {
            bench.append_raw(&package, &envelope, &m.file, &m.record, &m.payload).await;
            good += 1;
        }
    }
    let mapper = bench.start_mapper(dirs, Arc::new(LocalGroup::new()));
    let (events, rejections) =
        bench.until("a state report per message", WAIT, |events, _| state_count(events) >= good).await;
    mapper.stop().await;
    assert!(rejections.is_empty(), "unexpected rejections: {rejections:#?}");
    let s = latest_states(&events);
    let meta = latest_metadata(&events);

    // Zigbee2MQTT: Aqara climate sensor.
    let aqara = "zigbee2mqtt:0x00158d0001e1a2b3";
    assert_close(&s, &format!("{aqara}/temperature"), 22.35);
    assert_close(&s, &format!("{aqara}/humidity"), 44.58);
    assert_close(&s, &format!("{aqara}/pressure"), 1012.3);
    assert_close(&s, &format!("{aqara}/battery"), 91.0);
    assert_close(&s, &format!("{aqara}/voltage"), 2.985);
    assert_close(&s, &format!("{aqara}/link_quality"), 87.0);
    assert_eq!(s[&format!("{aqara}/power_source")], StateValue::Text("battery".into()));
    assert_eq!(meta[aqara].device_class, "climate_sensor");
    assert_eq!(
        (meta[aqara].manufacturer.as_deref(), meta[aqara].model.as_deref()),
        (Some("Aqara"), Some("WSDCGQ11LM"))
    );
    assert_eq!(meta[aqara].name, "living_room/climate");
    assert!(events.iter().any(|e| e.device_id == aqara && e.body == EventBody::Availability { online: true }));

    // Zigbee2MQTT: IKEA bulb, color temperature in mired converted by a CEL expression.
    let ikea = "zigbee2mqtt:0x000d6ffffe7c2a1b";
    assert_eq!(s[&format!("{ikea}/switch")], StateValue::Bool(true));
    assert_close(&s, &format!("{ikea}/brightness"), 100.0);
    assert_close(&s, &format!("{ikea}/color_temperature"), 1_000_000.0 / 370.0);
    assert_eq!(s[&format!("{ikea}/power_source")], StateValue::Text("mains".into()));
    assert_eq!(meta[ikea].device_class, "light");
    assert_eq!(meta[ikea].manufacturer.as_deref(), Some("IKEA"));
    assert_eq!(meta[ikea].firmware.as_deref(), Some("2.3.093"));
    assert_eq!(meta[ikea].actions, ["set_brightness", "set_color_temperature", "toggle", "turn_off", "turn_on"]);

    // Zigbee2MQTT: Hue motion sensor; `motion` in the mapping is the catalog's `occupancy`.
    let hue = "zigbee2mqtt:0x0017880106f2c3d4";
    assert_eq!(s[&format!("{hue}/occupancy")], StateValue::Bool(true));
    assert_close(&s, &format!("{hue}/illuminance"), 6.0);
    assert_close(&s, &format!("{hue}/temperature"), 21.67);
    assert_eq!(meta[hue].device_class, "motion_sensor");
    assert!(!s.contains_key(&format!("{hue}/humidity")));

    // Home Assistant discovery: a Tasmota sensor reporting in °F, two entities of one device.
    let tasmota = "ha-discovery:8A6F3C";
    assert_close(&s, &format!("{tasmota}/temperature"), 22.5);
    assert_close(&s, &format!("{tasmota}/humidity"), 48.1);
    assert_eq!(meta[tasmota].capabilities, ["humidity", "temperature"]);
    assert_eq!((meta[tasmota].name.as_str(), meta[tasmota].model.as_deref()), ("Garage TH", Some("Sonoff TH")));
    assert_eq!(meta[tasmota].firmware.as_deref(), Some("13.2.0(tasmota)"));

    // Home Assistant discovery: an ESPHome RGB light (JSON schema).
    let esphome = "ha-discovery:84f3eb1a2b3c";
    assert_eq!(s[&format!("{esphome}/switch")], StateValue::Bool(true));
    assert_close(&s, &format!("{esphome}/brightness"), 200.0 * 100.0 / 255.0);
    let StateValue::Text(color) = &s[&format!("{esphome}/color")] else { panic!("color is text") };
    assert_eq!(serde_json::from_str::<serde_json::Value>(color).unwrap(), json!({"r": 255, "g": 120, "b": 0}));
    assert!(!s.contains_key(&format!("{esphome}/color_temperature")));
    assert_eq!(meta[esphome].manufacturer.as_deref(), Some("espressif"));

    // Modbus: scaled u16, signed i32 over two registers, u32 energy in Wh, signed i16.
    let kitchen = "modbus:meter-kitchen";
    assert_close(&s, &format!("{kitchen}/voltage"), 230.1);
    assert_close(&s, &format!("{kitchen}/current"), 5.23);
    assert_close(&s, &format!("{kitchen}/power"), 1187.0);
    assert_close(&s, &format!("{kitchen}/energy"), 123.456);
    assert_close(&s, &format!("{kitchen}/frequency"), 49.98);
    assert_close(&s, &format!("{kitchen}/power_factor"), 0.968);
    assert_eq!(meta[kitchen].device_class, "power_meter");
    let solar = "modbus:meter-solar";
    assert_close(&s, &format!("{solar}/voltage"), 241.5);
    assert_close(&s, &format!("{solar}/power"), -1234.0);
    assert_close(&s, &format!("{solar}/energy"), 40.0);
    assert_close(&s, &format!("{solar}/power_factor"), -1.0);
}

fn zigzag(n: i64) -> Vec<u8> {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_name_the_field_and_rule_and_healthy_records_keep_flowing() {
    let bench = Bench::open().await;
    let mut dirs = Vec::new();
    // (topic, offset) → expected (field, rule); the healthy records' (topic, offset).
    let mut expected = BTreeMap::new();
    let mut healthy = Vec::new();
    for name in PACKAGES {
        let (dir, package, envelope) = bench.package(name).await;
        dirs.push(dir);
        let topic = bench.topics.raw(&package.manifest.id);
        // Bad and good records interleaved: each bad one is followed by every good one.
        for bad in messages(name).into_iter().filter(|m| m.expect.is_some()) {
            let (_, offset) = bench.append_raw(&package, &envelope, &bad.file, &bad.record, &bad.payload).await;
            expected.insert((topic.clone(), offset), bad.expect.clone().unwrap());
            for m in messages(name).into_iter().filter(|m| m.expect.is_none()) {
                let (_, offset) = bench.append_raw(&package, &envelope, &m.file, &m.record, &m.payload).await;
                healthy.push((topic.clone(), offset));
            }
        }
        if name == "zigbee2mqtt" {
            // Records that do not decode: not framed, an unknown schema id, a string length of
            // 2^50 from a few bytes, a record cut short.
            let hostile: [(&str, Vec<u8>, &str); 4] = [
                ("unframed", b"\x01garbage".to_vec(), "$"),
                ("unknown-id", wire::frame(0x7fff_fff0, &[0]), "$.schema_id"),
                ("huge-string", wire::frame(envelope.id, &zigzag(1 << 50)), "$"),
                (
                    "truncated",
                    {
                        let m = messages(name).into_iter().find(|m| m.expect.is_none()).unwrap();
                        let obs = tessera_codec::raw::RawObservation {
                            plugin_id: name.into(),
                            observed_at_ms: 1,
                            received_at_ms: 2,
                            record: m.record.clone(),
                            payload: m.payload.clone(),
                        };
                        let mut bytes = bench.codec.encode_raw(&envelope, &obs).unwrap();
                        bytes.truncate(bytes.len() - 3);
                        bytes
                    },
                    "$",
                ),
            ];
            for (key, bytes, field) in hostile {
                let (_, offset) = bench.append_bytes(name, key, bytes).await;
                expected.insert((topic.clone(), offset), (field.to_owned(), "decode".to_owned()));
            }
            let m = messages(name).into_iter().find(|m| m.expect.is_none()).unwrap();
            let (_, offset) = bench.append_raw(&package, &envelope, &m.file, &m.record, &m.payload).await;
            healthy.push((topic.clone(), offset));
        }
    }
    let mapper = bench.start_mapper(dirs, Arc::new(LocalGroup::new()));
    let (events, rejections) = bench
        .until("every rejection and every healthy record", WAIT, |events, rejections| {
            rejections.len() >= expected.len() && state_count(events) >= healthy.len()
        })
        .await;
    mapper.stop().await;

    assert_eq!(rejections.len(), expected.len(), "{rejections:#?}");
    for r in &rejections {
        let (field, rule) = &expected[&(r.source_topic.clone(), r.source_offset as u64)];
        assert_eq!(r.errors.len(), 1, "{r:?}");
        assert_eq!((&r.errors[0].field, &r.errors[0].rule), (field, rule), "rejection {r:#?}");
        assert_eq!(r.stage, if rule == "decode" { "decode" } else { "mapping" });
        assert!(!r.errors[0].expected.is_empty() && !r.errors[0].found.is_empty(), "{r:?}");
        assert!(r.original.is_some(), "small originals are kept");
    }
    let found = rejections.iter().find(|r| r.errors[0].field == "payload.humidity").unwrap();
    assert_eq!(found.errors[0].found, "140.5");
    let huge = rejections.iter().find(|r| r.errors[0].found.contains("bytes are left")).expect("length refused");
    assert_eq!(huge.errors[0].rule, "decode");

    // Every healthy record, before and after the bad ones, became a state report with the id
    // derived from its coordinates.
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    for (topic, offset) in &healthy {
        assert!(ids.contains(format!("{topic}/0/{offset}/state").as_str()), "no state event for {topic}/{offset}");
    }
    // The offsets were committed past the rejected records.
    for name in PACKAGES {
        let topic = bench.topics.raw(name);
        let end = bench.log.end_offset(&topic, 0).await.unwrap();
        assert_eq!(bench.log.committed("mapper", &topic, 0).await.unwrap(), Some(end), "{topic}");
    }
}
