//! The agent desktop, the supervisor view and the web chat channel of one site: pages
//! and the WebSocket gateway between them and the site's ACD.
//!
//! # Layout
//!
//! - [`config`]: who may log in (per tenant, argon2-hashed passwords), each tenant's
//!   disposition codes, not-ready reasons and chat entry points; TOML, validated.
//! - [`auth`]: password hashing and the server-side, expiring sessions behind tokens.
//! - [`schema`]: the versioned, `type`-tagged JSON frames of both sockets, and their
//!   parser (a frame that does not match gets an error frame and changes nothing).
//! - [`intake`]: the IVR seam — what a new chat talks to before it is queued — and the
//!   built-in scripted intake.
//! - [`ivr_intake`]: the intake that runs the tenant's IVR flows for the chat entries
//!   that name one, and the loader of a directory of flow files.
//! - [`hub`]: open chats by contact: tenant, state, collected attributes, bounded
//!   history, the customer's connections.
//! - [`agents`]: agents logged in at this desk and the ACD endpoint that feeds them.
//! - [`desk`]: [`Desk`], what each request does.
//! - [`ws`] and [`pages`]: the routes, socket loops and embedded pages.
//!
//! # Data flow
//!
//! ```text
//! customer page ─/desk/ws/chat─▶ hub ─▶ Intake ─queue─▶ Site::arrive
//!                                 ▲                          │ offer
//! agent page ────/desk/ws───────▶ Desk ◀──DeskEndpoint───────┘
//!    accept/send/end/transfer/wrap_up ─▶ AgentHandle ─▶ ACD; Dispositioned ─▶ EventSink
//! supervisor page ─/desk/ws─▶ Site::snapshot, force state, Site::move_contact
//! ```
//!
//! Mount it with `Desk::new(config, site, sink, options)?.router()` (all routes under
//! `/desk`); see `services/desk/README.md` for the schema.
#![forbid(unsafe_code)]

pub mod agents;
pub mod auth;
pub mod config;
pub mod desk;
pub mod hub;
pub mod intake;
pub mod ivr_intake;
pub mod pages;
pub mod schema;
pub mod ws;

pub use config::DeskConfig;
pub use desk::{Desk, DeskOptions};
pub use ivr_intake::{Flows, IvrIntake};
