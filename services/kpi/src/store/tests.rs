//! Store unit tests (SQLite in memory); the full contract, on SQLite and PostgreSQL
//! alike, is in `tests/store_postgres.rs`.

use super::*;

#[test]
fn passwords_never_appear_in_messages() {
    assert_eq!(
        redact("postgres://kpi:s3cret@db:5432/hotline"),
        "postgres://kpi:***@db:5432/hotline"
    );
    assert_eq!(
        redact("postgres://kpi@db/hotline"),
        "postgres://kpi@db/hotline"
    );
    assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
}

#[test]
fn counters_round_trip_through_columns() {
    let mut v = [0u64; 22];
    for (i, x) in v.iter_mut().enumerate() {
        *x = i as u64 + 1;
    }
    assert_eq!(schema::counter_values(&schema::counters_from(v)), v);
}

#[tokio::test]
async fn an_unknown_url_is_refused_by_name() {
    let err = Store::connect("mysql://x@y/z").await.unwrap_err();
    assert!(err.to_string().contains("mysql://x@y/z"), "{err}");
}

#[tokio::test]
async fn connecting_twice_to_one_database_keeps_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("kpi.db").display());
    Store::connect(&url).await.unwrap();
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.backend(), Backend::Sqlite);
    assert!(again.tenants().await.unwrap().is_empty());
}
