//! The interval store's contract, run by one shared body against SQLite (file and
//! memory) and a real PostgreSQL server started through `ops/dev/start-postgres` (and
//! stopped on drop). If that script fails the test fails with its output: PostgreSQL
//! is never silently skipped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use hotline_kpi::engine::{DimensionFilter, IntervalQuery};
use hotline_kpi::model::{
    Counters, Dimension, DimensionKind, IntervalKey, IntervalLength, IntervalRow,
};
use hotline_kpi::store::{Store, compare};

// === a PostgreSQL server for one test ===

/// A server started by `ops/dev/start-postgres`, stopped (and its data removed) on drop.
struct PgServer {
    port: u16,
    url: String,
}

fn dev_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ops/dev")
        .join(name)
}

impl PgServer {
    fn start() -> Result<PgServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = Command::new(dev_script("start-postgres"))
            .arg(port.to_string())
            .output()
            .context("running ops/dev/start-postgres")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            let _ = Command::new(dev_script("stop-postgres"))
                .arg(port.to_string())
                .output();
            bail!(
                "ops/dev/start-postgres {port} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            );
        }
        let url = stdout.lines().last().unwrap_or_default().trim().to_owned();
        ensure!(
            url.starts_with("postgres://"),
            "start-postgres printed no URL:\n{stdout}\n{stderr}"
        );
        Ok(PgServer { port, url })
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new(dev_script("stop-postgres"))
            .arg(self.port.to_string())
            .output();
    }
}

// === the shared body ===

fn row(
    tenant: &str,
    dimension: Dimension,
    length: IntervalLength,
    start_ms: u64,
    offered: u64,
) -> IntervalRow {
    IntervalRow {
        key: IntervalKey {
            tenant: tenant.into(),
            dimension,
            length,
            start_ms,
        },
        counters: Counters {
            offered,
            answered: offered / 2,
            answered_within_sl: offered / 4,
            handled: offered / 2,
            talk_ms: u64::from(u32::MAX) * 3, // beyond 32 bits
            fcr_pending: 1,
            ..Counters::default()
        },
        figures: Vec::new(),
    }
}

fn all(tenant: &str, length: IntervalLength) -> IntervalQuery {
    IntervalQuery {
        tenant: tenant.into(),
        length,
        from_ms: 0,
        to_ms: u64::MAX,
        dimension: None,
    }
}

fn positions(next: u64) -> Vec<(String, u32, u64)> {
    vec![
        ("hotline.events.v1".into(), 0, next),
        ("hotline.events.v1".into(), 7, next + 1),
    ]
}

/// Everything a store must do, whatever its backend.
async fn store_contract(store: &Store, other: &Store) -> Result<()> {
    let m15 = IntervalLength::Min15;
    let q1 = Dimension::Queue("q1".into());
    let a = vec![
        row("t1", Dimension::Tenant, m15, 0, 10),
        row("t1", q1.clone(), m15, 0, 4),
        row("t1", q1.clone(), m15, 900_000, 6),
        row("t1", Dimension::Agent("a1".into()), m15, 0, 2),
        row("t1", Dimension::Tenant, IntervalLength::Day, 0, 10),
        // Another tenant with the very same dimensions.
        row("t2", Dimension::Tenant, m15, 0, 99),
        row("t2", q1.clone(), m15, 0, 98),
    ];
    store
        .save(&a, Some(("kpi", b"first", &positions(5))))
        .await?;

    // Rows come back sorted, with their tenant only, figures filled.
    let got = store.intervals(&all("t1", m15)).await?;
    ensure!(got.len() == 4, "t1 has 4 quarter rows, got {got:?}");
    ensure!(
        got.iter().all(|r| r.key.tenant == "t1"),
        "another tenant's row leaked: {got:?}"
    );
    ensure!(
        got.windows(2).all(|w| w[0].key < w[1].key),
        "rows are sorted by key"
    );
    ensure!(
        got[0].key.dimension == Dimension::Tenant && got[0].counters == a[0].counters,
        "{:?}",
        got[0]
    );
    ensure!(!got[0].figures.is_empty(), "figures are computed");
    let t2 = store.intervals(&all("t2", m15)).await?;
    ensure!(
        t2.len() == 2 && t2.iter().all(|r| r.counters.offered >= 98),
        "{t2:?}"
    );
    ensure!(
        store.intervals(&all("t3", m15)).await?.is_empty(),
        "an unknown tenant has no rows"
    );

    // Filters: by kind, by exact dimension, by time range.
    let queues = IntervalQuery {
        dimension: Some(DimensionFilter::Kind(DimensionKind::Queue)),
        ..all("t1", m15)
    };
    ensure!(store.intervals(&queues).await?.len() == 2);
    let agent = IntervalQuery {
        dimension: Some(DimensionFilter::Is(Dimension::Agent("a1".into()))),
        ..all("t1", m15)
    };
    ensure!(store.intervals(&agent).await?.len() == 1);
    let second_quarter = IntervalQuery {
        from_ms: 900_000,
        to_ms: 1_800_000,
        ..all("t1", m15)
    };
    let got = store.intervals(&second_quarter).await?;
    ensure!(got.len() == 1 && got[0].counters.offered == 6, "{got:?}");

    // Absolute upserts: writing a row again replaces it, never adds.
    let mut newer = a[1].clone();
    newer.counters.offered = 5;
    store.save(&[newer.clone(), newer.clone()], None).await?;
    let got = store.intervals(&queues).await?;
    ensure!(
        got[0].counters.offered == 5,
        "re-written row is absolute: {got:?}"
    );

    // The checkpoint round-trips and is replaced.
    let (bytes, pos) = store
        .load_checkpoint("kpi")
        .await?
        .context("checkpoint saved")?;
    ensure!(
        bytes == b"first" && pos == positions(5),
        "{bytes:?} {pos:?}"
    );
    ensure!(store.load_checkpoint("other").await?.is_none());
    store
        .save(&[], Some(("kpi", &[0, 255, 1], &positions(9))))
        .await?;
    let (bytes, pos) = store
        .load_checkpoint("kpi")
        .await?
        .context("checkpoint saved")?;
    ensure!(
        bytes == [0, 255, 1] && pos == positions(9),
        "binary checkpoint: {bytes:?}"
    );

    // Atomic: a batch that fails part-way writes neither its rows nor its checkpoint.
    let good = row("t1", Dimension::Site("s9".into()), m15, 0, 1);
    let bad = row("t1", Dimension::Queue(String::new()), m15, 0, 1);
    let failed = store
        .save(
            &[good.clone(), bad],
            Some(("kpi", b"never", &positions(99))),
        )
        .await;
    ensure!(failed.is_err(), "a queue row without a queue id is refused");
    let sites = IntervalQuery {
        dimension: Some(DimensionFilter::Kind(DimensionKind::Site)),
        ..all("t1", m15)
    };
    ensure!(
        store.intervals(&sites).await?.is_empty(),
        "the failed batch left a row behind"
    );
    let (bytes, _) = store
        .load_checkpoint("kpi")
        .await?
        .context("checkpoint kept")?;
    ensure!(
        bytes == [0, 255, 1],
        "the failed batch replaced the checkpoint"
    );

    // Compare: equal stores agree; one difference is reported with both sides.
    other.replace_all(&store.all_rows("t1").await?).await?;
    ensure!(
        compare(store, other, Some("t1")).await?.is_empty(),
        "copies agree"
    );
    other
        .save(&[row("t1", Dimension::Tenant, m15, 0, 11)], None)
        .await?;
    let diff = compare(store, other, Some("t1")).await?;
    ensure!(
        diff.len() == 1 && diff[0].left.as_ref().map(|c| c.offered) == Some(10),
        "{diff:?}"
    );
    ensure!(
        diff[0].right.as_ref().map(|c| c.offered) == Some(11),
        "{diff:?}"
    );
    let everything = compare(store, other, None).await?;
    ensure!(
        everything.iter().filter(|d| d.key.tenant == "t2").count() == 2,
        "t2 missing in the copy: {everything:?}"
    );

    // replace_all and clear.
    store
        .replace_all(&[row("t1", Dimension::Tenant, m15, 0, 1)])
        .await?;
    ensure!(store.tenants().await? == vec!["t1".to_owned()]);
    ensure!(
        store.load_checkpoint("kpi").await?.is_none(),
        "a replaced store keeps no checkpoint"
    );
    store.clear().await?;
    ensure!(store.intervals(&all("t1", m15)).await?.is_empty());
    Ok(())
}

// === the backends ===

#[tokio::test]
async fn the_store_contract_holds_on_sqlite_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = |n: &str| format!("sqlite://{}?mode=rwc", dir.path().join(n).display());
    let store = Store::connect(&url("a.db")).await?;
    let other = Store::connect(&url("b.db")).await?;
    store_contract(&store, &other).await
}

#[tokio::test]
async fn the_store_contract_holds_on_sqlite_in_memory() -> Result<()> {
    let store = Store::connect("sqlite::memory:").await?;
    let other = Store::connect("sqlite::memory:").await?;
    store_contract(&store, &other).await
}

#[tokio::test]
async fn the_store_contract_holds_on_postgresql() -> Result<()> {
    let server = PgServer::start()?;
    let store = Store::connect(&server.url).await?;
    let dir = tempfile::tempdir()?;
    let other = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("copy.db").display()
    ))
    .await?;
    store_contract(&store, &other).await?;
    // A second connection finds the schema and the data where the first left them.
    let again = Store::connect(&server.url).await?;
    ensure!(
        again.tenants().await?.is_empty(),
        "cleared at the end of the contract"
    );
    Ok(())
}
