//! The status page that `hotline up` serves, checked from outside: in a real browser
//! (the system Chromium, driven by `tests/web/status_page.mjs` through playwright-core)
//! and over raw HTTP.
//!
//! The browser test needs what `ops/dev/install-browser` installs; without it the test
//! fails and says so, unless `HOTLINE_SKIP_BROWSER=1` is set. Screenshots land in
//! `test-artifacts/status-page/` at the repository root.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long `hotline up` may take to print its status page address.
const STARTUP: Duration = Duration::from_secs(30);
/// How long the browser script may run; it has its own 120 s watchdog inside.
const BROWSER_RUN: Duration = Duration::from_secs(180);

/// The repository root: the status page script and the installed tools live there.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

// === impl KillOnDrop ===

/// A child process that is killed and reaped however the test ends, panics included.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// === impl Hotline ===

/// A running `hotline up` on 127.0.0.1, port 0.
struct Hotline {
    /// Killed when the test is done with it.
    _process: KillOnDrop,
    /// Its data directory (event log, KPI tables), removed after the process.
    _data: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/`, as printed on its `status page:` line.
    url: String,
}

impl Hotline {
    /// Starts `hotline up` with `args` and waits, up to [`STARTUP`], for its address.
    fn up(args: &[&str]) -> Hotline {
        let data = tempfile::tempdir().expect("a temporary data directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the hotline binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        // Guard first, so that a timeout below still kills the child.
        let process = KillOnDrop(child);
        let (lines, seen) = mpsc::channel();
        // Reads to the end so that the child never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + STARTUP;
        let mut printed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("status page:") {
                        let url = url.trim().to_owned();
                        assert!(
                            url.starts_with("http://127.0.0.1:"),
                            "status page is not on 127.0.0.1: {url}"
                        );
                        return Hotline {
                            _process: process,
                            _data: data,
                            url,
                        };
                    }
                    printed.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "hotline up printed no `status page:` line within {STARTUP:?}; it printed: {printed:?}"
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "hotline up exited before printing a `status page:` line; it printed: {printed:?}"
                ),
            }
        }
    }

    /// `host:port` of the status page.
    fn authority(&self) -> &str {
        self.url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected status page URL {}", self.url))
    }
}

/// Whether the browser test can run; `Err` names what is missing.
fn browser_prerequisites(root: &Path) -> Result<(), String> {
    let needed = [
        PathBuf::from("/usr/bin/chromium"),
        root.join("ops/dev/node/node_modules/playwright-core/package.json"),
    ];
    let missing: Vec<String> = needed
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing {}", missing.join(" and ")))
    }
}

/// Runs `program args` in `dir`, killing it after `limit`; returns its status and
/// its stdout and stderr, interleaved line by line as they came.
fn run_with_deadline(
    program: &str,
    args: &[&str],
    dir: &Path,
    limit: Duration,
) -> (ExitStatus, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); is Node.js 20 installed?"));
    let (lines, seen) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout is piped")),
        Box::new(child.stderr.take().expect("stderr is piped")),
    ];
    for pipe in pipes {
        let lines = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    let mut child = KillOnDrop(child);
    let mut output = String::new();
    let mut record = |line: String| {
        // Shown live with --nocapture, and in the failure report otherwise.
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        match seen.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => record(line),
            Err(_) => {
                if let Some(status) = child.0.try_wait().expect("can wait for the child") {
                    break status;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "{program} {args:?} still running after {limit:?}; output so far:\n{output}"
                    );
                }
            }
        }
    };
    // What the child wrote just before it exited; a grandchild holding the pipes
    // open must not hold the test up.
    let grace = Instant::now() + Duration::from_secs(2);
    while let Ok(line) = seen.recv_timeout(grace.saturating_duration_since(Instant::now())) {
        record(line);
    }
    (status, output)
}

/// A raw HTTP/1.1 GET of `path` from `authority`; returns the status code and body.
fn http_get(authority: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(authority).expect("can connect to the status page");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("can set a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("can send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("can read the response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {response:?}"));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked responses are not decoded here: {head}"
    );
    (code, body.to_owned())
}

#[test]
fn the_status_page_updates_live_and_speaks_chinese_in_a_real_browser() {
    let root = repo_root();
    if let Err(missing) = browser_prerequisites(&root) {
        if std::env::var("HOTLINE_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!(
                "skipping the real-browser test of the status page: {missing} \
                 (HOTLINE_SKIP_BROWSER=1); run ops/dev/install-browser to enable it"
            );
            return;
        }
        panic!(
            "the real-browser test of the status page cannot run: {missing}. \
             Run ops/dev/install-browser (or set HOTLINE_SKIP_BROWSER=1 to skip this test)."
        );
    }
    let hotline = Hotline::up(&["--arrivals-per-hour", "6000"]);
    let artifacts = root.join("test-artifacts/status-page");
    let artifacts = artifacts.to_str().expect("a UTF-8 repository path");
    let (status, output) = run_with_deadline(
        "node",
        &[
            "services/hotline/tests/web/status_page.mjs",
            &hotline.url,
            artifacts,
        ],
        &root,
        BROWSER_RUN,
    );
    assert!(
        status.success(),
        "the status page failed in the browser ({status}):\n{output}"
    );
    let summary = output.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 passed"),
        "unexpected summary line {summary:?}:\n{output}"
    );
}

#[test]
fn the_status_api_refuses_a_malformed_tenant_with_400_naming_it() {
    let hotline = Hotline::up(&["--quiet"]);
    let (code, body) = http_get(hotline.authority(), "/api/status?tenant=bad%20name");
    assert_eq!(code, 400, "body: {body}");
    assert!(
        body.contains("bad name"),
        "the error does not name the bad tenant: {body}"
    );
}

#[test]
fn the_status_api_answers_404_for_an_unknown_tenant_and_hides_other_tenants_traffic() {
    let hotline = Hotline::up(&["--quiet"]);
    let (code, body) = http_get(hotline.authority(), "/api/status?tenant=nobody");
    assert_eq!(code, 404, "body: {body}");
    assert!(body.contains("unknown tenant nobody"), "{body}");
    let (code, body) = http_get(hotline.authority(), "/api/status?tenant=globex");
    assert_eq!(code, 200, "body: {body}");
    assert!(
        !body.contains("\"tenant\":\"acme\""),
        "acme's queues leak into globex's view: {body}"
    );
    assert!(
        body.contains("\"name\":\"普通话服务 Mandarin\""),
        "display names are served: {body}"
    );
}
