//! Hotline's wire types: the protobuf messages and gRPC services generated from
//! `proto/`, and the conversions between them and the domain types of `hotline-core`.
//!
//! # Layout
//!
//! - [`events::v1`]: the event envelope and every contact and agent event, as written to
//!   the event log (Kafka or the embedded log). Generated from
//!   `proto/hotline/events/v1/events.proto`.
//! - [`acd::v1`]: the site ACD's gRPC API — requests, replies, offers, snapshots, and the
//!   `Acd` service as a client ([`acd::v1::acd_client`]) and a server trait
//!   ([`acd::v1::acd_server`]). Generated from `proto/hotline/acd/v1/acd.proto`; it reuses
//!   the event schema's `Channel` and `AgentStatus`.
//! - [`routing::v1`]: Raft traffic between routing replicas (opaque postcard bodies) and
//!   the `RoutingAdmin` service. Generated from `proto/hotline/routing/v1/routing.proto`.
//! - [`convert`]: domain ⇄ wire. Encoding cannot fail; decoding checks everything a
//!   writer could have got wrong and says which field held what in a [`DecodeError`].
//!
//! # Data flow
//!
//! ```text
//! hotline_core::event::Event ──encode_event──▶ bytes on the log ──decode_event──▶ Event
//!           (From<&Event>)   events::v1::Event   (prost)   events::v1::Event  (TryFrom)
//! ```
//!
//! A producer (the ACD, through the event log) calls [`encode_event`]; every consumer
//! (KPI, CRM, the knowledge base) calls [`decode_event`] and quarantines what it refuses,
//! for example an event of a newer [`SCHEMA_VERSION`](hotline_core::event::SCHEMA_VERSION).
//!
//! The code is generated at build time by `build.rs` with `protox` (a protobuf compiler
//! in Rust, so no `protoc` binary is needed) and `tonic-prost-build`.
#![forbid(unsafe_code)]

pub mod convert;

pub use convert::{DecodeError, decode_event, encode_event};

/// Hotline's events, as the event log carries them.
pub mod events {
    /// Version 1 of the event schema (package `hotline.events.v1`).
    pub mod v1 {
        // Generated code: its docs are the `.proto` comments, and it is not ours to lint.
        #![allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
        tonic::include_proto!("hotline.events.v1");
    }
}

/// The site ACD's API.
pub mod acd {
    /// Version 1 of the ACD API (package `hotline.acd.v1`).
    pub mod v1 {
        // Generated code: its docs are the `.proto` comments, and it is not ours to lint.
        #![allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
        tonic::include_proto!("hotline.acd.v1");
    }
}

/// The routing group's wire: Raft between replicas and the routing admin API.
pub mod routing {
    /// Version 1 (package `hotline.routing.v1`).
    pub mod v1 {
        // Generated code: its docs are the `.proto` comments, and it is not ours to lint.
        #![allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
        tonic::include_proto!("hotline.routing.v1");
    }
}
