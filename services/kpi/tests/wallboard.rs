//! The wallboard in a real browser: the system Chromium, driven by
//! `tests/wallboard.mjs` through playwright-core, against a real KPI service on port 0
//! (embedded event log and SQLite in a temporary directory).
//!
//! The script cannot publish events or stop the server itself, so this test serves it
//! a small control API on another port: `POST /publish/more` appends a handled and a
//! waiting contact, `POST /server/stop` stops the KPI service (the port stays free for
//! it), `POST /server/start` starts it again on the same address.
//!
//! The browser test needs what `ops/dev/install-browser` installs; without it the test
//! fails and says so, unless `HOTLINE_SKIP_BROWSER=1` is set. Screenshots land in
//! `test-artifacts/wallboard/` at the repository root.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use support::{ACME_KEY, Env, Running, Script};
use tokio::sync::Mutex;

/// How long the browser script may run; it has its own 150 s watchdog inside.
const BROWSER_RUN: Duration = Duration::from_secs(200);

fn repo_root() -> std::path::PathBuf {
    hotline_testkit::browser::repo_root(env!("CARGO_MANIFEST_DIR"))
}

// === control API ===

/// What the control API drives.
struct Control {
    env: Env,
    /// The KPI service, when running.
    kpi: Mutex<Option<Running>>,
    /// Where it listens (the same address across restarts).
    addr: SocketAddr,
    /// How many contacts `publish/more` has added, to vary their waits.
    published: Mutex<u64>,
}

type Shared = Arc<Control>;

async fn publish(State(c): State<Shared>, UrlPath(what): UrlPath<String>) -> StatusCode {
    if what != "more" {
        return StatusCode::NOT_FOUND;
    }
    let acme = Script::new("acme", "s1");
    let mut n = c.published.lock().await;
    *n += 1;
    let mut events = acme.handled("sales", "alice", 1_000 * *n);
    events.extend(acme.waiting("sales", 500));
    c.env.publish(&events).await;
    StatusCode::NO_CONTENT
}

async fn server(State(c): State<Shared>, UrlPath(what): UrlPath<String>) -> StatusCode {
    let mut kpi = c.kpi.lock().await;
    match what.as_str() {
        "stop" => {
            if let Some(running) = kpi.take() {
                running.stop().await;
            }
            StatusCode::NO_CONTENT
        }
        "start" => {
            if kpi.is_none() {
                *kpi = Some(Running::start(&c.env, c.env.config(), c.addr).await);
            }
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::NOT_FOUND,
    }
}

/// The first day on the wallboard: acme's `sales` and `claims` at `s1`, with agents in
/// every state; globex's `support`, which acme's wallboard must not show.
async fn publish_day(env: &Env) {
    let acme = Script::new("acme", "s1");
    let mut events = Vec::new();
    for agent in ["alice", "bob", "chen", "dana"] {
        events.extend(acme.ready(agent));
    }
    events.push(acme.not_ready("dana", "lunch"));
    events.extend(acme.handled("sales", "alice", 3_000));
    events.extend(acme.handled("sales", "bob", 45_000));
    events.extend(acme.abandoned("sales", 9_000));
    events.extend(acme.waiting("sales", 25_000));
    events.extend(acme.waiting("sales", 4_000));
    events.extend(acme.handled("claims", "chen", 2_000));
    events.extend(acme.handled("claims", "dana", 5_000));
    events.extend(acme.waiting("claims", 1_000));
    let globex = Script::new("globex", "s2");
    events.extend(globex.waiting("support", 7_000));
    env.publish(&events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_updates_live_speaks_chinese_and_recovers_from_a_lost_server_in_a_real_browser()
 {
    let root = repo_root();
    if !hotline_testkit::browser::should_run(&root, "the wallboard") {
        return;
    }
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let addr = kpi.addr;
    publish_day(&env).await;
    let control = Arc::new(Control {
        env,
        kpi: Mutex::new(Some(kpi)),
        addr,
        published: Mutex::new(0),
    });
    let app = Router::new()
        .route("/publish/{what}", post(publish))
        .route("/server/{what}", post(server))
        .with_state(control.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the control API binds");
    let control_addr = listener.local_addr().expect("a local address");
    let control_server = tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("http://{addr}/wallboard?key={ACME_KEY}");
    let control_url = format!("http://{control_addr}");
    let artifacts = root.join("test-artifacts/wallboard");
    let artifacts = artifacts
        .to_str()
        .expect("a UTF-8 repository path")
        .to_owned();
    let (status, output) = tokio::task::spawn_blocking(move || {
        hotline_testkit::browser::run_with_deadline(
            "node",
            &[
                "services/kpi/tests/wallboard.mjs",
                &url,
                &control_url,
                &artifacts,
            ],
            &root,
            BROWSER_RUN,
        )
    })
    .await
    .expect("the browser run did not panic");
    control_server.abort();
    if let Some(kpi) = control.kpi.lock().await.take() {
        kpi.stop().await;
    }
    assert!(
        status.success(),
        "the wallboard failed in the browser ({status}):\n{output}"
    );
    let summary = output.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 passed"),
        "unexpected summary line {summary:?}:\n{output}"
    );
}
