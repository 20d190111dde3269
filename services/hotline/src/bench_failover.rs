//! `hotline bench failover`: three `hotline site` processes on 127.0.0.1; the leader's
//! process is killed with SIGKILL; how long until a survivor leads, and until the routing
//! state marks the lost site down. Then, on a fresh cluster whose site north overflows its
//! waiting contacts to south (preferred) or east, south is killed: how long until the
//! next contact is routed at a survivor (taken by east). Repeated over several trials,
//! each on fresh data.

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
const TOKEN: &str = "bench-failover-admin-token";

/// The ACD of the overflow trial: one queue, six agents (three at south, three at east).
const ACD: &str = r#"
site = "any"
[[tenant]]
id = "acme"
skills = ["billing"]
[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing" }]
wrap_up_secs = 1
[[agent]]
id = "a1"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "a2"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "a3"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "a4"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "a5"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "a6"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
"#;

/// `GET /api/site/status` of a site: its overflow counters.
async fn overflow_counters(http: &str) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.ok()?;
    let request = format!(
        "GET /api/site/status HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut raw))
        .await
        .ok()?
        .ok()?;
    let body = &raw[raw.find("\r\n\r\n")? + 4..];
    let body = &body[body.find('{')?..=body.rfind('}')?];
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(v["overflow"].clone())
}

/// North takes calls and has no agents; its queue overflows to south (preferred) or
/// east. South is killed with SIGKILL: how long until a contact that waits at north is
/// routed at a survivor (taken by east).
async fn overflow_trial(dir: &Path, down_after_ms: u64) -> anyhow::Result<f64> {
    let acd = dir.join("acd.toml");
    std::fs::write(&acd, ACD)?;
    let (mut procs, _rpc, http) = start_cluster(dir, down_after_ms, Some(&acd), |i| match i {
        0 => "[load]\narrivals_per_hour = 7200\nagents = []\ntalk_secs = 2\n\n\
              [[overflow]]\ntenant = \"acme\"\nqueue = \"billing\"\nafter_wait_secs = 1\n\
              targets = [{ site = \"south\" }, { site = \"east\", penalty_ms = 5000 }]\n"
            .to_owned(),
        1 => "[load]\nagents = [\"a1\", \"a2\", \"a3\"]\ntalk_secs = 2\n".to_owned(),
        _ => "[load]\nagents = [\"a4\", \"a5\", \"a6\"]\ntalk_secs = 2\n".to_owned(),
    })?;
    // Contacts flow north → south before the kill.
    poll(Duration::from_secs(60), async || {
        let south = overflow_counters(&http[1]).await?;
        (south["taken_in"].as_u64()? >= 3).then_some(())
    })
    .await?;
    let east_before = overflow_counters(&http[2])
        .await
        .and_then(|e| e["taken_in"].as_u64())
        .context("east's counters")?;
    procs[1].take();
    let killed = Instant::now();
    poll(Duration::from_secs(30), async || {
        let east = overflow_counters(&http[2]).await?;
        (east["taken_in"].as_u64()? > east_before).then_some(())
    })
    .await?;
    Ok(killed.elapsed().as_secs_f64() * 1e3)
}

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
    routed_ms: f64,
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

/// Three `hotline site` processes on fresh ports: their processes, gRPC and HTTP
/// addresses. `extra(i)` is appended to site `i`'s file; `acd` is every site's ACD file.
type Cluster = (Vec<Option<Proc>>, Vec<String>, Vec<String>);

fn start_cluster(
    dir: &Path,
    down_after_ms: u64,
    acd: Option<&Path>,
    extra: impl Fn(usize) -> String,
) -> anyhow::Result<Cluster> {
    let mut rpc = Vec::new();
    let mut http = Vec::new();
    for _ in SITES {
        rpc.push(format!("127.0.0.1:{}", free_port()?));
        http.push(format!("127.0.0.1:{}", free_port()?));
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
        let acd_line = acd.map_or(String::new(), |a| format!("acd = \"{}\"\n", a.display()));
        std::fs::write(
            &config,
            format!(
                "site = \"{site}\"\nnode_id = {}\ndata_dir = \"{}\"\nrpc_listen = \"{}\"\nhttp_listen = \"{}\"\nadmin_token = \"{TOKEN}\"\ndown_after_ms = {down_after_ms}\nsummary_every_ms = 100\n{acd_line}\n{members}{}",
                i + 1,
                dir.join(site).display(),
                rpc[i],
                http[i],
                extra(i)
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
    Ok((procs, rpc, http))
}

async fn trial(dir: &Path, down_after_ms: u64) -> anyhow::Result<Trial> {
    let (mut procs, rpc, _) = start_cluster(dir, down_after_ms, None, |_| String::new())?;
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
    drop(procs);
    let overflow_dir = dir.join("overflow");
    std::fs::create_dir_all(&overflow_dir)?;
    let routed_ms = overflow_trial(&overflow_dir, down_after_ms).await?;
    Ok(Trial {
        leader_ms,
        down_ms,
        routed_ms,
    })
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
            bar.set_message(format!("last: leader {:.0} ms, down {:.0} ms, routed at a survivor {:.0} ms", t.leader_ms, t.down_ms, t.routed_ms));
            bar.inc(1);
            trials.push(t);
        }
        bar.finish_and_clear();
        let mut leader: Vec<f64> = trials.iter().map(|t| t.leader_ms).collect();
        let mut down: Vec<f64> = trials.iter().map(|t| t.down_ms).collect();
        let mut routed: Vec<f64> = trials.iter().map(|t| t.routed_ms).collect();
        leader.sort_by(f64::total_cmp);
        down.sort_by(f64::total_cmp);
        routed.sort_by(f64::total_cmp);
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
                    "next_contact_routed_at_survivor_ms": { "median": med(&routed), "max": max(&routed), "all": routed },
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
            println!(
                "  overflow target killed: the next waiting contact is routed at a survivor after median {:>6.0} ms, max {:>6.0} ms   (goal ≤ 3000 ms)",
                med(&routed),
                max(&routed)
            );
        }
        Ok(())
    })
}
