//! ACD → event log → KPI, as a user runs it: `hotline up` publishes every event into
//! the embedded log, its KPI service reads them into figures and interval tables; after
//! a clean stop, `hotline kpi replay --compare` rebuilds the tables from the log and
//! finds them identical to what the live path stored; `hotline ops topics --check`
//! finds the topics as documented.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const PROVIDER_KEY: &str = "demo-provider-sre-key";

/// A child process that is killed and reaped however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` with a bearer key; the status code and body.
fn get(authority: &str, path: &str, key: &str) -> (u16, String) {
    let mut s = TcpStream::connect(authority).expect("connect to hotline");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the answer");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked bodies: keep only the JSON between the first '{' and the last '}'.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => body[a..=b].to_owned(),
        _ => body.to_owned(),
    };
    (status, body)
}

fn hotline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the hotline binary runs")
}

/// Answered contacts over every queue in a realtime snapshot.
fn answered(snapshot: &serde_json::Value) -> f64 {
    snapshot["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|q| q["today"].as_array().into_iter().flatten())
        .filter(|f| f["name"] == "answered")
        .filter_map(|f| f["value"].as_f64())
        .sum()
}

/// A tansu broker started with `ops/dev/start-tansu`, stopped on drop.
struct Tansu {
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Tansu {
    fn start() -> Tansu {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/dev/start-tansu");
        let out = Command::new(&script)
            .output()
            .expect("ops/dev/start-tansu runs");
        assert!(
            out.status.success(),
            "ops/dev/start-tansu failed (run ops/dev/install-tansu first):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("start-tansu prints the address")
            .trim()
            .to_owned();
        Tansu { addr }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/dev/stop-tansu");
        let port = self.addr.rsplit(':').next().unwrap_or_default().to_owned();
        let _ = Command::new(script)
            .args([port.as_str(), "--kill"])
            .output();
    }
}

/// Starts `hotline up` in `data` (with `extra` arguments), returns the process, its
/// `host:port` and what it prints from then on.
fn up(data: &Path, extra: &[&str]) -> (KillOnDrop, String, mpsc::Receiver<String>) {
    up_with(data, extra, "20000")
}

/// As [`up`], with `per_hour` synthetic arrivals.
fn up_with(
    data: &Path,
    extra: &[&str],
    per_hour: &str,
) -> (KillOnDrop, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .args([
            "--arrivals-per-hour",
            per_hour,
            "--talk-secs",
            "2",
            "--seed",
            "3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hotline up starts");
    let stdout = child.stdout.take().expect("piped");
    let process = KillOnDrop(child);
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("hotline up prints its status page address within 60 s");
        if let Some(url) = line.trim().strip_prefix("status page:") {
            let authority = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            return (process, authority, lines);
        }
    }
}

#[test]
fn up_feeds_kpi_through_the_event_log_and_a_replay_of_the_log_finds_the_same_figures() {
    let data = tempfile::tempdir().unwrap();
    let events = format!("embedded:{}", data.path().join("events").display());
    live_then_replay(data.path(), &events, &[]);

    // Started again on the same data, quiet: KPI carries on from its checkpoint, and no
    // contact of the first run is still shown waiting (stopping ended every one).
    let (_process, authority, _lines) = up(data.path(), &["--quiet"]);
    let (status, body) = get(&authority, "/api/kpi/realtime?tenant=acme", PROVIDER_KEY);
    assert_eq!(status, 200, "the first run's figures are kept: {body}");
    let snapshot: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(answered(&snapshot) >= 3.0, "{snapshot}");
    for q in snapshot["queues"].as_array().expect("queues") {
        assert_eq!(q["waiting"], 0, "a ghost contact of the first run: {q}");
        assert_eq!(q["ringing"], 0, "a ghost offer of the first run: {q}");
    }
    let agents = &snapshot["agents"];
    for state in ["ready", "reserved", "on_contact", "wrap_up"] {
        assert_eq!(agents[state], 0, "a ghost agent of the first run: {agents}");
    }
}

#[test]
fn up_publishes_to_kafka_through_its_spool_and_a_replay_from_kafka_finds_the_same_figures() {
    let tansu = Tansu::start();
    let data = tempfile::tempdir().unwrap();
    let events = format!("kafka://{}", tansu.addr);
    let out = hotline(&["ops", "topics", "--event-log", &events]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("created"), "{stdout}");
    live_then_replay(data.path(), &events, &["--event-log", &events]);
}

/// Runs `hotline up` until KPI shows answered contacts, stops it cleanly, then checks
/// the topics and that a replay of `events` equals the live tables.
fn live_then_replay(data: &Path, events: &str, extra: &[&str]) {
    let (mut process, authority, lines) = up(data, extra);

    // Figures appear, computed from the events the site published into the log.
    let deadline = Instant::now() + Duration::from_secs(90);
    let snapshot = loop {
        let (status, body) = get(&authority, "/api/kpi/realtime?tenant=acme", PROVIDER_KEY);
        // 404 until the tenant's first event has reached KPI.
        assert!(status == 200 || status == 404, "{status}: {body}");
        if status == 200 {
            let snapshot: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if answered(&snapshot) >= 3.0 {
                break snapshot;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answered contacts in the KPI figures within 90 s: {status} {body}"
        );
        thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(snapshot["tenant"], "acme");
    // A tenant's key sees its tenant and nobody else's.
    let (status, _) = get(
        &authority,
        "/api/kpi/realtime?tenant=globex",
        "demo-acme-wallboard-key",
    );
    assert_eq!(status, 404);
    // Interval rows are served per queue, each figure naming its definition.
    let (status, body) = get(
        &authority,
        "/api/kpi/intervals?tenant=acme&length=15m&dimension=queue",
        PROVIDER_KEY,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"definition\""), "{body}");

    // A clean stop: site, events into the log, KPI applies them all, then stops.
    let pid = process.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hotline up did not stop within 60 s of SIGTERM"
        );
        thread::sleep(Duration::from_millis(100));
    };
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(
        status.success(),
        "hotline up exited with {status}: {printed:?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("Hotline stopped.")),
        "{printed:?}"
    );

    // The topics are there as documented.
    let out = hotline(&["ops", "topics", "--event-log", events, "--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hotline.events.v1") && stdout.contains("12 partition(s)"),
        "{stdout}"
    );

    // Replay rebuilds the tables from the log: exactly what the live path stored.
    let live = format!("sqlite://{}?mode=rwc", data.join("kpi.db").display());
    let rebuilt = format!("sqlite://{}?mode=rwc", data.join("replay.db").display());
    let out = hotline(&[
        "kpi",
        "replay",
        "--event-log",
        events,
        "--store",
        &rebuilt,
        "--compare",
        &live,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "replay differs from the live tables or failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON");
    assert_eq!(summary["differences"], 0, "{summary}");
    assert!(summary["applied"].as_u64().unwrap() > 50, "{summary}");
    assert!(summary["rows"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn a_bad_event_log_name_exits_64_and_says_what_to_write() {
    let out = hotline(&["ops", "topics", "--event-log", "s3://bucket"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("embedded:PATH") && stderr.contains("kafka://"),
        "{stderr}"
    );
}

#[test]
fn up_runs_three_sites_in_one_routing_group_whose_waiting_contacts_overflow_between_sites() {
    let data = tempfile::tempdir().unwrap();
    // North takes 60% of the calls with a fifth of the agents: busy, while south and
    // east have agents free.
    let (_up, authority, lines) = up_with(data.path(), &[], "3000");
    // The lines after the status page's: each other site's desk address.
    let mut other_desks = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        if line.contains("Press Ctrl-C") {
            break;
        }
        if let Some(rest) = line.trim().strip_prefix("agent desk:")
            && (rest.contains("at site south") || rest.contains("at site east"))
        {
            let url = rest.split_whitespace().next().unwrap();
            other_desks.push(
                url.trim_start_matches("http://")
                    .trim_end_matches("/desk")
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        other_desks.len(),
        2,
        "south's and east's desk addresses are printed"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let cluster = loop {
        let (code, body) = get(&authority, "/api/cluster", "");
        assert_eq!(code, 200, "{body}");
        let cluster: serde_json::Value = serde_json::from_str(&body).unwrap();
        let sites = cluster["sites"].as_array().unwrap().clone();
        let moved: u64 = sites
            .iter()
            .map(|s| s["overflow"]["moved_out"].as_u64().unwrap_or(0))
            .sum();
        let active = sites.iter().filter(|s| s["status"] == "active").count();
        if moved > 0 && active == 3 {
            break sites;
        }
        assert!(
            Instant::now() < deadline,
            "no contact overflowed between the three sites within 90 s: {cluster}"
        );
        thread::sleep(Duration::from_millis(250));
    };
    let names: Vec<&str> = cluster.iter().filter_map(|s| s["site"].as_str()).collect();
    assert_eq!(names, ["north", "south", "east"]);
    let leaders: std::collections::BTreeSet<u64> = cluster
        .iter()
        .filter_map(|s| s["leader"].as_u64())
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "every site sees the same leader: {cluster:?}"
    );
    let taken: u64 = cluster
        .iter()
        .map(|s| s["overflow"]["taken_in"].as_u64().unwrap_or(0))
        .sum();
    assert!(taken > 0, "a site took the moved contacts: {cluster:?}");
    // Each site's status page; an unknown site answers 404 and says which exist.
    for site in ["north", "south", "east"] {
        let (code, body) = get(&authority, &format!("/api/status?site={site}"), "");
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains(&format!("\"site\":\"{site}\"")),
            "{body:.200}"
        );
    }
    let (code, body) = get(&authority, "/api/status?site=west", "");
    assert_eq!(code, 404);
    assert!(body.contains("north, south, east"), "{body}");
    // The desk is served at north, and at south and east on their own addresses.
    let (code, _) = get(&authority, "/desk", "");
    assert_eq!(code, 200);
    for desk in &other_desks {
        let (code, _) = get(desk, "/desk", "");
        assert_eq!(code, 200, "the desk at {desk}");
    }
}
