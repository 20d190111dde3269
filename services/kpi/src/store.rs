//! Interval rows and the engine's checkpoint in SQL: SQLite embedded, PostgreSQL for
//! real installs, through one code path (sqlx's `Any` driver, portable SQL, `$n`
//! placeholders, which both accept).
//!
//! # Data flow
//!
//! ```text
//! Engine::take_dirty + Engine::checkpoint ──save (one transaction)──▶ kpi_interval, kpi_checkpoint
//! HTTP / replay compare ──intervals(IntervalQuery)──▶ rows ──engine::figures──▶ IntervalRow
//! ```
//!
//! Rows hold *absolute* counters and are upserted, so writing a row again (after a
//! retry, or a replay) is idempotent. Every row carries its tenant and every query
//! filters by it. The checkpoint (engine state and the consumer positions it covers)
//! is written in the same transaction as the rows it covers, so after a crash the two
//! never disagree.

mod schema;

use std::collections::BTreeMap;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::engine::{EngineConfig, FigureContext, IntervalQuery, figures};
use crate::model::{Counters, Dimension, DimensionKind, IntervalKey, IntervalLength, IntervalRow};
pub use schema::COUNTER_COLUMNS;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend this store speaks.
    #[error(
        "store url {url:?} is not supported: use sqlite://PATH?mode=rwc, sqlite::memory: or postgres://…"
    )]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The database could not be reached or opened (retryable).
    #[error("cannot connect to the store at {url:?}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Creating or upgrading the schema failed.
    #[error("cannot create the kpi schema in {url:?}: {source}")]
    Migrate {
        /// The URL, password removed.
        url: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed (usually retryable: the database is away or busy).
    #[error("store: {what} failed: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value is not what this code wrote.
    #[error("store: {what} holds {value:?}, which is not valid")]
    Corrupt {
        /// Which column or row.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Connect { .. } | StoreError::Query { .. })
    }
}

/// Results of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Consumer positions a checkpoint covers: (topic, partition, next offset).
pub type Positions = [(String, u32, u64)];

/// A saved checkpoint: the engine's bytes and the positions they cover.
pub type SavedCheckpoint = (Vec<u8>, Vec<(String, u32, u64)>);

/// Which SQL dialect details apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, file or memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One difference between two stores' rows (see [`compare`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Which row.
    pub key: IntervalKey,
    /// Its counters in the first store (`None`: missing there).
    pub left: Option<Counters>,
    /// Its counters in the second store.
    pub right: Option<Counters>,
}

/// Interval rows and checkpoints in SQL.
#[derive(Debug, Clone)]
pub struct Store {
    /// The connections.
    pool: AnyPool,
    /// Which dialect.
    backend: Backend,
    /// What figures need (cost models per tenant).
    config: EngineConfig,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:`, `postgres://…`)
    /// and creates or upgrades the schema.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };
        // SQLite allows one writer; one connection also keeps `sqlite::memory:` one
        // database.
        let max = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        schema::migrator(backend)
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { url: shown, source })?;
        Ok(Store {
            pool,
            backend,
            config: EngineConfig::default(),
        })
    }

    /// The same store computing figures with `config`'s cost models.
    pub fn with_config(mut self, config: EngineConfig) -> Store {
        self.config = config;
        self
    }

    /// Which dialect it speaks.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Upserts `rows` (absolute counters) and, if given, the checkpoint of consumer
    /// `name` with the positions it covers — all in one transaction.
    pub async fn save(
        &self,
        rows: &[IntervalRow],
        checkpoint: Option<(&str, &[u8], &Positions)>,
    ) -> Result<()> {
        let q = |what| move |source| StoreError::Query { what, source };
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        for row in rows {
            upsert_row(&mut tx, row).await?;
        }
        if let Some((name, bytes, positions)) = checkpoint {
            let positions = serde_json::to_string(positions).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "INSERT INTO kpi_checkpoint (consumer, engine, positions) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET engine = excluded.engine, positions = excluded.positions",
            )
            .bind(name.to_owned())
            .bind(bytes.to_vec())
            .bind(positions)
            .execute(&mut *tx)
            .await
            .map_err(q("writing the checkpoint"))?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(())
    }

    /// The checkpoint consumer `name` saved last, if any.
    pub async fn load_checkpoint(&self, name: &str) -> Result<Option<SavedCheckpoint>> {
        let row = sqlx::query("SELECT engine, positions FROM kpi_checkpoint WHERE consumer = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| StoreError::Query {
                what: "reading the checkpoint",
                source,
            })?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.try_get(0).map_err(|source| StoreError::Query {
            what: "reading the checkpoint",
            source,
        })?;
        let positions: String = row.try_get(1).map_err(|source| StoreError::Query {
            what: "reading the checkpoint",
            source,
        })?;
        let positions = serde_json::from_str(&positions).map_err(|_| StoreError::Corrupt {
            what: "kpi_checkpoint.positions",
            value: positions.clone(),
        })?;
        Ok(Some((bytes, positions)))
    }

    /// The stored rows answering `q`, sorted by dimension then start, figures filled.
    pub async fn intervals(&self, q: &IntervalQuery) -> Result<Vec<IntervalRow>> {
        let cols = COUNTER_COLUMNS.join(", ");
        let mut sql = format!(
            "SELECT dim_kind, dim_id, start_ms, {cols} FROM kpi_interval \
             WHERE tenant = $1 AND length = $2 AND start_ms >= $3 AND start_ms < $4"
        );
        let (kind, id) = match &q.dimension {
            None => (None, None),
            Some(crate::engine::DimensionFilter::Kind(k)) => (Some(*k), None),
            Some(crate::engine::DimensionFilter::Is(d)) => {
                (Some(d.kind()), Some(d.id().to_owned()))
            }
        };
        if kind.is_some() {
            sql.push_str(" AND dim_kind = $5");
        }
        if id.is_some() {
            sql.push_str(" AND dim_id = $6");
        }
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(q.tenant.clone())
            .bind(q.length.name())
            .bind(to_i64(q.from_ms))
            .bind(to_i64(q.to_ms));
        if let Some(k) = kind {
            query = query.bind(k.name());
        }
        if let Some(id) = id {
            query = query.bind(id);
        }
        let found = query
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Query {
                what: "reading interval rows",
                source,
            })?;
        let ctx = FigureContext::for_tenant(&self.config, &q.tenant);
        let mut rows = found
            .iter()
            .map(|r| {
                let key = IntervalKey {
                    tenant: q.tenant.clone(),
                    dimension: read_dimension(r)?,
                    length: q.length,
                    start_ms: read_u64(r, 2, "kpi_interval.start_ms")?,
                };
                let counters = read_counters(r, 3)?;
                Ok(IntervalRow {
                    figures: figures(&counters, &ctx.with_dimension(&key.dimension)),
                    counters,
                    key,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(rows)
    }

    /// Every tenant with a stored row, sorted.
    pub async fn tenants(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT tenant FROM kpi_interval ORDER BY tenant")
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Query {
                what: "listing tenants",
                source,
            })?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .map_err(|source| StoreError::Query {
                        what: "listing tenants",
                        source,
                    })
            })
            .collect()
    }

    /// Every stored row of `tenant`, all lengths, sorted by key.
    pub async fn all_rows(&self, tenant: &str) -> Result<Vec<IntervalRow>> {
        let mut out = Vec::new();
        for length in IntervalLength::ALL {
            out.extend(
                self.intervals(&IntervalQuery {
                    tenant: tenant.to_owned(),
                    length,
                    from_ms: 0,
                    to_ms: i64::MAX as u64,
                    dimension: None,
                })
                .await?,
            );
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes every interval row (all tenants); checkpoints stay.
    pub async fn clear(&self) -> Result<()> {
        sqlx::query("DELETE FROM kpi_interval")
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Query {
                what: "clearing interval rows",
                source,
            })?;
        Ok(())
    }

    /// Replaces every interval row with `rows`, in one transaction, and drops the
    /// checkpoints (a replayed store no longer matches any consumer's state).
    pub async fn replace_all(&self, rows: &[IntervalRow]) -> Result<()> {
        let q = |what| move |source| StoreError::Query { what, source };
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        sqlx::query("DELETE FROM kpi_interval")
            .execute(&mut *tx)
            .await
            .map_err(q("clearing interval rows"))?;
        sqlx::query("DELETE FROM kpi_checkpoint")
            .execute(&mut *tx)
            .await
            .map_err(q("clearing checkpoints"))?;
        for row in rows {
            upsert_row(&mut tx, row).await?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(())
    }
}

/// Every row that differs between `a` and `b` for `tenant` (every tenant of either
/// when `None`), sorted by key. Empty means the stores agree exactly.
pub async fn compare(a: &Store, b: &Store, tenant: Option<&str>) -> Result<Vec<Difference>> {
    let tenants = match tenant {
        Some(t) => vec![t.to_owned()],
        None => {
            let mut t = a.tenants().await?;
            t.extend(b.tenants().await?);
            t.sort();
            t.dedup();
            t
        }
    };
    let mut out = Vec::new();
    for t in tenants {
        let left: BTreeMap<IntervalKey, Counters> = a
            .all_rows(&t)
            .await?
            .into_iter()
            .map(|r| (r.key, r.counters))
            .collect();
        let mut right: BTreeMap<IntervalKey, Counters> = b
            .all_rows(&t)
            .await?
            .into_iter()
            .map(|r| (r.key, r.counters))
            .collect();
        for (key, l) in left {
            match right.remove(&key) {
                Some(r) if r == l => {}
                r => out.push(Difference {
                    key,
                    left: Some(l),
                    right: r,
                }),
            }
        }
        out.extend(right.into_iter().map(|(key, r)| Difference {
            key,
            left: None,
            right: Some(r),
        }));
    }
    out.sort_by(|x, y| x.key.cmp(&y.key));
    Ok(out)
}

async fn upsert_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, row: &IntervalRow) -> Result<()> {
    let mut query = sqlx::query(AssertSqlSafe(schema::upsert_sql()))
        .bind(row.key.tenant.clone())
        .bind(row.key.dimension.kind().name())
        .bind(row.key.dimension.id().to_owned())
        .bind(row.key.length.name())
        .bind(to_i64(row.key.start_ms));
    for v in schema::counter_values(&row.counters) {
        query = query.bind(to_i64(v));
    }
    query
        .execute(&mut **tx)
        .await
        .map_err(|source| StoreError::Query {
            what: "writing interval rows",
            source,
        })?;
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn read_u64(r: &AnyRow, i: usize, what: &'static str) -> Result<u64> {
    let v: i64 = r
        .try_get(i)
        .map_err(|source| StoreError::Query { what, source })?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

fn read_dimension(r: &AnyRow) -> Result<Dimension> {
    let what = "kpi_interval.dim_kind";
    let kind: String = r
        .try_get(0)
        .map_err(|source| StoreError::Query { what, source })?;
    let id: String = r
        .try_get(1)
        .map_err(|source| StoreError::Query { what, source })?;
    let kind = DimensionKind::parse(&kind).ok_or(StoreError::Corrupt { what, value: kind })?;
    Ok(Dimension::from_parts(kind, &id))
}

fn read_counters(r: &AnyRow, first: usize) -> Result<Counters> {
    let mut values = [0u64; COUNTER_COLUMNS.len()];
    for (i, v) in values.iter_mut().enumerate() {
        *v = read_u64(r, first + i, "kpi_interval counter")?;
    }
    Ok(schema::counters_from(values))
}

/// `url` with any password replaced, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
