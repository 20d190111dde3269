//! Hotline's domain, as plain data and pure functions: no I/O, no clocks, no actors.
//!
//! # Layout
//!
//! - [`ids`]: typed identifiers (provider, tenant, site, queue, agent, skill, contact, event).
//! - [`tenancy`]: who is asking — the tenant context every request and row carries.
//! - [`skill`]: skills with a proficiency of 1–5 and the requirements queues place on them.
//! - [`channel`]: the media a contact arrives on and the capacity an agent has per medium.
//! - [`time`]: [`Timestamp`](time::Timestamp) and the [`Clock`](time::Clock) trait, so every
//!   engine can run in virtual time.
//! - [`contact`]: the contact state machine — every legal transition, a typed error for
//!   every illegal one.
//! - [`agent`]: the agent state machine — presence, reservations, contacts and wrap-up per
//!   channel slot, missed-offer counting.
//! - [`event`]: one event for every transition of either machine; what flows to the event
//!   log and from there to KPI, CRM and the knowledge base.
//!
//! Data flows one way: a service (the ACD, the IVR) drives a machine with a transition,
//! the machine answers with the new state or a typed error, and the service turns each
//! accepted transition into an [`Event`](event::Event).
#![forbid(unsafe_code)]

pub mod agent;
pub mod channel;
pub mod contact;
pub mod event;
pub mod ids;
pub mod sharded;
pub mod skill;
pub mod tenancy;
pub mod time;
