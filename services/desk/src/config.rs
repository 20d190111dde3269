//! The desk's configuration: who may log in (per tenant, passwords hashed), each
//! tenant's disposition codes and not-ready reasons, and its chat entry points.
//!
//! Read from TOML ([`DeskConfig::from_toml`]) and validated whole: a bad file is
//! refused with a [`ConfigError`] naming the file, the item and the field.
//!
//! ```toml
//! session_ttl_secs = 43200      # a session token lives this long after its last use
//! customer_grace_secs = 30      # a chat customer whose page dropped may come back this long
//! history_limit = 200           # messages kept per contact (oldest dropped first)
//! max_chats = 1000              # open chats at once; more are refused ("try again later")
//!
//! [[tenant]]
//! id = "acme"
//! dispositions = ["resolved", "follow_up", "escalated"]
//! not_ready_reasons = ["break", "lunch", "training"]
//!
//! [[tenant.chat]]               # a chat entry point: /desk/chat?tenant=acme&entry=web
//! entry = "web"
//! queue = "webchat"             # where the built-in intake queues the chat
//! priority = 0                  # optional; the queue's own otherwise
//! greeting = "Hello! A few questions first."
//! # flow = "main"              # optional: run this IVR flow of the tenant instead of the
//! #                             # questions (needs the IVR intake, `crate::ivr_intake`)
//! questions = [
//!   { key = "name", prompt = "What is your name?" },
//!   { key = "topic", prompt = "What can we help you with?" },
//! ]
//!
//! [[user]]
//! tenant = "acme"
//! id = "alice"                  # for agents: the ACD agent id
//! name = "Alice"                # shown to customers and supervisors
//! role = "agent"                # or "supervisor"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # `hotline desk hash-password`
//! ```

use std::collections::HashSet;
use std::path::Path;

use hotline_core::ids::{AgentId, QueueId, TenantId};
use serde::Deserialize;

/// The largest number of messages kept per contact that a configuration may ask for.
pub const MAX_HISTORY_LIMIT: usize = 10_000;

/// Why a configuration was refused: the file, the item and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file (or a name standing for it, for text given directly).
    pub file: String,
    /// What is wrong, naming the item and the field.
    pub message: String,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes contacts at the agent desktop.
    Agent,
    /// Watches queues and agents of the tenant; forces states, moves contacts.
    Supervisor,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
        }
    }
}

/// A question the built-in intake asks a chat customer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The attribute the answer is stored under (shown to the agent).
    pub key: String,
    /// What the bot says.
    pub prompt: String,
}

/// A chat entry point of a tenant: the built-in intake's script and where it queues.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatEntry {
    /// The entry's name, from the widget's `entry` parameter.
    pub entry: String,
    /// The chat queue the intake puts the contact in.
    pub queue: QueueId,
    /// Priority in that queue; the queue's own when absent.
    #[serde(default)]
    pub priority: Option<u8>,
    /// The bot's first words.
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// Questions asked in order; the answers become the contact's attributes.
    #[serde(default)]
    pub questions: Vec<Question>,
    /// The tenant's IVR flow that answers this entry's chats instead of the greeting and
    /// questions (with [`crate::ivr_intake::IvrIntake`], which refuses a flow it has not
    /// loaded). The entry's `queue` then takes the flow's callback and voicemail
    /// requests whose own queue does not take chats.
    #[serde(default)]
    pub flow: Option<String>,
}

fn default_greeting() -> String {
    "Hello! Let us get you to the right person.".to_owned()
}

/// A tenant's desk settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDesk {
    /// The tenant.
    pub id: TenantId,
    /// Codes an agent picks from at wrap-up.
    pub dispositions: Vec<String>,
    /// Reasons an agent picks from when going not ready.
    #[serde(default = "default_reasons")]
    pub not_ready_reasons: Vec<String>,
    /// Chat entry points.
    #[serde(default)]
    pub chat: Vec<ChatEntry>,
}

fn default_reasons() -> Vec<String> {
    ["break", "lunch", "training", "meeting"]
        .map(String::from)
        .to_vec()
}

/// Someone who may log in at the desk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The tenant whose contacts the user sees (and whose credentials these are).
    pub tenant: TenantId,
    /// The login name; for an agent, the ACD agent id.
    pub id: AgentId,
    /// Display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Agent or supervisor.
    pub role: Role,
    /// The password's argon2 hash as a PHC string (`hotline desk hash-password`).
    pub password_hash: String,
}

impl UserConfig {
    /// The name to show.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }
}

/// The desk's whole configuration. See the module documentation for the file format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    /// A session token expires this long after it was last used.
    #[serde(default = "default_ttl")]
    pub session_ttl_secs: u64,
    /// A customer whose chat page lost its connection may reconnect within this long;
    /// after it the customer counts as gone (an abandon if still queued).
    #[serde(default = "default_grace")]
    pub customer_grace_secs: u64,
    /// Messages kept per contact, oldest dropped first.
    #[serde(default = "default_history")]
    pub history_limit: usize,
    /// Open chats at once.
    #[serde(default = "default_max_chats")]
    pub max_chats: usize,
    /// Per tenant settings.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantDesk>,
    /// Who may log in.
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    /// The file it was read from (the name given to [`DeskConfig::from_toml`]), so
    /// checks made after loading — the flows chat entries name — can say where.
    #[serde(skip)]
    pub source: String,
}

fn default_ttl() -> u64 {
    12 * 3600
}
fn default_grace() -> u64 {
    30
}
fn default_history() -> usize {
    200
}
fn default_max_chats() -> usize {
    1000
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            session_ttl_secs: default_ttl(),
            customer_grace_secs: default_grace(),
            history_limit: default_history(),
            max_chats: default_max_chats(),
            tenants: Vec::new(),
            users: Vec::new(),
            source: String::new(),
        }
    }
}

impl DeskConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<DeskConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::from_toml(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<DeskConfig, ConfigError> {
        let mut config: DeskConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.source = file.to_owned();
        config.validate().map_err(|message| ConfigError {
            file: file.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Checks what parsing cannot: every field names what is wrong and where.
    pub fn validate(&self) -> Result<(), String> {
        if self.session_ttl_secs == 0 {
            return Err("session_ttl_secs must be at least 1".into());
        }
        if self.history_limit == 0 || self.history_limit > MAX_HISTORY_LIMIT {
            return Err(format!(
                "history_limit = {} must be between 1 and {MAX_HISTORY_LIMIT}",
                self.history_limit
            ));
        }
        if self.max_chats == 0 {
            return Err("max_chats must be at least 1".into());
        }
        let mut tenants = HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            let at = format!("tenant[{i}] ({})", t.id);
            if !tenants.insert(t.id.clone()) {
                return Err(format!("{at}: tenant {} appears twice", t.id));
            }
            if t.dispositions.is_empty() {
                return Err(format!(
                    "{at}: dispositions is empty; list the codes agents pick at wrap-up"
                ));
            }
            check_codes(&at, "dispositions", &t.dispositions)?;
            check_codes(&at, "not_ready_reasons", &t.not_ready_reasons)?;
            let mut entries = HashSet::new();
            for (j, c) in t.chat.iter().enumerate() {
                let at = format!("{at}.chat[{j}] ({})", c.entry);
                if !is_code(&c.entry) {
                    return Err(format!(
                        "{at}: entry {:?} must be 1–64 of a-z, 0-9, _ and -",
                        c.entry
                    ));
                }
                if !entries.insert(c.entry.as_str()) {
                    return Err(format!("{at}: entry {} appears twice", c.entry));
                }
                if c.flow.as_ref().is_some_and(|f| f.trim().is_empty()) {
                    return Err(format!(
                        "{at}: flow is empty; name one of the tenant's IVR flows or remove the field"
                    ));
                }
                let mut keys = HashSet::new();
                for (k, q) in c.questions.iter().enumerate() {
                    if !is_code(&q.key) || !keys.insert(q.key.as_str()) {
                        return Err(format!(
                            "{at}.questions[{k}]: key {:?} must be unique, 1–64 of a-z, 0-9, _ and -",
                            q.key
                        ));
                    }
                    if q.prompt.trim().is_empty() {
                        return Err(format!("{at}.questions[{k}] ({}): prompt is empty", q.key));
                    }
                }
            }
        }
        let mut users = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("user[{i}] ({}/{})", u.tenant, u.id);
            if !tenants.contains(&u.tenant) {
                return Err(format!(
                    "{at}: tenant {} has no [[tenant]] section; add one with its dispositions",
                    u.tenant
                ));
            }
            if !users.insert((u.tenant.clone(), u.id.clone())) {
                return Err(format!("{at}: this user appears twice"));
            }
            crate::auth::check_hash(&u.password_hash).map_err(|e| {
                format!(
                    "{at}: password_hash is not an argon2 PHC string ({e}); make one with `hotline desk hash-password`"
                )
            })?;
        }
        Ok(())
    }

    /// Checks that every flow a chat entry names is loaded: `loaded(tenant)` lists the
    /// names of the tenant's flows.
    pub fn check_flows(
        &self,
        loaded: impl Fn(&TenantId) -> Vec<String>,
    ) -> Result<(), ConfigError> {
        for (i, t) in self.tenants.iter().enumerate() {
            for (j, c) in t.chat.iter().enumerate() {
                let Some(flow) = &c.flow else { continue };
                let known = loaded(&t.id);
                if known.contains(flow) {
                    continue;
                }
                let known = if known.is_empty() {
                    format!("tenant {} has no flows loaded", t.id)
                } else {
                    format!("the flows of tenant {} are: {}", t.id, known.join(", "))
                };
                return Err(ConfigError {
                    file: self.source_name().to_owned(),
                    message: format!(
                        "tenant[{i}] ({}).chat[{j}] ({}): flow = {flow:?} is not a loaded IVR flow; {known} (a flow's name is its `flow:` line, not its file name)",
                        t.id, c.entry
                    ),
                });
            }
        }
        Ok(())
    }

    /// The file's name for messages.
    pub fn source_name(&self) -> &str {
        if self.source.is_empty() {
            "desk configuration"
        } else {
            &self.source
        }
    }

    /// A tenant's settings.
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantDesk> {
        self.tenants.iter().find(|t| &t.id == id)
    }

    /// A user by tenant and login name.
    pub fn user(&self, tenant: &TenantId, id: &AgentId) -> Option<&UserConfig> {
        self.users
            .iter()
            .find(|u| &u.tenant == tenant && &u.id == id)
    }
}

/// Whether `s` is a code: 1–64 of `a-z`, `0-9`, `_` and `-`.
pub(crate) fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn check_codes(at: &str, field: &str, codes: &[String]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for (i, c) in codes.iter().enumerate() {
        if !is_code(c) {
            return Err(format!(
                "{at}: {field}[{i}] = {c:?} must be 1–64 of a-z, 0-9, _ and -"
            ));
        }
        if !seen.insert(c.as_str()) {
            return Err(format!("{at}: {field}[{i}] = {c:?} appears twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
