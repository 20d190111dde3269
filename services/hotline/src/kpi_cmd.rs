//! `hotline kpi serve` (the KPI role) and `hotline kpi replay` (rebuild the interval
//! tables from the event log, and check them against the live ones).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hotline_kpi::replay::{self, ReplayProgress};
use hotline_kpi::service::{self, KpiConfig};
use hotline_kpi::store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::net::TcpListener;

use crate::cli::Failure;
use crate::logs::{self, LogTarget};

/// Options of `hotline kpi serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The KPI configuration (TOML: listen, store_url, consumer_group, [engine],
    /// [[api_key]], [wallboard]); the defaults when absent.
    #[arg(long, env = "HOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The event log: `embedded:PATH` or `kafka://HOST:PORT[,…]`.
    #[arg(
        long,
        env = "HOTLINE_EVENT_LOG",
        default_value = "embedded:hotline-data/events"
    )]
    pub event_log: LogTarget,
    /// Overrides the file's `listen`.
    #[arg(long, env = "HOTLINE_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Overrides the file's `store_url` (`sqlite://…?mode=rwc` or `postgres://…`).
    #[arg(long, env = "HOTLINE_KPI_STORE")]
    pub store: Option<String>,
}

/// Options of `hotline kpi replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The event log to replay.
    #[arg(
        long,
        env = "HOTLINE_EVENT_LOG",
        default_value = "embedded:hotline-data/events"
    )]
    pub event_log: LogTarget,
    /// The store the rebuilt rows are written to; every row in it is replaced.
    #[arg(long)]
    pub store: String,
    /// A live store to compare the rebuilt rows with, row by row and counter by
    /// counter; any difference exits 1.
    #[arg(long)]
    pub compare: Option<String>,
    /// The KPI configuration whose `[engine]` definitions to count with (the live
    /// service's file, so both count alike).
    #[arg(long, env = "HOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Reads a KPI configuration file, or the defaults.
pub fn load_config(path: Option<&PathBuf>) -> Result<KpiConfig, Failure> {
    let config: KpiConfig = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))?;
            toml::from_str(&text).map_err(|e| Failure::Config(format!("{}: {e}", p.display())))?
        }
        None => KpiConfig::default(),
    };
    Ok(config)
}

fn check(config: &KpiConfig) -> Result<(), Failure> {
    config
        .validate()
        .map_err(|e| Failure::Config(e.to_string()))?;
    config
        .engine
        .validate()
        .map_err(|e| Failure::Config(format!("kpi config: engine: {e}")))
}

/// Runs `hotline kpi serve` until Ctrl-C or SIGTERM.
pub fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(s) = args.store {
        config.store_url = s;
    }
    check(&config)?;
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            Failure::Config(format!(
                "cannot listen on {}: {e}; set `listen` or --listen",
                config.listen
            ))
        })?;
        let addr = listener.local_addr().context("listener address")?;
        let log = logs::open(&args.event_log).await?;
        println!("hotline kpi: reading {} ({})", args.event_log, log.kind());
        println!("  API:       http://{addr}/api/kpi/realtime");
        println!("  wallboard: http://{addr}/wallboard?key=YOUR_KEY");
        println!("  metrics:   http://{addr}/metrics");
        service::run(config, log, listener, crate::up::shutdown_signal())
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("kpi: {e}")))
    })
}

/// Runs `hotline kpi replay`.
pub fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let config = load_config(args.config.as_ref())?;
    check(&config)?;
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        let log = logs::open(&args.event_log).await?;
        let target = Store::connect(&args.store)
            .await
            .map_err(|e| Failure::Config(format!("--store: {e}")))?
            .with_config(config.engine.clone());
        let bar = if args.json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "replaying {bar:40} {pos}/{len} records  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let show = |p: ReplayProgress| {
            bar.set_length(p.records + p.remaining);
            bar.set_position(p.records);
        };
        let summary = replay::replay(log.as_ref(), &target, config.engine.clone(), show)
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("replay: {e}")))?;
        bar.finish_and_clear();
        let p = &summary.progress;
        let differences = match &args.compare {
            Some(url) => {
                let live = Store::connect(url)
                    .await
                    .map_err(|e| Failure::Config(format!("--compare: {e}")))?
                    .with_config(config.engine.clone());
                Some(
                    replay::compare(&live, &target, None)
                        .await
                        .map_err(|e| Failure::Runtime(anyhow::anyhow!("compare: {e}")))?,
                )
            }
            None => None,
        };
        if args.json {
            println!(
                "{}",
                json!({
                    "records": p.records, "applied": p.applied, "duplicates": p.duplicates,
                    "undecodable": p.undecodable, "damaged": p.damaged,
                    "rows": summary.rows, "tenants": summary.tenants,
                    "differences": differences.as_ref().map(|d| d.len()),
                })
            );
        } else {
            println!(
                "replayed {} record(s) from {}: {} event(s) applied, {} duplicate(s), {} undecodable, {} damaged stretch(es); {} row(s) for {} tenant(s) written to {}",
                p.records,
                args.event_log,
                p.applied,
                p.duplicates,
                p.undecodable,
                p.damaged,
                summary.rows,
                summary.tenants.len(),
                args.store
            );
            if let Some(d) = &differences {
                if d.is_empty() {
                    println!("compared with the live store: identical, every row and counter");
                } else {
                    println!("compared with the live store: {} row(s) differ:", d.len());
                    for diff in d.iter().take(20) {
                        println!("  {diff:?}");
                    }
                }
            }
        }
        match differences {
            Some(d) if !d.is_empty() => Err(Failure::Runtime(anyhow::anyhow!(
                "{} row(s) differ between the replay and the live store",
                d.len()
            ))),
            _ => Ok(()),
        }
    })
}
