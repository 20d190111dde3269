//! The Raft type configuration, declared once, and short names for the types built on it.

use serde::{Deserialize, Serialize};

use crate::state::{Command, Response};

/// How a replica is reached, carried in the Raft membership so every replica knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteNode {
    /// The site this replica belongs to (`north`, `south`…); empty for a witness.
    pub site: String,
    /// `host:port` of the replica's gRPC endpoint (Raft traffic and the admin API).
    pub rpc_addr: String,
    /// A witness votes but runs no ACD, so it never owns agents, contacts or promises.
    pub witness: bool,
}

openraft::declare_raft_types!(
    /// Hotline's Raft types: routing commands in, routing responses out.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = SiteNode,
);

/// A Raft node of the routing group.
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachineStore>;
/// A replica's id in the Raft group.
pub type NodeId = u64;
/// A log entry of the routing group.
pub type Entry = openraft::Entry<
    <<TypeConfig as openraft::RaftTypeConfig>::LeaderId as openraft::vote::RaftLeaderId>::Committed,
    <TypeConfig as openraft::RaftTypeConfig>::Payload,
>;

impl std::fmt::Display for SiteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = if self.witness { "witness" } else { "site" };
        write!(f, "{role} {}@{}", self.site, self.rpc_addr)
    }
}
