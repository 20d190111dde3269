//! Three routing replicas in one process, talking real gRPC on 127.0.0.1 and storing in
//! real redb files: bootstrap, writes from any replica, a lost leader, a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hotline_core::ids::SiteId;
use hotline_routing::node::{NodeConfig, NodeError, RaftTiming, RoutingNode};
use hotline_routing::state::{Command, Response};
use hotline_routing::store::StoreConfig;
use hotline_routing::typ::SiteNode;
use tokio::net::TcpListener;

const SITES: [(u64, &str); 3] = [(1, "north"), (2, "south"), (3, "east")];

async fn start(id: u64, site: &str, dir: &Path, listener: TcpListener) -> Result<RoutingNode> {
    let config = NodeConfig {
        id,
        site: site.into(),
        witness: false,
        data_dir: dir.join(site),
        store: StoreConfig::default(),
        timing: RaftTiming::default(),
        batching: Default::default(),
    };
    Ok(RoutingNode::start(config, listener).await?)
}

async fn cluster(dir: &Path) -> Result<(Vec<RoutingNode>, BTreeMap<u64, SiteNode>)> {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for (id, site) in SITES {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        members.insert(
            id,
            SiteNode {
                site: site.into(),
                rpc_addr: listener.local_addr()?.to_string(),
                witness: false,
            },
        );
        listeners.push((id, site, listener));
    }
    let mut nodes = Vec::new();
    for (id, site, listener) in listeners {
        nodes.push(start(id, site, dir, listener).await?);
    }
    nodes[0].bootstrap(members.clone()).await?;
    Ok((nodes, members))
}

/// Polls until some live replica says it leads, and returns it with how long it took.
async fn leader(nodes: &[&RoutingNode], within: Duration) -> Result<(u64, Duration)> {
    let started = Instant::now();
    while started.elapsed() < within {
        for node in nodes {
            let status = node.status();
            if status.role == "leader" {
                return Ok((status.id, started.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!(
        "no leader among {:?} within {within:?}",
        nodes.iter().map(|n| n.id()).collect::<Vec<_>>()
    )
}

fn add_site(id: &str, node_id: u64) -> Command {
    Command::AddSite {
        id: SiteId::new(id).unwrap(),
        name: id.to_uppercase(),
        node_id,
        at_ms: 1,
    }
}

async fn assert_eventually_has_site(node: &RoutingNode, site: &str) -> Result<()> {
    let site = SiteId::new(site)?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if node.read(|s| s.site(&site).is_some()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("replica {} never saw site {site}", node.id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_at_any_replica_is_applied_at_every_replica() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nodes, _) = cluster(dir.path()).await?;
    leader(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(5)).await?;

    for (i, node) in nodes.iter().enumerate() {
        let written = node
            .write(add_site(&format!("site-{i}"), 10 + i as u64))
            .await?;
        assert_eq!(written.response, Response::Applied);
    }
    for node in &nodes {
        for i in 0..nodes.len() {
            assert_eventually_has_site(node, &format!("site-{i}")).await?;
        }
    }
    let read = nodes[2].read_linearizable(|s| s.sites().count()).await?;
    assert_eq!(read, 3);
    for node in &nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_refused_at_every_replica_and_changes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nodes, _) = cluster(dir.path()).await?;
    leader(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(5)).await?;
    nodes[0].write(add_site("north", 1)).await?;
    let before = nodes[1].read_linearizable(Clone::clone).await?;

    // The same site twice: the state machine refuses it, through a follower too.
    for node in &nodes {
        match node.write(add_site("north", 1)).await {
            Err(NodeError::Refused(refusal)) => {
                assert!(refusal.to_string().contains("north"), "{refusal}")
            }
            other => bail!("expected a refusal naming the site, got {other:?}"),
        }
    }
    assert_eq!(nodes[1].read_linearizable(Clone::clone).await?, before);
    for node in &nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_elect_a_leader_within_a_second_and_a_restarted_replica_catches_up() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let (nodes, members) = cluster(dir.path()).await?;
    let (first, _) = leader(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(5)).await?;
    nodes[0].write(add_site("before", 10)).await?;

    // The leader goes away (its server stops answering, as after a kill).
    let lost = nodes.iter().find(|n| n.id() == first).context("leader")?;
    lost.shutdown().await;
    let survivors: Vec<&RoutingNode> = nodes.iter().filter(|n| n.id() != first).collect();
    let (second, took) = leader(&survivors, Duration::from_secs(5)).await?;
    assert_ne!(second, first);
    assert!(took < Duration::from_secs(1), "a new leader took {took:?}");

    // Writes go on at the survivors while it is away.
    survivors[0].write(add_site("during", 11)).await?;

    // It comes back on the same files and address, and catches up.
    let site = &members[&first].site;
    let listener = TcpListener::bind(&members[&first].rpc_addr).await?;
    let back = start(first, site, dir.path(), listener).await?;
    assert_eventually_has_site(&back, "before").await?;
    assert_eventually_has_site(&back, "during").await?;
    back.write(add_site("after", 12)).await?;
    for node in survivors {
        assert_eventually_has_site(node, "after").await?;
        node.shutdown().await;
    }
    back.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_joins_as_a_learner_then_votes_and_a_quorum_losing_removal_is_refused()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nodes, _) = cluster(dir.path()).await?;
    let (lead, _) = leader(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(5)).await?;
    let leader_node = nodes.iter().find(|n| n.id() == lead).context("leader")?;
    leader_node.write(add_site("north", 1)).await?;

    // A fourth replica starts empty and is added through the leader.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let fourth = start(4, "west", dir.path(), listener).await?;
    let status = leader_node
        .add_member(
            4,
            SiteNode {
                site: "west".into(),
                rpc_addr: addr,
                witness: false,
            },
        )
        .await?;
    assert!(
        status.members.iter().any(|m| m.id == 4 && m.voter),
        "{status:?}"
    );
    assert_eventually_has_site(&fourth, "north").await?;

    // Two of four voters go away; removing a live one would leave one of three
    // reachable: refused, and the membership is unchanged.
    let others: Vec<&RoutingNode> = nodes.iter().filter(|n| n.id() != lead).collect();
    others[0].shutdown().await;
    others[1].shutdown().await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    match leader_node.remove_member(4).await {
        Err(NodeError::Membership(reason)) => assert!(
            reason.contains("reachable") || reason.contains("majority"),
            "{reason}"
        ),
        other => bail!("expected the removal to be refused, got {other:?}"),
    }
    assert_eq!(
        leader_node
            .status()
            .members
            .iter()
            .filter(|m| m.voter)
            .count(),
        4
    );
    leader_node.shutdown().await;
    fourth.shutdown().await;
    Ok(())
}
