//! A stable-Rust fuzz harness for Tessera's hostile-input surfaces: contract parsing and datum
//! decoding (see [`targets`]).
//!
//! `cargo fuzz` needs a nightly compiler; this harness needs none. It mutates seeds with a
//! structure-aware mutator ([`mutate`]: Avro-aware byte edits for datums, JSON-structural edits
//! for schemas), runs each input under `catch_unwind`, and stops at the first panic or at an input
//! slower than [`SLOW_INPUT`]: the input is saved under `fuzz/artifacts/` and returned. A crash
//! that aborts the process (an allocation failure, a stack overflow) fails the run all the same.
//! The `fuzz` test runs both targets for a bounded time in CI; the `tessera-fuzz` binary runs
//! them for as long as asked.

pub mod mutate;
pub mod rng;
pub mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tessera_codec::DecodeLimits;

use crate::rng::Rng;
use crate::targets::{DatumSeed, PackageSeed};

/// An input taking longer than this (in a debug build, on a loaded machine) counts as a hang.
pub const SLOW_INPUT: Duration = Duration::from_secs(5);

/// What a bounded run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Inputs tried.
    pub execs: u64,
    /// Inputs the target accepted (a valid package, a datum that decoded).
    pub accepted: u64,
}

/// The first failing input of a run.
#[derive(Debug)]
pub struct Crash {
    /// What went wrong: the panic message, or how slow the input was.
    pub message: String,
    /// Where the input was saved.
    pub saved: Option<PathBuf>,
}

/// The fuzz targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Whole packages through validation.
    Contract,
    /// Datums through the guard, the decoder and the mapping.
    Datum,
}

fn save(name: &str, bytes: &[u8]) -> Option<PathBuf> {
    let dir = targets::repo().join("fuzz/artifacts");
    std::fs::create_dir_all(&dir).ok()?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{name}-{hash:016x}"));
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs one input, catching a panic and timing it.
fn exec(f: impl FnOnce() -> bool) -> Result<bool, String> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)?;
    let took = started.elapsed();
    if took > SLOW_INPUT {
        return Err(format!("input took {took:?}"));
    }
    Ok(outcome)
}

/// Fuzzes `target` for `budget` from `seed`.
pub fn run(target: Target, budget: Duration, seed: u64) -> Result<Report, Crash> {
    match target {
        Target::Contract => run_contracts(budget, seed),
        Target::Datum => run_datums(budget, seed),
    }
}

fn run_contracts(budget: Duration, seed: u64) -> Result<Report, Crash> {
    let seeds: Vec<PackageSeed> = targets::package_seeds();
    assert!(!seeds.is_empty(), "no seed packages found");
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        let mut files = rng.pick(&seeds).files.clone();
        mutate_package(&mut rng, &mut files);
        report.execs += 1;
        match exec(|| targets::package(&files)) {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(message) => {
                let dump = format!("{files:#?}");
                return Err(Crash { message, saved: save("contract", dump.as_bytes()) });
            }
        }
    }
    Ok(report)
}

/// Mutates one part of a package: mostly a contract file, sometimes the mapping's expressions.
fn mutate_package(rng: &mut Rng, files: &mut tessera_model::package::PackageFiles) {
    if rng.one_in(4)
        && let Some(mapping) = &mut files.mapping
    {
        *mapping = mutate_mapping(rng, mapping);
        return;
    }
    if files.contracts.is_empty() {
        return;
    }
    let i = rng.below(files.contracts.len());
    files.contracts[i].1 = mutate::schema_text(rng, &files.contracts[i].1);
    if rng.one_in(8) {
        let copy = files.contracts[i].clone();
        files.contracts.push((format!("{}x", copy.0), copy.1));
    }
}

const CEL_TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ".",
    "?",
    ":",
    " + ",
    " / 0",
    "1e400",
    "-9223372036854775808",
    "size(",
    "has(",
    "'",
    "\\u0000",
    ".map(x, x)",
    ".all(x, true)",
    "double(",
    "int(",
    " == null",
    "!",
    "&&",
    "||",
    "{'a': 1}",
    "b'\\xff'",
];

/// Inserts CEL tokens into the mapping's quoted strings, or mutates its bytes.
fn mutate_mapping(rng: &mut Rng, text: &str) -> String {
    if rng.one_in(3) {
        return String::from_utf8_lossy(&mutate::bytes(rng, text.as_bytes(), &[])).into_owned();
    }
    let quotes: Vec<usize> = text.match_indices("= \"").map(|(i, _)| i + 3).collect();
    if quotes.is_empty() {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    let at = *rng.pick(&quotes);
    let mut insert = String::new();
    for _ in 0..1 + rng.below(4) {
        let token: &&str = rng.pick(CEL_TOKENS);
        insert.push_str(token);
    }
    out.insert_str(at, &insert);
    out
}

fn run_datums(budget: Duration, seed: u64) -> Result<Report, Crash> {
    let seeds: Vec<DatumSeed> = targets::datum_seeds();
    assert!(!seeds.is_empty(), "no seed datums found");
    let others: Vec<Vec<u8>> = seeds.iter().map(|s| s.datum.clone()).collect();
    let limits = DecodeLimits::default();
    tessera_codec::limits::init();
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        let seed = rng.pick(&seeds);
        let input = if rng.one_in(16) { seed.datum.clone() } else { mutate::bytes(&mut rng, &seed.datum, &others) };
        report.execs += 1;
        match exec(|| targets::datum(seed, &input, &limits)) {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(message) => {
                let mut dump = format!("schema: {}\ndatum: ", seed.schema.canonical_form()).into_bytes();
                dump.extend(input.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes());
                return Err(Crash { message, saved: save("datum", &dump) });
            }
        }
    }
    Ok(report)
}
