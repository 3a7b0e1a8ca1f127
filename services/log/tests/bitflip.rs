//! Bit-flip tests through the public API: every single-bit flip of the last batch is treated as a
//! torn write (truncated, earlier records intact), every flip of an earlier batch or of the
//! segment header makes `open` fail with `Corrupt` naming the file and the batch's position.
//!
//! The positions come from the documented format (`src/embedded/frame.rs`): a 20-byte segment
//! header, then per batch a 24-byte header and per record 16 bytes plus key and value.

use std::path::{Path, PathBuf};

use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, LogError, NewRecord};

const SEGMENT_HEADER: u64 = 20;
/// One record with a 1-byte key and a 10-byte value per batch.
const BATCH: u64 = 24 + 16 + 1 + 10;

fn value(i: u64) -> Vec<u8> {
    format!("value-{i:04}").into_bytes()
}

/// A log with one partition holding three batches of one record each; returns the segment path.
async fn build(dir: &Path) -> PathBuf {
    let log = EmbeddedLog::open(dir, EmbeddedOptions::default()).await.unwrap();
    log.create_topic("t", 1).await.unwrap();
    for i in 0..3 {
        let record = NewRecord { key: Some(b"k".to_vec()), value: value(i), timestamp_ms: 0 };
        log.append("t", vec![record]).await.unwrap();
    }
    log.close().await.unwrap();
    let segment = dir.join("t/0/00000000000000000000.log");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), SEGMENT_HEADER + 3 * BATCH);
    segment
}

async fn open(dir: &Path) -> Result<EmbeddedLog, LogError> {
    EmbeddedLog::open(dir, EmbeddedOptions::default()).await
}

/// Flips every bit in `range` one at a time (restoring the file in between) and hands each
/// outcome of `open` to `check`.
async fn sweep(
    dir: &Path,
    segment: &Path,
    range: std::ops::Range<u64>,
    mut check: impl AsyncFnMut(u64, Result<EmbeddedLog, LogError>),
) {
    let original = std::fs::read(segment).unwrap();
    for bit in range.start * 8..range.end * 8 {
        let mut damaged = original.clone();
        damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
        std::fs::write(segment, &damaged).unwrap();
        check(bit, open(dir).await).await;
    }
    std::fs::write(segment, &original).unwrap();
}

#[tokio::test]
async fn flip_in_last_batch_truncates_it() {
    let dir = tempfile::tempdir().unwrap();
    let segment = build(dir.path()).await;
    let last = SEGMENT_HEADER + 2 * BATCH;
    sweep(dir.path(), &segment, last..last + BATCH, async |bit, opened| {
        let log = opened.unwrap_or_else(|e| panic!("flip of bit {bit}: open failed: {e}"));
        assert_eq!(log.end_offset("t", 0).await.unwrap(), 2, "flip of bit {bit}");
        let records = log.read("t", 0, 0, 10).await.unwrap();
        let values: Vec<Vec<u8>> = records.into_iter().map(|r| r.value).collect();
        assert_eq!(values, vec![value(0), value(1)], "flip of bit {bit}");
        log.close().await.unwrap();
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), last, "flip of bit {bit}: not truncated");
    })
    .await;
}

#[tokio::test]
async fn flip_in_earlier_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let segment = build(dir.path()).await;
    for batch in 0..2 {
        let start = SEGMENT_HEADER + batch * BATCH;
        sweep(dir.path(), &segment, start..start + BATCH, async |bit, opened| match opened {
            Err(LogError::Corrupt { path, position, .. }) => {
                assert_eq!(path, segment, "flip of bit {bit}");
                assert_eq!(position, start, "flip of bit {bit}");
            }
            Err(other) => panic!("flip of bit {bit}: expected Corrupt, got {other}"),
            Ok(_) => panic!("flip of bit {bit}: damaged log opened"),
        })
        .await;
    }
    // Nothing was truncated by the refused opens.
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), SEGMENT_HEADER + 3 * BATCH);
}

#[tokio::test]
async fn flip_in_segment_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let segment = build(dir.path()).await;
    sweep(dir.path(), &segment, 0..SEGMENT_HEADER, async |bit, opened| match opened {
        Err(LogError::Corrupt { path, position, detail }) => {
            assert_eq!((path.as_path(), position), (segment.as_path(), 0), "flip of bit {bit}: {detail}");
        }
        Err(other) => panic!("flip of bit {bit}: expected Corrupt, got {other}"),
        Ok(_) => panic!("flip of bit {bit}: damaged log opened"),
    })
    .await;
}
