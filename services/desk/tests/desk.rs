//! The desk in a real browser: `tests/web/desk.mjs` drives a customer's chat page and an
//! agent's desktop through a whole contact (login, ready, the offer with what the intake
//! collected, accept, messages both ways, a reload, end, wrap-up with a disposition),
//! then the supervisor page (live queues and agents, a forced state, a move), against a
//! site and its desk served in this process on 127.0.0.1.
//!
//! It needs what `ops/dev/install-browser` installs; without it the test fails and says
//! so, unless `HOTLINE_SKIP_BROWSER=1` is set. Screenshots land in
//! `test-artifacts/desk/` at the repository root.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hotline_core::event::{ContactEventKind, EventBody};
use support::Served;

/// How long the browser script may run; it has its own 150 s watchdog inside.
const BROWSER_RUN: Duration = Duration::from_secs(200);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A child process that is killed and reaped however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

/// Runs `program args` in `dir`, killing it after `limit`; returns its status and its
/// output, stdout and stderr interleaved by line.
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
                assert!(
                    Instant::now() < deadline,
                    "{program} {args:?} still running after {limit:?}; output so far:\n{output}"
                );
            }
        }
    };
    let grace = Instant::now() + Duration::from_secs(2);
    while let Ok(line) = seen.recv_timeout(grace.saturating_duration_since(Instant::now())) {
        record(line);
    }
    (status, output)
}

#[test]
fn a_whole_chat_contact_and_the_supervisor_view_work_in_a_real_browser() {
    let root = repo_root();
    if let Err(missing) = browser_prerequisites(&root) {
        if std::env::var("HOTLINE_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!(
                "skipping the real-browser test of the desk: {missing} (HOTLINE_SKIP_BROWSER=1); \
                 run ops/dev/install-browser to enable it"
            );
            return;
        }
        panic!(
            "the real-browser test of the desk cannot run: {missing}. \
             Run ops/dev/install-browser (or set HOTLINE_SKIP_BROWSER=1 to skip this test)."
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let served = runtime.block_on(Served::start(""));
    let base = format!("http://{}/", served.addr);
    let artifacts = root.join("test-artifacts/desk");
    let artifacts = artifacts.to_str().expect("a UTF-8 repository path");
    let (status, output) = run_with_deadline(
        "node",
        &[
            "services/desk/tests/web/desk.mjs",
            &base,
            artifacts,
            support::PASSWORD,
        ],
        &root,
        BROWSER_RUN,
    );
    assert!(
        status.success(),
        "the desk failed in the browser ({status}):\n{output}"
    );
    let summary = output.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 passed"),
        "unexpected summary line {summary:?}:\n{output}"
    );
    // What the pages did reached the event log: the disposition the agent chose.
    let dispositions: Vec<_> = served
        .events()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Contact(c) => match c.kind {
                ContactEventKind::Dispositioned { code, notes } => Some((code, notes)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        dispositions,
        [(
            "resolved".to_owned(),
            "Corrected the bill; refund in 3 days.".to_owned()
        )]
    );
}
