//! The librdkafka client context: forwards librdkafka's log lines and errors to `tracing`, so
//! they land in Tessera's log output beside everything else instead of the `log` crate.

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// Context of every client the Kafka backend creates.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka reports transient conditions (a broker connection dropped, being retried)
        // here too; they are worth a warning, not an error of the operation in flight.
        tracing::warn!(target: "librdkafka", %error, reason, "librdkafka client error");
    }
}

impl ConsumerContext for LogContext {}
