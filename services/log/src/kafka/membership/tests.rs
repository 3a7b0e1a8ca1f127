//! Kafka membership against a real `tansu` broker: partitions are divided between two members and
//! move to the survivor when one leaves cleanly and when one is killed.

use std::sync::Arc;

use super::*;
use crate::Log;
use crate::kafka::tests::{Mock, Tansu, open_mock};

/// Set (to the bootstrap servers) in the child process that plays a member which then crashes.
const CHILD_BOOTSTRAP: &str = "TESSERA_MEMBERSHIP_CHILD_BOOTSTRAP";
const GROUP: &str = "membership-test";
const TOPIC: &str = "raw.group-test";

fn all_partitions() -> BTreeSet<TopicPartition> {
    (0..4).map(|p| (TOPIC.to_owned(), p)).collect()
}

/// Plays the worker pool: releases every partition as soon as it leaves the assignment (holding
/// the member weakly, so that dropping it leaves the group).
fn release_revoked(member: &Arc<dyn GroupMember>) {
    let mut assignment = member.assignment();
    let member = Arc::downgrade(member);
    tokio::spawn(async move {
        let mut before = assignment.borrow_and_update().clone();
        while assignment.changed().await.is_ok() {
            let now = assignment.borrow_and_update().clone();
            let Some(member) = member.upgrade() else { break };
            for gone in before.difference(&now) {
                member.release(gone);
            }
            before = now;
        }
    });
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn divided(a: &Arc<dyn GroupMember>, b: &BTreeSet<TopicPartition>) -> bool {
    let x = a.assignment().borrow().clone();
    !x.is_empty()
        && !b.is_empty()
        && x.is_disjoint(b)
        && x.union(b).cloned().collect::<BTreeSet<_>>() == all_partitions()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_divided_and_move_to_the_survivor() {
    let tansu = Tansu::start();
    let log = crate::open(&tansu.url()).await.unwrap();
    log.create_topic(TOPIC, 4).await.unwrap();
    let membership = KafkaMembership::new(&format!("127.0.0.1:{}", tansu.port), GROUP, &[]).unwrap();

    let a: Arc<dyn GroupMember> = Arc::from(membership.join(all_partitions()));
    release_revoked(&a);
    wait_until("the first member owns every partition", || *a.assignment().borrow() == all_partitions()).await;

    let b: Arc<dyn GroupMember> = Arc::from(membership.join(all_partitions()));
    release_revoked(&b);
    wait_until("two members divide the partitions", || divided(&a, &b.assignment().borrow())).await;

    drop(b);
    wait_until("the survivor owns every partition", || *a.assignment().borrow() == all_partitions()).await;
}

/// On tansu, whose coordinator answers the survivor's rejoin with the old plan (see the module
/// documentation), the survivor joins again as a new member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_a_killed_member_move_to_the_survivor_on_tansu() {
    let tansu = Tansu::start();
    let log = crate::open(&tansu.url()).await.unwrap();
    killed_member_moves(&format!("127.0.0.1:{}", tansu.port), log.as_ref()).await;
}

/// librdkafka's mock cluster follows the protocol: the rejoin forms a new generation at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_a_killed_member_move_to_the_survivor_on_the_mock_cluster() {
    let mock = Mock::start(1);
    let log = open_mock(&mock).await;
    killed_member_moves(&mock.bootstrap, log.as_ref()).await;
}

/// The other member is a separate process (this test binary, running [`crashing_member`]) that is
/// SIGKILLed: it never leaves, so its partitions move only once its session expired.
async fn killed_member_moves(bootstrap: &str, log: &dyn Log) {
    log.create_topic(TOPIC, 4).await.unwrap();
    let membership = KafkaMembership::new(bootstrap, GROUP, &[]).unwrap();
    let a: Arc<dyn GroupMember> = Arc::from(membership.join(all_partitions()));
    release_revoked(&a);
    wait_until("the first member owns every partition", || *a.assignment().borrow() == all_partitions()).await;

    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "kafka::membership::tests::crashing_member", "--ignored", "--nocapture"])
        .env(CHILD_BOOTSTRAP, bootstrap)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The child holds what `a` gave up; `a` keeps the rest.
    wait_until("the child member took its share", || {
        let mine = a.assignment().borrow().clone();
        !mine.is_empty() && mine.len() < 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.assignment().borrow().len() < 4, "the child member stayed in the group");

    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the survivor owns every partition after the kill", || *a.assignment().borrow() == all_partitions())
        .await;
    // The session timeout is 6 s; the move must follow it, not wait for anything else.
    assert!(killed.elapsed() < Duration::from_secs(30), "partitions moved after {:?}", killed.elapsed());
}

/// Not a test on its own: the member process of the test above. Joins, holds what it is assigned
/// and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the partitions_of_a_killed_member_move_to_the_survivor tests"]
async fn crashing_member() {
    let Ok(bootstrap) = std::env::var(CHILD_BOOTSTRAP) else { return };
    let membership = KafkaMembership::new(&bootstrap, GROUP, &[]).unwrap();
    let member: Arc<dyn GroupMember> = Arc::from(membership.join(all_partitions()));
    release_revoked(&member);
    tokio::time::sleep(Duration::from_secs(600)).await;
}
