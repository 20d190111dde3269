//! Hotline's IVR: the flow language, its validator, and one session actor per contact
//! that runs a flow on any channel.
//!
//! # Layout
//!
//! - [`flow`]: the model of a flow (nodes `say`, `menu`, `collect`, `hours`, `set`,
//!   `branch`, `queue`, `callback`, `voicemail`, `transfer`, `end`) and its parser from
//!   YAML, keeping the line and column of everything it reads.
//! - [`calendar`]: business hours and holidays in a time zone, as `hours` nodes use them.
//! - [`catalog`]: each tenant's queues and skills, from the site's ACD configuration.
//! - [`check`]: the validator — dangling targets, unreachable nodes, loops that wait for
//!   no input, unknown tenants, queues, skills and calendars — and [`check::load`],
//!   parse and check in one call.
//! - [`diag`]: [`Diagnostic`]s (`FILE:LINE:COL: message`) and [`FlowErrors`].
//! - [`registry`]: [`FlowRegistry`], a tenant's flows with every version kept; a publish
//!   with errors changes nothing.
//! - [`machine`]: the interpreter as a pure state machine — time and [`Input`] in,
//!   [`Effect`]s (nodes entered, prompts, one [`Outcome`]) and the next deadline out.
//! - [`session`]: the ractor actor per contact that drives a machine with an injected
//!   clock and tokio timers, records events and talks to the channel.
//!
//! Data flows: flow text → [`FlowRegistry::publish`] (parse, check, version) →
//! [`PublishedFlow`] → [`Session::start`] → the channel sends [`Input`]s and reads
//! [`Output`]s (prompts, then one [`Finished`]) → the caller acts on the outcome.
//!
//! # Using it from a channel (chat today, voice later)
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use hotline_ivr::*;
//! # async fn demo(site: hotline_acd::config::SiteConfig, text: &str) -> anyhow::Result<()> {
//! use hotline_core::{channel::Channel, event::MemorySink, ids::*, time::SystemClock};
//! let tenant: TenantId = "acme".parse()?;
//! let mut flows = FlowRegistry::new(tenant.clone(), Catalog::from_site(&site));
//! flows.publish(text, "acme/main.yaml")?;              // refused whole on any error
//! let flow = flows.current("main").expect("just published");
//! let contact = ContactInfo {
//!     contact: ContactId::random(),
//!     tenant,
//!     site: "demo-1".parse()?,
//!     trace: TraceId::random(),
//!     channel: Channel::Chat,
//!     customer: Some("+44 20 7946 0000".into()),
//!     attributes: Default::default(),
//! };
//! let options = SessionOptions {
//!     sink: Arc::new(MemorySink::default()),
//!     clock: Arc::new(SystemClock),
//!     ids: hotline_acd::ids::IdSource::Random,
//! };
//! let mut session = Session::start(flow, contact, options).await?;
//! session.send(Input::Text("claims".into()))?;         // or Input::Digits("1"), Input::HangUp
//! while let Some(out) = session.recv().await {
//!     match out {
//!         Output::Prompt(p) => println!("{}: {}", p.id, p.text), // voice: play recording `p.id`
//!         Output::Finished(f) => {
//!             // f.outcome: Queue { queue, priority, skills } | Callback { queue, number }
//!             //   | Voicemail { .. } | Transfer { to } | End { reason } | Abandoned { node }
//!             // f.attributes: what was collected, for the agent's desktop
//!             break;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The session records `ivr_entered` when it starts, `ivr_node { flow, version, node }`
//! for every node entered, and `abandoned` when the customer leaves; the caller records
//! `arrived` before starting it and carries out the outcome (the ACD records `queued`).
//! A session stops by itself after its outcome.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod catalog;
pub mod check;
pub mod diag;
pub mod flow;
pub mod machine;
pub mod registry;
pub mod session;
mod yaml;

pub use catalog::{Catalog, TenantCatalog};
pub use diag::{Diagnostic, FlowErrors, Pos};
pub use flow::{Flow, Prompt};
pub use machine::{Effect, Input, Machine, Outcome};
pub use registry::{FlowRegistry, PublishedFlow, RegistryError};
pub use session::{
    ContactInfo, Finished, Output, Session, SessionError, SessionHandle, SessionInput,
    SessionOptions,
};

#[cfg(test)]
mod tests;
