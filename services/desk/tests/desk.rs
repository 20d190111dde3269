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

use std::time::Duration;

use hotline_core::event::{ContactEventKind, EventBody};
use hotline_testkit::browser;
use support::Served;

/// How long the browser script may run; it has its own 150 s watchdog inside.
const BROWSER_RUN: Duration = Duration::from_secs(200);

#[test]
fn a_whole_chat_contact_and_the_supervisor_view_work_in_a_real_browser() {
    let root = browser::repo_root(env!("CARGO_MANIFEST_DIR"));
    if !browser::should_run(&root, "the desk") {
        return;
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
    let (status, output) = browser::run_with_deadline(
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
    browser::assert_passed("the desk", status, &output);
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
