//! The chat hub: every open chat by contact id — its tenant, where it is, what the
//! intake collected, its history and the customer's connections — so messages are
//! routed by contact between the customer's page and whichever agent holds it.
//!
//! History is kept in memory, per contact, bounded (`history_limit` messages, the
//! oldest dropped first), and forgotten once the chat has ended, no agent holds it
//! any more and the customer's page is gone. A restarted desk loses open chats'
//! history; the contacts themselves live on in the ACD.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use tokio::sync::mpsc;

use crate::schema::{Author, ChatLine, ChatView, ServerFrame};

/// Where a chat is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatState {
    /// Talking to the intake.
    Intake,
    /// Waiting in a queue (or ringing at an agent).
    Queued {
        /// The queue.
        queue: QueueId,
        /// Since when, there.
        since: Timestamp,
    },
    /// In conversation with an agent.
    Connected {
        /// The agent.
        agent: AgentId,
        /// The agent's display name.
        name: String,
    },
    /// Over (ended by either side, or never queued).
    Ended,
}

impl ChatState {
    /// The name the customer's page gets.
    pub fn name(&self) -> &'static str {
        match self {
            ChatState::Intake => "intake",
            ChatState::Queued { .. } => "queued",
            ChatState::Connected { .. } => "connected",
            ChatState::Ended => "ended",
        }
    }
}

/// A connection's sender and its id (to unregister it).
#[derive(Debug, Clone)]
pub struct Conn {
    /// Unique per connection.
    pub id: u64,
    /// Frames to it.
    pub tx: mpsc::UnboundedSender<ServerFrame>,
}

/// One chat.
#[derive(Debug)]
pub struct Chat {
    /// Its tenant: every look-up by an agent checks it.
    pub tenant: TenantId,
    /// The contact.
    pub contact: ContactId,
    /// The customer's token (to resume).
    pub token: String,
    /// The trace of the contact's journey (given to the ACD at arrival).
    pub trace: TraceId,
    /// Where it is.
    pub state: ChatState,
    /// What the intake collected.
    pub attributes: BTreeMap<String, String>,
    /// The last `limit` messages.
    history: VecDeque<ChatLine>,
    limit: usize,
    /// The customer's open pages.
    pub customer: Vec<Conn>,
    /// While in intake: where the customer's messages go.
    pub to_intake: Option<mpsc::UnboundedSender<String>>,
    /// The customer left (or did not come back within the grace period).
    pub customer_gone: bool,
    /// Bumped at every customer disconnect, so a grace timer knows whether it is stale.
    pub disconnects: u64,
}

impl Chat {
    /// A new chat in intake.
    pub fn new(tenant: TenantId, contact: ContactId, token: String, limit: usize) -> Chat {
        Chat {
            tenant,
            contact,
            token,
            trace: TraceId::random(),
            state: ChatState::Intake,
            attributes: BTreeMap::new(),
            history: VecDeque::new(),
            limit,
            customer: Vec::new(),
            to_intake: None,
            customer_gone: false,
            disconnects: 0,
        }
    }

    /// Appends a message (dropping the oldest beyond the limit) and sends it to the
    /// customer's pages; returns the frame for agents.
    pub fn add(&mut self, line: ChatLine) -> ServerFrame {
        if self.history.len() == self.limit {
            self.history.pop_front();
        }
        self.history.push_back(line.clone());
        let frame = ServerFrame::Message {
            contact: self.contact,
            line,
        };
        self.tell_customer(&frame);
        frame
    }

    /// A system line.
    pub fn note(&mut self, now: Timestamp, text: impl Into<String>) -> ServerFrame {
        self.add(ChatLine {
            from: Author::System,
            name: None,
            text: text.into(),
            at_ms: now.millis(),
        })
    }

    /// The history, oldest first.
    pub fn history(&self) -> Vec<ChatLine> {
        self.history.iter().cloned().collect()
    }

    /// What the customer's page shows.
    pub fn view(&self) -> ChatView {
        ChatView {
            token: self.token.clone(),
            contact: self.contact,
            state: self.state.name(),
            agent: match &self.state {
                ChatState::Connected { name, .. } => Some(name.clone()),
                _ => None,
            },
            history: self.history(),
        }
    }

    /// Sends a frame to every page of the customer, forgetting closed ones.
    pub fn tell_customer(&mut self, frame: &ServerFrame) {
        self.customer.retain(|c| c.tx.send(frame.clone()).is_ok());
    }

    /// Sends the customer the chat's whole state.
    pub fn tell_view(&mut self) {
        let frame = ServerFrame::Chat(self.view());
        self.tell_customer(&frame);
    }
}

/// Every open chat. Look-ups by agents go through [`Hub::of_tenant`], so another
/// tenant's chat is not found.
#[derive(Debug, Default)]
pub struct Hub {
    chats: HashMap<ContactId, Chat>,
    by_token: HashMap<String, ContactId>,
}

impl Hub {
    /// Open chats.
    pub fn len(&self) -> usize {
        self.chats.len()
    }

    /// Whether no chat is open.
    pub fn is_empty(&self) -> bool {
        self.chats.is_empty()
    }

    /// Adds a chat.
    pub fn insert(&mut self, chat: Chat) {
        self.by_token.insert(chat.token.clone(), chat.contact);
        self.chats.insert(chat.contact, chat);
    }

    /// A chat by id, whatever its tenant (for the gateway's own bookkeeping).
    pub fn get_mut(&mut self, contact: &ContactId) -> Option<&mut Chat> {
        self.chats.get_mut(contact)
    }

    /// A chat by id, whatever its tenant.
    pub fn get(&self, contact: &ContactId) -> Option<&Chat> {
        self.chats.get(contact)
    }

    /// A chat of `tenant`: another tenant's is `None`, as a missing one.
    pub fn of_tenant(&mut self, tenant: &TenantId, contact: &ContactId) -> Option<&mut Chat> {
        self.chats.get_mut(contact).filter(|c| &c.tenant == tenant)
    }

    /// A chat by the customer's token.
    pub fn by_token(&mut self, token: &str) -> Option<&mut Chat> {
        let id = self.by_token.get(token)?;
        self.chats.get_mut(id)
    }

    /// Every chat.
    pub fn iter(&self) -> impl Iterator<Item = &Chat> {
        self.chats.values()
    }

    /// Forgets a chat.
    pub fn remove(&mut self, contact: &ContactId) {
        if let Some(c) = self.chats.remove(contact) {
            self.by_token.remove(&c.token);
        }
    }
}
