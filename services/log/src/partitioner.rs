//! Key → partition routing, identical to Kafka's default partitioner so that a key lands in the
//! same partition whichever backend is used.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java does this arithmetic on wrapping 32-bit ints; `u32` with wrapping ops has the same
    // bit pattern, and `>>>` is the logical shift of an unsigned value.
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition a record with `key` goes to among `partitions` partitions: Kafka's default
/// partitioner (`toPositive(murmur2(key)) % partitions`). Records without a key go to partition 0
/// (Kafka would spread them with its sticky partitioner; Tessera always keys records it cares
/// about the order of). `partitions == 0` yields 0.
pub fn partition_for_key(key: Option<&[u8]>, partitions: u32) -> u32 {
    match key {
        None => 0,
        Some(_) if partitions == 0 => 0,
        Some(key) => ((murmur2(key) as u32) & 0x7fff_ffff) % partitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors from Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input), expected, "murmur2({:?})", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn partition_is_positive_murmur_modulo() {
        // toPositive(-973932308) = 1173551340; % 10 = 0, % 7 = 1173551340 % 7.
        assert_eq!(partition_for_key(Some(b"21"), 10), 1_173_551_340 % 10);
        assert_eq!(partition_for_key(Some(b"21"), 7), 1_173_551_340 % 7);
        assert_eq!(partition_for_key(Some(b"abc"), 3), 479_470_107 % 3);
        assert_eq!(partition_for_key(None, 8), 0);
        assert_eq!(partition_for_key(Some(b"x"), 1), 0);
        assert_eq!(partition_for_key(Some(b"x"), 0), 0);
    }

    #[test]
    fn routing_is_stable() {
        for i in 0..1000u32 {
            let key = format!("device-{i}");
            let p = partition_for_key(Some(key.as_bytes()), 12);
            assert!(p < 12);
            assert_eq!(p, partition_for_key(Some(key.as_bytes()), 12));
        }
    }
}
