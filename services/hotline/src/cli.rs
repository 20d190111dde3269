//! The command line. Every option can also be set with a `HOTLINE_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use hotline_acd::config::SiteConfig;

/// Hotline: a multi-site, multi-tenant contact-center platform.
#[derive(Debug, Parser)]
#[command(name = "hotline", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded default: a site with a demo tenant, synthetic callers, simulated
    /// agents and a live status page on 127.0.0.1. No server to install.
    Up(UpArgs),
    /// Simulate a site in virtual time through the real ACD code.
    Sim(SimArgs),
    /// Contact-center figures: the KPI role, replay, staffing from a forecast.
    Kpi {
        #[command(subcommand)]
        which: KpiCommand,
    },
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Check configuration files without running anything.
    Config {
        #[command(subcommand)]
        which: ConfigCommand,
    },
    /// Run one site of a cluster: its routing replica and its admin APIs.
    Site(crate::site::SiteArgs),
    /// IVR flows: check a flow file before publishing it.
    Ivr {
        #[command(subcommand)]
        which: IvrCommand,
    },
    /// The agent desktop's configuration: hash a password, check a file.
    Desk {
        #[command(subcommand)]
        which: crate::desk_cmd::DeskCommand,
    },
    /// What runbooks call: the event log's topics, the routing group, a site's status.
    Ops {
        #[command(subcommand)]
        which: OpsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OpsCommand {
    /// Create the event log's topics (or with --check only check them): names,
    /// partitions, retention.
    Topics(crate::ops::TopicsArgs),
    /// The routing group: status, add or remove a replica.
    Cluster {
        #[command(subcommand)]
        which: crate::cluster_cmd::ClusterCommand,
    },
    /// A site's status in the routing state: drain, down, activate.
    Site {
        #[command(subcommand)]
        which: crate::cluster_cmd::SiteCommand,
    },
}

/// Options of `hotline up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where the status page listens (port 0 picks a free port).
    #[arg(long, env = "HOTLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Site configuration (TOML); the bundled demo when absent.
    #[arg(long, env = "HOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Synthetic contacts per hour over all queues.
    #[arg(long, env = "HOTLINE_DEMO_ARRIVALS_PER_HOUR", default_value_t = 900.0)]
    pub arrivals_per_hour: f64,
    /// Mean talk time of the simulated agents, seconds.
    #[arg(long, env = "HOTLINE_DEMO_TALK_SECS", default_value_t = 45.0)]
    pub talk_secs: f64,
    /// Seed of the synthetic load.
    #[arg(long, env = "HOTLINE_DEMO_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Run without synthetic callers and simulated agents (an empty, quiet site).
    #[arg(long, env = "HOTLINE_DEMO_QUIET")]
    pub quiet: bool,
    /// Where the embedded event log and the KPI tables live (created if missing); a
    /// restart with the same directory carries on where the last run stopped.
    #[arg(long, env = "HOTLINE_DATA_DIR", default_value = "hotline-data")]
    pub data_dir: PathBuf,
    /// The event log: `kafka://HOST:PORT[,…]` to publish to Kafka (through a durable
    /// spool in the data directory, so the site keeps working while the broker is
    /// away); the embedded log in the data directory when absent.
    #[arg(long, env = "HOTLINE_EVENT_LOG")]
    pub event_log: Option<crate::logs::LogTarget>,
}

/// Options of `hotline sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Agents staffed (single-queue mode).
    #[arg(long, default_value_t = 10)]
    pub agents: u32,
    /// Mean arrivals per hour (single-queue mode).
    #[arg(long, default_value_t = 150.0)]
    pub arrivals_per_hour: f64,
    /// Mean handle time, seconds.
    #[arg(long, default_value_t = 180.0)]
    pub aht_secs: f64,
    /// Handle-time distribution.
    #[arg(long, value_enum, default_value_t = Handle::Exponential)]
    pub handle: Handle,
    /// Coefficient of variation of lognormal handle times.
    #[arg(long, default_value_t = 1.0)]
    pub handle_cv: f64,
    /// Mean patience, seconds (exponential); no abandonment when absent.
    #[arg(long)]
    pub patience_secs: Option<f64>,
    /// Hours of arrivals.
    #[arg(long, default_value_t = 8.0)]
    pub hours: f64,
    /// Hours at the start left out of the figures.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_hours: f64,
    /// Service-level threshold, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub sl_secs: f64,
    /// Random seed; the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A scenario file (TOML): a site configuration plus a `[sim]` table with
    /// `[[sim.stream]]` arrival streams, for several queues and skills.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Print one JSON object on the last line instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Handle-time distributions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Handle {
    /// Exponential (the Erlang assumption).
    Exponential,
    /// Lognormal with `--handle-cv`.
    Lognormal,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Routing through the real actors: decisions per second and offer latency, with
    /// the engine and a naive linear-scan router measured in the same run.
    Routing(crate::bench::RoutingArgs),
    /// Simulator throughput: simulated contacts per minute of wall time.
    Sim(crate::bench::SimBenchArgs),
    /// ACD → event log → KPI: events per second and latency to KPI, against the
    /// embedded log or a Kafka-protocol broker, beside the log's bare producer.
    Events(crate::bench_events::EventsArgs),
    /// Kill -9 the routing leader of three `hotline site` processes: time until a
    /// survivor leads and until the lost site is marked down.
    Failover(crate::bench_failover::FailoverArgs),
    /// The routing group's commits: commits per second, commit latency and fsync times.
    Raft(crate::bench_raft::RaftArgs),
}

#[derive(Debug, Subcommand)]
enum KpiCommand {
    /// Agents needed for a forecast (Erlang C), with service level, ASA and occupancy.
    Staffing(crate::staffing::StaffingArgs),
    /// Run the KPI role: consume the event log, keep interval tables, serve the JSON
    /// API, /metrics and the live wallboard.
    Serve(crate::kpi_cmd::ServeArgs),
    /// Rebuild the interval tables from the event log (and compare them with the live
    /// ones with --compare).
    Replay(crate::kpi_cmd::ReplayArgs),
}

#[derive(Debug, Subcommand)]
enum IvrCommand {
    /// Validate a flow file against a site's tenants, queues and skills; print each
    /// problem as FILE:LINE:COL: message and exit 1 if there is any.
    Check(crate::ivr_cmd::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a site configuration file and say what is wrong, where.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Unusable configuration or arguments: exit 64.
    Config(String),
    /// Anything else.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// The multi-threaded runtime every long-running command (`up`, the roles, `ops`,
/// `bench events`) runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot start the runtime: {e}")))
}

/// Loads a site configuration, or the bundled demo.
pub fn load_site(path: Option<&PathBuf>) -> Result<SiteConfig, Failure> {
    match path {
        Some(p) => SiteConfig::from_file(p).map_err(|e| {
            Failure::Config(format!(
                "{e}\n  fix the file, or run `hotline config check {}`",
                p.display()
            ))
        }),
        None => SiteConfig::from_toml(crate::up::DEMO_SITE, "demo/site.toml")
            .map_err(|e| Failure::Config(format!("bundled demo configuration: {e}"))),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Up(args) => crate::up::run(args),
        Command::Site(args) => crate::site::run(args),
        Command::Ivr { which } => match which {
            IvrCommand::Check(a) => crate::ivr_cmd::check(a),
        },
        Command::Sim(args) => crate::simulate::run(args),
        Command::Desk { which } => crate::desk_cmd::run(which),
        Command::Kpi { which } => match which {
            KpiCommand::Staffing(a) => crate::staffing::run(a),
            KpiCommand::Serve(a) => crate::kpi_cmd::serve(a),
            KpiCommand::Replay(a) => crate::kpi_cmd::replay(a),
        },
        Command::Bench { which } => match which {
            BenchCommand::Routing(a) => crate::bench::routing(a),
            BenchCommand::Sim(a) => crate::bench::sim(a),
            BenchCommand::Events(a) => crate::bench_events::events(a),
            BenchCommand::Failover(a) => crate::bench_failover::failover(a),
            BenchCommand::Raft(a) => crate::bench_raft::raft(a).map_err(Failure::Runtime),
        },
        Command::Ops { which } => match which {
            OpsCommand::Topics(a) => crate::ops::topics(a),
            OpsCommand::Cluster { which } => crate::cluster_cmd::cluster(which),
            OpsCommand::Site { which } => crate::cluster_cmd::site(which),
        },
        Command::Config { which } => match which {
            ConfigCommand::Check { file } => {
                let c = load_site(Some(&file))?;
                println!(
                    "{}: ok — site {}, {} tenant(s), {} queue(s), {} agent(s)",
                    file.display(),
                    c.site,
                    c.tenants.len(),
                    c.queues.len(),
                    c.agents.len()
                );
                Ok(())
            }
        },
    }
}
