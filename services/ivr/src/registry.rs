//! [`FlowRegistry`]: a tenant's flows, every version kept, and which one new contacts
//! enter.
//!
//! `publish` parses and checks first: a file with any error changes nothing, so a bad
//! edit never replaces a working flow. Versions count 1, 2, 3… per flow name, as the
//! routing state numbers them (`PublishFlow`), and older versions stay readable for
//! rollback and for sessions still running on them.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotline_core::ids::TenantId;

use crate::catalog::Catalog;
use crate::check;
use crate::diag::{Diagnostic, FlowErrors, Pos};
use crate::flow::Flow;

/// One published version of a flow: the text as written and the checked flow. Only
/// [`PublishedFlow::check`] and the registry make one, so a session never runs a flow
/// that failed its checks.
#[derive(Debug, Clone)]
pub struct PublishedFlow {
    version: u32,
    flow: Arc<Flow>,
    text: Arc<str>,
}

impl PublishedFlow {
    /// Parses and checks `text` as version `version`, e.g. a version read back from the
    /// routing state. `file` names it in errors.
    pub fn check(
        text: &str,
        file: &str,
        catalog: &Catalog,
        version: u32,
    ) -> Result<Self, FlowErrors> {
        let flow = check::load(text, file, catalog)?;
        Ok(PublishedFlow {
            version,
            flow: Arc::new(flow),
            text: Arc::from(text),
        })
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.flow.name
    }

    /// The version, from 1.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The checked flow.
    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// The document as published (what the routing state stores).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Why a registry request was refused (publishing reports [`FlowErrors`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No flow of that name.
    #[error("tenant {tenant} has no flow {name:?}; publish it first")]
    UnknownFlow {
        /// The tenant.
        tenant: TenantId,
        /// The name asked for.
        name: String,
    },
    /// The flow has no such version.
    #[error("flow {name:?} has no version {version}; its versions are 1 to {latest}")]
    UnknownVersion {
        /// The flow.
        name: String,
        /// The version asked for.
        version: u32,
        /// Its latest version.
        latest: u32,
    },
}

/// Every version of one flow.
#[derive(Debug, Clone)]
struct History {
    versions: Vec<Arc<PublishedFlow>>,
    current: u32,
}

/// One tenant's flows.
#[derive(Debug, Clone)]
pub struct FlowRegistry {
    tenant: TenantId,
    catalog: Catalog,
    flows: BTreeMap<String, History>,
}

impl FlowRegistry {
    /// An empty registry for `tenant`, checking flows against `catalog`.
    pub fn new(tenant: TenantId, catalog: Catalog) -> Self {
        FlowRegistry {
            tenant,
            catalog,
            flows: BTreeMap::new(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Replaces the catalog later publishes are checked against (published versions are
    /// kept as they are).
    pub fn set_catalog(&mut self, catalog: Catalog) {
        self.catalog = catalog;
    }

    /// Checks `text` and, when it is clean, stores it as the flow's next version and
    /// makes it current. On any error nothing changes and every problem is returned.
    /// `file` names the text in errors.
    pub fn publish(&mut self, text: &str, file: &str) -> Result<Arc<PublishedFlow>, FlowErrors> {
        let flow = check::load(text, file, &self.catalog)?;
        if flow.tenant != self.tenant {
            return Err(FlowErrors::new(
                file,
                vec![Diagnostic::new(
                    flow.tenant_pos,
                    format!(
                        "this flow is for tenant {}, but it is being published for tenant {}; fix `tenant:` or publish it as {}",
                        flow.tenant, self.tenant, flow.tenant
                    ),
                )],
            ));
        }
        let history = self
            .flows
            .entry(flow.name.clone())
            .or_insert_with(|| History {
                versions: Vec::new(),
                current: 0,
            });
        let Ok(version) = u32::try_from(history.versions.len() + 1) else {
            return Err(FlowErrors::new(
                file,
                vec![Diagnostic::new(
                    Pos { line: 1, col: 1 },
                    "this flow has too many versions",
                )],
            ));
        };
        let published = Arc::new(PublishedFlow {
            version,
            flow: Arc::new(flow),
            text: Arc::from(text),
        });
        history.versions.push(published.clone());
        history.current = version;
        Ok(published)
    }

    /// The version of `name` new contacts enter.
    pub fn current(&self, name: &str) -> Option<Arc<PublishedFlow>> {
        let h = self.flows.get(name)?;
        h.versions.get(h.current.checked_sub(1)? as usize).cloned()
    }

    /// One version of `name`.
    pub fn version(&self, name: &str, version: u32) -> Option<Arc<PublishedFlow>> {
        let i = version.checked_sub(1)? as usize;
        self.flows.get(name)?.versions.get(i).cloned()
    }

    /// The latest version number of `name`.
    pub fn latest(&self, name: &str) -> Option<u32> {
        self.flows.get(name).map(|h| h.versions.len() as u32)
    }

    /// Points `name` at one of its versions (rollout of a staged version, or rollback).
    pub fn set_current(&mut self, name: &str, version: u32) -> Result<(), RegistryError> {
        let Some(h) = self.flows.get_mut(name) else {
            return Err(RegistryError::UnknownFlow {
                tenant: self.tenant.clone(),
                name: name.to_owned(),
            });
        };
        let latest = h.versions.len() as u32;
        if version == 0 || version > latest {
            return Err(RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
                latest,
            });
        }
        h.current = version;
        Ok(())
    }

    /// The names of the tenant's flows.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.flows.keys().map(String::as_str)
    }
}
