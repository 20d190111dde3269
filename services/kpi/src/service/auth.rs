//! Who is asking, and which tenant they may read.
//!
//! Every request carries an API key — `Authorization: Bearer KEY`, or `?key=` on the
//! wallboard's stream because a browser's `EventSource` cannot send headers. The key
//! maps to a [`Caller`]: one tenant, or every tenant for a provider key. A tenant key
//! that names another tenant gets the same 404 as a tenant that does not exist, so
//! nobody learns which tenants are hosted here (DESIGN.md: "another tenant's object
//! answers 404").

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use hotline_core::ids::TenantId;

use super::config::{ApiKeyConfig, Role};
use super::http::ApiError;

/// What a key may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One tenant.
    Tenant(TenantId),
    /// Every tenant (an outsourcing provider, or its SREs).
    Provider,
}

/// The holder of a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// What they may read.
    pub scope: Scope,
    /// Who they are.
    pub role: Role,
}

impl Caller {
    /// The tenant a request is about: the caller's own, or for a provider the one named
    /// with `?tenant=`. A tenant key naming another tenant is a 404; a provider key
    /// naming none is a 400 that says to add `?tenant=`.
    pub fn tenant(&self, asked: Option<&str>) -> Result<TenantId, ApiError> {
        let asked = match asked.filter(|t| !t.is_empty()) {
            Some(t) => {
                Some(TenantId::new(t).map_err(|e| ApiError::bad_param("tenant", t, e.reason))?)
            }
            None => None,
        };
        match (&self.scope, asked) {
            (Scope::Tenant(own), None) => Ok(own.clone()),
            (Scope::Tenant(own), Some(t)) if &t == own => Ok(t),
            (Scope::Tenant(_), Some(t)) => Err(ApiError::unknown_tenant(t.as_str())),
            (Scope::Provider, Some(t)) => Ok(t),
            (Scope::Provider, None) => Err(ApiError::BadRequest(
                "a provider key reads many tenants: name one with ?tenant=…".to_owned(),
            )),
        }
    }

    /// Whether the key is a provider key (sees the shared service's own counters).
    pub fn may_read_everything(&self) -> bool {
        self.scope == Scope::Provider
    }

    /// Whether the caller may read `tenant` (for filtering lists, such as `/metrics`).
    pub fn may_read(&self, tenant: &str) -> bool {
        match &self.scope {
            Scope::Tenant(own) => own.as_str() == tenant,
            Scope::Provider => true,
        }
    }
}

// === impl Keys ===

/// Every configured key, looked up per request.
#[derive(Debug, Default)]
pub struct Keys {
    by_key: HashMap<String, Caller>,
}

impl Keys {
    /// The keys of a validated config; an entry that does not validate is left out (and
    /// [`KpiConfig::validate`](super::KpiConfig::validate) refuses such configs anyway).
    pub fn new(keys: &[ApiKeyConfig]) -> Self {
        let by_key = keys
            .iter()
            .filter_map(|k| {
                let scope = match (&k.tenant, k.provider) {
                    (None, true) => Scope::Provider,
                    (Some(t), false) => Scope::Tenant(TenantId::new(t).ok()?),
                    _ => return None,
                };
                Some((
                    k.key.clone(),
                    Caller {
                        scope,
                        role: k.role,
                    },
                ))
            })
            .collect();
        Self { by_key }
    }

    /// The caller of a request: the bearer token, else (where `query_key` is allowed)
    /// the `?key=` parameter. No key or an unknown one is a 401 that says what to send.
    pub fn caller(&self, headers: &HeaderMap, query_key: Option<&str>) -> Result<Caller, ApiError> {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(key) = bearer.or(query_key).filter(|k| !k.is_empty()) else {
            return Err(ApiError::Unauthorized(
                "no API key: send `Authorization: Bearer KEY` (the wallboard and its stream \
                 also take ?key=KEY)"
                    .to_owned(),
            ));
        };
        self.by_key.get(key).cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "unknown API key: send a key from the [[api_key]] entries of the KPI config \
                 as `Authorization: Bearer KEY`"
                    .to_owned(),
            )
        })
    }
}
