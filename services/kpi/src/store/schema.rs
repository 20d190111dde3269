//! The store's tables, as embedded migrations (one list per dialect, the same
//! columns), and the mapping between [`Counters`] and counter columns.
//!
//! Migrations are recorded in `_kpi_migrations`, not sqlx's default table, so KPI can
//! share a database with other services' stores.

use std::borrow::Cow;
use std::sync::OnceLock;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;
use crate::model::Counters;

/// The counter columns of `kpi_interval`, in [`Counters`] field order.
pub const COUNTER_COLUMNS: [&str; 22] = [
    "offered",
    "answered",
    "answered_within_sl",
    "abandoned",
    "short_abandoned",
    "abandoned_within_sl",
    "answer_wait_ms",
    "abandon_wait_ms",
    "handled",
    "talk_ms",
    "hold_ms",
    "wrap_ms",
    "overflowed",
    "transferred",
    "other_exits",
    "fcr_eligible",
    "fcr_resolved",
    "staffed_ms",
    "busy_ms",
    "reserved_ms",
    "not_ready_ms",
    "fcr_pending",
];

/// The counters as column values, in [`COUNTER_COLUMNS`] order.
pub fn counter_values(c: &Counters) -> [u64; 22] {
    [
        c.offered,
        c.answered,
        c.answered_within_sl,
        c.abandoned,
        c.short_abandoned,
        c.abandoned_within_sl,
        c.answer_wait_ms,
        c.abandon_wait_ms,
        c.handled,
        c.talk_ms,
        c.hold_ms,
        c.wrap_ms,
        c.overflowed,
        c.transferred,
        c.other_exits,
        c.fcr_eligible,
        c.fcr_resolved,
        c.staffed_ms,
        c.busy_ms,
        c.reserved_ms,
        c.not_ready_ms,
        c.fcr_pending,
    ]
}

/// The counters from column values in [`COUNTER_COLUMNS`] order.
pub fn counters_from(v: [u64; 22]) -> Counters {
    let [
        offered,
        answered,
        answered_within_sl,
        abandoned,
        short_abandoned,
        abandoned_within_sl,
        answer_wait_ms,
        abandon_wait_ms,
        handled,
        talk_ms,
        hold_ms,
        wrap_ms,
        overflowed,
        transferred,
        other_exits,
        fcr_eligible,
        fcr_resolved,
        staffed_ms,
        busy_ms,
        reserved_ms,
        not_ready_ms,
        fcr_pending,
    ] = v;
    Counters {
        offered,
        answered,
        answered_within_sl,
        abandoned,
        short_abandoned,
        abandoned_within_sl,
        answer_wait_ms,
        abandon_wait_ms,
        handled,
        talk_ms,
        hold_ms,
        wrap_ms,
        overflowed,
        transferred,
        other_exits,
        fcr_eligible,
        fcr_resolved,
        staffed_ms,
        busy_ms,
        reserved_ms,
        not_ready_ms,
        fcr_pending,
    }
}

/// `INSERT … ON CONFLICT … DO UPDATE` of one row with absolute counters; `$1..$5` are
/// tenant, dimension kind, dimension id, length and start, then the counters.
pub fn upsert_sql() -> String {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = COUNTER_COLUMNS.join(", ");
        let params: Vec<String> = (1..=5 + COUNTER_COLUMNS.len())
            .map(|i| format!("${i}"))
            .collect();
        let sets: Vec<String> = COUNTER_COLUMNS
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO kpi_interval (tenant, dim_kind, dim_id, length, start_ms, {cols}) \
             VALUES ({}) ON CONFLICT (tenant, dim_kind, dim_id, length, start_ms) DO UPDATE SET {}",
            params.join(", "),
            sets.join(", ")
        )
    })
    .clone()
}

fn create_tables(blob: &str) -> String {
    let counters: String = COUNTER_COLUMNS
        .iter()
        .map(|c| format!("    {c} BIGINT NOT NULL DEFAULT 0,\n"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS kpi_interval (\n\
         \x20   tenant TEXT NOT NULL,\n\
         \x20   dim_kind TEXT NOT NULL,\n\
         \x20   dim_id TEXT NOT NULL,\n\
         \x20   length TEXT NOT NULL,\n\
         \x20   start_ms BIGINT NOT NULL,\n\
         {counters}\
         \x20   CHECK (dim_kind = 'tenant' OR dim_id <> ''),\n\
         \x20   PRIMARY KEY (tenant, dim_kind, dim_id, length, start_ms)\n\
         );\n\
         CREATE TABLE IF NOT EXISTS kpi_checkpoint (\n\
         \x20   consumer TEXT NOT NULL PRIMARY KEY,\n\
         \x20   engine {blob} NOT NULL,\n\
         \x20   positions TEXT NOT NULL\n\
         );\n"
    )
}

/// The migrations for `backend`.
pub fn migrator(backend: Backend) -> Migrator {
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    let mut m = Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("kpi interval rows and checkpoints"),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(create_tables(blob)).into_sql_str(),
        false,
    )]);
    m.dangerous_set_table_name("_kpi_migrations");
    m
}
