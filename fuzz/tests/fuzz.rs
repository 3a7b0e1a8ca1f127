//! The fuzz targets, run for a bounded time on every test run (CI included): 30 s each by
//! default, `TESSERA_FUZZ_SECONDS` per target to change it. A fixed seed per run of the day keeps
//! failures reproducible (`tessera-fuzz <target> <seconds> <seed>`) while runs still explore.

use std::time::Duration;

use tessera_fuzz::{Target, run};

fn budget() -> Duration {
    let seconds = std::env::var("TESSERA_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    Duration::from_secs(seconds)
}

fn seed() -> u64 {
    std::env::var("TESSERA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let days =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
        days.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

fn check(target: Target) {
    let seed = seed();
    match run(target, budget(), seed) {
        Ok(report) => {
            println!("{target:?}: {} inputs ({} accepted) with seed {seed}, no crash", report.execs, report.accepted);
            assert!(report.execs > 0, "the harness ran no input");
            assert!(report.accepted > 0, "no input was accepted: the seeds are broken");
        }
        Err(crash) => {
            panic!("{target:?} crashed with seed {seed}: {} (input saved to {:?})", crash.message, crash.saved)
        }
    }
}

#[test]
fn contract_parsing_survives_mutated_packages() {
    check(Target::Contract);
}

#[test]
fn datum_decoding_survives_mutated_records() {
    check(Target::Datum);
}
