//! `hotline up`: the embedded default. One site with the demo configuration, synthetic
//! callers and simulated agents so that something happens; every event into the
//! embedded event log (under `--data-dir`); the KPI service reading it (interval tables
//! in SQLite beside it) with its API and live wallboard; and the status page — all on
//! one address.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotline_acd::config::SiteConfig;
use hotline_acd::ids::IdSource;
use hotline_acd::site::{Site, SiteOptions};
use hotline_core::time::SystemClock;
use hotline_eventlog::topics;
use hotline_kpi::service::{ApiKeyConfig, Kpi, KpiConfig, Role};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cli::{Failure, UpArgs, load_site};
use crate::demo::{ChannelSink, DemoLoad, Tee, start_demo};
use crate::logs::{self, LogTarget};

/// The bundled demo site.
pub const DEMO_SITE: &str = include_str!("../demo/site.toml");

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
        let log = logs::open(&target).await.map_err(|e| match e {
            Failure::Config(m) => Failure::Config(format!(
                "{m}; is another `hotline up` using --data-dir {}? stop it or pick another --data-dir",
                args.data_dir.display()
            )),
            other => other,
        })?;
        log.ensure_topics(&topics::specs()).await.map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot create the topics of event log {target}: {e}"
            ))
        })?;
        let publisher =
            Arc::new(logs::publisher(&target, log.clone(), &args.data_dir.join("spool")).await?);
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
        let (tx, rx) = mpsc::unbounded_channel();
        let site = Site::start(
            config.clone(),
            SiteOptions {
                sink: Arc::new(Tee {
                    publisher: publisher.clone(),
                    demo: ChannelSink(tx),
                }),
                clock: Arc::new(SystemClock),
                ids: IdSource::Random,
                shards: SiteOptions::default_shards(),
            },
        )
        .await
        .context("cannot start the site")?;
        let demo = if args.quiet {
            None
        } else {
            let load = DemoLoad {
                arrivals_per_hour: args.arrivals_per_hour,
                talk_secs: args.talk_secs,
                seed: args.seed,
                agents: None,
                hang_up: crate::demo::hang_up_at(&site),
            };
            Some(start_demo(&site, &config, &load, rx).await?)
        };
        println!("Hotline is up: site {} with {} queue(s) and {} agent(s).", config.site, config.queues.len(), config.agents.len());
        println!("  status page:  http://{addr}/");
        println!("  status JSON:  http://{addr}/api/status   (one tenant: ?tenant=acme)");
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
        println!("  event log:    {target}");
        println!("  data:         {} (KPI tables{})", args.data_dir.display(), if matches!(target, LogTarget::Kafka(_)) { ", event spool" } else { ", event log" });
        println!("Press Ctrl-C to stop.");
        let app = crate::status::app(site.clone()).merge(kpi.router());
        // On Ctrl-C: end the demo's contacts and log its agents out, stop the site (no new events), get its events into the log, let
        // KPI apply them all, then stop KPI — whose last flush ends the wallboards'
        // streams, which the server's graceful shutdown would otherwise wait for. The
        // stored figures then cover every event in the log (`hotline kpi replay
        // --compare` finds them identical).
        let closer = kpi.closer();
        let (stopping_site, stopping_publisher) = (site.clone(), publisher.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                println!("Stopping: the demo's callers leave, then the site, then its events into the log, then KPI …");
                if let Some(demo) = demo {
                    demo.wind_down(&stopping_site).await;
                }
                stopping_site.stop().await;
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
