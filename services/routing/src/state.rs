//! The routing state machine: pure, deterministic, validated.
//!
//! This file is the contract the storage and the network build on: a
//! [`RoutingState`] that serializes whole (it is the snapshot), a [`Command`] that a
//! proposer stamps with everything `apply` needs (time included, so replicas agree),
//! and a [`Response`] that says what was applied or why nothing was.

use serde::{Deserialize, Serialize};

/// Everything the routing group agrees on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    /// Index of the last command applied (0 before the first).
    pub applied: u64,
}

/// A change to the routing state, proposed through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Changes nothing; used to check that the group commits.
    Noop,
}

/// What applying a [`Command`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command was applied in full.
    Applied,
    /// The command broke an invariant and nothing of it was applied.
    Refused(String),
}

impl RoutingState {
    /// Applies the command committed at log `index`, all of it or none of it.
    pub fn apply(&mut self, index: u64, command: &Command) -> Response {
        match command {
            Command::Noop => {
                self.applied = index;
                Response::Applied
            }
        }
    }
}

/// One line per command in Raft's logs: its kind, not its whole body.
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Noop => f.write_str("noop"),
        }
    }
}
