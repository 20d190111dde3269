//! KPI: the contact-center figures Hotline reports and plans staffing with.
//!
//! # Layout
//!
//! - [`model`]: the shapes of every answer — [`model::Figure`] (a value that names its
//!   definition and version), interval rows and their counters, the real-time snapshot.
//! - [`engine`]: the KPI engine. Pure: events in (deduplicated by event id), real-time
//!   state and interval counters out; the same code runs live and in `hotline kpi replay`.
//! - [`store`]: interval rows in SQL through sqlx — SQLite embedded, PostgreSQL for real
//!   installs, one code path.
//! - [`replay`]: rebuilds the interval tables from the event log.
//! - [`service`]: the KPI role: consumes the log, feeds the engine, persists intervals,
//!   serves the JSON API, `/metrics` and the live wallboard (server-sent events).
//! - [`erlang`]: exact queueing figures for a single queue in steady state —
//!   [`erlang::ErlangC`] (M/M/c, contacts never abandon), [`erlang::ErlangA`]
//!   (M/M/c+M, contacts abandon after an exponential patience) and
//!   [`erlang::staffing`], the fewest agents that meet a service-level target.
//!
//! # Data flow
//!
//! ```text
//! event log ──EventConsumer──▶ Engine ──intervals──▶ Store (SQLite | PostgreSQL)
//!                                 └──realtime──▶ service: /api/kpi/…, /metrics, wallboard (SSE)
//! forecast ──erlang::staffing──▶ agents, service level, ASA, occupancy
//! ```
#![forbid(unsafe_code)]

pub mod engine;
pub mod erlang;
pub mod model;
pub mod replay;
pub mod service;
pub mod store;
