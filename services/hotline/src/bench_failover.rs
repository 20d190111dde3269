//! `hotline bench failover`: three `hotline site` processes on 127.0.0.1; the leader's
//! process is killed with SIGKILL; how long until a survivor leads, and until the routing
//! state marks the lost site down. Repeated over several trials, each on fresh data.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hotline_core::ids::SiteId;
use hotline_routing::node::AdminClient;
use hotline_routing::state::SiteStatus;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Failure;

/// Options of `hotline bench failover`.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    /// How many times to kill a leader (each trial starts a fresh cluster).
    #[arg(long, default_value_t = 5)]
    pub trials: u32,
    /// How long a silent site waits before the leader marks it down, milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub down_after_ms: u64,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

const SITES: [&str; 3] = ["north", "south", "east"];

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Trial {
    leader_ms: f64,
    down_ms: f64,
}

async fn poll<T>(within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> anyhow::Result<T> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(v) = f().await {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("not within {within:?}")
}

async fn trial(dir: &Path, down_after_ms: u64) -> anyhow::Result<Trial> {
    let mut rpc = Vec::new();
    for _ in SITES {
        rpc.push(format!("127.0.0.1:{}", free_port()?));
    }
    let members: String = SITES
        .iter()
        .zip(&rpc)
        .enumerate()
        .map(|(i, (s, a))| {
            format!(
                "[[members]]\nnode_id = {}\nsite = \"{s}\"\nrpc_addr = \"{a}\"\n\n",
                i + 1
            )
        })
        .collect();
    let exe = std::env::current_exe().context("the hotline binary")?;
    let mut procs = Vec::new();
    for (i, site) in SITES.iter().enumerate() {
        let config = dir.join(format!("{site}.toml"));
        std::fs::write(
            &config,
            format!(
                "site = \"{site}\"\nnode_id = {}\ndata_dir = \"{}\"\nrpc_listen = \"{}\"\nhttp_listen = \"127.0.0.1:0\"\nadmin_token = \"bench-failover-admin-token\"\ndown_after_ms = {down_after_ms}\n\n{members}",
                i + 1,
                dir.join(site).display(),
                rpc[i]
            ),
        )?;
        let child = Command::new(&exe)
            .args(["site", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start hotline site")?;
        procs.push(Some(Proc(child)));
    }
    let leader_of = async |addrs: &[&String]| -> Option<u64> {
        for addr in addrs {
            if let Ok(mut c) = AdminClient::connect(addr).await
                && let Ok(st) = c.status().await
                && st.role == "leader"
            {
                return Some(st.id);
            }
        }
        None
    };
    let all: Vec<&String> = rpc.iter().collect();
    let first = poll(Duration::from_secs(30), async || leader_of(&all).await).await?;
    // Every site registered, so the lost one can be marked down.
    poll(Duration::from_secs(30), async || {
        let mut c = AdminClient::connect(&rpc[0]).await.ok()?;
        let state = c.state().await.ok()?;
        (state.sites().count() == SITES.len()).then_some(())
    })
    .await?;
    let lost = (first - 1) as usize;
    procs[lost].take();
    let killed = Instant::now();
    let survivors: Vec<&String> = rpc
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lost)
        .map(|(_, a)| a)
        .collect();
    poll(Duration::from_secs(10), async || {
        leader_of(&survivors).await.filter(|l| *l != first)
    })
    .await?;
    let leader_ms = killed.elapsed().as_secs_f64() * 1e3;
    let lost_site = SiteId::new(SITES[lost])?;
    poll(Duration::from_secs(30), async || {
        let mut c = AdminClient::connect(survivors[0]).await.ok()?;
        let state = c.state().await.ok()?;
        (state.site(&lost_site)?.status == SiteStatus::Down).then_some(())
    })
    .await?;
    let down_ms = killed.elapsed().as_secs_f64() * 1e3;
    Ok(Trial { leader_ms, down_ms })
}

/// Runs `hotline bench failover`.
pub fn failover(args: FailoverArgs) -> Result<(), Failure> {
    if args.trials == 0 {
        return Err(Failure::Config("--trials must be at least 1".into()));
    }
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        let bar = ProgressBar::new(u64::from(args.trials));
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} trials {msg}").expect("a valid template"));
        if args.json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut trials = Vec::new();
        for _ in 0..args.trials {
            let dir = tempfile::tempdir().context("a temporary directory")?;
            let t = trial(dir.path(), args.down_after_ms).await?;
            bar.set_message(format!("last: leader {:.0} ms, down {:.0} ms", t.leader_ms, t.down_ms));
            bar.inc(1);
            trials.push(t);
        }
        bar.finish_and_clear();
        let mut leader: Vec<f64> = trials.iter().map(|t| t.leader_ms).collect();
        let mut down: Vec<f64> = trials.iter().map(|t| t.down_ms).collect();
        leader.sort_by(f64::total_cmp);
        down.sort_by(f64::total_cmp);
        let med = |v: &[f64]| v[v.len() / 2];
        let max = |v: &[f64]| v[v.len() - 1];
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "trials": args.trials,
                    "down_after_ms": args.down_after_ms,
                    "leader_after_kill_ms": { "median": med(&leader), "max": max(&leader), "all": leader },
                    "site_down_after_kill_ms": { "median": med(&down), "max": max(&down), "all": down },
                })
            );
        } else {
            println!("failover of the routing leader (kill -9), {} trials, three site processes on 127.0.0.1:", args.trials);
            println!("  a survivor leads after     median {:>6.0} ms, max {:>6.0} ms   (goal ≤ 1000 ms)", med(&leader), max(&leader));
            println!(
                "  the lost site is down after median {:>6.0} ms, max {:>6.0} ms   (down_after_ms = {})",
                med(&down),
                max(&down),
                args.down_after_ms
            );
        }
        Ok(())
    })
}
