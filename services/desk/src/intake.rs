//! The IVR seam: what a new chat talks to before it reaches a queue.
//!
//! The chat gateway hands every new chat to an [`Intake`]: the intake reads what the
//! customer types ([`IntakeChat::hear`]), answers with bot prompts
//! ([`IntakeChat::say`]) for as long as it likes — with its own timeouts, if it wants
//! them — and finally resolves to an [`IntakeOutcome`]: queue the contact (queue,
//! priority, attributes) or end the chat. The attributes travel with the contact to
//! the agent's offer ("what the IVR collected").
//!
//! [`ScriptedIntake`] is the built-in one: a greeting, the entry's questions in order
//! (each answer stored under the question's key), then the entry's queue. The IVR's
//! flows answer through [`crate::ivr_intake::IvrIntake`], which implements the same
//! trait.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hotline_core::ids::{ContactId, QueueId, TenantId, TraceId};
use tokio::sync::mpsc;

use crate::config::DeskConfig;

/// How a chat's intake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Put the contact in a queue.
    Queue {
        /// The chat queue (of the chat's tenant).
        queue: QueueId,
        /// Priority there; the queue's own when absent.
        priority: Option<u8>,
        /// What was collected, shown to the agent with the offer.
        attributes: BTreeMap<String, String>,
    },
    /// End the chat without an agent (the flow is done, or the customer left).
    End {
        /// Why, for logs and the customer's page (e.g. `customer_left`, `after_hours`).
        reason: String,
    },
}

/// One chat as its intake sees it: who, and the two directions of the conversation.
pub struct IntakeChat {
    /// The chat's tenant.
    pub tenant: TenantId,
    /// The entry point the widget named.
    pub entry: String,
    /// The contact's id (the same id it will have in the ACD).
    pub contact: ContactId,
    /// The contact's trace, so what the intake records (an IVR's `ivr_node` events)
    /// joins the journey the ACD continues. [`IntakeChat::new`] makes a fresh one; the
    /// gateway sets the chat's own.
    pub trace: TraceId,
    inbox: mpsc::UnboundedReceiver<String>,
    outbox: mpsc::UnboundedSender<String>,
}

impl IntakeChat {
    /// A chat and the gateway's ends of it: the sender for what the customer types,
    /// the receiver for what the bot says.
    pub fn new(
        tenant: TenantId,
        entry: String,
        contact: ContactId,
    ) -> (
        IntakeChat,
        mpsc::UnboundedSender<String>,
        mpsc::UnboundedReceiver<String>,
    ) {
        let (to_intake, inbox) = mpsc::unbounded_channel();
        let (outbox, from_intake) = mpsc::unbounded_channel();
        let chat = IntakeChat {
            tenant,
            entry,
            contact,
            trace: TraceId::random(),
            inbox,
            outbox,
        };
        (chat, to_intake, from_intake)
    }

    /// Says something to the customer (recorded in the contact's history as the bot's).
    pub fn say(&self, text: impl Into<String>) {
        let _ = self.outbox.send(text.into());
    }

    /// The customer's next message; `None` once the customer has left.
    pub async fn hear(&mut self) -> Option<String> {
        self.inbox.recv().await
    }
}

/// What a new chat talks to before it reaches a queue. See the module documentation.
#[async_trait]
pub trait Intake: Send + Sync + 'static {
    /// Runs the chat's intake to its outcome.
    async fn run(&self, chat: IntakeChat) -> IntakeOutcome;
}

/// The built-in intake: the entry's greeting and questions, then its queue.
pub struct ScriptedIntake {
    config: Arc<DeskConfig>,
}

impl ScriptedIntake {
    /// Scripts from the desk configuration's chat entries.
    pub fn new(config: Arc<DeskConfig>) -> Self {
        ScriptedIntake { config }
    }
}

#[async_trait]
impl Intake for ScriptedIntake {
    async fn run(&self, mut chat: IntakeChat) -> IntakeOutcome {
        let Some(entry) = self
            .config
            .tenant(&chat.tenant)
            .and_then(|t| t.chat.iter().find(|c| c.entry == chat.entry))
        else {
            return IntakeOutcome::End {
                reason: "unknown_entry".into(),
            };
        };
        chat.say(entry.greeting.clone());
        let mut attributes = BTreeMap::new();
        for q in &entry.questions {
            chat.say(q.prompt.clone());
            let Some(answer) = chat.hear().await else {
                return IntakeOutcome::End {
                    reason: "customer_left".into(),
                };
            };
            attributes.insert(q.key.clone(), answer.trim().to_owned());
        }
        chat.say("Thank you. Connecting you to an agent…");
        IntakeOutcome::Queue {
            queue: entry.queue.clone(),
            priority: entry.priority,
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[tenant]]
id = "acme"
dispositions = ["resolved"]
[[tenant.chat]]
entry = "web"
queue = "webchat"
priority = 3
greeting = "Hi!"
questions = [{ key = "name", prompt = "Name?" }, { key = "topic", prompt = "Topic?" }]
"#;

    #[tokio::test]
    async fn the_scripted_intake_asks_its_questions_and_queues_with_the_answers() {
        let config = Arc::new(DeskConfig::from_toml(CONFIG, "desk.toml").unwrap());
        let intake = ScriptedIntake::new(config);
        let acme = TenantId::new("acme").unwrap();
        let (chat, to_intake, mut said) = IntakeChat::new(acme, "web".into(), ContactId::random());
        to_intake.send(" Wang Fang ".into()).unwrap();
        to_intake.send("billing".into()).unwrap();
        let outcome = intake.run(chat).await;
        let mut prompts = Vec::new();
        while let Ok(p) = said.try_recv() {
            prompts.push(p);
        }
        assert_eq!(prompts[..3], ["Hi!", "Name?", "Topic?"]);
        assert_eq!(
            outcome,
            IntakeOutcome::Queue {
                queue: QueueId::new("webchat").unwrap(),
                priority: Some(3),
                attributes: [("name", "Wang Fang"), ("topic", "billing")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
            }
        );
    }

    #[tokio::test]
    async fn a_customer_who_leaves_during_intake_ends_it_without_queueing() {
        let config = Arc::new(DeskConfig::from_toml(CONFIG, "desk.toml").unwrap());
        let intake = ScriptedIntake::new(config);
        let acme = TenantId::new("acme").unwrap();
        let (chat, to_intake, _said) = IntakeChat::new(acme, "web".into(), ContactId::random());
        drop(to_intake);
        assert_eq!(
            intake.run(chat).await,
            IntakeOutcome::End {
                reason: "customer_left".into()
            }
        );
    }
}
