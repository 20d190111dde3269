//! Hotline's event log: where every contact and agent event goes, and where KPI, CRM
//! and the knowledge base read them from.
//!
//! # Layout
//!
//! - [`log`]: the contract — [`EventLog`], [`Producer`], [`Consumer`], the records they
//!   carry, topic specs and the [`Error`] type. Both implementations pass the same
//!   conformance suite ([`testing`]).
//! - [`embedded`]: the default of `hotline up`: durable append-only segment files per
//!   topic partition, an fsync policy, consumer groups with committed offsets, retention.
//! - [`kafka`]: the production log, through rdkafka (librdkafka, bundled): idempotent
//!   producer with `acks=all`, consumer groups that commit after processing.
//! - [`topics`]: the topics Hotline uses, their partitioning and retention.
//! - [`publisher`]: the ACD's [`EventSink`](hotline_core::event::EventSink): encodes
//!   events, writes them to a durable local spool and forwards them in order to the
//!   log, so the ACD keeps working while a broker is away.
//! - [`events`]: the consumer side for services: decodes events, drops duplicates by
//!   event id, quarantines what it cannot decode (with its offset) and never stalls.
//! - [`testing`]: the conformance suite every [`EventLog`] implementation runs.
//!
//! # Data flow
//!
//! ```text
//! ACD actors ──publish──▶ publisher ──append──▶ spool (embedded log, local disk)
//!                                                 └──forwarder──▶ EventLog (Kafka or embedded)
//! EventLog ──poll──▶ events::EventConsumer ──decode, dedupe──▶ KPI / CRM / KB
//!                              └──undecodable──▶ quarantine topic + metric
//! ```
#![forbid(unsafe_code)]

pub mod embedded;
pub mod events;
pub mod kafka;
pub mod log;
pub mod publisher;
pub mod testing;
pub mod topics;

pub use log::Consumer;
pub use log::{
    ConsumerConfig, Error, EventLog, Message, Poll, Producer, Record, Result, Skipped, StartFrom,
    TopicInfo, TopicSpec, partition_for,
};
