//! How many durable appends per second the routing store sustains, and how long each waits.
//!
//! Timing-sensitive, so ignored by default; run it alone, optimised:
//!
//! ```text
//! cargo test --release -p hotline-routing --test store_throughput -- --ignored --nocapture
//! ```
//!
//! One producer appends one entry at a time, as a leader under many small client writes does,
//! keeping `WINDOW` appends in flight; a collector waits for each flush callback in order and
//! records the append-to-durable latency. `HOTLINE_STORE_BENCH_DIR` picks the disk (default: the
//! system temp dir), `HOTLINE_STORE_BENCH_WINDOW` the appends in flight (default 256).

use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use hotline_routing::state::Command;
use hotline_routing::store::{self, StoreConfig};
use hotline_routing::typ::TypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;

type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;

const ENTRIES: u64 = 200_000;

async fn run(window: usize) -> Result<()> {
    let base = std::env::var_os("HOTLINE_STORE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base)?;
    let (mut log, _sm) = store::open(&dir.path().join("routing.redb"), &StoreConfig::default())?;

    let (in_flight, mut flushes) = tokio::sync::mpsc::channel(window);
    let collector = tokio::spawn(async move {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        while let Some((appended, flushed)) = flushes.recv().await {
            let flushed: tokio::sync::oneshot::Receiver<Result<(), std::io::Error>> = flushed;
            flushed.await??;
            let micros = Instant::now().duration_since(appended).as_micros();
            latency.saturating_record(u64::try_from(micros)?.max(1));
        }
        anyhow::Ok(latency)
    });

    let started = Instant::now();
    for index in 1..=ENTRIES {
        let entry = Entry::new_normal(
            openraft::testing::log_id::<TypeConfig>(1, 1, index),
            Command::Noop,
        );
        let (tx, rx) = TypeConfig::oneshot();
        let appended = Instant::now();
        log.append([entry], IOFlushed::signal(tx)).await?;
        in_flight.send((appended, rx)).await?;
    }
    drop(in_flight);
    let latency = collector.await??;
    let took = started.elapsed();

    let fsync = log.fsync_stats();
    let rate = ENTRIES as f64 / took.as_secs_f64();
    println!(
        "window {window}: {ENTRIES} durable appends in {:.2?}, {rate:.0}/s; append-to-durable \
         p50 {} µs, p99 {} µs, max {} µs; {} commits ({:.1} entries each), commit p50 {} µs, \
         p99 {} µs, max {} µs",
        took,
        latency.value_at_quantile(0.50),
        latency.value_at_quantile(0.99),
        latency.max(),
        fsync.commits,
        fsync.entries as f64 / fsync.commits.max(1) as f64,
        fsync.p50_us,
        fsync.p99_us,
        fsync.max_us,
    );
    assert_eq!(fsync.entries, ENTRIES);
    assert!(rate >= 50_000.0, "{rate:.0} durable appends/s");
    assert!(
        Duration::from_micros(latency.value_at_quantile(0.99)) <= Duration::from_millis(10),
        "p99 {} µs",
        latency.value_at_quantile(0.99)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing-sensitive: run alone, with --release"]
async fn store_makes_fifty_thousand_appends_a_second_durable_within_ten_ms_at_p99() -> Result<()> {
    let window = match std::env::var("HOTLINE_STORE_BENCH_WINDOW") {
        Ok(window) => window.parse()?,
        Err(_) => 256,
    };
    run(window).await
}
