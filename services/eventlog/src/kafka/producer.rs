//! The Kafka producer: queues a batch to explicit partitions in librdkafka and waits
//! for every delivery report (`send`), or hands that wait back to the caller
//! (`start_send`) so several batches can be in flight.
//!
//! All [`KafkaProducer`]s of a [`KafkaLog`](super::KafkaLog) share one librdkafka
//! producer (one connection per broker, one send queue). librdkafka may declare an
//! idempotent producer fatally broken — e.g. a restarted broker that lost its state
//! answers `UnknownProducerId` or `OutOfOrderSequenceNumber` — and a fatal producer
//! never sends again; against tansu a restarted broker instead leaves every message of
//! the old producer id to time out. In both cases `Shared` builds a fresh producer,
//! so the caller's retry goes out on a new producer id.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use super::{Inner, KafkaConfig, config_error, map_code, map_error};
use crate::log::{Delivery, Error, Message, Producer, Result, partition_for};

/// The librdkafka producer every [`KafkaProducer`] of a log uses, replaced when fatal.
pub(crate) struct Shared {
    config: KafkaConfig,
    current: RwLock<FutureProducer>,
}

impl Shared {
    pub(crate) fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self {
            current: RwLock::new(build(config)?),
            config: config.clone(),
        })
    }

    /// The producer in use now.
    pub(crate) fn current(&self) -> FutureProducer {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces `broken` (the producer a failed send used) with a fresh one when it is
    /// fatally broken, or — idempotent producers only — when its messages timed out.
    /// Returns why it was replaced, if it was.
    ///
    /// The second case is what a broker that restarted without its producer state
    /// (tansu's memory storage, measured) does to an idempotent producer: it never
    /// acknowledges the old producer id's sequence again, nothing is declared fatal,
    /// every later message times out. A fresh producer asks for a new producer id. The
    /// timed-out batch failed as a whole anyway, so nothing acknowledged is abandoned.
    fn replace_if_broken(&self, broken: &FutureProducer, timed_out: bool) -> Option<String> {
        let why = match broken.client().fatal_error() {
            Some((code, reason)) => format!("fatal error {code} ({code:?}): {reason}"),
            None if timed_out && self.config.idempotence => {
                "idempotent producer's messages timed out".to_string()
            }
            None => return None,
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if std::ptr::eq(current.client().native_ptr(), broken.client().native_ptr()) {
            match build(&self.config) {
                Ok(fresh) => {
                    tracing::warn!(reason = %why, "replaced the kafka producer with a fresh one");
                    *current = fresh;
                }
                Err(e) => {
                    tracing::error!(reason = %why, rebuild = %e, "kafka producer is broken and could not be rebuilt");
                }
            }
        }
        Some(why)
    }
}

fn build(config: &KafkaConfig) -> Result<FutureProducer> {
    config
        .producer_config()
        .create::<FutureProducer>()
        .map_err(|e| config_error("producer", e))
}

/// Appends batches to Kafka topics. Cheap to clone; clones share the log's producer.
#[derive(Clone)]
pub struct KafkaProducer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer").finish_non_exhaustive()
    }
}

impl KafkaProducer {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Waits up to `timeout` until everything queued has been delivered or failed.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let producer = self.inner.producer().current();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| Error::Kafka(format!("flush task failed: {e}")))?
            .map_err(|e| map_error("flush the kafka producer", e))
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, topic: &str, messages: Vec<Message>) -> Result<()> {
        self.start_send(topic, messages).await?.await
    }

    /// Queues every message in librdkafka (which keeps them in order per partition and
    /// pipelines requests to the broker) and returns; the delivery waits for every
    /// report. An error while queueing waits for what was queued before returning it.
    async fn start_send(&self, topic: &str, messages: Vec<Message>) -> Result<Delivery> {
        if messages.is_empty() {
            return Ok(Box::pin(std::future::ready(Ok(()))));
        }
        let partitions = self.inner.partitions_of(topic).await?;
        let producer = self.inner.producer().current();
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(messages.len());
        let mut first_error: Option<Error> = None;
        let mut timed_out = false;

        for m in &messages {
            let partition = partition_for(&m.key, partitions) as i32;
            loop {
                let record = FutureRecord::to(topic)
                    .key(m.key.as_slice())
                    .payload(m.value.as_slice())
                    .partition(partition)
                    .timestamp(m.timestamp_ms);
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // The local queue is full: wait for the oldest message of this
                        // batch to be delivered, which makes room, then try again.
                        match pending.pop_front() {
                            Some(delivery) => note(
                                &mut first_error,
                                self.outcome(topic, delivery, &mut timed_out).await,
                            ),
                            None => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                    Err((e, _)) => {
                        note(&mut first_error, Err(self.send_error(topic, &producer, e)));
                        break;
                    }
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        if let Some(e) = first_error {
            // Queueing failed: wait for what was queued, so nothing of this batch is
            // still in flight when the caller retries it.
            while let Some(delivery) = pending.pop_front() {
                let _ = self.outcome(topic, delivery, &mut timed_out).await;
            }
            return Err(self.failed(&producer, e, timed_out));
        }
        let this = self.clone();
        let topic = topic.to_string();
        Ok(Box::pin(async move {
            // Wait for every report even after a failure, so nothing of this batch is
            // still in flight when the caller retries it.
            let mut first_error = None;
            while let Some(delivery) = pending.pop_front() {
                note(
                    &mut first_error,
                    this.outcome(&topic, delivery, &mut timed_out).await,
                );
            }
            match first_error {
                None => Ok(()),
                Some(e) => Err(this.failed(&producer, e, timed_out)),
            }
        }))
    }
}

impl KafkaProducer {
    /// The error a failed batch reports: `e`, or — when the producer it used was broken
    /// and has been replaced — an [`Error::Unavailable`] saying to retry.
    fn failed(&self, producer: &FutureProducer, e: Error, timed_out: bool) -> Error {
        match self.inner.producer().replace_if_broken(producer, timed_out) {
            Some(why) => {
                let cause = match e {
                    Error::Unavailable(m) | Error::Kafka(m) => m,
                    other => other.to_string(),
                };
                Error::Unavailable(format!("{cause}; the producer was replaced ({why}), retry"))
            }
            None => e,
        }
    }
}

impl KafkaProducer {
    /// The delivery report of one message; notes whether it timed out.
    async fn outcome(
        &self,
        topic: &str,
        delivery: DeliveryFuture,
        timed_out: &mut bool,
    ) -> Result<()> {
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => {
                *timed_out |= e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut);
                Err(self.delivery_error(topic, e))
            }
            Err(_) => Err(Error::Unavailable(format!(
                "send to {topic:?}: the producer went away before reporting delivery"
            ))),
        }
    }

    fn delivery_error(&self, topic: &str, e: KafkaError) -> Error {
        let what = format!("deliver to {topic:?}");
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition,
            ) => {
                self.inner.forget_partitions(topic);
                Error::UnknownTopic(topic.to_string())
            }
            Some(code) => {
                self.inner.forget_partitions(topic);
                map_code(&what, code)
            }
            None => map_error(&what, e),
        }
    }

    fn send_error(&self, topic: &str, producer: &FutureProducer, e: KafkaError) -> Error {
        if producer.client().fatal_error().is_some() {
            return Error::Unavailable(format!("send to {topic:?}: {e}"));
        }
        self.delivery_error(topic, e)
    }
}

fn note(first: &mut Option<Error>, outcome: Result<()>) {
    if let Err(e) = outcome
        && first.is_none()
    {
        *first = Some(e);
    }
}
