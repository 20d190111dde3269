//! The flow language: the model of a flow and its parser from YAML.
//!
//! A flow file names its flow and tenant and lists its nodes by id; each node has a
//! `type` and the fields of that type (the README's "IVR flows" section shows every
//! one). Parsing checks the shape of each node — fields, types, ranges, formats — and
//! keeps the position of everything that names something else (targets, queues,
//! skills, calendars), so [`check`](crate::check) can report dangling or unknown names
//! at the line they are written on.

use std::collections::{BTreeMap, HashMap};

use hotline_core::ids::{QueueId, SkillId, TenantId};

use crate::calendar::{self, Calendar};
use crate::diag::{Diagnostic, FlowErrors, Pos, did_you_mean, list};
use crate::yaml::{self, Errs, Fields, Y};

/// Attributes Hotline sets itself; a flow may read them but not assign them.
pub const RESERVED_ATTRIBUTES: [&str; 2] = ["channel", "caller"];

/// A parsed flow: its nodes and calendars. It has the right shape; whether its names
/// resolve is [`check`](crate::check)'s business.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The flow's name (the routing state's flow name).
    pub name: String,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Where `tenant:` is written.
    pub tenant_pos: Pos,
    /// Free text for people.
    pub description: String,
    /// The node every session starts at (`start:`, or the first node).
    pub start: Target,
    /// Named business-hours calendars.
    pub calendars: BTreeMap<String, Calendar>,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    /// Node id → index into `nodes`.
    index: HashMap<String, usize>,
}

impl Flow {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// The index of the node with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// A reference to another node, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node id named.
    pub node: String,
    /// Where.
    pub pos: Pos,
}

/// A name of something outside the flow (a queue, a skill, a calendar), with where it
/// is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<T> {
    /// The name.
    pub value: T,
    /// Where.
    pub pos: Pos,
}

/// What the customer is told: an id (which a voice channel maps to a recording) and the
/// text (what chat shows, and what text-to-speech reads until a recording exists).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prompt {
    /// The prompt's id, e.g. `main_menu`; a node's own prompt defaults to the node id.
    pub id: String,
    /// The words.
    pub text: String,
}

/// One node of a flow.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// Where its id is written.
    pub pos: Pos,
    /// What it does.
    pub kind: NodeKind,
}

/// What a node does.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// Tells the customer something and goes on.
    Say {
        /// What to say.
        prompt: Prompt,
        /// Where to go next.
        next: Target,
    },
    /// Asks the customer to choose, by digit or keyword.
    Menu(Menu),
    /// Asks for digits or text, checks them and stores them in an attribute.
    Collect(Collect),
    /// Goes one way when the calendar says open, another when closed or a holiday.
    Hours {
        /// The calendar.
        calendar: Named<String>,
        /// Where to go when open.
        open: Target,
        /// Where to go when closed.
        closed: Target,
        /// Where to go on a holiday (`closed` when absent).
        holiday: Option<Target>,
    },
    /// Sets attributes and goes on.
    Set {
        /// Name → value, in file order.
        attributes: Vec<(String, String)>,
        /// Where to go next.
        next: Target,
    },
    /// Goes to the first case whose condition holds on an attribute.
    Branch {
        /// The attribute tested.
        attribute: String,
        /// The cases, in order.
        cases: Vec<Case>,
        /// Where to go when no case holds.
        default: Target,
    },
    /// Ends the flow by queueing the contact. Terminal.
    Queue {
        /// The queue.
        queue: Named<QueueId>,
        /// Priority in the queue (the queue's own when absent).
        priority: Option<u8>,
        /// Skills the contact needs besides the queue's.
        skills: Vec<Named<SkillId>>,
        /// Said before queueing.
        prompt: Option<Prompt>,
    },
    /// Ends the flow with a callback request. Terminal, unless the number is missing.
    Callback {
        /// The queue whose agents call back.
        queue: Named<QueueId>,
        /// The attribute holding the number to call.
        number: String,
        /// Said to confirm.
        prompt: Option<Prompt>,
        /// Where to go when the attribute is empty (when absent: queue the contact).
        no_number: Option<Target>,
    },
    /// Ends the flow by taking a voicemail. Terminal.
    Voicemail {
        /// The queue whose agents handle the voicemail.
        queue: Option<Named<QueueId>>,
        /// The greeting.
        prompt: Option<Prompt>,
        /// The longest recording, seconds.
        max_secs: u32,
    },
    /// Ends the flow by transferring the contact elsewhere. Terminal.
    Transfer {
        /// A number, SIP URI or other address the channel understands.
        to: String,
        /// Said before transferring.
        prompt: Option<Prompt>,
    },
    /// Ends the flow. Terminal.
    End {
        /// Why (`completed`, `self_service`, …), carried in the outcome.
        reason: String,
        /// Said before ending.
        prompt: Option<Prompt>,
    },
}

/// A menu.
#[derive(Debug, Clone)]
pub struct Menu {
    /// The question.
    pub prompt: Prompt,
    /// The choices.
    pub choices: Vec<Choice>,
    /// Seconds to wait for an answer.
    pub timeout_secs: u32,
    /// How many times to ask again after no answer or a wrong one.
    pub retries: u32,
    /// Said after an answer that matches no choice.
    pub invalid: Option<Prompt>,
    /// Said after no answer.
    pub no_input: Option<Prompt>,
    /// Where to go once the retries are used up.
    pub on_failure: Target,
}

/// One choice of a menu.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The key that picks it (`0`–`9`, `*`, `#`).
    pub digit: Option<char>,
    /// Words that pick it when typed or said (lower case).
    pub keywords: Vec<String>,
    /// Attributes set when it is picked.
    pub set: Vec<(String, String)>,
    /// Where it goes.
    pub goto: Target,
}

/// What a collect node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Digits (keypad on voice; digits typed on chat, spaces and dashes ignored).
    Digits,
    /// Free text.
    Text,
}

/// A collect node.
#[derive(Debug, Clone)]
pub struct Collect {
    /// The question.
    pub prompt: Prompt,
    /// The attribute the answer is stored in.
    pub attribute: String,
    /// Digits or text.
    pub input: InputKind,
    /// Fewest characters accepted.
    pub min_length: u32,
    /// Most characters accepted; on voice, entry ends when this many digits are in.
    pub max_length: u32,
    /// The key that ends digit entry on voice (`#`), not part of the answer.
    pub terminator: Option<char>,
    /// A regular expression the whole answer must match.
    pub pattern: Option<regex::Regex>,
    /// Seconds to wait for the answer to begin.
    pub timeout_secs: u32,
    /// Seconds to wait between digits on voice before taking what was entered.
    pub inter_digit_secs: u32,
    /// How many times to ask again after no answer or a wrong one.
    pub retries: u32,
    /// Said after an answer that fails the checks.
    pub invalid: Option<Prompt>,
    /// Said after no answer.
    pub no_input: Option<Prompt>,
    /// Where to go with a valid answer.
    pub next: Target,
    /// Where to go once the retries are used up.
    pub on_failure: Target,
}

/// One case of a branch.
#[derive(Debug, Clone)]
pub struct Case {
    /// The condition on the attribute.
    pub condition: Condition,
    /// Where to go when it holds.
    pub goto: Target,
}

/// A condition on an attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The value is exactly this.
    Equals(String),
    /// The value is one of these.
    OneOf(Vec<String>),
    /// The value starts with this.
    StartsWith(String),
    /// The attribute is set and not empty (`true`), or not (`false`).
    Present(bool),
}

impl Condition {
    /// Whether it holds for `value` (absent when the attribute is unset).
    pub fn holds(&self, value: Option<&str>) -> bool {
        match self {
            Condition::Equals(v) => value == Some(v.as_str()),
            Condition::OneOf(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
            Condition::StartsWith(p) => value.is_some_and(|x| x.starts_with(p.as_str())),
            Condition::Present(want) => value.is_some_and(|x| !x.is_empty()) == *want,
        }
    }
}

impl NodeKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Say { .. } => "say",
            NodeKind::Menu(_) => "menu",
            NodeKind::Collect(_) => "collect",
            NodeKind::Hours { .. } => "hours",
            NodeKind::Set { .. } => "set",
            NodeKind::Branch { .. } => "branch",
            NodeKind::Queue { .. } => "queue",
            NodeKind::Callback { .. } => "callback",
            NodeKind::Voicemail { .. } => "voicemail",
            NodeKind::Transfer { .. } => "transfer",
            NodeKind::End { .. } => "end",
        }
    }

    /// Whether a session stops here to wait for the customer (or a timeout).
    pub fn waits_for_input(&self) -> bool {
        matches!(self, NodeKind::Menu(_) | NodeKind::Collect(_))
    }

    /// Every node this one can go to, with the field that names it.
    pub fn targets(&self) -> Vec<(&'static str, &Target)> {
        match self {
            NodeKind::Say { next, .. } | NodeKind::Set { next, .. } => vec![("next", next)],
            NodeKind::Menu(m) => {
                let mut v: Vec<_> = m.choices.iter().map(|c| ("goto", &c.goto)).collect();
                v.push(("on_failure", &m.on_failure));
                v
            }
            NodeKind::Collect(c) => vec![("next", &c.next), ("on_failure", &c.on_failure)],
            NodeKind::Hours {
                open,
                closed,
                holiday,
                ..
            } => {
                let mut v = vec![("open", open), ("closed", closed)];
                v.extend(holiday.iter().map(|h| ("holiday", h)));
                v
            }
            NodeKind::Branch { cases, default, .. } => {
                let mut v: Vec<_> = cases.iter().map(|c| ("goto", &c.goto)).collect();
                v.push(("default", default));
                v
            }
            NodeKind::Callback { no_number, .. } => {
                no_number.iter().map(|t| ("no_number", t)).collect()
            }
            NodeKind::Queue { .. }
            | NodeKind::Voicemail { .. }
            | NodeKind::Transfer { .. }
            | NodeKind::End { .. } => vec![],
        }
    }
}

/// The node types, for messages.
const TYPES: [&str; 11] = [
    "say",
    "menu",
    "collect",
    "hours",
    "set",
    "branch",
    "queue",
    "callback",
    "voicemail",
    "transfer",
    "end",
];

/// Defaults a flow's `defaults:` sets for its menus and collects.
#[derive(Debug, Clone)]
struct Defaults {
    timeout_secs: u32,
    retries: u32,
    inter_digit_secs: u32,
    invalid: Option<Prompt>,
    no_input: Option<Prompt>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout_secs: 5,
            retries: 2,
            inter_digit_secs: 3,
            invalid: None,
            no_input: None,
        }
    }
}

/// Parses a flow file. `file` names it in the errors. Every shape problem is reported,
/// not only the first; names are resolved by [`check`](crate::check).
pub fn parse(text: &str, file: &str) -> Result<Flow, FlowErrors> {
    let mut errs = Errs::default();
    let flow = match yaml::load(text) {
        Ok(doc) => parse_doc(&mut errs, &doc),
        Err(d) => {
            errs.0.push(d);
            None
        }
    };
    match flow {
        Some(flow) if errs.0.is_empty() => Ok(flow),
        _ => {
            if errs.0.is_empty() {
                errs.at(Pos { line: 1, col: 1 }, "the flow could not be read");
            }
            Err(FlowErrors::new(file, errs.0))
        }
    }
}

const TOP: [&str; 7] = [
    "flow",
    "tenant",
    "description",
    "start",
    "defaults",
    "calendars",
    "nodes",
];

fn parse_doc(errs: &mut Errs, doc: &Y<'_>) -> Option<Flow> {
    let top = Fields::new(errs, doc, "the flow", yaml::pos(doc), &TOP)?;
    let name = top
        .require(errs, "flow", "flow: main")
        .and_then(|v| yaml::text(errs, v, "`flow`"))
        .filter(|n| yaml::check_name(errs, top.key_pos("flow"), "flow name", n));
    let tenant_pos = top.get("tenant").map_or(top.at, yaml::pos);
    let tenant = top
        .require(errs, "tenant", "tenant: acme")
        .and_then(|v| yaml::text(errs, v, "`tenant`"))
        .and_then(|t| match TenantId::new(&t) {
            Ok(id) => Some(id),
            Err(e) => {
                errs.at(tenant_pos, format!("`tenant`: {e}"));
                None
            }
        });
    let description = match top.get("description") {
        Some(v) => yaml::text(errs, v, "`description`").unwrap_or_default(),
        None => String::new(),
    };
    let defaults = match top.get("defaults") {
        Some(v) => parse_defaults(errs, v, top.key_pos("defaults")),
        None => Defaults::default(),
    };
    let mut calendars = BTreeMap::new();
    if let Some(v) = top.get("calendars")
        && let Some(entries) = yaml::named_entries(errs, v, "`calendars`")
    {
        for (cname, at, body) in entries {
            if yaml::check_name(errs, at, "calendar name", &cname)
                && let Some(c) = calendar::parse(errs, &cname, at, body)
            {
                calendars.insert(cname, c);
            }
        }
    }
    let mut nodes = Vec::new();
    let mut index = HashMap::new();
    if let Some(v) = top.require(errs, "nodes", "nodes: { greeting: { type: say, … } }")
        && let Some(entries) = yaml::named_entries(errs, v, "`nodes`")
    {
        if entries.is_empty() {
            errs.at(
                yaml::pos(v),
                "`nodes` is empty; a flow needs at least one node",
            );
        }
        for (id, at, body) in entries {
            if !yaml::check_name(errs, at, "node id", &id) {
                continue;
            }
            if let Some(kind) = parse_node(errs, &id, at, body, &defaults) {
                index.insert(id.clone(), nodes.len());
                nodes.push(Node { id, pos: at, kind });
            }
        }
    }
    let start = match top.get("start") {
        Some(v) => target(errs, v, "`start`")?,
        None => {
            let first = nodes.first()?;
            Target {
                node: first.id.clone(),
                pos: first.pos,
            }
        }
    };
    Some(Flow {
        name: name?,
        tenant: tenant?,
        tenant_pos,
        description,
        start,
        calendars,
        nodes,
        index,
    })
}

fn parse_defaults(errs: &mut Errs, v: &Y<'_>, at: Pos) -> Defaults {
    let mut d = Defaults::default();
    let Some(f) = Fields::new(
        errs,
        v,
        "`defaults`",
        at,
        &[
            "timeout_secs",
            "retries",
            "inter_digit_secs",
            "invalid",
            "no_input",
        ],
    ) else {
        return d;
    };
    if let Some(x) = f
        .get("timeout_secs")
        .and_then(|n| yaml::number(errs, n, "`timeout_secs`", 1, 600))
    {
        d.timeout_secs = x;
    }
    if let Some(x) = f
        .get("retries")
        .and_then(|n| yaml::number(errs, n, "`retries`", 0, 10))
    {
        d.retries = x;
    }
    if let Some(x) = f
        .get("inter_digit_secs")
        .and_then(|n| yaml::number(errs, n, "`inter_digit_secs`", 1, 60))
    {
        d.inter_digit_secs = x;
    }
    d.invalid = f
        .get("invalid")
        .and_then(|n| prompt(errs, n, "default.invalid"));
    d.no_input = f
        .get("no_input")
        .and_then(|n| prompt(errs, n, "default.no_input"));
    d
}

/// A target node id.
fn target(errs: &mut Errs, v: &Y<'_>, what: &str) -> Option<Target> {
    let node = yaml::text(errs, v, what)?;
    Some(Target {
        node,
        pos: yaml::pos(v),
    })
}

/// A prompt: `text` alone (its id is `default_id`), or `{ id, text }`.
fn prompt(errs: &mut Errs, v: &Y<'_>, default_id: &str) -> Option<Prompt> {
    let at = yaml::pos(v);
    let (id, text) = if v.data.is_mapping() {
        let f = Fields::new(errs, v, "a prompt", at, &["id", "text"])?;
        let id = match f.get("id") {
            Some(n) => yaml::text(errs, n, "a prompt's `id`")?,
            None => default_id.to_owned(),
        };
        let t = f.require(errs, "text", "text: \"Welcome to Acme.\"")?;
        let text = yaml::text(errs, t, "a prompt's `text`")?;
        (id, text)
    } else {
        (default_id.to_owned(), yaml::text(errs, v, "a prompt")?)
    };
    if !yaml::check_name(errs, at, "prompt id", &id) {
        return None;
    }
    if text.trim().is_empty() {
        errs.at(
            at,
            format!("prompt {id:?} has no text; write what the customer hears or reads"),
        );
        return None;
    }
    Some(Prompt { id, text })
}

/// An attribute name a flow may assign.
fn assignable(errs: &mut Errs, at: Pos, name: &str) -> bool {
    if !yaml::check_name(errs, at, "attribute", name) {
        return false;
    }
    if RESERVED_ATTRIBUTES.contains(&name) {
        errs.at(
            at,
            format!("attribute {name:?} is set by Hotline (it can be read, not assigned); choose another name"),
        );
        return false;
    }
    true
}

/// `name: value` pairs to assign.
fn assignments(errs: &mut Errs, v: &Y<'_>, what: &str) -> Option<Vec<(String, String)>> {
    let entries = yaml::named_entries(errs, v, what)?;
    let mut out = Vec::with_capacity(entries.len());
    for (name, at, value) in entries {
        if assignable(errs, at, &name)
            && let Some(value) = yaml::text(errs, value, &format!("the value of {name:?}"))
        {
            out.push((name, value));
        }
    }
    Some(out)
}

fn queue_ref(errs: &mut Errs, v: &Y<'_>) -> Option<Named<QueueId>> {
    let t = yaml::text(errs, v, "`queue`")?;
    match QueueId::new(&t) {
        Ok(value) => Some(Named {
            value,
            pos: yaml::pos(v),
        }),
        Err(e) => {
            errs.at(yaml::pos(v), format!("`queue`: {e}"));
            None
        }
    }
}

fn digit_key(errs: &mut Errs, v: &Y<'_>, what: &str) -> Option<char> {
    let t = yaml::text(errs, v, what)?;
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => {
            errs.at(
                yaml::pos(v),
                format!("{what} is {t:?}; use one keypad key: 0-9, * or # (in quotes for * and #)"),
            );
            None
        }
    }
}

/// The fields each node type allows.
fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "say" => &["type", "description", "prompt", "next"],
        "menu" => &[
            "type",
            "description",
            "prompt",
            "choices",
            "timeout_secs",
            "retries",
            "invalid",
            "no_input",
            "on_failure",
        ],
        "collect" => &[
            "type",
            "description",
            "prompt",
            "attribute",
            "input",
            "min_length",
            "max_length",
            "terminator",
            "pattern",
            "timeout_secs",
            "inter_digit_secs",
            "retries",
            "invalid",
            "no_input",
            "next",
            "on_failure",
        ],
        "hours" => &[
            "type",
            "description",
            "calendar",
            "open",
            "closed",
            "holiday",
        ],
        "set" => &["type", "description", "attributes", "next"],
        "branch" => &["type", "description", "attribute", "cases", "default"],
        "queue" => &[
            "type",
            "description",
            "queue",
            "priority",
            "skills",
            "prompt",
        ],
        "callback" => &[
            "type",
            "description",
            "queue",
            "number",
            "prompt",
            "no_number",
        ],
        "voicemail" => &["type", "description", "queue", "prompt", "max_secs"],
        "transfer" => &["type", "description", "to", "prompt"],
        "end" => &["type", "description", "reason", "prompt"],
        _ => &["type"],
    }
}

fn parse_node(errs: &mut Errs, id: &str, at: Pos, body: &Y<'_>, d: &Defaults) -> Option<NodeKind> {
    let owner = format!("node {id:?}");
    if !body.data.is_mapping() {
        errs.at(
            yaml::pos(body),
            format!(
                "{owner} must be a mapping starting with `type:` ({})",
                list(TYPES)
            ),
        );
        return None;
    }
    let kind = match body.data.as_mapping_get("type") {
        Some(t) => yaml::text(errs, t, &format!("{owner}: `type`"))?,
        None => {
            errs.at(
                at,
                format!("{owner}: `type` is missing; use one of {}", list(TYPES)),
            );
            return None;
        }
    };
    if !TYPES.contains(&kind.as_str()) {
        let t = body.data.as_mapping_get("type").map_or(at, yaml::pos);
        errs.at(
            t,
            format!(
                "{owner}: unknown type {kind:?}{}; use one of {}",
                did_you_mean(&kind, TYPES),
                list(TYPES)
            ),
        );
        return None;
    }
    let before = errs.count();
    let f = Fields::new(errs, body, &owner, at, fields_of(&kind))?;
    let node = NodeParser { errs, f: &f, id };
    let parsed = node.parse(&kind, d);
    if errs.count() > before { None } else { parsed }
}

/// Parses the fields of one node; holds what every field reader needs.
struct NodeParser<'e, 'f, 'a, 'i> {
    errs: &'e mut Errs,
    f: &'f Fields<'a, 'i>,
    id: &'f str,
}

impl<'a, 'i> NodeParser<'_, '_, 'a, 'i> {
    fn require(&mut self, key: &str, example: &str) -> Option<&'a Y<'i>> {
        self.f.require(self.errs, key, example)
    }

    fn target(&mut self, key: &str) -> Option<Target> {
        let v = self
            .f
            .require(self.errs, key, &format!("{key}: some_node"))?;
        target(self.errs, v, &format!("`{key}`"))
    }

    fn opt_target(&mut self, key: &str) -> Option<Option<Target>> {
        match self.f.get(key) {
            Some(v) => target(self.errs, v, &format!("`{key}`")).map(Some),
            None => Some(None),
        }
    }

    fn prompt(&mut self, key: &str, default_id: String) -> Option<Prompt> {
        let v = self.f.require(
            self.errs,
            key,
            &format!("{key}: \"What would you like to do?\""),
        )?;
        prompt(self.errs, v, &default_id)
    }

    fn opt_prompt(&mut self, key: &str, default_id: String) -> Option<Option<Prompt>> {
        match self.f.get(key) {
            Some(v) => prompt(self.errs, v, &default_id).map(Some),
            None => Some(None),
        }
    }

    fn number(&mut self, key: &str, min: u32, max: u32, default: u32) -> Option<u32> {
        match self.f.get(key) {
            Some(v) => yaml::number(self.errs, v, &format!("`{key}`"), min, max),
            None => Some(default),
        }
    }

    fn text(&mut self, key: &str, default: &str) -> Option<String> {
        match self.f.get(key) {
            Some(v) => yaml::text(self.errs, v, &format!("`{key}`")),
            None => Some(default.to_owned()),
        }
    }

    fn parse(mut self, kind: &str, d: &Defaults) -> Option<NodeKind> {
        let id = self.id.to_owned();
        match kind {
            "say" => Some(NodeKind::Say {
                prompt: self.prompt("prompt", id)?,
                next: self.target("next")?,
            }),
            "menu" => self.menu(d).map(NodeKind::Menu),
            "collect" => self.collect(d).map(NodeKind::Collect),
            "hours" => {
                let cal = self.require("calendar", "calendar: office")?;
                let calendar = Named {
                    value: yaml::text(self.errs, cal, "`calendar`")?,
                    pos: yaml::pos(cal),
                };
                Some(NodeKind::Hours {
                    calendar,
                    open: self.target("open")?,
                    closed: self.target("closed")?,
                    holiday: self.opt_target("holiday")?,
                })
            }
            "set" => {
                let v = self.require("attributes", "attributes: { tier: gold }")?;
                let attributes = assignments(self.errs, v, "`attributes`")?;
                Some(NodeKind::Set {
                    attributes,
                    next: self.target("next")?,
                })
            }
            "branch" => self.branch(),
            "queue" => {
                let q = self.require("queue", "queue: claims")?;
                let queue = queue_ref(self.errs, q)?;
                let priority = match self.f.get("priority") {
                    Some(v) => {
                        Some(u8::try_from(yaml::number(self.errs, v, "`priority`", 0, 255)?).ok()?)
                    }
                    None => None,
                };
                let mut skills = Vec::new();
                if let Some(v) = self.f.get("skills") {
                    for s in yaml::items(v) {
                        let t = yaml::text(self.errs, s, "a skill")?;
                        match SkillId::new(&t) {
                            Ok(value) => skills.push(Named {
                                value,
                                pos: yaml::pos(s),
                            }),
                            Err(e) => self.errs.at(yaml::pos(s), format!("`skills`: {e}")),
                        }
                    }
                }
                Some(NodeKind::Queue {
                    queue,
                    priority,
                    skills,
                    prompt: self.opt_prompt("prompt", id)?,
                })
            }
            "callback" => {
                let q = self.require("queue", "queue: claims")?;
                let queue = queue_ref(self.errs, q)?;
                let number = self.text("number", "caller")?;
                if !yaml::check_name(self.errs, self.f.key_pos("number"), "attribute", &number) {
                    return None;
                }
                Some(NodeKind::Callback {
                    queue,
                    number,
                    prompt: self.opt_prompt("prompt", id)?,
                    no_number: self.opt_target("no_number")?,
                })
            }
            "voicemail" => {
                let queue = match self.f.get("queue") {
                    Some(v) => Some(queue_ref(self.errs, v)?),
                    None => None,
                };
                Some(NodeKind::Voicemail {
                    queue,
                    prompt: self.opt_prompt("prompt", id)?,
                    max_secs: self.number("max_secs", 5, 600, 120)?,
                })
            }
            "transfer" => {
                let v = self.require("to", "to: \"+44 20 7946 0000\"")?;
                let at = yaml::pos(v);
                let to = yaml::text(self.errs, v, "`to`")?;
                if to.trim().is_empty() {
                    self.errs.at(
                        at,
                        "`to` is empty; write the number or address to transfer to",
                    );
                    return None;
                }
                Some(NodeKind::Transfer {
                    to,
                    prompt: self.opt_prompt("prompt", id)?,
                })
            }
            "end" => Some(NodeKind::End {
                reason: self.text("reason", "completed")?,
                prompt: self.opt_prompt("prompt", id)?,
            }),
            _ => None,
        }
    }

    fn menu(&mut self, d: &Defaults) -> Option<Menu> {
        let id = self.id.to_owned();
        let prompt = self.prompt("prompt", id.clone());
        let list_node = self.require(
            "choices",
            "choices: [{ digit: 1, keywords: [sales], goto: sales }]",
        );
        let mut choices = Vec::new();
        if let Some(v) = list_node
            && let Some(items) = yaml::sequence(self.errs, v, "`choices`")
        {
            if items.is_empty() {
                self.errs.at(
                    yaml::pos(v),
                    "`choices` is empty; a menu needs at least one choice",
                );
            }
            for (i, c) in items.into_iter().enumerate() {
                if let Some(choice) = self.choice(i + 1, c, &choices) {
                    choices.push(choice);
                }
            }
        }
        let timeout_secs = self.number("timeout_secs", 1, 600, d.timeout_secs);
        let retries = self.number("retries", 0, 10, d.retries);
        let invalid = self.opt_prompt("invalid", format!("{id}.invalid"));
        let no_input = self.opt_prompt("no_input", format!("{id}.no_input"));
        let on_failure = self.target("on_failure");
        Some(Menu {
            prompt: prompt?,
            choices,
            timeout_secs: timeout_secs?,
            retries: retries?,
            invalid: invalid?.or_else(|| d.invalid.clone()),
            no_input: no_input?.or_else(|| d.no_input.clone()),
            on_failure: on_failure?,
        })
    }

    fn choice(&mut self, n: usize, v: &Y<'_>, earlier: &[Choice]) -> Option<Choice> {
        let owner = format!("node {:?}: choice {n}", self.id);
        let f = Fields::new(
            self.errs,
            v,
            &owner,
            yaml::pos(v),
            &["digit", "keywords", "set", "goto"],
        )?;
        let digit = match f.get("digit") {
            Some(x) => Some(digit_key(self.errs, x, &format!("{owner}: `digit`"))?),
            None => None,
        };
        if let Some(dg) = digit
            && earlier.iter().any(|c| c.digit == Some(dg))
        {
            self.errs.at(
                f.key_pos("digit"),
                format!("{owner}: digit {dg} is already taken by an earlier choice; give each choice its own key"),
            );
        }
        let mut keywords = Vec::new();
        let had_keywords = f.get("keywords").is_some();
        if let Some(x) = f.get("keywords") {
            for k in yaml::items(x) {
                let word = yaml::text(self.errs, k, &format!("{owner}: a keyword"))?
                    .trim()
                    .to_lowercase();
                if word.is_empty() {
                    self.errs
                        .at(yaml::pos(k), format!("{owner}: a keyword is empty"));
                } else if earlier.iter().any(|c| c.keywords.contains(&word))
                    || keywords.contains(&word)
                {
                    self.errs.at(
                        yaml::pos(k),
                        format!("{owner}: keyword {word:?} already picks another choice; a keyword must pick one choice"),
                    );
                } else {
                    keywords.push(word);
                }
            }
        }
        if digit.is_none() && !had_keywords {
            self.errs.at(
                f.at,
                format!(
                    "{owner} has neither `digit` nor `keywords`; the customer could never pick it"
                ),
            );
        }
        let set = match f.get("set") {
            Some(x) => assignments(self.errs, x, &format!("{owner}: `set`"))?,
            None => vec![],
        };
        let g = f.require(self.errs, "goto", "goto: some_node")?;
        let goto = target(self.errs, g, "`goto`")?;
        Some(Choice {
            digit,
            keywords,
            set,
            goto,
        })
    }

    fn collect(&mut self, d: &Defaults) -> Option<Collect> {
        let id = self.id.to_owned();
        let prompt = self.prompt("prompt", id.clone());
        let attribute = self
            .f
            .require(self.errs, "attribute", "attribute: account")
            .and_then(|v| yaml::text(self.errs, v, "`attribute`"))
            .filter(|a| assignable(self.errs, self.f.key_pos("attribute"), a));
        let input = match self.f.get("input") {
            None => Some(InputKind::Digits),
            Some(v) => match yaml::text(self.errs, v, "`input`").as_deref() {
                Some("digits") => Some(InputKind::Digits),
                Some("text") => Some(InputKind::Text),
                Some(other) => {
                    self.errs.at(
                        yaml::pos(v),
                        format!("`input` is {other:?}; use digits or text"),
                    );
                    None
                }
                None => None,
            },
        };
        let default_max = if input == Some(InputKind::Text) {
            500
        } else {
            32
        };
        let min_length = self.number("min_length", 1, 1000, 1);
        let max_length = self.number("max_length", 1, 1000, default_max);
        if let (Some(lo), Some(hi)) = (min_length, max_length)
            && lo > hi
        {
            self.errs.at(
                self.f.key_pos("min_length"),
                format!("`min_length` {lo} is more than `max_length` {hi}; no answer could pass"),
            );
        }
        let terminator = match self.f.get("terminator") {
            Some(v) => {
                let t = digit_key(self.errs, v, "`terminator`");
                if input == Some(InputKind::Text) {
                    self.errs.at(
                        yaml::pos(v),
                        "`terminator` applies to digits only; remove it or use `input: digits`",
                    );
                }
                t
            }
            None => None,
        };
        let pattern = match self.f.get("pattern") {
            Some(v) => {
                let p = yaml::text(self.errs, v, "`pattern`");
                p.and_then(|p| match regex::Regex::new(&format!("^(?:{p})$")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let why = e.to_string();
                        let last = why.lines().last().unwrap_or("invalid").trim().to_owned();
                        self.errs.at(
                            yaml::pos(v),
                            format!("`pattern` {p:?} is not a regular expression: {last}"),
                        );
                        None
                    }
                })
            }
            None => None,
        };
        let timeout_secs = self.number("timeout_secs", 1, 600, d.timeout_secs);
        let inter_digit_secs = self.number("inter_digit_secs", 1, 60, d.inter_digit_secs);
        let retries = self.number("retries", 0, 10, d.retries);
        let invalid = self.opt_prompt("invalid", format!("{id}.invalid"));
        let no_input = self.opt_prompt("no_input", format!("{id}.no_input"));
        let next = self.target("next");
        let on_failure = self.target("on_failure");
        Some(Collect {
            prompt: prompt?,
            attribute: attribute?,
            input: input?,
            min_length: min_length?,
            max_length: max_length?,
            terminator,
            pattern,
            timeout_secs: timeout_secs?,
            inter_digit_secs: inter_digit_secs?,
            retries: retries?,
            invalid: invalid?.or_else(|| d.invalid.clone()),
            no_input: no_input?.or_else(|| d.no_input.clone()),
            next: next?,
            on_failure: on_failure?,
        })
    }

    fn branch(&mut self) -> Option<NodeKind> {
        let attribute = self
            .f
            .require(self.errs, "attribute", "attribute: tier")
            .and_then(|v| yaml::text(self.errs, v, "`attribute`"))
            .filter(|a| yaml::check_name(self.errs, self.f.key_pos("attribute"), "attribute", a));
        let mut cases = Vec::new();
        if let Some(v) = self.require("cases", "cases: [{ equals: gold, goto: vip }]")
            && let Some(items) = yaml::sequence(self.errs, v, "`cases`")
        {
            for (i, c) in items.into_iter().enumerate() {
                if let Some(case) = self.case(i + 1, c) {
                    cases.push(case);
                }
            }
        }
        let default = self.target("default");
        Some(NodeKind::Branch {
            attribute: attribute?,
            cases,
            default: default?,
        })
    }

    fn case(&mut self, n: usize, v: &Y<'_>) -> Option<Case> {
        let owner = format!("node {:?}: case {n}", self.id);
        let conds = ["equals", "one_of", "starts_with", "present"];
        let f = Fields::new(
            self.errs,
            v,
            &owner,
            yaml::pos(v),
            &["equals", "one_of", "starts_with", "present", "goto"],
        )?;
        let given: Vec<&str> = conds
            .iter()
            .copied()
            .filter(|c| f.get(c).is_some())
            .collect();
        if given.len() != 1 {
            self.errs.at(
                f.at,
                format!(
                    "{owner} needs exactly one condition ({}), it has {}",
                    list(conds),
                    if given.is_empty() {
                        "none".to_owned()
                    } else {
                        list(given.iter().copied())
                    }
                ),
            );
            return None;
        }
        let x = f.get(given[0])?;
        let what = format!("{owner}: `{}`", given[0]);
        let condition = match given[0] {
            "equals" => Condition::Equals(yaml::text(self.errs, x, &what)?),
            "starts_with" => Condition::StartsWith(yaml::text(self.errs, x, &what)?),
            "present" => Condition::Present(yaml::boolean(self.errs, x, &what)?),
            _ => {
                let mut vs = Vec::new();
                for item in yaml::items(x) {
                    vs.push(yaml::text(self.errs, item, &what)?);
                }
                Condition::OneOf(vs)
            }
        };
        let g = f.require(self.errs, "goto", "goto: some_node")?;
        let goto = target(self.errs, g, "`goto`")?;
        Some(Case { condition, goto })
    }
}

/// Kept for callers that build a diagnostic about a flow's node.
pub(crate) fn at_node(node: &Node, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(node.pos, message)
}
