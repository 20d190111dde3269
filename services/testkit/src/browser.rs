//! Running a real-browser test script. See the crate documentation.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A child process that is killed and reaped however the test ends, panics included.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository root, from a crate's manifest directory (`services/<crate>`).
pub fn repo_root(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir)
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Whether a browser test of `what` should run: true when Chromium and playwright-core
/// are installed; false (with a note) when they are not and `HOTLINE_SKIP_BROWSER=1`;
/// otherwise it panics saying what to install.
pub fn should_run(root: &Path, what: &str) -> bool {
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
        return true;
    }
    let missing = format!("missing {}", missing.join(" and "));
    if std::env::var("HOTLINE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "skipping the real-browser test of {what}: {missing} (HOTLINE_SKIP_BROWSER=1); \
             run ops/dev/install-browser to enable it"
        );
        return false;
    }
    panic!(
        "the real-browser test of {what} cannot run: {missing}. \
         Run ops/dev/install-browser (or set HOTLINE_SKIP_BROWSER=1 to skip this test)."
    );
}

/// Runs `program args` in `dir`, killing it after `limit`; returns its status and its
/// stdout and stderr, interleaved line by line as they came (each also printed, so
/// `--nocapture` shows them live).
pub fn run_with_deadline(
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
    // What the child wrote just before it exited; a grandchild holding the pipes open
    // must not hold the test up.
    let grace = Instant::now() + Duration::from_secs(2);
    while let Ok(line) = seen.recv_timeout(grace.saturating_duration_since(Instant::now())) {
        record(line);
    }
    (status, output)
}

/// Checks a script's run: it exited 0 and its last line is `N passed, 0 failed`, N > 0.
pub fn assert_passed(what: &str, status: ExitStatus, output: &str) {
    assert!(
        status.success(),
        "{what} failed in the browser ({status}):\n{output}"
    );
    let summary = output.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 passed"),
        "unexpected summary line {summary:?}:\n{output}"
    );
}
