//! [`IvrIntake`]: the chat's IVR answers first — an [`Intake`] that runs the tenant's
//! IVR flow for the chat entries that name one (`flow = "main"` in `[[tenant.chat]]`)
//! and the built-in [`ScriptedIntake`] for the others.
//!
//! [`Flows`] holds the checked flows of every tenant; [`Flows::from_dir`] reads and
//! checks a directory of flow files (what `hotline up` points at
//! `services/hotline/demo/flows/`), refusing the whole directory with every
//! `FILE:LINE:COL` message when any file is wrong.
//!
//! For a chat, the intake starts an IVR [`Session`] on channel chat (same contact id
//! and trace as the chat, so its `ivr_entered`, `ivr_node` and `abandoned` events land
//! in the contact's journey through the session's sink), shows each prompt's text as a
//! bot message, hands each customer message to the session as [`Input::Text`] and a
//! customer who left as [`Input::HangUp`], and maps the flow's [`Outcome`] to an
//! [`IntakeOutcome`] ([`IvrIntake::outcome`], documented there and in the README).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use hotline_core::channel::Channel;
use hotline_core::ids::{QueueId, SiteId, TenantId};
use hotline_ivr::{
    Catalog, ContactInfo, Finished, FlowErrors, Input, Outcome, Output, PublishedFlow, Session,
    SessionOptions,
};

use crate::config::{ChatEntry, ConfigError, DeskConfig};
use crate::intake::{Intake, IntakeChat, IntakeOutcome, ScriptedIntake};

/// The reason an intake gives for a customer who left ([`ScriptedIntake`]'s too).
pub const CUSTOMER_LEFT: &str = "customer_left";

/// The attribute that tells the agent what the customer asked the IVR for, when the
/// flow ended in a request a chat cannot carry out by itself (`callback`, `voicemail`).
pub const REQUEST_ATTRIBUTE: &str = "ivr_request";

/// The attribute that keeps the queue the flow picked when it does not take chats and
/// the chat was queued in its entry's queue instead.
pub const FLOW_QUEUE_ATTRIBUTE: &str = "ivr_queue";

/// What the customer reads when the IVR cannot run their chat.
const SORRY: &str = "Sorry, we cannot take your chat right now. Please try again later.";

// === Flows ===

/// Every tenant's checked flows by name, and the catalog they were checked against
/// (which also says which queues take chats).
#[derive(Debug, Clone, Default)]
pub struct Flows {
    catalog: Catalog,
    tenants: BTreeMap<TenantId, BTreeMap<String, Arc<PublishedFlow>>>,
}

/// Why a flows directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    /// The directory or a file in it could not be read.
    #[error("cannot read {path}: {message}; check the flows directory")]
    Read {
        /// The directory or file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Files with errors; every problem of every file, one `FILE:LINE:COL: message` a
    /// line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FlowErrors>),
    /// Two files define the same flow of a tenant.
    #[error(
        "{second}: flow {name:?} of tenant {tenant} is already defined in {first}; give one of them another `flow:` name"
    )]
    Duplicate {
        /// The tenant.
        tenant: TenantId,
        /// The flow's name.
        name: String,
        /// The file read first.
        first: String,
        /// The file that defines it again.
        second: String,
    },
}

impl Flows {
    /// No flows yet; flows added are checked against `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Flows {
            catalog,
            tenants: BTreeMap::new(),
        }
    }

    /// Reads every `*.yaml` (and `*.yml`) file of `dir`, in name order, and checks each
    /// against `catalog` (the site's queues and skills: `Catalog::from_site`). Any error
    /// refuses the whole directory, reporting every file's problems.
    pub fn from_dir(dir: &Path, catalog: Catalog) -> Result<Flows, FlowsError> {
        let read_err = |path: &Path, e: std::io::Error| FlowsError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
            let path = entry.map_err(|e| read_err(dir, e))?.path();
            let is_flow = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if is_flow && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut flows = Flows::new(catalog);
        let mut origin: BTreeMap<(TenantId, String), String> = BTreeMap::new();
        let mut invalid = Vec::new();
        for path in files {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            let flow = match PublishedFlow::check(&text, &file, &flows.catalog, 1) {
                Ok(flow) => Arc::new(flow),
                Err(errors) => {
                    invalid.push(errors);
                    continue;
                }
            };
            let key = (flow.flow().tenant.clone(), flow.name().to_owned());
            if let Some(first) = origin.get(&key) {
                return Err(FlowsError::Duplicate {
                    tenant: key.0,
                    name: key.1,
                    first: first.clone(),
                    second: file,
                });
            }
            origin.insert(key, file);
            flows.insert(flow);
        }
        if !invalid.is_empty() {
            return Err(FlowsError::Invalid(invalid));
        }
        Ok(flows)
    }

    /// Adds a checked flow (from a [`hotline_ivr::FlowRegistry`], say), replacing the
    /// tenant's flow of the same name.
    pub fn insert(&mut self, flow: Arc<PublishedFlow>) {
        self.tenants
            .entry(flow.flow().tenant.clone())
            .or_default()
            .insert(flow.name().to_owned(), flow);
    }

    /// A tenant's flow by name.
    pub fn get(&self, tenant: &TenantId, name: &str) -> Option<&Arc<PublishedFlow>> {
        self.tenants.get(tenant)?.get(name)
    }

    /// The names of a tenant's flows.
    pub fn names(&self, tenant: &TenantId) -> Vec<String> {
        self.tenants
            .get(tenant)
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The catalog the flows were checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether `queue` of `tenant` takes chats (as far as the catalog knows).
    fn takes_chat(&self, tenant: &TenantId, queue: &QueueId) -> bool {
        self.catalog
            .tenant(tenant)
            .and_then(|t| t.queues.get(queue))
            .is_some_and(|c| *c == Channel::Chat)
    }
}

// === IvrIntake ===

/// The intake that runs IVR flows for chat. See the module documentation.
pub struct IvrIntake {
    /// The chat entries: which name a flow, and each one's queue.
    config: Arc<DeskConfig>,
    /// The flows the entries name.
    flows: Flows,
    /// For the entries that name no flow.
    scripted: ScriptedIntake,
    /// The site the sessions run at (on their events).
    site: SiteId,
    /// The site's event sink, clock and id source, for every session.
    options: SessionOptions,
}

impl IvrIntake {
    /// An intake for the desk configuration's chat entries, running `flows` at `site`
    /// with the site's sink, clock and ids in `options`. Refused, naming the desk file,
    /// the entry and the field, when an entry names a flow `flows` does not have.
    pub fn new(
        config: Arc<DeskConfig>,
        flows: Flows,
        site: SiteId,
        options: SessionOptions,
    ) -> Result<IvrIntake, ConfigError> {
        config.check_flows(|tenant| flows.names(tenant))?;
        Ok(IvrIntake {
            scripted: ScriptedIntake::new(config.clone()),
            config,
            flows,
            site,
            options,
        })
    }

    fn entry(&self, chat: &IntakeChat) -> Option<&ChatEntry> {
        self.config
            .tenant(&chat.tenant)?
            .chat
            .iter()
            .find(|c| c.entry == chat.entry)
    }

    /// What the desk does with a chat whose flow finished:
    ///
    /// - `Queue` → that queue, with the flow's priority and the collected attributes.
    /// - `Callback` → queued (the customer is already here, so an agent answers in the
    ///   chat) with `ivr_request = "callback"` and `callback_number` when the flow had
    ///   one; `Voicemail` → queued with `ivr_request = "voicemail"`, or ended
    ///   (`voicemail_unavailable_on_chat`) when the flow names no queue.
    /// - A queue that does not take chats is replaced by the entry's `queue`, the
    ///   flow's pick kept as `ivr_queue` (the ACD would refuse a chat there).
    /// - `Transfer` → ended (`transfer_unsupported_on_chat:TARGET`), telling the
    ///   customer; `End` → ended with the flow's reason; `Abandoned` →
    ///   [`CUSTOMER_LEFT`].
    pub fn outcome(&self, chat: &IntakeChat, entry_queue: &QueueId, f: Finished) -> IntakeOutcome {
        let mut attributes = f.attributes;
        let (queue, priority) = match f.outcome {
            Outcome::Queue {
                queue, priority, ..
            } => (queue, priority),
            Outcome::Callback { queue, number } => {
                attributes.insert(REQUEST_ATTRIBUTE.into(), "callback".into());
                if !number.is_empty() {
                    attributes.insert("callback_number".into(), number);
                }
                chat.say("An agent will take your request here, in this chat.");
                (queue, None)
            }
            Outcome::Voicemail {
                queue: Some(queue), ..
            } => {
                attributes.insert(REQUEST_ATTRIBUTE.into(), "voicemail".into());
                chat.say("An agent will take your message here, in this chat.");
                (queue, None)
            }
            Outcome::Voicemail { queue: None, .. } => {
                chat.say("Sorry, we cannot take a message on chat. Please try again later.");
                return IntakeOutcome::End {
                    reason: "voicemail_unavailable_on_chat".into(),
                };
            }
            Outcome::Transfer { to } => {
                chat.say(format!(
                    "Sorry, a chat cannot be transferred to {to} yet. Please contact us there directly."
                ));
                return IntakeOutcome::End {
                    reason: format!("transfer_unsupported_on_chat:{to}"),
                };
            }
            Outcome::End { reason } => return IntakeOutcome::End { reason },
            Outcome::Abandoned { .. } => {
                return IntakeOutcome::End {
                    reason: CUSTOMER_LEFT.into(),
                };
            }
        };
        let queue = if self.flows.takes_chat(&chat.tenant, &queue) {
            queue
        } else {
            tracing::warn!(
                contact = %chat.contact, flow = %f.flow, node = %f.node, queue = %queue,
                fallback = %entry_queue, "the flow queued a chat in a queue that does not take chats"
            );
            attributes.insert(FLOW_QUEUE_ATTRIBUTE.into(), queue.to_string());
            entry_queue.clone()
        };
        IntakeOutcome::Queue {
            queue,
            priority,
            attributes,
        }
    }
}

#[async_trait]
impl Intake for IvrIntake {
    async fn run(&self, mut chat: IntakeChat) -> IntakeOutcome {
        let Some(entry) = self.entry(&chat) else {
            return self.scripted.run(chat).await;
        };
        let Some(name) = &entry.flow else {
            return self.scripted.run(chat).await;
        };
        let entry_queue = entry.queue.clone();
        let Some(flow) = self.flows.get(&chat.tenant, name).cloned() else {
            // `new` checked the configuration, so only a changed one gets here.
            tracing::error!(tenant = %chat.tenant, flow = %name, "chat entry names a flow that is not loaded");
            chat.say(SORRY);
            return IntakeOutcome::End {
                reason: "ivr_unavailable".into(),
            };
        };
        let contact = ContactInfo {
            contact: chat.contact,
            tenant: chat.tenant.clone(),
            site: self.site.clone(),
            trace: chat.trace,
            channel: Channel::Chat,
            customer: None,
            attributes: BTreeMap::new(),
        };
        let session = match Session::start(flow, contact, self.options.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(contact = %chat.contact, error = %e, "cannot start the chat's IVR session");
                chat.say(SORRY);
                return IntakeOutcome::End {
                    reason: "ivr_unavailable".into(),
                };
            }
        };
        match relay(&mut chat, session).await {
            Some(finished) => self.outcome(&chat, &entry_queue, finished),
            None => {
                chat.say(SORRY);
                IntakeOutcome::End {
                    reason: "ivr_stopped".into(),
                }
            }
        }
    }
}

/// Carries the conversation between the customer and the session until the flow's
/// outcome (`None` if the session stopped without one).
async fn relay(chat: &mut IntakeChat, session: hotline_ivr::SessionHandle) -> Option<Finished> {
    let (input, mut outputs) = session.into_parts();
    let mut here = true;
    loop {
        tokio::select! {
            biased;
            out = outputs.recv() => match out? {
                Output::Prompt(p) => chat.say(p.text),
                Output::Finished(f) => return Some(f),
            },
            heard = chat.hear(), if here => {
                // A session that has ended refuses input; its outcome is on its way.
                let _ = match heard {
                    Some(text) => input.send(Input::Text(text)),
                    None => {
                        here = false;
                        input.send(Input::HangUp)
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;
