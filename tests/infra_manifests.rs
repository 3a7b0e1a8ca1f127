//! Validates `infra/` (compose file, Kubernetes manifests, Dockerfile) with
//! `tests/infra/check_manifests.py`: no Docker engine or cluster is available in CI, so the
//! manifests are checked against the Kubernetes and Compose schemas and our own invariants.

use std::process::Command;

#[test]
fn infra_manifests_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output =
        Command::new("python3").arg(root.join("tests/infra/check_manifests.py")).output().expect("run python3");
    assert!(
        output.status.success(),
        "infra manifests invalid:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
