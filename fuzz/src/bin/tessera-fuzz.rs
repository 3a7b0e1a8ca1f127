//! Runs the fuzz targets for as long as asked:
//! `cargo run --release -p tessera-fuzz -- [contract|datum|all] [SECONDS] [SEED]`.

use std::process::ExitCode;
use std::time::Duration;

use tessera_fuzz::{Target, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("all", String::as_str);
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let targets: &[Target] = match which {
        "contract" => &[Target::Contract],
        "datum" => &[Target::Datum],
        "all" => &[Target::Contract, Target::Datum],
        other => {
            eprintln!("unknown target `{other}`; use contract, datum or all");
            return ExitCode::FAILURE;
        }
    };
    let each = Duration::from_secs(seconds) / targets.len() as u32;
    for target in targets {
        match run(*target, each, seed) {
            Ok(report) => {
                println!("{target:?}: {} inputs, {} accepted, seed {seed}, no crash", report.execs, report.accepted)
            }
            Err(crash) => {
                eprintln!("{target:?}: CRASH with seed {seed}: {} (input saved to {:?})", crash.message, crash.saved);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
