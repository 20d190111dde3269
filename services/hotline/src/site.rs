//! `hotline site`: one site of a cluster — its ACD (when the file names one), its routing
//! replica (Raft over gRPC, durable on redb) and its APIs (the gRPC `RoutingAdmin` on the replica's port, the JSON admin API
//! on the HTTP port).
//!
//! The configuration is one TOML file per site (see `demo/cluster/north.toml`):
//!
//! ```toml
//! site = "north"            # this site's id; leave out with witness = true
//! node_id = 1               # its replica's number in the Raft group, never reused
//! data_dir = "hotline-data/north"
//! rpc_listen = "127.0.0.1:7101"
//! http_listen = "127.0.0.1:7201"
//! admin_token = "a long random string"
//!
//! # The members a new group starts with; every founding site lists the same ones.
//! # Leave out on a site that joins later with `hotline ops cluster add`.
//! [[members]]
//! node_id = 1
//! site = "north"
//! rpc_addr = "127.0.0.1:7101"
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hotline_core::ids::SiteId;
use hotline_core::ids::{AgentId, QueueId, TenantId};
use hotline_routing::node::{NodeConfig, NodeError, RaftTiming, RoutingNode};
use hotline_routing::state::{
    Command, OverflowPolicy, OverflowTarget, Refusal, SiteStatus, check_membership_change,
};
use hotline_routing::store::StoreConfig;
use hotline_routing::typ::SiteNode;
use serde::Deserialize;
use tokio::net::TcpListener;

use std::sync::Arc;

use hotline_acd::config::SiteConfig;
use hotline_acd::ids::IdSource;
use hotline_acd::site::{Site, SiteOptions};
use hotline_core::time::SystemClock;
use hotline_eventlog::publisher::Publisher;

use crate::cli::Failure;
use crate::logs::{self, LogTarget};
use crate::site_acd::LoginNote;

/// Options of `hotline site`.
#[derive(Debug, Clone, clap::Args)]
pub struct SiteArgs {
    /// The site's configuration file (TOML).
    #[arg(long, env = "HOTLINE_CONFIG")]
    pub config: PathBuf,
    /// The site id; must match `site` in the file when both are given.
    #[arg(long, env = "HOTLINE_SITE")]
    pub site: Option<String>,
}

/// One founding member of the routing group, as a site's file lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The replica's number.
    pub node_id: u64,
    /// Its site (empty for a witness).
    #[serde(default)]
    pub site: String,
    /// Where the other replicas reach it.
    pub rpc_addr: String,
    /// A witness votes but runs no ACD.
    #[serde(default)]
    pub witness: bool,
}

/// A site's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRoleConfig {
    /// This site's id (absent for a witness).
    #[serde(default)]
    pub site: Option<String>,
    /// Its replica's number in the Raft group.
    pub node_id: u64,
    /// A witness: a voter for two-site installs that runs no ACD.
    #[serde(default)]
    pub witness: bool,
    /// Where the routing store lives.
    pub data_dir: PathBuf,
    /// Where the replica's gRPC server listens (Raft and `RoutingAdmin`).
    pub rpc_listen: SocketAddr,
    /// Where the JSON admin API listens.
    pub http_listen: SocketAddr,
    /// The bearer token the JSON admin API requires.
    pub admin_token: String,
    /// The founding members of a new group (the same list in every founding site's file).
    #[serde(default)]
    pub members: Vec<MemberConfig>,
    /// Raft's timings; the defaults elect a new leader well within a second.
    #[serde(default)]
    pub raft: Option<RaftTimingConfig>,
    /// The site's ACD configuration file (the format of `hotline up --config`), relative
    /// to this file; its `site` is replaced by this site's id, so one file can serve
    /// every site of a cluster. Without it the site runs its routing
    /// replica only (a witness never has one).
    #[serde(default)]
    pub acd: Option<PathBuf>,
    /// How often the site publishes its live queue summary to the routing group.
    #[serde(default = "summary_every_ms")]
    pub summary_every_ms: u64,
    /// How long a site's replica may stay silent before the leader marks the site down
    /// (its agents logged out, its promises open to takeover, no overflow to it).
    #[serde(default = "down_after_ms")]
    pub down_after_ms: u64,
    /// Cross-site overflow policies this site puts into the routing state at start
    /// (a queue's policy is the group's: any site may set it).
    #[serde(default)]
    pub overflow: Vec<OverflowPolicyConfig>,
    /// A demo load: synthetic callers and simulated agents at this site.
    #[serde(default)]
    pub load: Option<LoadConfig>,
    /// The agent desktop's configuration file (`hotline desk check FILE`): the site then
    /// serves the desk, supervisor view and chat under `/desk` on its HTTP port. Agents
    /// log in at any site's desk.
    #[serde(default)]
    pub desk: Option<PathBuf>,
    /// A directory of IVR flow files (`hotline ivr check FILE`) the desk's chat entries
    /// may name (`flow = NAME`): such a chat is answered by the flow first.
    #[serde(default)]
    pub flows: Option<PathBuf>,
}

/// What a site's desk is built from.
pub struct DeskSetup {
    /// Logins, dispositions, chat entries.
    pub config: hotline_desk::DeskConfig,
    /// The IVR flows chat entries may name.
    pub flows: Option<hotline_desk::Flows>,
}

/// The desk of `site`: chat entries that name a flow are answered by it (an IVR
/// session per chat), the others by the built-in scripted questions.
pub fn build_desk(
    site: &Site,
    setup: DeskSetup,
    sink: Arc<dyn hotline_core::event::EventSink>,
) -> Result<hotline_desk::Desk, Failure> {
    let config_err = |e: hotline_desk::config::ConfigError| Failure::Config(e.to_string());
    let Some(flows) = setup.flows else {
        return hotline_desk::Desk::with_scripted_intake(setup.config, site.clone(), sink)
            .map_err(config_err);
    };
    let intake = hotline_desk::IvrIntake::new(
        Arc::new(setup.config.clone()),
        flows,
        site.id().clone(),
        hotline_ivr::SessionOptions {
            sink: sink.clone(),
            clock: site.clock().clone(),
            ids: IdSource::Random,
        },
    )
    .map_err(config_err)?;
    hotline_desk::Desk::new(
        setup.config,
        site.clone(),
        sink,
        hotline_desk::DeskOptions {
            intake: Arc::new(intake),
        },
    )
    .map_err(config_err)
}

/// One queue's cross-site overflow policy, as a site's file gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowPolicyConfig {
    /// The tenant.
    pub tenant: String,
    /// The queue.
    pub queue: String,
    /// Overflow once a contact has waited this long.
    #[serde(default)]
    pub after_wait_secs: Option<u32>,
    /// Overflow while the local expected wait is above this.
    #[serde(default)]
    pub expected_wait_above_secs: Option<u32>,
    /// Where to, in order of preference.
    pub targets: Vec<OverflowTargetConfig>,
}

/// One overflow target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowTargetConfig {
    /// The site.
    pub site: String,
    /// Latency/cost weight in milliseconds of wait.
    #[serde(default)]
    pub penalty_ms: u32,
}

/// A site's demo load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    /// Synthetic arrivals per hour over the ACD's queues (0: none).
    #[serde(default)]
    pub arrivals_per_hour: f64,
    /// The agents of the ACD file to log in here (none when empty).
    #[serde(default)]
    pub agents: Vec<String>,
    /// Mean talk time, seconds.
    #[serde(default = "talk_secs")]
    pub talk_secs: f64,
    /// Seed of the load.
    #[serde(default)]
    pub seed: u64,
}

fn talk_secs() -> f64 {
    60.0
}

fn down_after_ms() -> u64 {
    2_000
}

fn summary_every_ms() -> u64 {
    250
}

/// Raft's timings in a site's file.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftTimingConfig {
    /// Leader heartbeat, milliseconds.
    pub heartbeat_ms: u64,
    /// Shortest election timeout, milliseconds.
    pub election_min_ms: u64,
    /// Longest election timeout, milliseconds.
    pub election_max_ms: u64,
}

impl SiteRoleConfig {
    /// Reads and validates a site's file; the error names the file and the field.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut config: SiteRoleConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // The files a site's file names are relative to it.
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [&mut config.acd, &mut config.desk, &mut config.flows]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        config
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Checks what the types cannot: ids, the token, the founding members.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.site, self.witness) {
            (None, false) => return Err("`site` is missing (only a witness has no site)".into()),
            (Some(site), _) => {
                SiteId::new(site).map_err(|e| format!("`site` = {site:?}: {e}"))?;
            }
            (None, true) => {}
        }
        if self.witness && self.acd.is_some() {
            return Err("`acd`: a witness runs no ACD; remove `acd` or `witness`".into());
        }
        if !(50..=60_000).contains(&self.summary_every_ms) {
            return Err(format!(
                "`summary_every_ms` = {}: publish between every 50 ms and every minute",
                self.summary_every_ms
            ));
        }
        if let Some(t) = self.raft
            && self.down_after_ms <= t.election_max_ms
        {
            return Err(format!(
                "`down_after_ms` = {} must be longer than [raft] election_max_ms ({}), or a slow election marks sites down",
                self.down_after_ms, t.election_max_ms
            ));
        }
        if self.down_after_ms < 500 {
            return Err(format!(
                "`down_after_ms` = {}: at least 500 ms",
                self.down_after_ms
            ));
        }
        if self.node_id == 0 {
            return Err("`node_id` = 0: replica numbers start at 1".into());
        }
        if self.admin_token.len() < 16 {
            return Err(format!(
                "`admin_token` is {} characters: use at least 16 random characters",
                self.admin_token.len()
            ));
        }
        if let Some(t) = self.raft
            && !(t.heartbeat_ms > 0
                && t.heartbeat_ms < t.election_min_ms
                && t.election_min_ms < t.election_max_ms)
        {
            return Err(format!(
                "[raft]: need 0 < heartbeat_ms ({}) < election_min_ms ({}) < election_max_ms ({})",
                t.heartbeat_ms, t.election_min_ms, t.election_max_ms
            ));
        }
        if self.members.is_empty() {
            return Ok(());
        }
        let mut ids = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if !ids.insert(m.node_id) {
                return Err(format!(
                    "[[members]] #{}: node_id {} appears twice",
                    i + 1,
                    m.node_id
                ));
            }
            if !addrs.insert(m.rpc_addr.clone()) {
                return Err(format!(
                    "[[members]] #{}: rpc_addr {} appears twice",
                    i + 1,
                    m.rpc_addr
                ));
            }
            if m.rpc_addr.parse::<SocketAddr>().is_err() && !m.rpc_addr.contains(':') {
                return Err(format!(
                    "[[members]] #{}: rpc_addr {:?} is not host:port",
                    i + 1,
                    m.rpc_addr
                ));
            }
            if !m.witness {
                SiteId::new(&m.site)
                    .map_err(|e| format!("[[members]] #{}: site {:?}: {e}", i + 1, m.site))?;
            }
        }
        if !ids.contains(&self.node_id) {
            return Err(format!(
                "[[members]] does not list this replica (node_id {}): a founding site lists itself too",
                self.node_id
            ));
        }
        let voters: BTreeSet<u64> = ids.into_iter().collect();
        check_membership_change(&BTreeSet::new(), &BTreeSet::new(), &voters)
            .map_err(|r: Refusal| format!("[[members]]: {r}"))?;
        for (i, o) in self.overflow.iter().enumerate() {
            o.policy()
                .map_err(|e| format!("[[overflow]] #{}: {e}", i + 1))?;
        }
        if let Some(load) = &self.load {
            if !(load.arrivals_per_hour.is_finite() && load.arrivals_per_hour >= 0.0) {
                return Err("[load] arrivals_per_hour must be 0 or more".into());
            }
            if !(load.talk_secs.is_finite() && load.talk_secs > 0.0) {
                return Err("[load] talk_secs must be a positive number of seconds".into());
            }
            for a in &load.agents {
                AgentId::new(a).map_err(|e| format!("[load] agents: {a:?}: {e}"))?;
            }
            if self.acd.is_none() {
                return Err("[load] needs an `acd` file: the load runs on the site's ACD".into());
            }
        }
        Ok(())
    }

    fn timing(&self) -> RaftTiming {
        match self.raft {
            Some(t) => RaftTiming {
                heartbeat_ms: t.heartbeat_ms,
                election_min_ms: t.election_min_ms,
                election_max_ms: t.election_max_ms,
            },
            None => RaftTiming::default(),
        }
    }
}

impl OverflowPolicyConfig {
    /// The tenant, queue and policy, checked.
    pub fn policy(&self) -> Result<(TenantId, QueueId, OverflowPolicy), String> {
        let tenant = TenantId::new(&self.tenant).map_err(|e| format!("tenant: {e}"))?;
        let queue = QueueId::new(&self.queue).map_err(|e| format!("queue: {e}"))?;
        if self.after_wait_secs.is_none() && self.expected_wait_above_secs.is_none() {
            return Err("give after_wait_secs or expected_wait_above_secs (or both): otherwise the policy never fires".into());
        }
        if self.targets.is_empty() {
            return Err("targets is empty: name at least one site".into());
        }
        let targets = self
            .targets
            .iter()
            .map(|t| {
                Ok(OverflowTarget {
                    site: SiteId::new(&t.site)
                        .map_err(|e| format!("targets: site {:?}: {e}", t.site))?,
                    penalty_ms: t.penalty_ms,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((
            tenant,
            queue,
            OverflowPolicy {
                after_wait_secs: self.after_wait_secs,
                expected_wait_above_secs: self.expected_wait_above_secs,
                targets,
            },
        ))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs `hotline site` until Ctrl-C or SIGTERM.
pub fn run(args: SiteArgs) -> Result<(), Failure> {
    let config = SiteRoleConfig::from_file(&args.config).map_err(Failure::Config)?;
    if let (Some(given), Some(file)) = (&args.site, &config.site)
        && given != file
    {
        return Err(Failure::Config(format!(
            "--site {given} but {} is the file of site {file}",
            args.config.display()
        )));
    }
    let acd = match &config.acd {
        None => None,
        Some(path) => {
            let acd = SiteConfig::from_file(path).map_err(|e| {
                Failure::Config(format!(
                    "{e}\n  (the `acd` file of {}); check it with `hotline config check {}`",
                    args.config.display(),
                    path.display()
                ))
            })?;
            // One ACD file may serve every site of a cluster (the same tenants and queues
            // everywhere): the site id comes from this file.
            let mut acd = acd;
            if let Some(site) = &config.site {
                acd.site = SiteId::new(site)
                    .map_err(|e| Failure::Config(format!("`site` = {site:?}: {e}")))?;
            }
            Some(acd)
        }
    };
    let runtime = crate::cli::runtime()?;
    runtime.block_on(serve(config, acd))
}

async fn serve(config: SiteRoleConfig, acd: Option<SiteConfig>) -> Result<(), Failure> {
    let rpc = TcpListener::bind(config.rpc_listen).await.map_err(|e| {
        Failure::Config(format!(
            "cannot listen on rpc_listen {}: {e}; is this site already running?",
            config.rpc_listen
        ))
    })?;
    let http = TcpListener::bind(config.http_listen).await.map_err(|e| {
        Failure::Config(format!(
            "cannot listen on http_listen {}: {e}; is this site already running?",
            config.http_listen
        ))
    })?;
    let desk = desk_setup(&config, acd.as_ref())?;
    let running =
        SiteRuntime::start(config, acd, rpc, http, None, StoreConfig::default(), desk).await?;
    println!(
        "hotline site {}: routing replica {} on {} (gRPC), admin API on http://{}/api/routing/status",
        running.label(),
        running.node.id(),
        running.node.addr(),
        running.http_addr
    );
    crate::up::shutdown_signal().await;
    println!("hotline site {}: stopping", running.label());
    running.stop().await;
    Ok(())
}

/// The desk of a site's file (its `desk` file and `flows` directory), checked now so
/// that a bad file exits 64 before anything starts.
fn desk_setup(
    config: &SiteRoleConfig,
    acd: Option<&SiteConfig>,
) -> Result<Option<DeskSetup>, Failure> {
    let Some(path) = &config.desk else {
        if config.flows.is_some() {
            return Err(Failure::Config(
                "`flows` is for the desk's chat: give a `desk` file too".into(),
            ));
        }
        return Ok(None);
    };
    let desk = hotline_desk::DeskConfig::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    let flows = match (&config.flows, acd) {
        (Some(dir), Some(acd)) => Some(
            hotline_desk::Flows::from_dir(dir, hotline_ivr::Catalog::from_site(acd))
                .map_err(|e| Failure::Config(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(Some(DeskSetup {
        config: desk,
        flows,
    }))
}

/// Where a site's events go when it runs inside another process (`hotline up`): the
/// process's event log, and anything else that watches them.
#[derive(Clone)]
pub struct SharedLog {
    /// The event log's publisher (shut down by the owner, not by the site).
    pub publisher: Arc<Publisher>,
    /// Also sent every event (the status page's demo, KPI's own feed), if any.
    pub also: Option<Arc<dyn hotline_core::event::EventSink>>,
}

/// A running site: its routing replica, its APIs and, with an ACD file, its ACD with
/// overflow, promises and any demo load.
pub struct SiteRuntime {
    /// This site's routing replica.
    pub node: RoutingNode,
    /// Where its JSON admin API listens.
    pub http_addr: SocketAddr,
    /// Its ACD, when it runs one.
    pub acd: Option<Site>,
    site: String,
    started: Option<Started>,
    shared_log: bool,
    stop_tx: tokio::sync::watch::Sender<bool>,
    watch: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SiteRuntime {
    /// Starts a site on listeners already bound: its replica (bootstrapping the group
    /// when the file lists founding members), its APIs, and its ACD when `acd` is given.
    /// With `shared`, the ACD's events go there instead of an event log of its own.
    pub async fn start(
        config: SiteRoleConfig,
        acd: Option<SiteConfig>,
        rpc: TcpListener,
        http: TcpListener,
        shared: Option<SharedLog>,
        store: StoreConfig,
        desk: Option<DeskSetup>,
    ) -> Result<SiteRuntime, Failure> {
        let site = config.site.clone().unwrap_or_default();
        let (link, link_slot) = crate::overflow::Overflow::service();
        let node = RoutingNode::start_with(
            NodeConfig {
                id: config.node_id,
                site: site.clone(),
                witness: config.witness,
                data_dir: config.data_dir.clone(),
                store,
                timing: config.timing(),
                batching: Default::default(),
            },
            rpc,
            tonic::service::Routes::new(link),
        )
        .await
        .map_err(|e| match e {
            NodeError::Store(e) => Failure::Config(format!(
                "{e}; is another `hotline site` using data_dir {}?",
                config.data_dir.display()
            )),
            e => Failure::Runtime(e.into()),
        })?;

        if !config.members.is_empty() {
            let members: BTreeMap<u64, SiteNode> = config
                .members
                .iter()
                .map(|m| {
                    (
                        m.node_id,
                        SiteNode {
                            site: m.site.clone(),
                            rpc_addr: m.rpc_addr.clone(),
                            witness: m.witness,
                        },
                    )
                })
                .collect();
            node.bootstrap(members)
                .await
                .map_err(|e| Failure::Runtime(e.into()))?;
        }

        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        if !config.witness {
            register(&node, &site, config.node_id).await;
        }
        let watch = {
            let (node, stop) = (node.clone(), stop_tx.subscribe());
            let down_after = Duration::from_millis(config.down_after_ms);
            tokio::spawn(async move { node.watch_sites(down_after, stop).await })
        };

        let shared_log = shared.is_some();
        let started = match acd {
            Some(acd) => {
                let started =
                    start_acd(&config, &node, &site, acd, stop_tx.subscribe(), shared).await?;
                link_slot.set(started.overflow.clone());
                Some(started)
            }
            None => None,
        };
        let mut api = hotline_routing::api::router(node.clone(), config.admin_token.clone());
        if let Some(started) = &started {
            api = api.merge(site_status_api(
                started.site.clone(),
                started.overflow.clone(),
                config.admin_token.clone(),
            ));
        }
        match (desk, &started) {
            (Some(desk), Some(started)) => {
                let desk = build_desk(&started.site, desk, started.publisher.clone())?;
                let _ = started.desk_tap.set(desk.clone());
                api = api.merge(desk.router());
            }
            (Some(_), None) => {
                return Err(Failure::Config(
                    "`desk` needs an `acd` file: the desk's agents log in to the site's ACD".into(),
                ));
            }
            (None, _) => {}
        }
        let http_addr = http.local_addr().context("http address")?;
        let server = tokio::spawn(async move {
            axum::serve(http, api)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(SiteRuntime {
            acd: started.as_ref().map(|s| s.site.clone()),
            node,
            http_addr,
            site,
            started,
            shared_log,
            stop_tx,
            watch,
            server,
        })
    }

    /// The site's id, or `(witness)`.
    pub fn label(&self) -> &str {
        if self.site.is_empty() {
            "(witness)"
        } else {
            &self.site
        }
    }

    /// Has `desk` (served elsewhere, over this site's ACD) follow the site's events, so
    /// it ends the chats the ACD ends.
    pub fn follow_with(&self, desk: &hotline_desk::Desk) {
        if let Some(started) = &self.started {
            let _ = started.desk_tap.set(desk.clone());
        }
    }

    /// The site's overflow (its counters), when it runs an ACD.
    pub fn overflow(&self) -> Option<crate::overflow::Overflow> {
        self.started.as_ref().map(|s| s.overflow.clone())
    }

    /// Ends the demo load's contacts, stops the ACD (its events into the log unless the
    /// log is shared), the APIs and the replica.
    pub async fn stop(mut self) {
        self.wind_down().await;
        let _ = self.watch.await;
        let _ = self.server.await;
        self.node.shutdown().await;
    }

    /// The first half of [`stop`](Self::stop), which leaves the routing replica running:
    /// the demo's callers leave and its agents log out, the workers and the ACD stop, the
    /// logouts reach the routing state and the events the event log. Stopping several
    /// sites of one group, wind every one down before stopping any, so that each site's
    /// last writes find a leader. A second call does nothing.
    pub async fn wind_down(&mut self) {
        let _ = self.stop_tx.send(true);
        let Some(Started {
            site: acd_site,
            publisher,
            summaries,
            logins,
            demo,
            ..
        }) = self.started.take()
        else {
            return;
        };
        if let Some(demo) = demo {
            demo.wind_down(&acd_site).await;
        }
        let _ = summaries.await;
        acd_site.stop().await;
        let (flushed_tx, flushed) = tokio::sync::oneshot::channel();
        if logins.send(LoginNote::Flush(flushed_tx)).is_ok()
            && tokio::time::timeout(Duration::from_secs(10), flushed)
                .await
                .is_err()
        {
            eprintln!(
                "hotline site {}: agents' logouts were still being recorded in the routing state after 10 s; stopping anyway",
                self.site
            );
        }
        if !self.shared_log {
            let report = publisher.shutdown(Duration::from_secs(5)).await;
            if !report.flushed {
                eprintln!(
                    "hotline site {}: {} event(s) were not yet in the event log at shutdown",
                    self.site, report.stats.pending
                );
            }
        }
    }
}

/// Starts the site's ACD (events into the embedded log in the data directory) and the
/// task that seeds the routing state from its file and publishes its summaries.
async fn start_acd(
    config: &SiteRoleConfig,
    node: &RoutingNode,
    site: &str,
    acd: SiteConfig,
    stop: tokio::sync::watch::Receiver<bool>,
    shared: Option<SharedLog>,
) -> Result<Started, Failure> {
    let own_log = shared.is_none();
    let (publisher, also) = match shared {
        Some(shared) => (shared.publisher, shared.also),
        None => {
            let target = LogTarget::Embedded(config.data_dir.join("events"));
            let in_use = format!(
                "is another process using data_dir {}?",
                config.data_dir.display()
            );
            let (_, publisher) =
                logs::open_for_publishing(&target, &config.data_dir.join("spool"), &in_use).await?;
            (publisher, None)
        }
    };
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (logins_tx, logins_rx) = tokio::sync::mpsc::unbounded_channel();
    let (promise_tx, promise_rx) = tokio::sync::mpsc::unbounded_channel();
    let desk_tap: Arc<std::sync::OnceLock<hotline_desk::Desk>> =
        Arc::new(std::sync::OnceLock::new());
    let acd_site = Site::start(
        acd.clone(),
        SiteOptions {
            sink: Arc::new(SiteSink {
                publisher: publisher.clone(),
                also,
                desk: desk_tap.clone(),
                demo: config.load.is_some().then(|| events_tx.clone()),
                logins: logins_tx.clone(),
                promises: promise_tx,
            }),
            clock: Arc::new(SystemClock),
            ids: IdSource::Random,
            shards: SiteOptions::default_shards(),
        },
    )
    .await
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("the site's ACD did not start: {e}")))?;
    let site_id =
        SiteId::new(site).map_err(|e| Failure::Config(format!("`site` = {site:?}: {e}")))?;
    let summaries = tokio::spawn(crate::site_acd::publish(
        node.clone(),
        acd_site.clone(),
        site_id.clone(),
        acd.clone(),
        Duration::from_millis(config.summary_every_ms),
        stop.clone(),
    ));
    tokio::spawn(crate::site_acd::record_logins(
        node.clone(),
        acd_site.clone(),
        site_id.clone(),
        logins_rx,
    ));
    if !config.overflow.is_empty() {
        let policies = config
            .overflow
            .iter()
            .filter_map(|o| o.policy().ok())
            .collect();
        tokio::spawn(crate::site_acd::set_overflow_policies(
            node.clone(),
            policies,
        ));
    }
    let overflow = crate::overflow::Overflow::new(
        site_id.clone(),
        acd_site.clone(),
        node.clone(),
        publisher.clone(),
        crate::overflow::OverflowTiming::default(),
    );
    tokio::spawn(overflow.clone().run(stop.clone()));
    let promises = crate::promises::Promises::new(site_id.clone(), acd_site.clone(), node.clone());
    tokio::spawn(promises.clone().follow(promise_rx));
    tokio::spawn(promises.run(stop));
    let demo = match &config.load {
        None => None,
        Some(load) => {
            let o = overflow.clone();
            let hang_up: crate::demo::HangUp = Arc::new(move |contact| {
                let o = o.clone();
                Box::pin(async move { o.hang_up(contact).await })
            });
            let args = crate::demo::DemoLoad {
                arrivals_per_hour: load.arrivals_per_hour,
                talk_secs: load.talk_secs,
                seed: load.seed,
                agents: Some(
                    load.agents
                        .iter()
                        .filter_map(|a| AgentId::new(a).ok())
                        .collect(),
                ),
                hang_up,
            };
            Some(crate::demo::start_demo(&acd_site, &acd, &args, events_rx).await?)
        }
    };
    if own_log {
        println!(
            "hotline site {site}: ACD running ({} queue(s), events in {}), summary every {} ms",
            acd_site_queue_count(&acd_site).await,
            config.data_dir.join("events").display(),
            config.summary_every_ms
        );
    }
    Ok(Started {
        site: acd_site,
        desk_tap,
        publisher,
        summaries,
        logins: logins_tx,
        overflow,
        demo,
    })
}

/// A site's running ACD and what goes with it.
struct Started {
    site: Site,
    desk_tap: Arc<std::sync::OnceLock<hotline_desk::Desk>>,
    publisher: Arc<Publisher>,
    summaries: tokio::task::JoinHandle<()>,
    /// To wait, when stopping, until the agents' logouts are in the routing state.
    logins: tokio::sync::mpsc::UnboundedSender<LoginNote>,
    overflow: crate::overflow::Overflow,
    demo: Option<crate::demo::Demo>,
}

/// The site's events: into the event log, to the demo load, and agent logins and
/// logouts to the task that records them in the routing state.
struct SiteSink {
    publisher: Arc<Publisher>,
    also: Option<Arc<dyn hotline_core::event::EventSink>>,
    /// The site's desk, once it runs: it ends the chats the ACD ends.
    desk: Arc<std::sync::OnceLock<hotline_desk::Desk>>,
    demo: Option<tokio::sync::mpsc::UnboundedSender<hotline_core::event::Event>>,
    logins: tokio::sync::mpsc::UnboundedSender<LoginNote>,
    promises: tokio::sync::mpsc::UnboundedSender<hotline_core::event::Event>,
}

impl hotline_core::event::EventSink for SiteSink {
    fn publish(&self, events: &[hotline_core::event::Event]) {
        use hotline_core::event::{AgentEventKind, ContactEventKind, EventBody};
        self.publisher.publish(events);
        if let Some(also) = &self.also {
            also.publish(events);
        }
        if let Some(desk) = self.desk.get() {
            desk.follow(events);
        }
        for e in events {
            if let EventBody::Agent(a) = &e.body {
                match a.kind {
                    AgentEventKind::LoggedIn => {
                        let _ = self.logins.send(LoginNote::Changed {
                            agent: a.agent.clone(),
                            login: true,
                        });
                    }
                    AgentEventKind::LoggedOut => {
                        let _ = self.logins.send(LoginNote::Changed {
                            agent: a.agent.clone(),
                            login: false,
                        });
                    }
                    _ => {}
                }
            }
            if let EventBody::Contact(c) = &e.body
                && matches!(
                    c.kind,
                    ContactEventKind::Arrived { .. }
                        | ContactEventKind::CallbackRequested
                        | ContactEventKind::Voicemail { .. }
                        | ContactEventKind::Done { .. }
                        | ContactEventKind::Abandoned { .. }
                        | ContactEventKind::Failed { .. }
                        | ContactEventKind::Overflowed { .. }
                )
            {
                let _ = self.promises.send(e.clone());
            }
            if let Some(demo) = &self.demo {
                let _ = demo.send(e.clone());
            }
        }
    }
}

/// `GET /api/site/status`: the site's ACD (queues with their counters, agents) and its
/// overflow counters, for operators and tests. Same bearer token as the admin API.
fn site_status_api(site: Site, overflow: crate::overflow::Overflow, token: String) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    axum::Router::new().route(
        "/api/site/status",
        axum::routing::get(move |headers: HeaderMap| {
            let (site, overflow, token) = (site.clone(), overflow.clone(), token.clone());
            async move {
                let bearer = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                if bearer != Some(token.as_str()) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        "send the site's admin_token as `Authorization: Bearer <token>`",
                    )
                        .into_response();
                }
                match site.snapshot().await {
                    Ok(snapshot) => axum::Json(serde_json::json!({
                        "acd": snapshot,
                        "overflow": overflow.stats(),
                    }))
                    .into_response(),
                    Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
                }
            }
        }),
    )
}

async fn acd_site_queue_count(site: &Site) -> usize {
    site.snapshot().await.map(|s| s.queues.len()).unwrap_or(0)
}

/// Adds this site to the routing state once a leader is known, or puts it back in
/// service when the state marked it down while it was away. Retried in the background
/// while the group elects its first leader.
async fn register(node: &RoutingNode, site: &str, node_id: u64) {
    let Ok(id) = SiteId::new(site) else { return };
    let node = node.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            // Decide on a state that has caught up with the group, not on a stale copy.
            if node.read_linearizable(|_| ()).await.is_ok() {
                let command = match node.read(|s| s.site(&id).map(|site| site.status)) {
                    Some(SiteStatus::Down) => Some(Command::SetSiteStatus {
                        site: id.clone(),
                        status: SiteStatus::Active,
                        at_ms: now_ms(),
                    }),
                    Some(_) => None,
                    None => Some(Command::AddSite {
                        id: id.clone(),
                        name: id.to_string(),
                        node_id,
                        at_ms: now_ms(),
                    }),
                };
                let Some(command) = command else { return };
                match node.write(command).await {
                    Ok(_) => {
                        tracing::info!(site = %id, "site registered as active in the routing state");
                        return;
                    }
                    Err(NodeError::Refused(refusal)) => {
                        tracing::warn!(site = %id, %refusal, "site registration refused");
                        return;
                    }
                    Err(e) => tracing::debug!(site = %id, error = %e, "site not registered yet"),
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                tracing::warn!(site = %id, "site not registered yet; still trying");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
