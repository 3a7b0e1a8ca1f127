//! Configuration of the Kafka backend and the librdkafka client settings derived from it.

use std::time::Duration;

use rdkafka::ClientConfig;

use crate::LogError;

/// Options of [`super::KafkaLog`]; build them with [`KafkaOptions::new`] or [`KafkaOptions::from_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `host:port[,host:port]`, librdkafka's `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// Replication factor of topics created by `create_topic`; `-1` (the default) lets the broker
    /// apply its `default.replication.factor`.
    pub replication_factor: i32,
    /// Extra librdkafka properties (for example `security.protocol`), for every client, or only
    /// for the producer or the consumers when the key starts with `producer.` or `consumer.`
    /// (the prefix is removed). They cannot switch off the settings the log's guarantees rest on
    /// (idempotence, `acks=all`, manual commits), which are applied after them.
    pub client_config: Vec<(String, String)>,
    /// Bound of every request to the cluster (metadata, offsets, commits, topic creation, and the
    /// wait for a record a read knows to exist). Default 30 s.
    pub request_timeout: Duration,
    /// Largest accepted record, key plus value, in bytes (default 1 MiB, as the embedded log).
    pub max_record_bytes: usize,
    /// Read cursors (one consumer each) kept open between reads (default 32).
    pub max_idle_cursors: usize,
}

impl KafkaOptions {
    /// Options with the defaults for a cluster reachable at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> KafkaOptions {
        KafkaOptions {
            bootstrap_servers: bootstrap_servers.into(),
            replication_factor: -1,
            client_config: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_record_bytes: 1 << 20,
            max_idle_cursors: 32,
        }
    }

    /// Parses `kafka://host:port[,host:port][?option=value&...]`. Options: `replication_factor`,
    /// `request_timeout_ms`, `max_record_bytes`, `max_idle_cursors`; any other option containing a
    /// dot is a librdkafka property (see [`KafkaOptions::client_config`]):
    /// `?security.protocol=ssl&producer.linger.ms=5&consumer.fetch.wait.max.ms=100`. Values are
    /// taken literally (no percent-decoding).
    pub fn from_url(url: &str) -> Result<KafkaOptions, LogError> {
        let rest = url.strip_prefix("kafka://").ok_or_else(|| LogError::UnsupportedUrl(url.to_owned()))?;
        let (servers, query) = rest.split_once('?').unwrap_or((rest, ""));
        let servers = servers.trim_end_matches('/');
        if servers.is_empty() || servers.split(',').any(|s| s.rsplit_once(':').is_none_or(|(host, _)| host.is_empty()))
        {
            return Err(LogError::InvalidConfig(format!("{url:?} must name brokers as kafka://host:port[,host:port]")));
        }
        let mut opts = KafkaOptions::new(servers);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| LogError::InvalidConfig(format!("option {pair:?} in the log URL has no value")))?;
            let number = |what: &str| {
                value
                    .parse::<i64>()
                    .map_err(|_| LogError::InvalidConfig(format!("{what} must be a number, got {value:?}")))
            };
            match key {
                "replication_factor" => {
                    opts.replication_factor = i32::try_from(number(key)?)
                        .map_err(|_| LogError::InvalidConfig(format!("replication_factor {value} is out of range")))?;
                }
                "request_timeout_ms" => opts.request_timeout = Duration::from_millis(number(key)?.max(1) as u64),
                "max_record_bytes" => opts.max_record_bytes = number(key)?.max(1) as usize,
                "max_idle_cursors" => opts.max_idle_cursors = number(key)?.max(0) as usize,
                _ if key.contains('.') => opts.client_config.push((key.to_owned(), value.to_owned())),
                _ => return Err(LogError::InvalidConfig(format!("unknown option {key:?} in the log URL"))),
            }
        }
        Ok(opts)
    }

    /// Settings shared by every client, plus the user's properties for a `role` ("producer" or
    /// "consumer").
    fn base(&self, role: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "tessera")
            // A topic that does not exist is an error (`UnknownTopic`), never created implicitly.
            .set("allow.auto.create.topics", "false")
            .set("socket.keepalive.enable", "true");
        for (key, value) in &self.client_config {
            let scoped =
                ["producer.", "consumer."].iter().find_map(|p| key.strip_prefix(p).map(|k| (&p[..p.len() - 1], k)));
            match scoped {
                None => config.set(key, value),
                Some((for_role, key)) if for_role == role => config.set(key, value),
                Some(_) => continue,
            };
        }
        config
    }

    /// The idempotent producer: acknowledged means written to every in-sync replica, retries never
    /// duplicate or reorder a partition's records.
    pub(super) fn producer(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        // Defaults a user may override: low linger so a lone append is not held back, a bounded
        // delivery time so an unreachable cluster surfaces as an error.
        config.set("linger.ms", "1").set("message.timeout.ms", "60000");
        for (key, value) in self.base("producer").config_map() {
            config.set(key, value);
        }
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.max.bytes", (self.max_record_bytes + (64 << 10)).to_string());
        config
    }

    /// A read cursor: a consumer that is only ever assigned partitions, never subscribes, never
    /// commits. librdkafka requires a group id for `assign`; this one is never joined.
    pub(super) fn reader(&self) -> ClientConfig {
        let mut config = self.base("consumer");
        config
            .set("group.id", "tessera-log-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // Below the first retained offset, start at the first retained record (the trait's rule).
            .set("auto.offset.reset", "earliest")
            // Bound what an idle cursor prefetches.
            .set("queued.max.messages.kbytes", "4096");
        config
    }

    /// A consumer of `group` used only to commit and fetch that group's offsets.
    pub(super) fn group(&self, group: &str) -> ClientConfig {
        let mut config = self.base("consumer");
        config.set("group.id", group).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
        config
    }

    /// The client for metadata and watermark queries (a consumer without group) and for the
    /// admin API.
    pub(super) fn metadata(&self) -> ClientConfig {
        self.base("consumer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_brokers_and_options() {
        let opts = KafkaOptions::from_url(
            "kafka://a:9092,b:9093?replication_factor=3&request_timeout_ms=500&security.protocol=ssl",
        )
        .unwrap();
        assert_eq!(opts.bootstrap_servers, "a:9092,b:9093");
        assert_eq!(opts.replication_factor, 3);
        assert_eq!(opts.request_timeout, Duration::from_millis(500));
        assert_eq!(opts.client_config, vec![("security.protocol".to_owned(), "ssl".to_owned())]);
        assert_eq!(KafkaOptions::from_url("kafka://127.0.0.1:1/").unwrap().bootstrap_servers, "127.0.0.1:1");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in
            ["kafka://", "kafka://host", "kafka://:9092", "kafka://h:1?replication_factor=x", "kafka://h:1?bogus=1"]
        {
            assert!(matches!(KafkaOptions::from_url(bad), Err(LogError::InvalidConfig(_))), "{bad} accepted");
        }
        assert!(matches!(KafkaOptions::from_url("embedded:/x"), Err(LogError::UnsupportedUrl(_))));
    }

    #[test]
    fn guarantees_cannot_be_overridden() {
        let mut opts = KafkaOptions::new("h:1");
        opts.client_config = vec![("enable.idempotence".into(), "false".into()), ("linger.ms".into(), "20".into())];
        let producer = opts.producer();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("linger.ms"), Some("20"));
        opts.client_config = vec![("enable.auto.commit".into(), "true".into())];
        assert_eq!(opts.group("g").get("enable.auto.commit"), Some("false"));
    }

    #[test]
    fn scoped_properties_reach_only_their_clients() {
        let opts = KafkaOptions::from_url(
            "kafka://h:1?producer.batch.num.messages=1&consumer.fetch.wait.max.ms=20&socket.timeout.ms=9",
        )
        .unwrap();
        let (producer, reader) = (opts.producer(), opts.reader());
        assert_eq!(producer.get("batch.num.messages"), Some("1"));
        assert_eq!(reader.get("batch.num.messages"), None);
        assert_eq!(reader.get("fetch.wait.max.ms"), Some("20"));
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        assert_eq!((producer.get("socket.timeout.ms"), reader.get("socket.timeout.ms")), (Some("9"), Some("9")));
    }
}
