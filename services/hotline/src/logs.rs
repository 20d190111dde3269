//! Which event log a command uses, named by one string (`--event-log`,
//! `HOTLINE_EVENT_LOG`):
//!
//! - `embedded:PATH` — the embedded log in directory PATH (created if missing);
//! - `kafka://HOST:PORT[,HOST:PORT…]` — Kafka (or any broker speaking its protocol).
//!
//! The ACD publishes through a [`Publisher`]: straight into the embedded log, or for
//! Kafka through a durable local spool (an embedded log beside the data), so the ACD
//! keeps working while the broker is away and nothing is lost.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use hotline_eventlog::embedded::{EmbeddedConfig, EmbeddedLog};
use hotline_eventlog::kafka::{KafkaConfig, KafkaLog};
use hotline_eventlog::publisher::{Publisher, PublisherConfig};
use hotline_eventlog::{EventLog, TopicInfo};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::cli::Failure;

/// An event log, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// The embedded log in this directory.
    Embedded(PathBuf),
    /// Kafka at these bootstrap servers (`host:port,…`).
    Kafka(String),
}

impl FromStr for LogTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("embedded:") {
            if path.is_empty() {
                return Err(format!(
                    "event log {s:?}: `embedded:` needs a directory, e.g. embedded:./hotline-data/events"
                ));
            }
            return Ok(LogTarget::Embedded(PathBuf::from(path)));
        }
        if let Some(servers) = s
            .strip_prefix("kafka://")
            .or_else(|| s.strip_prefix("kafka:"))
        {
            let bad = servers.is_empty()
                || servers.split(',').any(|hp| {
                    hp.rsplit_once(':')
                        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
                });
            if bad {
                return Err(format!(
                    "event log {s:?}: kafka needs host:port of each broker, e.g. kafka://127.0.0.1:9092"
                ));
            }
            return Ok(LogTarget::Kafka(servers.to_string()));
        }
        Err(format!(
            "event log {s:?} is neither embedded:PATH nor kafka://HOST:PORT"
        ))
    }
}

impl std::fmt::Display for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogTarget::Embedded(p) => write!(f, "embedded:{}", p.display()),
            LogTarget::Kafka(s) => write!(f, "kafka://{s}"),
        }
    }
}

/// Opens the log. A Kafka log that cannot be reached yet still opens (its calls fail
/// with a retryable error until the broker answers); an embedded log that another
/// process holds does not.
pub async fn open(target: &LogTarget) -> Result<Arc<dyn EventLog>, Failure> {
    match target {
        LogTarget::Embedded(dir) => {
            let log = EmbeddedLog::open(dir, EmbeddedConfig::default())
                .await
                .map_err(|e| Failure::Config(format!("event log {target}: {e}")))?;
            Ok(Arc::new(log))
        }
        LogTarget::Kafka(servers) => {
            // Ends read from the last batch: tansu 0.6 reports a partition's end as its
            // last batch's start + 1, and replay and lag depend on true ends. Costs one
            // small fetch per partition per call on a real Kafka.
            let config = KafkaConfig {
                verify_end_offsets: true,
                ..KafkaConfig::new(servers.clone())
            };
            let log = KafkaLog::new(config)
                .map_err(|e| Failure::Config(format!("event log {target}: {e}")))?;
            Ok(Arc::new(log))
        }
    }
}

/// Opens the event log at `target` with its topics created, and the ACD's publisher for
/// it spooling under `spool_dir`. `in_use` is what to say when another process holds the
/// log (e.g. "is another `hotline up` using --data-dir X?").
pub async fn open_for_publishing(
    target: &LogTarget,
    spool_dir: &Path,
    in_use: &str,
) -> Result<(Arc<dyn EventLog>, Arc<Publisher>), Failure> {
    let log = open(target).await.map_err(|e| match e {
        Failure::Config(m) => Failure::Config(format!("{m}; {in_use}")),
        other => other,
    })?;
    log.ensure_topics(&hotline_eventlog::topics::specs())
        .await
        .map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot create the topics of event log {target}: {e}"
            ))
        })?;
    let publisher = Arc::new(publisher(target, log.clone(), spool_dir).await?);
    Ok((log, publisher))
}

/// The ACD's publisher for `log`: direct for the embedded log, spooled in `spool_dir`
/// for Kafka.
pub async fn publisher(
    target: &LogTarget,
    log: Arc<dyn EventLog>,
    spool_dir: &Path,
) -> Result<Publisher, Failure> {
    let config = PublisherConfig::default();
    match target {
        LogTarget::Embedded(_) => Publisher::direct(log, config)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("event publisher: {e}"))),
        LogTarget::Kafka(_) => {
            let spool = EmbeddedLog::open(spool_dir, EmbeddedConfig::default())
                .await
                .map_err(|e| {
                    Failure::Config(format!("event spool {}: {e}", spool_dir.display()))
                })?;
            Publisher::spooled(Arc::new(spool), log, config)
                .await
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("event publisher: {e}")))
        }
    }
}

/// One line per topic for `hotline ops topics`.
pub fn describe(info: &TopicInfo, status: &str) -> String {
    let retention = match info.retention {
        Some(d) if d.as_secs() % 86_400 == 0 => format!("{} d", d.as_secs() / 86_400),
        Some(d) => format!("{} s", d.as_secs()),
        None => "forever".to_string(),
    };
    format!(
        "  {:<24} {:>3} partition(s)  retention {:<8} {status}",
        info.name, info.partitions, retention
    )
}

/// The publisher's counters on `/metrics` (`hotline_publisher_…`): what an SRE
/// watches while a broker is away — the spool's backlog growing, then draining.
pub struct PublisherMetrics(pub Arc<Publisher>);

impl std::fmt::Debug for PublisherMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherMetrics").finish_non_exhaustive()
    }
}

impl Collector for PublisherMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let counters = [
            (
                "publisher_accepted",
                "Events the ACD handed to the publisher",
                s.accepted,
            ),
            (
                "publisher_spooled",
                "Events appended to the spool (direct mode: to the log)",
                s.spooled,
            ),
            (
                "publisher_forwarded",
                "Events the event log acknowledged",
                s.forwarded,
            ),
            (
                "publisher_dropped",
                "Events refused because the spool bound was reached; nonzero means loss",
                s.dropped,
            ),
            (
                "publisher_retries",
                "Failed sends to the event log that were retried",
                s.retries,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let gauges = [
            (
                "publisher_pending",
                "Events accepted and not yet acknowledged by the event log (the spool's backlog)",
                s.pending,
            ),
            (
                "publisher_pending_bytes",
                "Encoded bytes of the pending events (bounded by the spool bound)",
                s.pending_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_names_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(
            "embedded:/tmp/x".parse::<LogTarget>(),
            Ok(LogTarget::Embedded("/tmp/x".into()))
        );
        assert_eq!(
            "kafka://127.0.0.1:9092,127.0.0.1:9093".parse::<LogTarget>(),
            Ok(LogTarget::Kafka("127.0.0.1:9092,127.0.0.1:9093".into()))
        );
        let e = "kafka://nohost".parse::<LogTarget>().unwrap_err();
        assert!(e.contains("host:port"), "{e}");
        let e = "s3://bucket".parse::<LogTarget>().unwrap_err();
        assert!(e.contains("embedded:PATH"), "{e}");
        assert!("embedded:".parse::<LogTarget>().is_err());
    }
}
