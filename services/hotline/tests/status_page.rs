//! The status page that `hotline up` serves, checked from outside: in a real browser
//! (the system Chromium, driven by `tests/web/status_page.mjs` through playwright-core)
//! and over raw HTTP.
//!
//! The browser test needs what `ops/dev/install-browser` installs; without it the test
//! fails and says so, unless `HOTLINE_SKIP_BROWSER=1` is set. Screenshots land in
//! `test-artifacts/status-page/` at the repository root.

use hotline_testkit::browser::KillOnDrop;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long `hotline up` may take to print its status page address.
const STARTUP: Duration = Duration::from_secs(30);
/// How long the browser script may run; it has its own 120 s watchdog inside.
const BROWSER_RUN: Duration = Duration::from_secs(180);

fn repo_root() -> std::path::PathBuf {
    hotline_testkit::browser::repo_root(env!("CARGO_MANIFEST_DIR"))
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
    if !hotline_testkit::browser::should_run(&root, "the status page") {
        return;
    }
    // North, whose page this is, has a fifth of the simulated agents (two of them):
    // with the default 45 s talk time, 20 s could pass with neither answering
    // (CI saw it). Short talks make an answer every few seconds.
    let hotline = Hotline::up(&["--arrivals-per-hour", "6000", "--talk-secs", "2"]);
    let artifacts = root.join("test-artifacts/status-page");
    let artifacts = artifacts.to_str().expect("a UTF-8 repository path");
    let (status, output) = hotline_testkit::browser::run_with_deadline(
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
