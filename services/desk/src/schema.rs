//! The WebSocket message schema, version [`VERSION`]: JSON objects tagged by `type`.
//!
//! Every frame a client sends carries `"v": 1` and may carry an `"id"` (a string or a
//! number) that the server's [`ServerFrame::Ack`] or [`ServerFrame::Error`] for it
//! names as `ref`. A frame that is not valid JSON, lacks `v`, has another version, an
//! unknown `type`, a missing or unknown field, or a value out of bounds is answered
//! with an error frame and changes nothing. `services/desk/README.md` documents every
//! frame.

use std::collections::BTreeMap;

use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema version this server speaks.
pub const VERSION: u64 = 1;

/// The longest chat message, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The longest disposition notes, in characters.
pub const MAX_NOTES_CHARS: usize = 4000;

/// The largest frame accepted, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What an agent's or supervisor's page sends (socket `/desk/ws`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StaffRequest {
    /// Log in with a tenant's credentials.
    Login {
        /// The tenant.
        tenant: TenantId,
        /// The login name (an agent's ACD id).
        user: AgentId,
        /// The password.
        password: String,
    },
    /// Resume a session after a reconnect (or a page reload).
    Resume {
        /// The session token from `welcome`.
        token: String,
    },
    /// Agent: take contacts.
    Ready {},
    /// Agent: stop taking contacts, for one of the tenant's reasons.
    NotReady {
        /// The reason code.
        reason: String,
    },
    /// Agent: accept the offer.
    Accept {
        /// The contact offered.
        contact: ContactId,
    },
    /// Agent: reject the offer (it goes to another agent).
    Reject {
        /// The contact offered.
        contact: ContactId,
    },
    /// Agent: a chat message to the customer.
    Send {
        /// The contact in conversation.
        contact: ContactId,
        /// The text.
        text: String,
    },
    /// Agent: end the conversation (wrap-up begins).
    End {
        /// The contact.
        contact: ContactId,
    },
    /// Agent: hand the contact to another queue (wrap-up begins for this agent).
    Transfer {
        /// The contact in conversation.
        contact: ContactId,
        /// The target queue of the tenant.
        queue: QueueId,
    },
    /// Agent: record the disposition and finish wrap-up.
    WrapUp {
        /// The contact in wrap-up.
        contact: ContactId,
        /// One of the tenant's disposition codes.
        code: String,
        /// Free text.
        #[serde(default)]
        notes: String,
    },
    /// End the session (an agent: logs out of the ACD too).
    LogOut {},
    /// Supervisor: set an agent's state.
    ForceState {
        /// The agent.
        agent: AgentId,
        /// `ready`, `not_ready` or `log_out`.
        state: ForcedState,
        /// For `not_ready`: the reason code (`supervisor` when absent).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Supervisor: move a waiting contact to another queue of the tenant.
    MoveContact {
        /// The waiting contact.
        contact: ContactId,
        /// The target queue.
        queue: QueueId,
    },
    /// Keep-alive; answered with `pong`.
    Ping {},
}

/// A state a supervisor can put an agent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForcedState {
    /// Taking contacts.
    Ready,
    /// Not taking contacts.
    NotReady,
    /// Logged out (refused while the agent holds contacts).
    LogOut,
}

/// What a customer's chat page sends (socket `/desk/ws/chat`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChatRequest {
    /// Start a chat at one of the tenant's entry points.
    Start {
        /// The tenant.
        tenant: TenantId,
        /// The entry point; the tenant's first when absent.
        #[serde(default)]
        entry: Option<String>,
    },
    /// Resume a chat after a reconnect.
    Resume {
        /// The chat token from `chat`.
        token: String,
    },
    /// A message from the customer.
    Message {
        /// The text.
        text: String,
    },
    /// The customer closes the chat.
    Leave {},
    /// Keep-alive; answered with `pong`.
    Ping {},
}

/// A client frame's correlation id, echoed as `ref`.
pub type Ref = Option<Value>;

/// A frame that could not be taken: what to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The frame's `id`, when it had a readable one.
    pub reference: Ref,
    /// The error code.
    pub code: ErrorCode,
    /// What was wrong and what to do.
    pub message: String,
}

/// Parses a client frame: its envelope (`v`, `id`) and its body.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<(Ref, T), Rejected> {
    let reject = |reference: Ref, code, message: String| Rejected {
        reference,
        code,
        message,
    };
    if text.len() > MAX_FRAME_BYTES {
        return Err(reject(
            None,
            ErrorCode::BadMessage,
            format!(
                "frame of {} bytes is over the {MAX_FRAME_BYTES}-byte limit",
                text.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        reject(
            None,
            ErrorCode::BadMessage,
            format!("not JSON ({e}); send one JSON object per frame"),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(reject(
            None,
            ErrorCode::BadMessage,
            "a frame must be a JSON object with a \"type\"".into(),
        ));
    };
    let reference = match map.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => {
            if id.as_str().is_some_and(|s| s.len() > 64) {
                return Err(reject(
                    None,
                    ErrorCode::BadMessage,
                    "\"id\" is over 64 characters".into(),
                ));
            }
            Some(id)
        }
        Some(other) => {
            return Err(reject(
                None,
                ErrorCode::BadMessage,
                format!("\"id\" must be a string or a number, not {other}"),
            ));
        }
    };
    match map.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err(reject(
                reference,
                ErrorCode::UnsupportedVersion,
                format!(
                    "schema version {other} is not supported; this server speaks \"v\": {VERSION}"
                ),
            ));
        }
        None => {
            return Err(reject(
                reference,
                ErrorCode::UnsupportedVersion,
                format!("\"v\" is missing; add \"v\": {VERSION}"),
            ));
        }
    }
    match serde_json::from_value::<T>(Value::Object(map)) {
        Ok(body) => Ok((reference, body)),
        Err(e) => Err(reject(reference, ErrorCode::BadMessage, e.to_string())),
    }
}

/// Checks a text's length and content (no empty messages).
pub fn check_text(field: &str, text: &str, max: usize, allow_empty: bool) -> Result<(), String> {
    let n = text.chars().count();
    if n > max {
        return Err(format!("{field} has {n} characters; the limit is {max}"));
    }
    if !allow_empty && text.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    Ok(())
}

/// What an error frame says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame does not match the schema.
    BadMessage,
    /// The frame's `v` is missing or not this server's.
    UnsupportedVersion,
    /// Log in (or resume) first.
    NotLoggedIn,
    /// Wrong tenant, user or password.
    BadCredentials,
    /// The session token expired; log in again.
    SessionExpired,
    /// The session token is unknown (logged out, or never issued); log in again.
    UnknownSession,
    /// The role may not do this (an agent's command from a supervisor, say).
    Forbidden,
    /// No such contact, agent or queue in this tenant (another tenant's answer the same).
    NotFound,
    /// The request is valid but not now (wrong state); the message says why.
    Refused,
    /// The ACD or the desk is busy or restarting; try again.
    Unavailable,
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// The customer.
    Customer,
    /// The intake (IVR / bot).
    Bot,
    /// An agent.
    Agent,
    /// The desk itself (joins, transfers, ends).
    System,
}

/// One message of a contact's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatLine {
    /// Who wrote it.
    pub from: Author,
    /// The writer's display name, when an agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The text.
    pub text: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// An agent's state as its desk shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentState {
    /// `logged_out`, `ready`, `reserved`, `on_contact`, `wrap_up` or `not_ready`.
    pub state: &'static str,
    /// The not-ready reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the agent entered this state, ms since the epoch (time in state).
    pub since_ms: u64,
    /// The ringing offer.
    pub offer: Option<OfferView>,
    /// Contacts in conversation or waiting for a disposition.
    pub contacts: Vec<ContactView>,
    /// The agent's own figures for the day.
    pub figures: Figures,
}

/// An offer as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferView {
    /// The contact.
    pub contact: ContactId,
    /// Its channel.
    pub channel: hotline_core::channel::Channel,
    /// The queue it waited in.
    pub queue: QueueId,
    /// How long it had waited when offered, ms.
    pub waited_ms: u64,
    /// When the offer rings out, ms since the epoch (the countdown).
    pub rings_out_at_ms: u64,
    /// What the intake collected.
    pub attributes: BTreeMap<String, String>,
    /// The conversation so far (the intake's, and earlier agents' after a transfer).
    pub history: Vec<ChatLine>,
}

/// A contact the agent holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactView {
    /// The contact.
    pub contact: ContactId,
    /// Its channel.
    pub channel: hotline_core::channel::Channel,
    /// The queue it came from.
    pub queue: QueueId,
    /// `connected` or `wrap_up`.
    pub phase: &'static str,
    /// Since when in that phase, ms since the epoch.
    pub since_ms: u64,
    /// Whether the customer has left.
    pub customer_left: bool,
    /// What the intake collected.
    pub attributes: BTreeMap<String, String>,
    /// The conversation.
    pub history: Vec<ChatLine>,
}

/// An agent's own figures for the day (UTC), counted by the desk from what the agent
/// did at this desk (see the README).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Offers received.
    pub offered: u32,
    /// Offers accepted.
    pub answered: u32,
    /// Offers rejected.
    pub rejected: u32,
    /// Offers that rang out or were withdrawn.
    pub missed: u32,
    /// Contacts transferred to a queue.
    pub transferred: u32,
    /// Contacts wrapped up with a disposition.
    pub handled: u32,
    /// Average handle time (conversation + wrap-up) of handled contacts, seconds.
    pub aht_secs: f64,
    /// Time ready today, seconds.
    pub ready_secs: f64,
    /// Time not ready today, seconds.
    pub not_ready_secs: f64,
}

/// A queue as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueView {
    /// The queue.
    pub queue: QueueId,
    /// Its display name.
    pub name: String,
    /// Its channel.
    pub channel: hotline_core::channel::Channel,
    /// Contacts waiting.
    pub waiting: u32,
    /// Contacts ringing.
    pub offered: u32,
    /// The longest wait now, seconds.
    pub oldest_wait_secs: f64,
    /// Eligible agents logged in.
    pub agents_logged_in: u32,
    /// Of those, free.
    pub agents_available: u32,
    /// Answered since the site started.
    pub answered: u64,
    /// Abandoned since the site started.
    pub abandoned: u64,
}

/// An agent as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    /// The agent.
    pub agent: AgentId,
    /// Display name.
    pub name: String,
    /// State name (as in [`AgentState::state`]).
    pub state: &'static str,
    /// Not-ready reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the desk saw it enter that state, ms since the epoch (agents logged in
    /// elsewhere: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Contacts of this tenant it holds.
    pub contacts: Vec<ContactId>,
}

/// A waiting chat contact, for the supervisor's move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitingView {
    /// The contact.
    pub contact: ContactId,
    /// Its queue.
    pub queue: QueueId,
    /// Since when it waits there, ms since the epoch.
    pub since_ms: u64,
    /// What the intake collected.
    pub attributes: BTreeMap<String, String>,
}

/// A queue the agent may transfer to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueChoice {
    /// The queue.
    pub queue: QueueId,
    /// Display name.
    pub name: String,
    /// Its channel.
    pub channel: hotline_core::channel::Channel,
}

/// The chat as the customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatView {
    /// The chat token (to resume).
    pub token: String,
    /// The contact.
    pub contact: ContactId,
    /// `intake`, `queued`, `connected`, `ended`.
    pub state: &'static str,
    /// The agent's display name, when connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The conversation.
    pub history: Vec<ChatLine>,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Logged in or resumed.
    Welcome {
        /// The session token (keep it to resume).
        token: String,
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: AgentId,
        /// Display name.
        name: String,
        /// `agent` or `supervisor`.
        role: &'static str,
        /// The tenant's disposition codes.
        dispositions: Vec<String>,
        /// The tenant's not-ready reasons.
        not_ready_reasons: Vec<String>,
        /// Queues of the tenant (transfer targets, move targets).
        queues: Vec<QueueChoice>,
    },
    /// The agent's whole state (sent on every change).
    Agent(AgentState),
    /// One new chat message on a contact.
    Message {
        /// The contact.
        contact: ContactId,
        /// The message.
        #[serde(flatten)]
        line: ChatLine,
    },
    /// The supervisor's view of the tenant (about once a second).
    Supervisor {
        /// Queues.
        queues: Vec<QueueView>,
        /// Agents serving the tenant.
        agents: Vec<AgentRow>,
        /// Waiting chat contacts.
        waiting: Vec<WaitingView>,
    },
    /// The chat's whole state, to the customer.
    Chat(ChatView),
    /// The request named by `ref` was done.
    Ack {
        /// The request's `id`.
        #[serde(rename = "ref")]
        reference: Ref,
    },
    /// The request named by `ref` (if any) was not done; nothing changed.
    Error {
        /// The request's `id`.
        #[serde(rename = "ref")]
        reference: Ref,
        /// What kind of error.
        code: ErrorCode,
        /// What was wrong and what to do.
        message: String,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's `id`.
        #[serde(rename = "ref")]
        reference: Ref,
    },
}

impl ServerFrame {
    /// The frame as JSON text, with `"v"`.
    pub fn to_text(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({"type": "error", "code": "unavailable", "message": format!("cannot encode a frame: {e}")})
        });
        if let Value::Object(map) = &mut value {
            map.insert("v".into(), Value::from(VERSION));
        }
        value.to_string()
    }

    /// An error frame.
    pub fn error(reference: Ref, code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error {
            reference,
            code,
            message: message.into(),
        }
    }
}

impl From<Rejected> for ServerFrame {
    fn from(r: Rejected) -> Self {
        ServerFrame::error(r.reference, r.code, r.message)
    }
}

#[cfg(test)]
mod tests;
