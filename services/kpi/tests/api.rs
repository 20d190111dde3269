//! The KPI service's HTTP API, checked from outside: a real service on port 0 over an
//! embedded event log and a SQLite store in a temporary directory, fed real encoded
//! events, polled with deadlines.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{
    ACME_KEY, Env, GLOBEX_KEY, PROVIDER_KEY, Running, Script, eventually, get, queue, today,
};

/// How long figures may take to appear after events are appended.
const FIGURES: Duration = Duration::from_secs(10);

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Acme at site `s1`: in `sales`, one contact waiting, two answered (by alice), one
/// abandoned; alice ready, bob on a break. Globex at `s2`: one contact waiting in
/// `support`.
async fn publish_day(env: &Env) {
    let acme = Script::new("acme", "s1");
    let mut events = Vec::new();
    events.extend(acme.ready("alice"));
    events.extend(acme.ready("bob"));
    events.push(acme.not_ready("bob", "break"));
    events.extend(acme.handled("sales", "alice", 4_000));
    events.extend(acme.handled("sales", "alice", 30_000));
    events.extend(acme.abandoned("sales", 8_000));
    events.extend(acme.waiting("sales", 12_000));
    let globex = Script::new("globex", "s2");
    events.extend(globex.waiting("support", 2_000));
    env.publish(&events).await;
}

/// Waits until acme's `sales` queue shows `answered` answered contacts.
async fn sales_answered(addr: SocketAddr, answered: f64) -> serde_json::Value {
    eventually(
        &format!("acme/sales with {answered} answered"),
        FIGURES,
        || async move {
            let r = get(addr, "/api/kpi/realtime", Some(ACME_KEY)).await?;
            let body = r.json();
            match queue(&body, "sales").and_then(|q| today(q, "answered")) {
                Some(n) if n == answered => Ok(body),
                _ => Err(r.body),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_figures_appear_for_the_callers_tenant_each_naming_its_definition() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    publish_day(&env).await;
    let body = sales_answered(kpi.addr, 2.0).await;

    assert_eq!(body["tenant"], "acme");
    let sales = queue(&body, "sales").expect("a sales tile");
    assert_eq!(sales["site"], "s1");
    assert_eq!(sales["waiting"], 1, "{sales}");
    assert!(
        sales["oldest_wait_ms"].as_u64().unwrap_or(0) >= 12_000,
        "the waiting contact queued 12 s ago: {sales}"
    );
    assert_eq!(today(sales, "abandoned"), Some(1.0), "{sales}");
    assert_eq!(today(sales, "offered"), Some(4.0), "{sales}");
    // Answered within 20 s: one of two answered, one abandoned: 1 / 3.
    let sl = today(sales, "service_level").expect("a service level");
    assert!((sl - 1.0 / 3.0).abs() < 1e-9, "service level {sl}: {sales}");
    for f in sales["today"].as_array().expect("today's figures") {
        assert!(
            f["definition"].as_str().is_some_and(|d| !d.is_empty())
                && f["version"].as_u64() >= Some(1),
            "a figure without its definition and version: {f}"
        );
    }
    assert_eq!(body["agents"]["ready"], 1, "{body}");
    assert_eq!(
        body["agents"]["not_ready"],
        serde_json::json!([["break", 1]]),
        "{body}"
    );
    assert!(body["sl_target"].as_f64().is_some(), "{body}");
    assert!(
        queue(&body, "support").is_none(),
        "globex's queue leaks into acme's view: {body}"
    );
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_figures_answer_404_and_a_missing_or_unknown_key_401() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    publish_day(&env).await;
    sales_answered(kpi.addr, 2.0).await;
    let addr = kpi.addr;

    let r = get(addr, "/api/kpi/realtime", None)
        .await
        .expect("an answer");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("Authorization: Bearer"),
        "{r:?}"
    );
    assert!(r.header("www-authenticate").is_some(), "{r:?}");
    let r = get(addr, "/api/kpi/realtime", Some("not-a-key-of-this-service"))
        .await
        .expect("an answer");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("unknown API key"), "{r:?}");
    let r = get(addr, "/metrics", None).await.expect("an answer");
    assert_eq!(r.status, 401, "{r:?}");

    for path in [
        "/api/kpi/realtime?tenant=globex",
        "/api/kpi/intervals?tenant=globex&length=1d",
        "/api/kpi/stream?tenant=globex",
    ] {
        let r = get(addr, path, Some(ACME_KEY)).await.expect("an answer");
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(
            r.body.contains("no figures for tenant globex"),
            "{path}: {r:?}"
        );
    }
    // The same answer as a tenant that does not exist, for a provider.
    let r = get(addr, "/api/kpi/realtime?tenant=nobody", Some(PROVIDER_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 404, "{r:?}");
    let r = get(addr, "/api/kpi/realtime", Some(PROVIDER_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 400, "a provider must name a tenant: {r:?}");
    assert!(r.body.contains("?tenant="), "{r:?}");

    let r = get(addr, "/api/kpi/realtime?tenant=acme", Some(PROVIDER_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(queue(&r.json(), "sales").is_some(), "{r:?}");
    let r = get(addr, "/api/kpi/realtime", Some(GLOBEX_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert!(
        queue(&body, "support").is_some() && queue(&body, "sales").is_none(),
        "{body}"
    );
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_values_answer_400_naming_the_parameter_and_the_value() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    let cases = [
        ("/api/kpi/intervals?length=5m", "length", "5m"),
        ("/api/kpi/intervals?from=yesterday", "from", "yesterday"),
        ("/api/kpi/intervals?from=2000&to=1000", "to", "1000"),
        ("/api/kpi/intervals?dimension=planet", "dimension", "planet"),
        ("/api/kpi/intervals?id=sales", "id", "sales"),
        (
            "/api/kpi/intervals?length=15m&from=0&to=9999999999999",
            "to",
            "9999999999999",
        ),
        ("/api/kpi/realtime?tenant=bad%20name", "tenant", "bad name"),
        (
            "/api/kpi/staffing?contacts=-1&aht_secs=180",
            "contacts",
            "-1",
        ),
        (
            "/api/kpi/staffing?contacts=100&aht_secs=180&sl=80",
            "sl",
            "80",
        ),
        (
            "/api/kpi/staffing?contacts=100&aht_secs=abc",
            "aht_secs",
            "abc",
        ),
    ];
    for (path, name, value) in cases {
        let r = get(kpi.addr, path, Some(ACME_KEY))
            .await
            .expect("an answer");
        assert_eq!(r.status, 400, "{path}: {r:?}");
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains(&format!("{name}=\"{value}\"")),
            "{path}: the error does not name {name}={value:?}: {error}"
        );
    }
    let r = get(kpi.addr, "/api/kpi/staffing?aht_secs=180", Some(ACME_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("missing contacts"), "{r:?}");
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_serve_stored_rows_merged_with_the_engines_open_ones() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    publish_day(&env).await;
    sales_answered(kpi.addr, 2.0).await;

    let r = get(
        kpi.addr,
        "/api/kpi/intervals?length=1d&dimension=queue&id=sales",
        Some(ACME_KEY),
    )
    .await
    .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    let rows = body["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "one day of sales: {body}");
    assert_eq!(
        rows[0]["key"]["dimension"],
        serde_json::json!({"kind": "queue", "id": "sales"})
    );
    assert_eq!(rows[0]["counters"]["answered"], 2, "{body}");
    assert_eq!(rows[0]["counters"]["abandoned"], 1, "{body}");
    assert!(
        rows[0]["figures"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["definition"].is_string())),
        "{body}"
    );

    // Every queue of the tenant in 15-minute rows: only acme's.
    let r = get(
        kpi.addr,
        "/api/kpi/intervals?length=15m&dimension=queue",
        Some(ACME_KEY),
    )
    .await
    .expect("an answer");
    let body = r.json();
    let rows = body["rows"].as_array().expect("rows");
    assert!(!rows.is_empty(), "{body}");
    assert!(
        rows.iter()
            .all(|r| r["key"]["tenant"] == "acme" && r["key"]["dimension"]["kind"] == "queue"),
        "{body}"
    );
    kpi.stop().await;

    // After a restart the same row comes from the store and the restored engine.
    let kpi = Running::start(&env, env.config(), any_port()).await;
    let r = get(
        kpi.addr,
        "/api/kpi/intervals?length=1d&dimension=queue&id=sales",
        Some(ACME_KEY),
    )
    .await
    .expect("an answer");
    assert_eq!(r.json()["rows"][0]["counters"]["answered"], 2, "{r:?}");
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staffing_answers_the_agents_a_forecast_needs_with_erlang_figures() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    let r = get(
        kpi.addr,
        "/api/kpi/staffing?contacts=100&interval_mins=30&aht_secs=180&sl=0.8&sl_secs=20&patience_secs=60",
        Some(ACME_KEY),
    )
    .await
    .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    // 100 contacts in 30 min at 180 s: 10 Erlangs; 80/20 needs 14 agents.
    assert_eq!(body["agents"], 14, "{body}");
    let sl = body["figures"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "service_level"))
        .expect("a service level figure");
    assert_eq!(sl["definition"], "erlang_c.service_level");
    assert!(sl["value"].as_f64().is_some_and(|v| v >= 0.8), "{sl}");
    assert!(
        body["with_abandonment"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{body}"
    );
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_list_every_definition_with_its_version_and_a_description() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    let r = get(kpi.addr, "/api/kpi/definitions", Some(ACME_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    let defs = body.as_array().expect("a list");
    for id in [
        "sl.abandons_in_denominator",
        "asa",
        "abandon_rate",
        "erlang_c.service_level",
    ] {
        let d = defs
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {body}"));
        assert!(d["version"].as_u64() >= Some(1), "{d}");
        assert!(
            d["description"].as_str().is_some_and(|s| s.len() > 10),
            "{d}"
        );
    }
    kpi.stop().await;
}

/// The sample value of the line of `text` that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .trim()
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_queue_gauges_and_service_counters_for_a_provider() {
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    publish_day(&env).await;
    sales_answered(kpi.addr, 2.0).await;
    let addr = kpi.addr;
    let text = eventually("metrics with events applied", FIGURES, || async move {
        let r = get(addr, "/metrics", Some(PROVIDER_KEY)).await?;
        match sample(&r.body, "hotline_kpi_events_applied_total") {
            Some(n) if n >= 24.0 => Ok(r.body),
            _ => Err(r.body),
        }
    })
    .await;
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics text: {text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok(),
            "a sample without a number: {line:?}"
        );
    }
    assert_eq!(
        sample(
            &text,
            r#"hotline_kpi_queue_waiting{tenant="acme",site="s1",queue="sales"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"hotline_kpi_queue_waiting{tenant="globex",site="s2",queue="support"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"hotline_kpi_queue_oldest_wait_seconds{tenant="acme",site="s1",queue="sales"}"#
        )
        .is_some_and(|s| s >= 12.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"hotline_kpi_agents{tenant="acme",state="not_ready",reason="break"}"#
        ),
        Some(1.0),
        "{text}"
    );
    for name in [
        "hotline_kpi_events_duplicate_total",
        "hotline_kpi_events_quarantined_total",
        "hotline_kpi_records_skipped_total",
        "hotline_kpi_consumer_lag_records",
        "hotline_kpi_flush_duration_seconds_count",
    ] {
        assert!(sample(&text, name).is_some(), "{name} missing: {text}");
    }

    // A tenant key sees its own gauges, nobody else's, and not the service's counters.
    let r = get(addr, "/metrics", Some(ACME_KEY))
        .await
        .expect("an answer");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(r#"tenant="acme""#), "{}", r.body);
    assert!(
        !r.body.contains("globex"),
        "globex leaks to acme: {}",
        r.body
    );
    assert!(!r.body.contains("events_applied"), "{}", r.body);
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_resumes_from_its_checkpoint_without_double_counting() {
    let env = Env::new().await;
    let acme = Script::new("acme", "s1");
    let first = acme.handled("sales", "alice", 4_000);
    let kpi = Running::start(&env, env.config(), any_port()).await;
    env.publish(&first).await;
    env.publish(&acme.handled("sales", "alice", 5_000)).await;
    sales_answered(kpi.addr, 2.0).await;
    kpi.stop().await;

    let kpi = Running::start(&env, env.config(), any_port()).await;
    // The restored engine has the day so far before anything new arrives.
    sales_answered(kpi.addr, 2.0).await;
    // A publisher's retry of the first contact after the restart, then a new contact.
    env.publish(&first).await;
    env.publish(&acme.handled("sales", "bob", 6_000)).await;
    let body = sales_answered(kpi.addr, 3.0).await;
    let sales = queue(&body, "sales").expect("a sales tile");
    assert_eq!(
        today(sales, "offered"),
        Some(3.0),
        "the retried contact counted twice: {sales}"
    );
    let addr = kpi.addr;
    let retried = first.len() as f64;
    eventually(
        "the retried events counted as duplicates",
        FIGURES,
        || async move {
            let r = get(addr, "/metrics", Some(PROVIDER_KEY)).await?;
            match sample(&r.body, "hotline_kpi_events_duplicate_total") {
                Some(n) if n >= retried => Ok(()),
                _ => Err(r.body),
            }
        },
    )
    .await;
    kpi.stop().await;

    // And once more: nothing is re-applied from the log.
    let kpi = Running::start(&env, env.config(), any_port()).await;
    let body = sales_answered(kpi.addr, 3.0).await;
    let sales = queue(&body, "sales").expect("a sales tile");
    assert_eq!(today(sales, "offered"), Some(3.0), "{sales}");
    kpi.stop().await;
}

/// Copies the default group's checkpoint (its positions changed by `positions`) to a
/// consumer group of its own, and returns a config for that group.
async fn copy_checkpoint(
    env: &Env,
    group: &str,
    positions: impl FnOnce(Vec<(String, u32, u64)>) -> Vec<(String, u32, u64)>,
) -> hotline_kpi::service::KpiConfig {
    let config = env.config();
    let store = hotline_kpi::store::Store::connect(&config.store_url)
        .await
        .expect("the store opens");
    let (engine, saved) = store
        .load_checkpoint(&config.consumer_group)
        .await
        .expect("the checkpoint reads")
        .expect("the first run saved a checkpoint");
    assert!(!saved.is_empty(), "the checkpoint records its positions");
    store
        .save(&[], Some((group, &engine, &positions(saved))))
        .await
        .expect("the checkpoint copies");
    hotline_kpi::service::KpiConfig {
        consumer_group: group.to_owned(),
        ..config
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_checkpoint_covers_are_dropped_when_offsets_were_never_committed() {
    let env = Env::new().await;
    let acme = Script::new("acme", "s1");
    let kpi = Running::start(&env, env.config(), any_port()).await;
    env.publish(&acme.handled("sales", "alice", 4_000)).await;
    env.publish(&acme.abandoned("sales", 3_000)).await;
    sales_answered(kpi.addr, 1.0).await;
    kpi.stop().await;

    // A crash after the store saved the checkpoint but before the log took the offsets
    // commit looks like this: a consumer group with the checkpoint and no offsets.
    let config = copy_checkpoint(&env, "kpi-uncommitted", |positions| positions).await;
    let kpi = Running::start(&env, config, any_port()).await;
    let addr = kpi.addr;
    eventually(
        "every re-read record dropped as replayed",
        FIGURES,
        || async move {
            let r = get(addr, "/metrics", Some(PROVIDER_KEY)).await?;
            match sample(&r.body, "hotline_kpi_events_replayed_total") {
                Some(n) if n >= 9.0 => Ok(()),
                _ => Err(r.body),
            }
        },
    )
    .await;
    let body = sales_answered(addr, 1.0).await;
    let sales = queue(&body, "sales").expect("a sales tile");
    assert_eq!(today(sales, "offered"), Some(2.0), "counted twice: {sales}");
    assert_eq!(
        today(sales, "abandoned"),
        Some(1.0),
        "counted twice: {sales}"
    );
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_past_the_end_of_the_log_reads_on_from_the_end_and_misses_nothing_new() {
    let env = Env::new().await;
    let acme = Script::new("acme", "s1");
    let kpi = Running::start(&env, env.config(), any_port()).await;
    env.publish(&acme.handled("sales", "alice", 4_000)).await;
    sales_answered(kpi.addr, 1.0).await;
    kpi.stop().await;

    // What a machine crash that took back the log's last records leaves: a checkpoint
    // (and offsets) further on than the log now reaches. Here under a group of its own,
    // for every partition, so wherever the next contact's key lands it is "behind".
    let ends = env
        .log
        .end_offsets(hotline_eventlog::topics::EVENTS)
        .await
        .expect("end offsets");
    let config = copy_checkpoint(&env, "kpi-ahead", |_| {
        let events = hotline_eventlog::topics::EVENTS;
        let ahead = ends.iter().enumerate();
        ahead
            .map(|(p, end)| (events.to_owned(), p as u32, end + 1_000))
            .collect()
    })
    .await;
    let kpi = Running::start(&env, config, any_port()).await;
    // The new contact's records take offsets the checkpoint claims to have applied;
    // they must be applied, not skipped as replayed.
    env.publish(&acme.handled("sales", "bob", 5_000)).await;
    let body = sales_answered(kpi.addr, 2.0).await;
    let sales = queue(&body, "sales").expect("a sales tile");
    assert_eq!(today(sales, "offered"), Some(2.0), "{sales}");
    kpi.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_a_snapshot_at_least_every_half_second_and_ends_when_the_service_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::new().await;
    let kpi = Running::start(&env, env.config(), any_port()).await;
    publish_day(&env).await;
    sales_answered(kpi.addr, 2.0).await;

    let mut stream = tokio::net::TcpStream::connect(kpi.addr)
        .await
        .expect("connects");
    let request = format!(
        "GET /api/kpi/stream?key={ACME_KEY} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        kpi.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sends the request");
    let mut seen = String::new();
    let mut buf = [0u8; 16 * 1024];
    let started = std::time::Instant::now();
    // Four snapshots in two seconds: one at once, then one at least every 500 ms.
    while seen.matches("event: snapshot").count() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "fewer than 4 snapshots in 2 s: {seen}"
        );
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .expect("the stream sends within 2 s")
            .expect("reads");
        assert!(n > 0, "the stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );
    assert!(
        seen.contains("retry: 1000"),
        "the browser is told to retry: {seen}"
    );
    assert!(seen.contains("\"queue\":\"sales\""), "{seen}");
    assert!(
        !seen.contains("support"),
        "globex leaks into acme's stream: {seen}"
    );

    // An open stream does not hold up the shutdown (stop() fails after 15 s).
    kpi.stop().await;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "the stream is still open after the service stopped"
    );
}
