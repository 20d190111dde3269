//! Routing replicas in one process over a network that loses, delays and cuts messages on
//! the draw of a seed: what the fault tests run on, in virtual time.
//!
//! # Layout
//!
//! - [`Router`]: the in-memory network, openraft's network factory for each replica, with
//!   partitions (asymmetric too), per-message delay and loss, all drawn from one seed.
//! - [`SimLogStore`] and [`SimStateMachine`]: the real redb store, holding tokio's paused
//!   clock while its writer thread commits, so storage costs no virtual time.
//! - [`Cluster`]: a group of such replicas on durable files in a directory, with crash and
//!   restart, client writes and the waits tests need (leader, convergence).
//!
//! Behind the `testing` feature, so a replica's build carries none of it; this crate's own
//! tests turn it on through their dev-dependency on the crate itself.
//!
//! # Determinism
//!
//! Under `#[tokio::test(start_paused = true)]` (a current-thread runtime) delays, heartbeats
//! and election timeouts all run on tokio's virtual clock, and every fault is drawn from the
//! router's seed. openraft draws its election timeouts from its runtime's thread-local
//! generator, which for the tokio runtime of [`crate::typ::TypeConfig`] is seeded by the OS, so
//! two runs of a seed meet the same faults in the same order but may elect differently.

mod cluster;
mod router;
mod store;

pub use cluster::{Cluster, ClusterConfig, ClusterError, SimRaft, WriteOutcome};
pub use router::{LinkFaults, Router, RouterNetwork, RouterPeer, RouterStats};
pub use store::{SimLogStore, SimSnapshotBuilder, SimStateMachine};
