//! The interpreter: a flow run for one contact, as a pure state machine.
//!
//! [`Machine`] takes the time and an [`Input`] (text, digits or a hang-up) or a timeout,
//! and answers with [`Effect`]s: nodes entered, prompts to play or show, and at the end
//! exactly one [`Outcome`]. It holds no clock and no timer: it says when it next wants
//! to be woken ([`Machine::deadline`]) and ignores a wake-up that comes early, so the
//! session actor, a simulator and unit tests drive it alike.
//!
//! Channel-agnostic by design: a menu takes a digit (DTMF on voice, or a digit typed on
//! chat) or a keyword (typed or, later, recognised speech); a collect node accumulates
//! digits one key at a time on voice and takes a whole typed answer on chat.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::ids::{QueueId, SkillId};
use hotline_core::time::Timestamp;

use crate::calendar::Opening;
use crate::flow::{Collect, Flow, InputKind, Menu, NodeKind, Prompt};

/// The most nodes entered in a row without waiting for input. The validator refuses
/// flows that loop without input, so this is a guard, not a rule a flow meets.
pub const MAX_HOPS: usize = 256;

/// The longest text answer read; anything longer counts as an invalid answer.
pub const MAX_INPUT_LEN: usize = 4096;

/// What the customer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Typed (chat) or recognised (voice) text.
    Text(String),
    /// Keypad digits (DTMF), one or more keys in order.
    Digits(String),
    /// The customer left (hung up, closed the chat).
    HangUp,
}

/// How a session ended: what the owner of the contact does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Queue the contact.
    Queue {
        /// The queue.
        queue: QueueId,
        /// Its priority there (the queue's own when absent).
        priority: Option<u8>,
        /// Skills it needs besides the queue's.
        skills: Vec<SkillId>,
    },
    /// The customer asked to be called back.
    Callback {
        /// The queue whose agents call back.
        queue: QueueId,
        /// The number to call.
        number: String,
    },
    /// Take a voicemail.
    Voicemail {
        /// The queue whose agents handle it, if named.
        queue: Option<QueueId>,
        /// The longest recording, seconds.
        max_secs: u32,
    },
    /// Transfer the contact.
    Transfer {
        /// Where to.
        to: String,
    },
    /// The flow ended the contact.
    End {
        /// Why (the `end` node's reason, or what went wrong).
        reason: String,
    },
    /// The customer left during the flow.
    Abandoned {
        /// The node they were in.
        node: String,
    },
}

impl Outcome {
    /// The snake_case name of the outcome, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Queue { .. } => "queue",
            Outcome::Callback { .. } => "callback",
            Outcome::Voicemail { .. } => "voicemail",
            Outcome::Transfer { .. } => "transfer",
            Outcome::End { .. } => "end",
            Outcome::Abandoned { .. } => "abandoned",
        }
    }
}

/// What the machine produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A node was entered (the session records an `ivr_node` event).
    Entered(String),
    /// Play or show a prompt.
    Prompt(Prompt),
    /// The flow is over. Produced exactly once per machine.
    Finished(Outcome),
}

/// Waiting at a menu or collect node.
#[derive(Debug, Clone)]
struct Wait {
    /// Answers tried so far (0 while the first is awaited).
    attempt: u32,
    /// Digits entered so far at a collect node.
    buffer: String,
    /// When the wait times out.
    deadline: Timestamp,
}

/// One contact's run through a flow.
#[derive(Debug, Clone)]
pub struct Machine {
    flow: Arc<Flow>,
    attributes: BTreeMap<String, String>,
    /// The node the contact is in.
    at: usize,
    wait: Option<Wait>,
    started: bool,
    finished: bool,
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Machine {
    /// A run of `flow` with these attributes already set (`channel`, `caller`, and
    /// whatever the channel knows, e.g. a chat's pre-chat form).
    pub fn new(flow: Arc<Flow>, attributes: BTreeMap<String, String>) -> Self {
        Machine {
            flow,
            attributes,
            at: 0,
            wait: None,
            started: false,
            finished: false,
        }
    }

    /// Enters the start node. A second call does nothing.
    pub fn start(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        if !self.started {
            self.started = true;
            let start = self.flow.start.node.clone();
            self.go(now, &start, &mut fx);
        }
        fx
    }

    /// Handles what the customer did.
    pub fn input(&mut self, now: Timestamp, input: Input) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.finished || !self.started {
            return fx;
        }
        if input == Input::HangUp {
            let node = self.node_id().to_owned();
            self.finish(Outcome::Abandoned { node }, &mut fx);
            return fx;
        }
        let flow = self.flow.clone();
        match &flow.nodes[self.at].kind {
            NodeKind::Menu(m) => self.menu_input(now, m, input, &mut fx),
            NodeKind::Collect(c) => self.collect_input(now, c, input, &mut fx),
            _ => {}
        }
        fx
    }

    /// Handles a timer: acts only once the deadline has passed.
    pub fn timeout(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        let Some(wait) = &self.wait else {
            return fx;
        };
        if self.finished || now < wait.deadline {
            return fx;
        }
        let buffered = self
            .wait
            .as_mut()
            .map(|w| std::mem::take(&mut w.buffer))
            .unwrap_or_default();
        let flow = self.flow.clone();
        match &flow.nodes[self.at].kind {
            NodeKind::Menu(m) => self.retry(now, m.no_input.as_ref(), &mut fx),
            NodeKind::Collect(c) if !buffered.is_empty() => {
                self.complete(now, c, buffered, &mut fx)
            }
            NodeKind::Collect(c) => self.retry(now, c.no_input.as_ref(), &mut fx),
            _ => {}
        }
        fx
    }

    /// When the machine next wants [`timeout`](Self::timeout) called.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.wait
            .as_ref()
            .filter(|_| !self.finished)
            .map(|w| w.deadline)
    }

    /// Whether the outcome has been produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The attributes set so far.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }

    /// The id of the node the contact is in (or ended in).
    pub fn node_id(&self) -> &str {
        self.flow.nodes.get(self.at).map_or("", |n| n.id.as_str())
    }

    // === moving through nodes ===

    fn finish(&mut self, outcome: Outcome, fx: &mut Vec<Effect>) {
        if !self.finished {
            self.finished = true;
            self.wait = None;
            fx.push(Effect::Finished(outcome));
        }
    }

    /// Enters `target` and every node after it until one waits or the flow ends.
    fn go(&mut self, now: Timestamp, target: &str, fx: &mut Vec<Effect>) {
        let flow = self.flow.clone();
        let mut next = target.to_owned();
        for _ in 0..MAX_HOPS {
            let Some(i) = flow.index_of(&next) else {
                let reason = format!("flow error: node {next:?} does not exist");
                self.finish(Outcome::End { reason }, fx);
                return;
            };
            self.at = i;
            self.wait = None;
            let node = &flow.nodes[i];
            fx.push(Effect::Entered(node.id.clone()));
            let say = |fx: &mut Vec<Effect>, p: &Option<Prompt>| {
                if let Some(p) = p {
                    fx.push(Effect::Prompt(p.clone()));
                }
            };
            next = match &node.kind {
                NodeKind::Say { prompt, next } => {
                    fx.push(Effect::Prompt(prompt.clone()));
                    next.node.clone()
                }
                NodeKind::Menu(m) => {
                    fx.push(Effect::Prompt(m.prompt.clone()));
                    self.wait_for(now + secs(m.timeout_secs), 0);
                    return;
                }
                NodeKind::Collect(c) => {
                    fx.push(Effect::Prompt(c.prompt.clone()));
                    self.wait_for(now + secs(c.timeout_secs), 0);
                    return;
                }
                NodeKind::Hours {
                    calendar,
                    open,
                    closed,
                    holiday,
                } => match flow.calendars.get(&calendar.value).map(|c| c.opening(now)) {
                    Some(Opening::Open) => open.node.clone(),
                    Some(Opening::Holiday) => holiday.as_ref().unwrap_or(closed).node.clone(),
                    Some(Opening::Closed) | None => closed.node.clone(),
                },
                NodeKind::Set { attributes, next } => {
                    self.assign(attributes);
                    next.node.clone()
                }
                NodeKind::Branch {
                    attribute,
                    cases,
                    default,
                } => {
                    let value = self.attributes.get(attribute).map(String::as_str);
                    cases
                        .iter()
                        .find(|c| c.condition.holds(value))
                        .map_or(default, |c| &c.goto)
                        .node
                        .clone()
                }
                NodeKind::Queue {
                    queue,
                    priority,
                    skills,
                    prompt,
                } => {
                    say(fx, prompt);
                    let outcome = Outcome::Queue {
                        queue: queue.value.clone(),
                        priority: *priority,
                        skills: skills.iter().map(|s| s.value.clone()).collect(),
                    };
                    self.finish(outcome, fx);
                    return;
                }
                NodeKind::Callback {
                    queue,
                    number,
                    prompt,
                    no_number,
                } => {
                    let number = self.attributes.get(number).map(|n| n.trim()).unwrap_or("");
                    if !number.is_empty() {
                        let number = number.to_owned();
                        say(fx, prompt);
                        let queue = queue.value.clone();
                        self.finish(Outcome::Callback { queue, number }, fx);
                        return;
                    }
                    match no_number {
                        Some(t) => t.node.clone(),
                        None => {
                            // No number to call: the customer waits in the queue instead
                            // of being dropped.
                            let outcome = Outcome::Queue {
                                queue: queue.value.clone(),
                                priority: None,
                                skills: vec![],
                            };
                            self.finish(outcome, fx);
                            return;
                        }
                    }
                }
                NodeKind::Voicemail {
                    queue,
                    prompt,
                    max_secs,
                } => {
                    say(fx, prompt);
                    let outcome = Outcome::Voicemail {
                        queue: queue.as_ref().map(|q| q.value.clone()),
                        max_secs: *max_secs,
                    };
                    self.finish(outcome, fx);
                    return;
                }
                NodeKind::Transfer { to, prompt } => {
                    say(fx, prompt);
                    self.finish(Outcome::Transfer { to: to.clone() }, fx);
                    return;
                }
                NodeKind::End { reason, prompt } => {
                    say(fx, prompt);
                    let reason = reason.clone();
                    self.finish(Outcome::End { reason }, fx);
                    return;
                }
            };
        }
        let reason = format!("flow error: {MAX_HOPS} nodes in a row without waiting for input");
        self.finish(Outcome::End { reason }, fx);
    }

    fn wait_for(&mut self, deadline: Timestamp, attempt: u32) {
        self.wait = Some(Wait {
            attempt,
            buffer: String::new(),
            deadline,
        });
    }

    fn assign(&mut self, pairs: &[(String, String)]) {
        for (k, v) in pairs {
            self.attributes.insert(k.clone(), v.clone());
        }
    }

    fn attempt(&self) -> u32 {
        self.wait.as_ref().map_or(0, |w| w.attempt)
    }

    // === menus ===

    fn menu_input(&mut self, now: Timestamp, m: &Menu, input: Input, fx: &mut Vec<Effect>) {
        let picked = match &input {
            Input::Digits(d) => d
                .chars()
                .next()
                .and_then(|k| m.choices.iter().find(|c| c.digit == Some(k))),
            Input::Text(t) if t.len() <= MAX_INPUT_LEN => pick_by_text(m, t),
            _ => None,
        };
        match picked {
            Some(choice) => {
                self.assign(&choice.set);
                let to = choice.goto.node.clone();
                self.go(now, &to, fx);
            }
            None if matches!(&input, Input::Digits(d) if d.is_empty()) => {}
            None => self.retry(now, m.invalid.as_ref(), fx),
        }
    }

    /// Asks again after no answer or a wrong one (saying `why` first), or takes the
    /// failure path once the retries are used up.
    fn retry(&mut self, now: Timestamp, why: Option<&Prompt>, fx: &mut Vec<Effect>) {
        let flow = self.flow.clone();
        let (prompt, retries, timeout_secs, on_failure) = match &flow.nodes[self.at].kind {
            NodeKind::Menu(m) => (&m.prompt, m.retries, m.timeout_secs, &m.on_failure),
            NodeKind::Collect(c) => (&c.prompt, c.retries, c.timeout_secs, &c.on_failure),
            _ => return,
        };
        let attempt = self.attempt() + 1;
        if attempt > retries {
            self.go(now, &on_failure.node, fx);
            return;
        }
        if let Some(p) = why {
            fx.push(Effect::Prompt(p.clone()));
        }
        fx.push(Effect::Prompt(prompt.clone()));
        self.wait_for(now + secs(timeout_secs), attempt);
    }

    // === collecting ===

    fn collect_input(&mut self, now: Timestamp, c: &Collect, input: Input, fx: &mut Vec<Effect>) {
        match input {
            Input::Text(t) => {
                let mut value = t.trim().to_owned();
                if c.input == InputKind::Digits {
                    value.retain(|ch| !ch.is_whitespace() && ch != '-');
                    if let Some(term) = c.terminator {
                        value = value.strip_suffix(term).unwrap_or(&value).to_owned();
                    }
                }
                self.complete(now, c, value, fx);
            }
            Input::Digits(keys) => {
                let Some(wait) = self.wait.as_mut() else {
                    return;
                };
                let mut done = false;
                for k in keys.chars() {
                    if Some(k) == c.terminator {
                        done = true;
                        break;
                    }
                    wait.buffer.push(k);
                    if wait.buffer.chars().count() >= c.max_length as usize {
                        done = true;
                        break;
                    }
                }
                if done {
                    let value = std::mem::take(&mut wait.buffer);
                    self.complete(now, c, value, fx);
                } else if !wait.buffer.is_empty() {
                    wait.deadline = now + secs(c.inter_digit_secs);
                }
            }
            Input::HangUp => {}
        }
    }

    fn complete(&mut self, now: Timestamp, c: &Collect, value: String, fx: &mut Vec<Effect>) {
        if valid_answer(c, &value) {
            self.attributes.insert(c.attribute.clone(), value);
            let to = c.next.node.clone();
            self.go(now, &to, fx);
        } else {
            self.retry(now, c.invalid.as_ref(), fx);
        }
    }
}

/// Whether an answer passes a collect node's checks.
fn valid_answer(c: &Collect, value: &str) -> bool {
    let len = value.chars().count();
    len <= MAX_INPUT_LEN
        && (c.min_length as usize..=c.max_length as usize).contains(&len)
        && (c.input == InputKind::Text || value.bytes().all(|b| b.is_ascii_digit()))
        && c.pattern.as_ref().is_none_or(|p| p.is_match(value))
}

/// The menu choice a typed answer picks: a lone key picks by digit, otherwise the first
/// choice with a keyword in the text.
fn pick_by_text<'m>(m: &'m Menu, text: &str) -> Option<&'m crate::flow::Choice> {
    let text = text.trim().to_lowercase();
    let mut chars = text.chars();
    if let (Some(k), None) = (chars.next(), chars.next())
        && let Some(c) = m.choices.iter().find(|c| c.digit == Some(k))
    {
        return Some(c);
    }
    m.choices
        .iter()
        .find(|c| c.keywords.iter().any(|k| keyword_in(&text, k)))
}

/// Whether `keyword` occurs in `text` (both lower case): as a whole word for words in
/// Latin script, as a substring for scripts written without spaces (Chinese, Japanese).
fn keyword_in(text: &str, keyword: &str) -> bool {
    if text == keyword {
        return true;
    }
    if !keyword.is_ascii() {
        return text.contains(keyword);
    }
    text.match_indices(keyword).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + keyword.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests;
