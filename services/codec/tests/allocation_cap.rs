//! The codec fixes the Avro library's allocation cap at startup. Its own test binary, because the
//! library fixes the cap on first use: here nothing has decoded before the codec opens.

use std::sync::Arc;

use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};

#[tokio::test]
async fn opening_the_codec_caps_avro_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let log = tessera_log::open(&format!("embedded:{}", dir.path().display())).await.unwrap();
    let topics = Topics::default();
    let registry = Arc::new(SchemaRegistry::open(log, &topics).await.unwrap());
    let _codec = Codec::open(registry, &topics).await.unwrap();
    // A later attempt to change the cap is ignored: the codec's value stays in force.
    assert_eq!(apache_avro::util::max_allocation_bytes(usize::MAX), tessera_codec::limits::MAX_ALLOCATION_BYTES);
}
