//! Three `hotline site` processes on 127.0.0.1 form a routing group; the leader is
//! killed with SIGKILL, the survivors elect a new one within a second, keep committing
//! and mark the lost site down, and the restarted site rejoins and
//! catches up. Each site runs the demo's ACD, which seeds the routing state and publishes
//! its queue summaries. Bad input to the admin API changes nothing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "test-cluster-admin-token";
const SITES: [&str; 3] = ["north", "south", "east"];

/// A child process that is killed and reaped however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request with the admin token (unless `token` is empty); status and body.
fn http(authority: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(authority) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let body = match (body.find(['{', '[']), body.rfind(['}', ']'])) {
        (Some(a), Some(b)) if a < b => body[a..=b].to_owned(),
        _ => body.to_owned(),
    };
    (status, body)
}

fn status(http_addr: &str) -> Option<Value> {
    let (code, body) = http(http_addr, "GET", "/api/routing/status", TOKEN, "");
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn hotline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the hotline binary runs")
}

struct Site {
    name: &'static str,
    node_id: u64,
    rpc: String,
    http: String,
    config: std::path::PathBuf,
}

fn write_configs(dir: &Path) -> Vec<Site> {
    let acd = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/site.toml");
    write_configs_with(dir, &acd, |_| String::new())
}

/// Three sites' files with the ACD file `acd`, each followed by `extra(site)`.
fn write_configs_with(dir: &Path, acd: &Path, extra: impl Fn(&Site) -> String) -> Vec<Site> {
    let sites: Vec<Site> = SITES
        .iter()
        .enumerate()
        .map(|(i, name)| Site {
            name,
            node_id: i as u64 + 1,
            rpc: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            config: dir.join(format!("{name}.toml")),
        })
        .collect();
    let members: String = sites
        .iter()
        .map(|s| {
            format!(
                "[[members]]\nnode_id = {}\nsite = \"{}\"\nrpc_addr = \"{}\"\n\n",
                s.node_id, s.name, s.rpc
            )
        })
        .collect();
    for s in &sites {
        let text = format!(
            "site = \"{}\"\nnode_id = {}\ndata_dir = \"{}\"\nrpc_listen = \"{}\"\nhttp_listen = \"{}\"\nadmin_token = \"{TOKEN}\"\nacd = \"{}\"\nsummary_every_ms = 100\ndown_after_ms = 1000\n\n{members}{}",
            s.name,
            s.node_id,
            dir.join(s.name).display(),
            s.rpc,
            s.http,
            acd.display(),
            extra(s)
        );
        std::fs::write(&s.config, text).unwrap();
    }
    sites
}

fn start(site: &Site) -> KillOnDrop {
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["site", "--site", site.name, "--config"])
            .arg(&site.config)
            .env("HOTLINE_LOG", "warn,openraft=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hotline site starts"),
    )
}

/// Polls `check` until it answers, or fails the test naming `what`.
fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn leader_among(sites: &[&Site]) -> Option<u64> {
    sites.iter().find_map(|s| {
        let st = status(&s.http)?;
        (st["role"] == "leader")
            .then(|| st["id"].as_u64())
            .flatten()
    })
}

fn site_status(http_addr: &str, site: &str) -> Option<String> {
    let (code, body) = http(http_addr, "GET", "/api/routing/state", TOKEN, "");
    if code != 200 {
        return None;
    }
    let state: Value = serde_json::from_str(&body).ok()?;
    let sites = &state["sites"];
    let entry = sites
        .get(site)
        .or_else(|| sites.as_array()?.iter().find(|s| s["id"] == site))?;
    entry["status"].as_str().map(str::to_owned).or_else(|| {
        entry["status"]
            .as_object()
            .and_then(|o| o.keys().next().cloned())
    })
}

#[test]
fn a_killed_leader_is_replaced_within_a_second_and_its_site_rejoins_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sites = write_configs(dir.path());
    let mut procs: Vec<Option<KillOnDrop>> = sites.iter().map(|s| Some(start(s))).collect();
    let all: Vec<&Site> = sites.iter().collect();

    let first = eventually("a first leader", Duration::from_secs(30), || {
        leader_among(&all)
    });
    // Every site registers itself in the routing state.
    for s in &sites {
        eventually(
            &format!("site {} registered", s.name),
            Duration::from_secs(30),
            || (site_status(&sites[0].http, s.name)? == "active").then_some(()),
        );
    }

    // The first site seeds the demo's tenants and queues; every site publishes its summary
    // a few times a second, one row per queue.
    let queue_rows = |state: &Value, site: &str| -> Option<(usize, u64)> {
        let summary = &state["summaries"][site];
        let rows = summary["queues"]
            .as_object()?
            .values()
            .map(|q| q.as_object().map_or(0, |q| q.len()))
            .sum();
        Some((rows, summary["at_ms"].as_u64()?))
    };
    let state = |addr: &str| -> Option<Value> {
        let (code, body) = http(addr, "GET", "/api/routing/state", TOKEN, "");
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    };
    let (rows, at) = eventually("summaries from every site", Duration::from_secs(30), || {
        let st = state(&sites[0].http)?;
        if st["tenants"].as_object().is_none_or(|t| t.is_empty()) {
            return None;
        }
        let mut first = None;
        for s in &sites {
            let (rows, at) = queue_rows(&st, s.name)?;
            if rows == 0 {
                return None;
            }
            first.get_or_insert((rows, at));
        }
        first
    });
    assert_eq!(rows, 6, "the demo has six queues");
    eventually("a fresher summary", Duration::from_secs(10), || {
        (queue_rows(&state(&sites[1].http)?, sites[0].name)?.1 > at).then_some(())
    });

    // Bad input: no token, a body that is not a command, a refused command.
    assert_eq!(
        http(&sites[0].http, "GET", "/api/routing/status", "", "").0,
        401
    );
    let (code, body) = http(
        &sites[1].http,
        "POST",
        "/api/routing/commands",
        TOKEN,
        "{\"AddSite\": 7}",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a routing command"), "{body}");
    let before = state(&sites[0].http).unwrap();
    let duplicate = r#"{"AddSite":{"id":"north","name":"again","node_id":9,"at_ms":1}}"#;
    let (code, body) = http(
        &sites[2].http,
        "POST",
        "/api/routing/commands",
        TOKEN,
        duplicate,
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("north"), "{body}");
    assert_eq!(
        before["sites"],
        state(&sites[1].http).unwrap()["sites"],
        "a refused command changes nothing"
    );

    // kill -9 the leader.
    let lost = sites.iter().position(|s| s.node_id == first).unwrap();
    procs[lost].take();
    let killed_at = Instant::now();
    let survivors: Vec<&Site> = sites
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lost)
        .map(|(_, s)| s)
        .collect();
    let second = eventually(
        "a new leader among the survivors",
        Duration::from_secs(10),
        || leader_among(&survivors).filter(|l| *l != first),
    );
    let took = killed_at.elapsed();
    assert!(
        took <= Duration::from_secs(1),
        "the survivors took {took:?} to elect a leader"
    );
    assert_ne!(second, first);

    // The leader marks the silent site down by itself (down_after_ms = 1000 here), which
    // drops its summary.
    eventually("the lost site marked down", Duration::from_secs(6), || {
        (site_status(&survivors[0].http, sites[lost].name)? == "down").then_some(())
    });
    let st = state(&survivors[1].http).unwrap();
    assert!(
        st["summaries"].get(sites[lost].name).is_none(),
        "a down site's summary is dropped: {}",
        st["summaries"]
    );

    // The runbook's commands work through a survivor: drain a site, put it back.
    let live = survivors[1].name;
    let out = hotline(&[
        "ops",
        "site",
        "drain",
        "--addr",
        &survivors[0].rpc,
        "--site",
        live,
    ]);
    assert!(
        out.status.success(),
        "ops site drain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        site_status(&survivors[0].http, live).as_deref(),
        Some("draining")
    );
    let out = hotline(&[
        "ops",
        "site",
        "activate",
        "--addr",
        &survivors[0].rpc,
        "--site",
        live,
    ]);
    assert!(
        out.status.success(),
        "ops site activate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hotline(&[
        "ops",
        "site",
        "drain",
        "--addr",
        &survivors[0].rpc,
        "--site",
        "nowhere",
    ]);
    assert_eq!(out.status.code(), Some(64), "an unknown site is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Removing another voter now would leave two, one of them dead: refused, exit 64.
    let leader_rpc = &sites.iter().find(|s| s.node_id == second).unwrap().rpc;
    let other = survivors.iter().find(|s| s.node_id != second).unwrap();
    let out = hotline(&[
        "ops",
        "cluster",
        "remove",
        "--addr",
        leader_rpc,
        "--node-id",
        &other.node_id.to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The lost site restarts on its files, catches up and puts itself back in service.
    procs[lost] = Some(start(&sites[lost]));
    for s in &sites {
        eventually(
            &format!("{} sees the site active again", s.name),
            Duration::from_secs(10),
            || (site_status(&s.http, sites[lost].name)? == "active").then_some(()),
        );
    }
    let out = hotline(&["ops", "cluster", "status", "--addr", &sites[lost].rpc]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("voter") && text.contains("is follower"),
        "{text}"
    );
}

#[test]
fn a_site_file_that_breaks_an_invariant_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.toml");
    std::fs::write(
        &path,
        format!(
            "site = \"north\"\nnode_id = 1\ndata_dir = \"{}\"\nrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n[[members]]\nnode_id = 1\nsite = \"north\"\nrpc_addr = \"127.0.0.1:1\"\n\n[[members]]\nnode_id = 2\nsite = \"south\"\nrpc_addr = \"127.0.0.1:2\"\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let out = hotline(&["site", "--config", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("two.toml") && err.contains("witness"), "{err}");
    assert!(!dir.path().join("d").exists(), "nothing was created");
}

/// The ACD of the overflow test: one queue, three agents (logged in where a site's
/// `[load]` says).
const OVERFLOW_ACD: &str = r#"
site = "any"
[defaults]
no_answer_secs = 10
[[tenant]]
id = "acme"
skills = ["billing"]
[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing" }]
wrap_up_secs = 1
[[agent]]
id = "ann"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "bob"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "cy"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
"#;

fn site_acd(http_addr: &str) -> Option<Value> {
    let (code, body) = http(http_addr, "GET", "/api/site/status", TOKEN, "");
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// The counters of queue acme/billing at a site.
fn billing(st: &Value) -> Value {
    st["acd"]["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == "billing"))
        .map(|q| q["counters"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn contacts_waiting_at_a_site_without_agents_overflow_to_a_site_with_free_agents_and_stay_home_when_it_dies()
 {
    let dir = tempfile::tempdir().unwrap();
    let acd = dir.path().join("acd.toml");
    std::fs::write(&acd, OVERFLOW_ACD).unwrap();
    // North takes calls and has nobody logged in; south has the agents; east has neither.
    let sites = write_configs_with(dir.path(), &acd, |s| match s.name {
        "north" => "[load]\narrivals_per_hour = 2400\nagents = []\ntalk_secs = 3\nseed = 7\n\n\
                    [[overflow]]\ntenant = \"acme\"\nqueue = \"billing\"\nafter_wait_secs = 1\n\
                    targets = [{ site = \"south\" }, { site = \"east\", penalty_ms = 5000 }]\n"
            .to_owned(),
        "south" => {
            "[load]\nagents = [\"ann\", \"bob\", \"cy\"]\ntalk_secs = 3\nseed = 8\n".to_owned()
        }
        _ => String::new(),
    });
    let mut procs: Vec<Option<KillOnDrop>> = sites.iter().map(|s| Some(start(s))).collect();
    let (north, south) = (&sites[0], &sites[1]);

    // Contacts move north → south and south's agents answer them.
    let (n, s) = eventually(
        "contacts moved to south and answered there",
        Duration::from_secs(60),
        || {
            let (n, s) = (site_acd(&north.http)?, site_acd(&south.http)?);
            (n["overflow"]["moved_out"].as_u64()? >= 5 && billing(&s)["answered"].as_u64()? >= 3)
                .then_some((n, s))
        },
    );
    // Each move is one `overflowed` at north and one arrival at south.
    assert!(
        billing(&n)["overflowed"].as_u64().unwrap() >= n["overflow"]["moved_out"].as_u64().unwrap()
    );
    assert!(
        s["overflow"]["taken_in"].as_u64().unwrap() >= n["overflow"]["moved_out"].as_u64().unwrap()
    );
    // The routing state knows where south's agents are logged in.
    let (_, state) = http(&north.http, "GET", "/api/routing/state", TOKEN, "");
    let state: Value = serde_json::from_str(&state).unwrap();
    for agent in ["ann", "bob", "cy"] {
        assert_eq!(
            state["locations"][agent]["LoggedIn"]["site"], "south",
            "agent {agent}'s location: {}",
            state["locations"]
        );
    }

    // South dies: north's contacts stay at north (no overflow to a dead or agentless site).
    drop(procs[1].take());
    eventually("south marked down", Duration::from_secs(10), || {
        (site_status(&north.http, "south")? == "down").then_some(())
    });
    let before = site_acd(&north.http).unwrap()["overflow"]["moved_out"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let after = site_acd(&north.http).unwrap();
    assert_eq!(
        after["overflow"]["moved_out"].as_u64().unwrap(),
        before,
        "nothing moves to a down site"
    );
    let waiting: u64 = after["acd"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["waiting"].as_u64().unwrap())
        .sum();
    assert!(
        waiting > 0,
        "contacts wait at north in their places: {after}"
    );
    assert!(
        after["overflow"]["no_site"].as_u64().unwrap() > 0,
        "attempts with no site are recorded: {after}"
    );
    // East dies too: north is alone, a minority. It refuses to reserve an agent for
    // anyone, since it cannot confirm the routing group's quorum.
    drop(procs[2].take());
    let refused = reserve_at(&north.rpc);
    assert!(
        refused.contains("quorum") || refused.contains("leader"),
        "a minority site refuses reservations: {refused:?}"
    );
    drop(procs.remove(0));
}

/// The promises (callbacks, voicemails) in the routing state as site `http_addr` sees it.
fn promises(http_addr: &str) -> Vec<Value> {
    let (code, body) = http(http_addr, "GET", "/api/routing/state", TOKEN, "");
    if code != 200 {
        return Vec::new();
    }
    let state: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    match &state["promises"] {
        Value::Object(m) => m.values().cloned().collect(),
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

#[test]
fn callbacks_and_voicemails_of_a_killed_site_are_taken_over_and_completed_once_by_a_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let acd = dir.path().join("acd.toml");
    // Waits end in a callback offer after 2 s; a full queue sends callers to voicemail.
    let text = OVERFLOW_ACD.replace(
        "wrap_up_secs = 1\n",
        "wrap_up_secs = 1\nmax_wait_secs = 2\non_max_wait = { action = \"callback\" }\nmax_size = 4\nwhen_full = { action = \"voicemail\" }\n",
    );
    std::fs::write(&acd, text).unwrap();
    let sites = write_configs_with(dir.path(), &acd, |s| match s.name {
        "north" => {
            "[load]\narrivals_per_hour = 3600\nagents = []\ntalk_secs = 3\nseed = 11\n".to_owned()
        }
        "south" => {
            "[load]\nagents = [\"ann\", \"bob\", \"cy\"]\ntalk_secs = 2\nseed = 12\n".to_owned()
        }
        _ => String::new(),
    });
    let mut procs: Vec<Option<KillOnDrop>> = sites.iter().map(|s| Some(start(s))).collect();
    let south = &sites[1];
    let of_north = |ps: &[Value]| -> Vec<Value> {
        ps.iter()
            .filter(|p| p["created_by"] == "north")
            .cloned()
            .collect()
    };
    // North makes promises it cannot keep (nobody is logged in there).
    let made = eventually(
        "north has made promises of both kinds",
        Duration::from_secs(60),
        || {
            let ps = of_north(&promises(&south.http));
            let kinds: std::collections::BTreeSet<String> = ps
                .iter()
                .filter_map(|p| p["kind"].as_str().map(str::to_owned))
                .collect();
            (ps.len() >= 3 && kinds.len() == 2).then_some(ps)
        },
    );
    assert!(
        made.iter().all(|p| p["state"].get("Completed").is_none()),
        "north completes none of its own (no agents there): {made:?}"
    );
    // kill -9: every open promise of north is south's (or east's) to keep. (South's
    // state may answer 503 while a new leader is elected: `promises` is then empty.)
    drop(procs[0].take());
    let killed = Instant::now();
    let started = killed;
    let done = eventually(
        "north's promises completed by a survivor",
        Duration::from_secs(60),
        || {
            let ps = of_north(&promises(&south.http));
            if started.elapsed() > Duration::from_secs(55) {
                eprintln!("promises now: {ps:#?}");
            }
            (ps.len() >= made.len() && ps.iter().all(|p| p["state"].get("Completed").is_some()))
                .then_some(ps)
        },
    );
    let took = killed.elapsed();
    for p in &done {
        let by = &p["state"]["Completed"]["site"];
        assert!(
            by == "south",
            "completed by south, the survivor with agents: {p}"
        );
        assert_eq!(p["owner"], "south", "{p}");
        assert_eq!(
            p["handovers"][0]["from"], "north",
            "the handover is on record: {p}"
        );
        assert_eq!(
            p["handovers"].as_array().unwrap().len(),
            1,
            "taken over once: {p}"
        );
    }
    eprintln!(
        "{} promises of the killed site completed by the survivor {took:?} after kill -9",
        done.len()
    );
    drop(procs.remove(1));
}

/// Asks the site at `rpc` to reserve an agent of acme/billing over `SiteLink`, as another
/// site's overflow would; the refusal's reason (empty if it reserved one).
fn reserve_at(rpc: &str) -> String {
    use hotline_proto::routing::v1 as pb;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{rpc}"))
            .unwrap()
            .connect()
            .await
            .expect("the site's gRPC port answers");
        let mut client = pb::site_link_client::SiteLinkClient::new(channel);
        let reply = client
            .reserve(pb::ReserveRequest {
                from_site: "east".into(),
                tenant: "acme".into(),
                queue: "billing".into(),
                ttl_ms: 2000,
                trace: vec![7; 16],
            })
            .await
            .expect("a refusal is an answer, not an error")
            .into_inner();
        assert!(reply.reservation.is_none(), "nothing reserved: {reply:?}");
        reply.refused
    })
}
