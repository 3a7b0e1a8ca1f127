//! Kafka membership against a real `tansu` broker: partitions are divided between two members and
//! move to the survivor when one leaves.

use std::sync::Arc;

use super::*;

/// A `tansu` broker process with in-memory storage on a free loopback port; killed on drop.
struct Tansu {
    child: std::process::Child,
    port: u16,
}

impl Tansu {
    fn start() -> Tansu {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("`tansu` on PATH (scripts/install.d/10-tansu.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tansu { child, port }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_divided_and_move_to_the_survivor() {
    let tansu = Tansu::start();
    let log = tessera_log::open(&format!("kafka://127.0.0.1:{}", tansu.port)).await.unwrap();
    log.create_topic("raw.group-test", 4).await.unwrap();
    let all: BTreeSet<TopicPartition> = (0..4).map(|p| ("raw.group-test".to_owned(), p)).collect();
    let membership = KafkaMembership::new(&format!("127.0.0.1:{}", tansu.port), "membership-test", &[]).unwrap();

    let a: Arc<dyn GroupMember> = Arc::from(membership.join(all.clone()));
    release_revoked(&a);
    wait_until("the first member owns every partition", || *a.assignment().borrow() == all).await;

    let b: Arc<dyn GroupMember> = Arc::from(membership.join(all.clone()));
    release_revoked(&b);
    wait_until("two members divide the partitions", || {
        let (x, y) = (a.assignment().borrow().clone(), b.assignment().borrow().clone());
        !x.is_empty() && !y.is_empty() && x.is_disjoint(&y) && x.union(&y).cloned().collect::<BTreeSet<_>>() == all
    })
    .await;

    drop(b);
    wait_until("the survivor owns every partition", || *a.assignment().borrow() == all).await;
}
