//! Routing state: what every site of an install agrees on, replicated with Raft.
//!
//! # Layout
//!
//! - [`typ`]: the one Raft type configuration ([`typ::TypeConfig`]) and its aliases.
//! - [`state`]: the state machine itself, pure — configuration (providers, tenants,
//!   sites, queues, skills, agent profiles, business hours, IVR flows, overflow
//!   policies), live site summaries and durable promises (callbacks, voicemails).
//!   [`state::RoutingState::apply`] validates a [`state::Command`] and applies all of it
//!   or none of it.
//! - [`store`]: durable Raft storage on redb: the group-committed log and the state machine.
//! - [`network`]: Raft between replicas over gRPC — the client openraft drives and the
//!   server that feeds the local Raft.
//! - [`node`]: one routing replica — store, Raft and its gRPC server (Raft traffic and the
//!   `RoutingAdmin` API); writes from any replica, forwarded to the leader.
//! - [`api`]: the JSON HTTP admin API over a node (status, state, commands, members).
//! - [`testing`] (feature `testing`): replicas in one process over a fault-injecting
//!   network, in virtual time.
//!
//! # Data flow
//!
//! ```text
//! admin API / site ──Command──▶ Raft leader ──log──▶ every replica's state machine
//!                                                    └─ RoutingState::apply (validated, all or nothing)
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod network;
pub mod node;
pub mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod typ;
