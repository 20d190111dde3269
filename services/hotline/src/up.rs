//! `hotline up`: the embedded default. Three sites (north, south, east) in one process,
//! one routing group (Raft over gRPC on 127.0.0.1, in memory), each site's ACD with the
//! demo configuration, synthetic callers and simulated agents spread over them so that
//! contacts overflow between sites; every event into the embedded event log (under
//! `--data-dir`); the KPI service reading it (interval tables in SQLite beside it) with
//! its API and live wallboard; the status page of every site; and the agent desktop,
//! supervisor view and customer chat at site north — all on one address.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotline_acd::config::SiteConfig;
use hotline_core::ids::SiteId;
use hotline_desk::DeskConfig;
use hotline_kpi::service::{ApiKeyConfig, Kpi, KpiConfig, Role};
use hotline_routing::store::StoreConfig;
use tokio::net::TcpListener;

use crate::cli::{Failure, UpArgs, load_site};
use crate::logs::{self, LogTarget};
use crate::site::{
    DeskSetup, LoadConfig, MemberConfig, OverflowPolicyConfig, OverflowTargetConfig, SharedLog,
    SiteRoleConfig, SiteRuntime, build_desk,
};

/// The bundled demo site.
pub const DEMO_SITE: &str = include_str!("../demo/site.toml");

/// The sites `hotline up` runs in one routing group, and their shares of the demo's
/// callers. North takes most calls with few agents, so its waiting contacts overflow to
/// south and east.
const SITES: [(&str, f64); 3] = [("north", 0.6), ("south", 0.25), ("east", 0.15)];

/// The admin token of the demo cluster's JSON APIs.
const ADMIN_TOKEN: &str = "demo-cluster-admin-token";

/// The demo desk: logins and chat entries for the demo tenants.
pub const DEMO_DESK: &str = include_str!("../../desk/demo/desk.toml");

/// The demo IVR flow the desk's acme web chat runs.
pub const DEMO_FLOW: &str = include_str!("../demo/flows/acme-main.yaml");

/// The demo desk with its IVR flow, checked against the site's queues and skills.
fn demo_desk(desk: &DeskConfig, acd: &SiteConfig) -> Result<DeskSetup, Failure> {
    let catalog = hotline_ivr::Catalog::from_site(acd);
    let flow =
        hotline_ivr::PublishedFlow::check(DEMO_FLOW, "demo/flows/acme-main.yaml", &catalog, 1)
            .map_err(|e| Failure::Config(format!("the bundled demo flow: {e}")))?;
    let mut flows = hotline_desk::Flows::new(catalog);
    flows.insert(Arc::new(flow));
    Ok(DeskSetup {
        config: desk.clone(),
        flows: Some(flows),
    })
}

/// Runs `hotline up` until Ctrl-C.
pub fn run(args: UpArgs) -> Result<(), Failure> {
    let config = load_site(args.config.as_ref())?;
    if !(args.arrivals_per_hour.is_finite() && args.arrivals_per_hour >= 0.0) {
        return Err(Failure::Config(
            "--arrivals-per-hour must be 0 or more".into(),
        ));
    }
    if !(args.talk_secs.is_finite() && args.talk_secs > 0.0) {
        return Err(Failure::Config(
            "--talk-secs must be a positive number of seconds".into(),
        ));
    }
    let desk_config = DeskConfig::from_toml(DEMO_DESK, "the bundled demo desk")
        .map_err(|e| Failure::Config(e.to_string()))?;
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen).await.map_err(|e| {
            Failure::Config(format!(
                "cannot listen on {}: {e}; pick another address with --listen (port 0 picks a free one)",
                args.listen
            ))
        })?;
        let addr = listener.local_addr().context("listener address")?;
        let target = args
            .event_log
            .clone()
            .unwrap_or_else(|| LogTarget::Embedded(args.data_dir.join("events")));
        let in_use = format!(
            "is another `hotline up` using --data-dir {}? stop it or pick another --data-dir",
            args.data_dir.display()
        );
        let (log, publisher) =
            logs::open_for_publishing(&target, &args.data_dir.join("spool"), &in_use).await?;
        let kpi_config = demo_kpi_config(&config, &args.data_dir);
        let keys: Vec<(Option<String>, String)> = kpi_config
            .api_keys
            .iter()
            .map(|k| (k.tenant.clone(), k.key.clone()))
            .collect();
        let kpi = Kpi::start(kpi_config, log.clone())
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot start KPI: {e}")))?;
        kpi.register_collector(Box::new(logs::PublisherMetrics(publisher.clone())));

        let sites = start_sites(&config, &args, &desk_config, publisher.clone()).await?;
        let north = sites[0].acd.clone().context("north runs an ACD")?;
        let desk = build_desk(&north, demo_desk(&desk_config, &config)?, publisher.clone())?;
        sites[0].follow_with(&desk);

        println!(
            "Hotline is up: {} sites ({}) in one routing group, each with {} queue(s) and {} agent(s) configured.",
            sites.len(),
            SITES.map(|(n, _)| n).join(", "),
            config.queues.len(),
            config.agents.len()
        );
        println!("  status page:  http://{addr}/");
        println!("  other sites:  http://{addr}/?site=south   http://{addr}/?site=east");
        println!("  status JSON:  http://{addr}/api/status   (one tenant: ?tenant=acme)");
        println!("  cluster JSON: http://{addr}/api/cluster   (each site's routing role and overflow counters)");
        println!("  agent desk:   http://{addr}/desk   at site north; logins (password `demo`): {}", desk_logins(&desk_config));
        println!("  customer chat: http://{addr}/desk/chat?tenant=acme   (acme's web chat is answered by the IVR flow `main` first)");
        for s in &sites[1..] {
            println!("  agent desk:   http://{}/desk   at site {} (the same logins; an agent is logged in at one site at a time)", s.http_addr, s.label());
        }
        for (tenant, key) in &keys {
            match tenant.as_deref() {
                Some(t) => println!("  wallboard ({t}): http://{addr}/wallboard?key={key}   (中文: &lang=zh-CN)"),
                None => println!("  wallboard (provider key, any tenant): http://{addr}/wallboard?key={key}&tenant=acme"),
            }
        }
        if let Some((_, key)) = keys.first() {
            println!("  KPI API:      curl -H 'Authorization: Bearer {key}' http://{addr}/api/kpi/realtime");
        }
        println!("  metrics:      curl -H 'Authorization: Bearer demo-provider-sre-key' http://{addr}/metrics");
        for s in &sites {
            println!(
                "  site {:<6} routing replica {} (gRPC {}), admin http://{}/api/site/status (token {ADMIN_TOKEN})",
                s.label(), s.node.id(), s.node.addr(), s.http_addr
            );
        }
        println!("  routing:      hotline ops cluster status --addr {}", sites[0].node.addr());
        println!("  event log:    {target}");
        println!("  data:         {} (KPI tables{}; the routing group is in memory)", args.data_dir.display(), if matches!(target, LogTarget::Kafka(_)) { ", event spool" } else { ", event log" });
        println!("Press Ctrl-C to stop.");
        let app = crate::status::app(sites.iter().filter_map(|s| s.acd.clone()).collect())
            .merge(cluster_api(&sites))
            .merge(kpi.router())
            .merge(desk.router());
        // On Ctrl-C: end the demo's contacts and log its agents out, stop the sites (no
        // new events), get their events into the log, let KPI apply them all, then stop
        // KPI — whose last flush ends the wallboards' streams, which the server's
        // graceful shutdown would otherwise wait for. The stored figures then cover every
        // event in the log (`hotline kpi replay --compare` finds them identical).
        let closer = kpi.closer();
        let stopping_publisher = publisher.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                println!("Stopping: the demo's callers leave, then the sites, then their events into the log, then KPI …");
                drop(desk);
                // Every site winds down before any replica stops, so that the last
                // logouts of each find a leader.
                let mut sites = sites;
                for s in &mut sites {
                    s.wind_down().await;
                }
                for s in sites {
                    s.stop().await;
                }
                let report = stopping_publisher.shutdown(Duration::from_secs(5)).await;
                if !report.flushed {
                    eprintln!(
                        "hotline: {} event(s) were not yet in the event log at shutdown",
                        report.stats.pending
                    );
                }
                if !closer.drain(Duration::from_secs(10)).await {
                    eprintln!("hotline: KPI had not applied every event within 10 s of stopping");
                }
                closer.close();
            })
            .await
            .context("web server failed")?;
        if let Err(e) = kpi.shutdown().await {
            eprintln!("hotline: KPI did not stop cleanly: {e}");
        }
        println!("Hotline stopped.");
        Ok(())
    })
}

/// `GET /api/cluster`: each site's view of the routing group (its role, the leader, the
/// site's status) and its overflow counters — where overflow and failover show.
fn cluster_api(sites: &[SiteRuntime]) -> axum::Router {
    let sites: Vec<(
        String,
        hotline_routing::node::RoutingNode,
        Option<crate::overflow::Overflow>,
    )> = sites
        .iter()
        .map(|s| (s.label().to_owned(), s.node.clone(), s.overflow()))
        .collect();
    let sites = Arc::new(sites);
    axum::Router::new().route(
        "/api/cluster",
        axum::routing::get(move || {
            let sites = sites.clone();
            async move {
                let rows: Vec<serde_json::Value> = sites
                    .iter()
                    .map(|(name, node, overflow)| {
                        let status = node.status();
                        let id = SiteId::new(name).ok();
                        let site_status = id.and_then(|id| {
                            node.read(|s| s.site(&id).map(|site| site.status.to_string()))
                        });
                        serde_json::json!({
                            "site": name,
                            "status": site_status,
                            "replica": status.id,
                            "role": status.role,
                            "leader": status.leader,
                            "overflow": overflow.as_ref().map(|o| o.stats()),
                        })
                    })
                    .collect();
                axum::Json(serde_json::json!({ "sites": rows }))
            }
        }),
    )
}

/// The desk's demo logins, as `tenant/id (role)`.
fn desk_logins(desk: &DeskConfig) -> String {
    desk.users
        .iter()
        .map(|u| format!("{}/{} ({})", u.tenant, u.id, u.role.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Starts the three sites of `hotline up` on 127.0.0.1 (free ports), one routing group
/// in memory, every ACD with the same configuration, their events into `publisher`.
/// The demo's simulated agents are spread over the sites (north gets few), leaving the
/// desk's agents free to log in; north sets every queue's overflow policy.
async fn start_sites(
    config: &SiteConfig,
    args: &UpArgs,
    desk: &DeskConfig,
    publisher: Arc<hotline_eventlog::publisher::Publisher>,
) -> Result<Vec<SiteRuntime>, Failure> {
    let bind = || async {
        TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot listen on 127.0.0.1: {e}")))
    };
    let mut listeners = Vec::new();
    for _ in SITES {
        listeners.push((bind().await?, bind().await?));
    }
    let members: Vec<MemberConfig> = listeners
        .iter()
        .zip(SITES)
        .enumerate()
        .map(|(i, ((rpc, _), (name, _)))| MemberConfig {
            node_id: i as u64 + 1,
            site: name.to_owned(),
            rpc_addr: rpc.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            witness: false,
        })
        .collect();
    let desk_agents: Vec<String> = desk.users.iter().map(|u| u.id.to_string()).collect();
    let simulated: Vec<String> = config
        .agents
        .iter()
        .map(|a| a.id.to_string())
        .filter(|a| !desk_agents.contains(a))
        .collect();
    // North: a fifth of the simulated agents; south: half of the rest; east: the others.
    let north_n = simulated.len().div_ceil(5);
    let south_n = (simulated.len() - north_n).div_ceil(2);
    let split = [
        simulated[..north_n].to_vec(),
        simulated[north_n..north_n + south_n].to_vec(),
        simulated[north_n + south_n..].to_vec(),
    ];
    // Voice queues only: a chat cannot move to another site's desk yet.
    let policies: Vec<OverflowPolicyConfig> = config
        .queues
        .iter()
        .filter(|q| q.channel != hotline_core::channel::Channel::Chat)
        .map(|q| OverflowPolicyConfig {
            tenant: q.tenant.to_string(),
            queue: q.id.to_string(),
            after_wait_secs: Some(20),
            expected_wait_above_secs: None,
            targets: SITES
                .iter()
                .enumerate()
                .map(|(i, (name, _))| OverflowTargetConfig {
                    site: (*name).to_owned(),
                    penalty_ms: i as u32 * 1000,
                })
                .collect(),
        })
        .collect();
    let mut sites = Vec::new();
    for (i, ((rpc, http), (name, share))) in listeners.into_iter().zip(SITES).enumerate() {
        let role = SiteRoleConfig {
            site: Some(name.to_owned()),
            node_id: i as u64 + 1,
            witness: false,
            data_dir: args.data_dir.join("sites").join(name),
            rpc_listen: rpc.local_addr().context("rpc address")?,
            http_listen: http.local_addr().context("http address")?,
            admin_token: ADMIN_TOKEN.to_owned(),
            members: members.clone(),
            raft: None,
            acd: None,
            summary_every_ms: 250,
            down_after_ms: 2_000,
            overflow: if i == 0 { policies.clone() } else { Vec::new() },
            desk: None,
            flows: None,
            load: (!args.quiet).then(|| LoadConfig {
                arrivals_per_hour: args.arrivals_per_hour * share,
                agents: split[i].clone(),
                talk_secs: args.talk_secs,
                seed: args.seed.wrapping_add(i as u64),
            }),
        };
        let mut acd = config.clone();
        acd.site = SiteId::new(name).map_err(|e| Failure::Config(e.to_string()))?;
        let shared = SharedLog {
            publisher: publisher.clone(),
            also: None,
        };
        sites.push({
            // North's desk is on the main address; south's and east's on their own.
            let site_desk = if i == 0 {
                None
            } else {
                Some(demo_desk(desk, &acd)?)
            };
            SiteRuntime::start(
                role,
                Some(acd),
                rpc,
                http,
                Some(shared),
                StoreConfig::in_memory(),
                site_desk,
            )
            .await?
        });
    }
    Ok(sites)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The KPI service of `hotline up`: interval tables in SQLite in the data directory,
/// and demo API keys — one per tenant (its wallboard) and one for the provider.
fn demo_kpi_config(site: &SiteConfig, data_dir: &std::path::Path) -> KpiConfig {
    let mut api_keys: Vec<ApiKeyConfig> = site
        .tenants
        .iter()
        .map(|t| ApiKeyConfig {
            key: format!("demo-{}-wallboard-key", t.id),
            tenant: Some(t.id.to_string()),
            provider: false,
            role: Role::Supervisor,
        })
        .collect();
    api_keys.push(ApiKeyConfig {
        key: "demo-provider-sre-key".to_string(),
        tenant: None,
        provider: true,
        role: Role::Sre,
    });
    KpiConfig {
        store_url: format!("sqlite://{}?mode=rwc", data_dir.join("kpi.db").display()),
        consumer_group: "hotline-up-kpi".to_string(),
        api_keys,
        ..KpiConfig::default()
    }
}
