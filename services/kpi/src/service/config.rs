//! The KPI role's configuration: where it listens, where it keeps interval rows, which
//! consumer group it reads the event log as, how often it persists, and who may read
//! what (API keys scoped to one tenant, or to every tenant for a provider).
//!
//! The binary reads it from a TOML file (with `HOTLINE_*` overrides) and calls
//! [`KpiConfig::validate`] before anything starts, so a bad value exits 64 with a message
//! that names the field and the value.
//!
//! ```toml
//! listen = "0.0.0.0:8090"
//! store_url = "sqlite://kpi.db?mode=rwc"
//! consumer_group = "hotline-kpi"
//! flush_interval_ms = 500
//!
//! [wallboard]
//! refresh_ms = 500
//! sl_target = 0.8
//!
//! [[api_key]]
//! key = "acme-wallboard-0123456789"
//! tenant = "acme"
//! role = "supervisor"
//!
//! [[api_key]]
//! key = "provider-sre-0123456789ab"
//! provider = true
//! role = "sre"
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;

use hotline_core::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;

/// The shortest API key accepted: long enough that guessing one is hopeless.
pub const MIN_KEY_LEN: usize = 16;

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kpi config: {field} = {value}: {problem}")]
pub struct ConfigError {
    /// The field, as written in the file (`flush_interval_ms`, `api_key[2].tenant`).
    pub field: String,
    /// The value given (API keys themselves are never echoed, only their length).
    pub value: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, value: impl ToString, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}

/// What a key holder is, for the audit trail and the checks that depend on it.
///
/// Every role may read figures; only provider-wide roles may hold a provider key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the platform for many tenants.
    ProviderAdmin,
    /// Administers one tenant.
    TenantAdmin,
    /// Watches queues and agents: the wallboard's usual reader.
    #[default]
    Supervisor,
    /// An agent (sees the same real-time figures as the supervisor).
    Agent,
    /// Site reliability, read-only: dashboards and `/metrics`.
    Sre,
}

impl Role {
    /// Its name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Role::ProviderAdmin => "provider_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Sre => "sre",
        }
    }
}

/// One `[[api_key]]`: a secret and what it may read.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The secret, sent as `Authorization: Bearer KEY` (or `?key=` by the wallboard,
    /// because a browser's `EventSource` cannot send headers).
    pub key: String,
    /// The one tenant this key reads; every other tenant answers 404 to it.
    pub tenant: Option<String>,
    /// Whether the key reads every tenant (an outsourcing provider or its SREs); such a
    /// key names the tenant with `?tenant=`.
    pub provider: bool,
    /// Who holds it.
    pub role: Role,
}

impl std::fmt::Debug for ApiKeyConfig {
    /// Never prints the secret: configs end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("key", &format_args!("<{} characters>", self.key.len()))
            .field("tenant", &self.tenant)
            .field("provider", &self.provider)
            .field("role", &self.role)
            .finish()
    }
}

/// How the wallboard behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WallboardConfig {
    /// The longest the stream goes without sending a snapshot, ms. Snapshots are also
    /// sent as the feed publishes them (after new events, and about five times a
    /// second while the clock moves oldest waits on). At most 500 so a TV never looks
    /// frozen.
    pub refresh_ms: u64,
    /// The service-level target the tiles are colored against (0.8 = 80%): green at or
    /// above it, amber within 10 points below, red under that.
    pub sl_target: f64,
}

impl Default for WallboardConfig {
    fn default() -> Self {
        Self {
            refresh_ms: 500,
            sl_target: 0.8,
        }
    }
}

/// The KPI role's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpiConfig {
    /// Where the HTTP API, `/metrics` and the wallboard listen. Used by the binary to
    /// bind; [`run`](super::run) takes the bound listener so tests can use port 0.
    pub listen: SocketAddr,
    /// Where interval rows and the engine's checkpoint are kept: `sqlite://…` (the
    /// embedded default) or `postgres://…`.
    pub store_url: String,
    /// The event log consumer group; its committed offsets are where a restart resumes
    /// (together with the checkpoint, which records the exact positions it covers).
    pub consumer_group: String,
    /// The engine's definitions and thresholds.
    pub engine: EngineConfig,
    /// How often interval rows and the checkpoint are written, ms (at most 1000): what a
    /// crash can make the service re-read, never lose.
    pub flush_interval_ms: u64,
    /// Who may read what. With none, every request answers 401.
    #[serde(rename = "api_key")]
    pub api_keys: Vec<ApiKeyConfig>,
    /// The wallboard.
    pub wallboard: WallboardConfig,
}

impl Default for KpiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            store_url: "sqlite://hotline-kpi.db?mode=rwc".to_owned(),
            consumer_group: "hotline-kpi".to_owned(),
            engine: EngineConfig::default(),
            flush_interval_ms: 500,
            api_keys: Vec::new(),
            wallboard: WallboardConfig::default(),
        }
    }
}

impl KpiConfig {
    /// Checks every value; the first that cannot work is named with its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let store = self.store_url.as_str();
        if !(store.starts_with("sqlite:")
            || store.starts_with("postgres://")
            || store.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "store_url",
                format!("{store:?}"),
                "must start with sqlite: or postgres://",
            ));
        }
        if self.consumer_group.trim().is_empty() {
            return Err(ConfigError::new(
                "consumer_group",
                format!("{:?}", self.consumer_group),
                "must not be empty",
            ));
        }
        if !(10..=1000).contains(&self.flush_interval_ms) {
            return Err(ConfigError::new(
                "flush_interval_ms",
                self.flush_interval_ms,
                "must be between 10 and 1000 (figures are persisted at least every second)",
            ));
        }
        if !(50..=500).contains(&self.wallboard.refresh_ms) {
            return Err(ConfigError::new(
                "wallboard.refresh_ms",
                self.wallboard.refresh_ms,
                "must be between 50 and 500",
            ));
        }
        if !(self.wallboard.sl_target.is_finite()
            && (0.0..=1.0).contains(&self.wallboard.sl_target))
        {
            return Err(ConfigError::new(
                "wallboard.sl_target",
                self.wallboard.sl_target,
                "is a fraction between 0 and 1 (0.8 means 80%)",
            ));
        }
        let mut seen = HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            let field = |name: &str| format!("api_key[{i}].{name}");
            if k.key.len() < MIN_KEY_LEN {
                return Err(ConfigError::new(
                    field("key"),
                    format!("<{} characters>", k.key.len()),
                    format!("must be at least {MIN_KEY_LEN} characters"),
                ));
            }
            if !seen.insert(k.key.as_str()) {
                return Err(ConfigError::new(
                    field("key"),
                    format!("<{} characters>", k.key.len()),
                    "is the same secret as an earlier api_key; each key must be unique",
                ));
            }
            match (&k.tenant, k.provider) {
                (Some(t), false) => {
                    TenantId::new(t).map_err(|e| {
                        ConfigError::new(field("tenant"), format!("{t:?}"), e.reason)
                    })?;
                    if k.role == Role::ProviderAdmin {
                        return Err(ConfigError::new(
                            field("role"),
                            k.role.name(),
                            "is provider-wide; use it with provider = true, not a tenant",
                        ));
                    }
                }
                (None, true) => {
                    if !matches!(k.role, Role::ProviderAdmin | Role::Sre) {
                        return Err(ConfigError::new(
                            field("role"),
                            k.role.name(),
                            "a provider key reads every tenant; its role must be provider_admin or sre",
                        ));
                    }
                }
                (Some(t), true) => {
                    return Err(ConfigError::new(
                        field("tenant"),
                        format!("{t:?}"),
                        "a key is either for one tenant or provider = true, not both",
                    ));
                }
                (None, false) => {
                    return Err(ConfigError::new(
                        field("tenant"),
                        "(missing)",
                        "name the tenant this key reads, or set provider = true",
                    ));
                }
            }
        }
        Ok(())
    }
}
