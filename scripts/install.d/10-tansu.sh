# tansu, a Kafka-protocol broker: the log's contract suite runs the Kafka backend against it
# (started by the test on a free loopback port with in-memory storage). Built from crates.io;
# a clean build takes about 20 minutes on 2 shared cores, so it is skipped once installed.
if ! command -v tansu >/dev/null 2>&1; then
  log "installing tansu (cargo install --locked tansu --features dynostore)"
  cargo install --locked tansu --features dynostore
fi
