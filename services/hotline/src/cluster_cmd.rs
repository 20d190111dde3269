//! `hotline ops cluster …` and `hotline ops site …`: the routing group's membership and a
//! site's status, through any replica's `RoutingAdmin` gRPC API.

use std::time::{SystemTime, UNIX_EPOCH};

use hotline_core::ids::SiteId;
use hotline_routing::node::{AdminClient, ClusterStatus, NodeError};
use hotline_routing::state::{Command, SiteStatus};
use hotline_routing::typ::SiteNode;

use crate::cli::Failure;

/// Where `ops` reaches the routing group.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaArgs {
    /// A replica's gRPC address (`rpc_listen` of any site); membership changes are sent
    /// to the leader, so give its address for `add` and `remove`.
    #[arg(long, env = "HOTLINE_ROUTING_ADDR", default_value = "127.0.0.1:7101")]
    pub addr: String,
}

/// `hotline ops cluster …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// The group as one replica sees it: leader, term, members and how far each has got.
    Status {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a replica (a new site, or a witness for a two-site install): it joins as a
    /// learner, catches up, then votes.
    Add {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// The new replica's number (its `node_id`).
        #[arg(long)]
        node_id: u64,
        /// Its gRPC address (its `rpc_listen`).
        #[arg(long)]
        rpc_addr: String,
        /// Its site (leave out for a witness).
        #[arg(long, default_value = "")]
        site: String,
        /// A witness: votes, runs no ACD.
        #[arg(long)]
        witness: bool,
    },
    /// Remove a voter; refused when the rest could not keep quorum.
    Remove {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// The replica's number.
        #[arg(long)]
        node_id: u64,
    },
}

/// `hotline ops site …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SiteCommand {
    /// Drain a site before maintenance: it takes no overflow and no new promises, and
    /// finishes its own.
    Drain {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// The site.
        #[arg(long)]
        site: String,
    },
    /// Mark a site down (it is gone): its agents are logged out and survivors may take
    /// over its callbacks and voicemails.
    Down {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// The site.
        #[arg(long)]
        site: String,
    },
    /// Put a drained or recovered site back in service.
    Activate {
        #[command(flatten)]
        replica: ReplicaArgs,
        /// The site.
        #[arg(long)]
        site: String,
    },
}

fn failure(e: NodeError) -> Failure {
    match e {
        NodeError::Refused(_) | NodeError::Membership(_) => Failure::Config(e.to_string()),
        e => Failure::Runtime(e.into()),
    }
}

async fn connect(replica: &ReplicaArgs) -> Result<AdminClient, Failure> {
    AdminClient::connect(&replica.addr)
        .await
        .map_err(|e| Failure::Runtime(e.into()))
}

fn print_status(status: &ClusterStatus) {
    println!(
        "replica {} ({}) is {}; leader: {}; term {}; committed {}; applied {}",
        status.id,
        if status.site.is_empty() {
            "witness"
        } else {
            &status.site
        },
        status.role,
        status
            .leader
            .map(|l| l.to_string())
            .unwrap_or_else(|| "none known".into()),
        status.term,
        status
            .committed
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
        status
            .last_applied
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    println!(
        "{:>6}  {:<10} {:<22} {:<8} {:>10}",
        "id", "site", "address", "role", "matched"
    );
    for m in &status.members {
        let role = match (m.voter, m.witness) {
            (true, true) => "witness",
            (true, false) => "voter",
            (false, _) => "learner",
        };
        println!(
            "{:>6}  {:<10} {:<22} {:<8} {:>10}",
            m.id,
            m.site,
            m.rpc_addr,
            role,
            m.matched
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
    println!(
        "store: {} commits, fsync p50 {} µs, p99 {} µs",
        status.fsync_commits, status.fsync_p50_us, status.fsync_p99_us
    );
}

/// Runs `hotline ops cluster …`.
pub fn cluster(command: ClusterCommand) -> Result<(), Failure> {
    crate::cli::runtime()?.block_on(async move {
        match command {
            ClusterCommand::Status { replica, json } => {
                let status = connect(&replica).await?.status().await.map_err(failure)?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(&status).map_err(anyhow::Error::from)?
                    );
                } else {
                    print_status(&status);
                }
            }
            ClusterCommand::Add {
                replica,
                node_id,
                rpc_addr,
                site,
                witness,
            } => {
                if !witness {
                    SiteId::new(&site).map_err(|e| {
                        Failure::Config(format!(
                            "--site {site:?}: {e} (a witness takes --witness instead)"
                        ))
                    })?;
                }
                let node = SiteNode {
                    site,
                    rpc_addr,
                    witness,
                };
                let status = connect(&replica)
                    .await?
                    .add_member(node_id, &node)
                    .await
                    .map_err(failure)?;
                println!("replica {node_id} added");
                print_status(&status);
            }
            ClusterCommand::Remove { replica, node_id } => {
                let status = connect(&replica)
                    .await?
                    .remove_member(node_id)
                    .await
                    .map_err(failure)?;
                println!("replica {node_id} removed");
                print_status(&status);
            }
        }
        Ok(())
    })
}

/// Runs `hotline ops site …`.
pub fn site(command: SiteCommand) -> Result<(), Failure> {
    let (replica, site, status) = match command {
        SiteCommand::Drain { replica, site } => (replica, site, SiteStatus::Draining),
        SiteCommand::Down { replica, site } => (replica, site, SiteStatus::Down),
        SiteCommand::Activate { replica, site } => (replica, site, SiteStatus::Active),
    };
    let id = SiteId::new(&site).map_err(|e| Failure::Config(format!("--site {site:?}: {e}")))?;
    crate::cli::runtime()?.block_on(async move {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let written = connect(&replica)
            .await?
            .write(&Command::SetSiteStatus {
                site: id.clone(),
                status,
                at_ms,
            })
            .await
            .map_err(failure)?;
        println!(
            "site {id} is now {status:?} (routing log index {})",
            written.index
        );
        Ok(())
    })
}
