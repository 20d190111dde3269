//! The Kafka consumer: one member of a consumer group.
//!
//! Offsets are never committed automatically: [`Consumer::commit`] commits exactly the
//! positions it is given, synchronously, after the caller has processed the records.
//! Where a partition starts the first time this consumer is assigned it depends on
//! [`StartFrom`], decided in the rebalance callback of `GroupContext`:
//!
//! - `Committed`: the group's committed offset, else the earliest kept record;
//! - `Earliest`: the earliest kept record, whatever the group committed;
//! - `Latest`: the group's committed offset, else the end of the partition *as it was
//!   when the consumer was created* — not at assignment time, which comes seconds later
//!   and would skip what was appended meanwhile.
//!
//! Later assignments of the same partition (after a rebalance) always resume from the
//! committed offset.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};

use super::{KafkaConfig, config_error, map_error};
use crate::log::{
    Consumer, ConsumerConfig, Error, Offset, Partition, Poll, Record, Result, StartFrom,
};

/// Decides where newly assigned partitions start (see the module doc).
pub(crate) struct GroupContext {
    group: String,
    start: StartFrom,
    /// For `Latest`: each partition's end when the consumer was created.
    latest_at: HashMap<(String, i32), i64>,
    /// Partitions this consumer has been assigned before.
    started: Mutex<HashSet<(String, i32)>>,
    request_timeout: Duration,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.place(consumer, tpl);
                tracing::debug!(group = %self.group, assigned = tpl.count(), "kafka consumer assigned partitions");
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(group = %self.group, error = %e, "kafka consumer could not take its assignment");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::debug!(group = %self.group, revoked = tpl.count(), "kafka consumer's partitions revoked");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(group = %self.group, error = %e, "kafka consumer could not give up its assignment");
                }
            }
            other => {
                tracing::error!(group = %self.group, error = ?other, "kafka consumer rebalance failed");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        // The only report a background commit (`start_commit`) gets.
        if let Err(e) = result {
            tracing::warn!(group = %self.group, error = %e, partitions = offsets.count(), "kafka consumer could not commit offsets; records after the last stored commit may be delivered again");
        }
    }
}

impl GroupContext {
    /// Sets the start of each partition assigned for the first time, per `start`.
    fn place(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let fresh: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .filter(|tp| !started.contains(tp))
            .collect();
        if fresh.is_empty() {
            return;
        }
        match self.start {
            StartFrom::Committed => {}
            StartFrom::Earliest => {
                for (topic, partition) in &fresh {
                    let _ = tpl.set_partition_offset(topic, *partition, KafkaOffset::Beginning);
                }
            }
            StartFrom::Latest => {
                // Where nothing is committed, start at the end as of creation.
                let committed = consumer.committed_offsets(tpl.clone(), self.request_timeout);
                match committed {
                    Ok(committed) => {
                        for (topic, partition) in &fresh {
                            let has_commit = committed
                                .find_partition(topic, *partition)
                                .is_some_and(|e| matches!(e.offset(), KafkaOffset::Offset(_)));
                            if !has_commit {
                                let at = self
                                    .latest_at
                                    .get(&(topic.clone(), *partition))
                                    .map_or(KafkaOffset::End, |&o| KafkaOffset::Offset(o));
                                let _ = tpl.set_partition_offset(topic, *partition, at);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %self.group, error = %e, "could not read committed offsets; auto.offset.reset=latest decides");
                    }
                }
            }
        }
        started.extend(fresh);
    }
}

/// A member of a Kafka consumer group.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    request_timeout: Duration,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    /// Joins `consumer.group` and subscribes to its topics (the join itself completes
    /// during the first polls); `latest_at` holds the partition ends a `Latest` consumer
    /// starts from where its group committed nothing.
    pub(crate) fn with_ends(
        config: &KafkaConfig,
        consumer: ConsumerConfig,
        latest_at: HashMap<(String, i32), i64>,
    ) -> Result<Self> {
        if consumer.group.trim().is_empty() {
            return Err(Error::Config("consumer group is empty".to_string()));
        }
        let reset = match consumer.start {
            StartFrom::Committed | StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let context = GroupContext {
            group: consumer.group.clone(),
            start: consumer.start,
            latest_at,
            started: Mutex::new(HashSet::new()),
            request_timeout: config.request_timeout,
        };
        let stream: StreamConsumer<GroupContext> = config
            .consumer_config(&consumer.group, reset)
            .create_with_context(context)
            .map_err(|e| config_error("consumer", e))?;
        let topics: Vec<&str> = consumer.topics.iter().map(String::as_str).collect();
        stream
            .subscribe(&topics)
            .map_err(|e| map_error(&format!("subscribe to {topics:?}"), e))?;
        Ok(Self {
            consumer: Arc::new(stream),
            group: consumer.group,
            request_timeout: config.request_timeout,
        })
    }
}

fn to_record(m: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: m.topic().to_string(),
        partition: m.partition().max(0) as Partition,
        offset: m.offset().max(0) as Offset,
        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
        value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

fn consume_error(group: &str, e: KafkaError) -> Error {
    map_error(&format!("consume as group {group:?}"), e)
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Poll> {
        let mut poll = Poll::default();
        if max == 0 {
            return Ok(poll);
        }
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(poll),
            Ok(Err(e)) => return Err(consume_error(&self.group, e)),
            Ok(Ok(m)) => poll.records.push(to_record(&m)),
        }
        // Take what is already fetched, without waiting again (`recv` is polled once
        // before a zero timeout fires, and is cancel safe).
        while poll.records.len() < max {
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(m)) => poll.records.push(to_record(&m)),
                Ok(Err(e)) => {
                    tracing::debug!(group = %self.group, error = %e, "kafka consumer error after records; returning those");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(poll)
    }

    async fn commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()> {
        let Some(tpl) = offsets(positions)? else {
            return Ok(());
        };
        let consumer = self.consumer.clone();
        let group = self.group.clone();
        let timeout = self.request_timeout;
        let commit = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
        match tokio::time::timeout(timeout + Duration::from_secs(1), commit).await {
            Err(_) => Err(Error::Unavailable(format!(
                "commit of group {group:?} took longer than {timeout:?}"
            ))),
            Ok(Err(e)) => Err(Error::Kafka(format!("commit task failed: {e}"))),
            Ok(Ok(result)) => {
                result.map_err(|e| map_error(&format!("commit offsets of group {group:?}"), e))
            }
        }
    }

    async fn start_commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()> {
        let Some(tpl) = offsets(positions)? else {
            return Ok(());
        };
        // librdkafka sends it in order with the others; the outcome reaches
        // `GroupContext::commit_callback`.
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| map_error(&format!("commit offsets of group {:?}", self.group), e))
    }
}

/// `positions` as librdkafka's list, `None` when empty.
fn offsets(positions: &[(String, Partition, Offset)]) -> Result<Option<TopicPartitionList>> {
    if positions.is_empty() {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::with_capacity(positions.len());
    for (topic, partition, next) in positions {
        let offset = i64::try_from(*next).map_err(|_| {
            Error::Config(format!(
                "offset {next} of {topic}/{partition} is out of range"
            ))
        })?;
        tpl.add_partition_offset(topic, *partition as i32, KafkaOffset::Offset(offset))
            .map_err(|e| map_error(&format!("commit {topic}/{partition} at {next}"), e))?;
    }
    Ok(Some(tpl))
}
