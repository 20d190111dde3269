//! `hotline`: one binary for every role of the platform.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap), with `HOTLINE_*` environment overrides.
//! - [`up`]: the embedded default — a site with a demo tenant, synthetic callers and
//!   simulated agents, and the status page.
//! - [`status`]: the status page and its JSON API.
//! - [`simulate`]: `hotline sim`, the virtual-time simulator with progress and summary.
//! - [`staffing`]: `hotline kpi staffing`, Erlang C staffing from a forecast.
//! - [`kpi_cmd`]: `hotline kpi serve` (the KPI role) and `hotline kpi replay`.
//! - [`bench`]: `hotline bench …`, the benchmarks whose figures the README quotes;
//!   [`bench_events`]: `hotline bench events`, ACD → event log → KPI;
//!   [`bench_raft`]: `hotline bench raft`, the routing group's commits;
//!   [`bench_failover`]: `hotline bench failover`, kill -9 of the routing leader.
//! - [`logs`]: which event log a command uses (`embedded:PATH`, `kafka://…`) and the
//!   ACD's publisher for it.
//! - [`site`]: `hotline site`, one site of a cluster — its ACD, routing replica and admin
//!   APIs; [`site_acd`]: what the site's ACD tells the routing group.
//! - [`ivr_cmd`]: `hotline ivr check`, a flow file validated against a site's queues
//!   and skills.
//! - [`ops`]: `hotline ops …`, what runbooks call: `ops topics`; [`cluster_cmd`]: `ops
//!   cluster` (membership, status) and `ops site` (drain, down, activate).
//!
//! The binary parses configuration, starts logging and calls into the library crates;
//! what a role does lives in `services/<role>`.
#![forbid(unsafe_code)]

mod bench;
mod bench_events;
mod bench_failover;
mod bench_raft;
mod cli;
mod cluster_cmd;
mod demo;
mod desk_cmd;
mod ivr_cmd;
mod kpi_cmd;
mod logs;
mod ops;
mod overflow;
mod promises;
mod simulate;
mod site;
mod site_acd;
mod staffing;
mod status;
mod up;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: the router and agent shards allocate
/// messages and events on different threads, and glibc's arena locks showed up as the
/// second-largest cost in the routing benchmark's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for unusable configuration or arguments (BSD `EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failure::Config(msg)) => {
            eprintln!("hotline: {msg}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(cli::Failure::Runtime(e)) => {
            eprintln!("hotline: {e:#}");
            ExitCode::FAILURE
        }
    }
}
