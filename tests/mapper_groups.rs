//! Scaling: several mapper members share the partitions of a raw topic through a consumer group.
//! Members join, leave and restart (the log too) while records keep arriving; every raw record
//! becomes exactly one state report, never zero and never two. A member that is killed without
//! committing may leave one batch mapped twice, always with the same event ids and values.

mod mapper_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mapper_support::{Bench, Mapper};
use serde_json::json;
use tessera_codec::registry::RegisteredSchema;
use tessera_log::membership::LocalGroup;
use tessera_model::package::Package;
use tessera_model::{DeviceEvent, EventBody};

const PARTITIONS: u32 = 4;
const WAIT: Duration = Duration::from_secs(90);

/// Appends `count` meter readings spread over 20 devices (so over every partition).
async fn write(bench: &Bench, package: &Package, envelope: &RegisteredSchema, from: u32, count: u32) {
    for i in from..from + count {
        let device = format!("meter-{}", i % 20);
        let payload = json!({"device": device, "unit_id": 1, "model": "EM-1PH", "start": 0,
                             "registers": [2300 + i % 100, 500, 0, i, 0, i, 5000, 1000]});
        bench.append_raw(package, envelope, &device, "modbus.HoldingRegisters", &payload).await;
    }
}

/// Every raw record's expected state event id.
async fn expected_ids(bench: &Bench) -> Vec<String> {
    let topic = bench.topics.raw("modbus");
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        for o in 0..bench.log.end_offset(&topic, p).await.unwrap() {
            out.push(format!("{topic}/{p}/{o}/state"));
        }
    }
    out
}

fn state_events(events: &[DeviceEvent]) -> BTreeMap<String, Vec<&DeviceEvent>> {
    let mut out: BTreeMap<String, Vec<&DeviceEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| matches!(e.body, EventBody::StateReported { .. })) {
        out.entry(e.event_id.clone()).or_default().push(e);
    }
    out
}

async fn all_mapped(bench: &Bench, what: &str) -> Vec<DeviceEvent> {
    let expected = expected_ids(bench).await;
    let (events, rejections) = bench
        .until(what, WAIT, |events, _| {
            let states = state_events(events);
            expected.iter().all(|id| states.contains_key(id))
        })
        .await;
    assert!(rejections.is_empty(), "{rejections:#?}");
    events
}

fn start(bench: &Bench, group: &LocalGroup) -> Mapper {
    let dir = mapper_support::fixtures().join("modbus");
    bench.start_mapper(vec![dir], Arc::new(group.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_partitions_without_losing_or_duplicating_events() {
    let bench = Bench::open().await;
    bench.log.create_topic(&bench.topics.raw("modbus"), PARTITIONS).await.unwrap();
    let (_, package, envelope) = bench.package("modbus").await;

    // Two members split the four partitions.
    let group = LocalGroup::new();
    let a = start(&bench, &group);
    let b = start(&bench, &group);
    write(&bench, &package, &envelope, 0, 200).await;
    all_mapped(&bench, "the first 200 records").await;
    let split = group.assignments();
    assert_eq!(split.len(), 2);
    let owned: Vec<usize> = split.values().map(|p| p.len()).collect();
    assert_eq!(owned, [2, 2], "partitions are shared: {split:?}");

    // One leaves while records arrive: the other takes its partitions over.
    let writing = write(&bench, &package, &envelope, 200, 200);
    let (_, ()) = tokio::join!(writing, a.stop());
    all_mapped(&bench, "records written while a member left").await;
    assert_eq!(group.assignments().values().map(|p| p.len()).sum::<usize>(), PARTITIONS as usize);

    // A new member joins while records arrive: partitions move only once released.
    let writing = write(&bench, &package, &envelope, 400, 200);
    let (c, ()) = tokio::join!(async { start(&bench, &group) }, writing);
    all_mapped(&bench, "records written while a member joined").await;
    b.stop().await;
    c.stop().await;

    // Restart everything, the log included, and go on from the committed offsets.
    let bench = bench.reopen().await;
    let (_, package, envelope) = bench.package("modbus").await;
    let group = LocalGroup::new();
    let d = start(&bench, &group);
    let e = start(&bench, &group);
    write(&bench, &package, &envelope, 600, 200).await;
    let events = all_mapped(&bench, "records written after the restart").await;
    d.stop().await;
    e.stop().await;

    let states = state_events(&events);
    let expected = expected_ids(&bench).await;
    assert_eq!(expected.len(), 800);
    let duplicated: Vec<&String> = states.iter().filter(|(_, v)| v.len() > 1).map(|(k, _)| k).collect();
    assert!(duplicated.is_empty(), "state events mapped twice: {duplicated:?}");
    assert_eq!(states.keys().cloned().collect::<Vec<_>>(), {
        let mut sorted = expected.clone();
        sorted.sort();
        sorted
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_loses_nothing_and_repeats_only_identical_events() {
    let bench = Bench::open().await;
    bench.log.create_topic(&bench.topics.raw("modbus"), PARTITIONS).await.unwrap();
    let (_, package, envelope) = bench.package("modbus").await;
    let group = LocalGroup::new();
    let victim = start(&bench, &group);
    let survivor = start(&bench, &group);
    // Kill one member (no commit, no release) in the middle of the stream.
    let writing = write(&bench, &package, &envelope, 0, 400);
    let killing = async {
        bench.until("some progress", WAIT, |events, _| !events.is_empty()).await;
        victim.kill().await;
    };
    tokio::join!(writing, killing);
    // Its partitions are free again once it is gone; a new member picks them up.
    let replacement = start(&bench, &group);
    let events = all_mapped(&bench, "every record despite the kill").await;
    survivor.stop().await;
    replacement.stop().await;

    let states = state_events(&events);
    assert_eq!(states.len(), expected_ids(&bench).await.len());
    for (id, copies) in states {
        // At-least-once: a repeat carries the same id (so the projector applies it once) and the
        // same values.
        assert!(copies.windows(2).all(|w| w[0].body == w[1].body), "{id} repeated with different values");
    }
}
