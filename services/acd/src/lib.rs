//! The site ACD (automatic contact distribution).
//!
//! # Layout
//!
//! - [`config`]: the site's tenants, queues and agents, read from TOML and validated.
//! - [`engine`]: the matching engine — queues, waiting contacts, the index of eligible
//!   and available agents, strategies, bullseye expansion, queue limits. Pure and
//!   synchronous: it takes `now` and leaves effects and events to be drained.
//! - [`session`]: one agent's session logic (presence, slots, missed offers) around the
//!   core agent state machine, producing agent events.
//! - [`router`]: the router actor, owner of the engine; supervisor of the agent shards.
//! - [`agent`]: agent shards, the actors owning logged-in agents' sessions and their
//!   timers (ring, wrap-up); each agent lives in exactly one shard.
//! - [`journal`]: the open contacts and logged-in agents, kept outside the router so a
//!   restarted router rebuilds the site from it.
//! - [`site`]: [`Site`](site::Site), the handle the rest of Hotline uses: contacts in,
//!   agents' commands in, snapshots out; and the site's supervisor, which restarts a
//!   failed router.
//! - [`sim`]: a discrete-event simulator that drives the same engine and sessions in
//!   virtual time (Poisson arrivals, handle times, patience).
//! - [`naive`]: a linear-scan router, the baseline the benchmarks compare against.
//!
//! # Data flow
//!
//! ```text
//! caller ──arrive/hang_up──▶ Site ──▶ RouterActor(Engine) ──Offer──▶ AgentShard(Sessions)
//!                                         ▲      │                       │   ▲
//!                                         │      └──events──▶ EventSink  │   │ answer, end,
//!                                         └──accepted/declined/ended─────┘   │ ready, …
//!                                                                      agent endpoint
//! ```
#![forbid(unsafe_code)]

pub mod agent;
mod bits;
pub mod config;
pub mod engine;
pub mod error;
pub mod ids;
pub mod journal;
pub mod naive;
pub mod router;
pub mod session;
pub mod sim;
pub mod site;
pub mod workload;

pub use error::AcdError;
