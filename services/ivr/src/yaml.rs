//! Reading a YAML tree with positions (saphyr's marked nodes) into typed values, and
//! collecting every problem on the way rather than stopping at the first.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::diag::{Diagnostic, Pos, did_you_mean, list};

/// A YAML node with its position.
pub(crate) type Y<'i> = MarkedYaml<'i>;

/// The problems found so far.
#[derive(Debug, Default)]
pub(crate) struct Errs(pub(crate) Vec<Diagnostic>);

impl Errs {
    /// Records a problem at `pos`.
    pub(crate) fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.0.push(Diagnostic::new(pos, message));
    }

    /// How many problems so far (to tell whether a part added any).
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}

/// Where a node starts.
pub(crate) fn pos(n: &Y<'_>) -> Pos {
    Pos::of(&n.span.start)
}

/// Parses the text as exactly one YAML document.
pub(crate) fn load(text: &str) -> Result<Y<'_>, Diagnostic> {
    let mut docs = Y::load_from_str(text).map_err(|e| {
        Diagnostic::new(Pos::of(e.marker()), format!("not valid YAML: {}", e.info()))
    })?;
    match docs.len() {
        0 => Err(Diagnostic::new(
            Pos { line: 1, col: 1 },
            "the file is empty; a flow starts with `flow:`, `tenant:` and `nodes:`",
        )),
        1 => Ok(docs.remove(0)),
        _ => Err(Diagnostic::new(
            pos(&docs[1]),
            "a second YAML document (after `---`); put one flow in each file",
        )),
    }
}

/// A mapping's fields, checked against the keys its owner allows.
pub(crate) struct Fields<'a, 'i> {
    /// Who owns them, for messages: `node "menu"`, `calendar "office"`.
    pub(crate) owner: String,
    /// Where the owner is (missing fields are reported here).
    pub(crate) at: Pos,
    entries: Vec<(&'a str, Pos, &'a Y<'i>)>,
}

impl<'a, 'i> Fields<'a, 'i> {
    /// The fields of `node`, which must be a mapping whose keys are all in `allowed`;
    /// `None` (with an error) when it is not a mapping.
    pub(crate) fn new(
        errs: &mut Errs,
        node: &'a Y<'i>,
        owner: impl Into<String>,
        at: Pos,
        allowed: &[&str],
    ) -> Option<Self> {
        let owner = owner.into();
        let YamlData::Mapping(map) = &node.data else {
            errs.at(
                pos(node),
                format!(
                    "{owner} must be a mapping of `key: value` fields ({})",
                    list(allowed.iter().copied())
                ),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (k, v) in map.iter() {
            let Some(key) = k.data.as_str() else {
                errs.at(
                    pos(k),
                    format!("{owner}: field names are words, e.g. `next:`"),
                );
                continue;
            };
            if !allowed.contains(&key) {
                errs.at(
                    pos(k),
                    format!(
                        "{owner} has no field `{key}`{}; its fields are {}",
                        did_you_mean(key, allowed.iter().copied()),
                        list(allowed.iter().copied())
                    ),
                );
                continue;
            }
            entries.push((key, pos(k), v));
        }
        Some(Fields { owner, at, entries })
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Y<'i>> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// Where `key` is written, or the owner's position.
    pub(crate) fn key_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(self.at, |(_, p, _)| *p)
    }

    /// The value of `key`, or an error saying it is missing and how to write it.
    pub(crate) fn require(&self, errs: &mut Errs, key: &str, example: &str) -> Option<&'a Y<'i>> {
        let v = self.get(key);
        if v.is_none() {
            errs.at(
                self.at,
                format!("{}: `{key}` is missing; add e.g. `{example}`", self.owner),
            );
        }
        v
    }
}

/// A scalar as text: strings as written, numbers in decimal. `what` names it in errors.
pub(crate) fn text(errs: &mut Errs, n: &Y<'_>, what: &str) -> Option<String> {
    match &n.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => {
            errs.at(
                pos(n),
                format!("{what} reads as the boolean {b}; put the text in quotes, e.g. \"{b}\""),
            );
            None
        }
        YamlData::Value(Scalar::Null) => {
            errs.at(pos(n), format!("{what} is empty; write a value"));
            None
        }
        _ => {
            errs.at(
                pos(n),
                format!("{what} must be a single value, not a list or mapping"),
            );
            None
        }
    }
}

/// A whole number in `min..=max`.
pub(crate) fn number(errs: &mut Errs, n: &Y<'_>, what: &str, min: u32, max: u32) -> Option<u32> {
    match &n.data {
        YamlData::Value(Scalar::Integer(i)) if (i64::from(min)..=i64::from(max)).contains(i) => {
            u32::try_from(*i).ok()
        }
        YamlData::Value(Scalar::Integer(i)) => {
            errs.at(pos(n), format!("{what} is {i}; use {min} to {max}"));
            None
        }
        _ => {
            errs.at(
                pos(n),
                format!("{what} must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

/// A boolean.
pub(crate) fn boolean(errs: &mut Errs, n: &Y<'_>, what: &str) -> Option<bool> {
    if let YamlData::Value(Scalar::Boolean(b)) = &n.data {
        Some(*b)
    } else {
        errs.at(pos(n), format!("{what} must be true or false"));
        None
    }
}

/// The items of a list; a single value counts as a list of one.
pub(crate) fn items<'a, 'i>(n: &'a Y<'i>) -> Vec<&'a Y<'i>> {
    match &n.data {
        YamlData::Sequence(s) => s.iter().collect(),
        _ => vec![n],
    }
}

/// A list that must be written as a YAML list (`- item` lines or `[a, b]`).
pub(crate) fn sequence<'a, 'i>(
    errs: &mut Errs,
    n: &'a Y<'i>,
    what: &str,
) -> Option<Vec<&'a Y<'i>>> {
    if let YamlData::Sequence(s) = &n.data {
        Some(s.iter().collect())
    } else {
        errs.at(
            pos(n),
            format!("{what} must be a list (lines starting with `- `)"),
        );
        None
    }
}

/// The entries of a mapping whose keys are names chosen by the author (nodes,
/// calendars, attributes), with their key positions.
pub(crate) fn named_entries<'a, 'i>(
    errs: &mut Errs,
    n: &'a Y<'i>,
    what: &str,
) -> Option<Vec<(String, Pos, &'a Y<'i>)>> {
    let YamlData::Mapping(map) = &n.data else {
        errs.at(
            pos(n),
            format!("{what} must be a mapping of `name: …` entries"),
        );
        return None;
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map.iter() {
        if let Some(name) = text(errs, k, &format!("a name in {what}")) {
            out.push((name, pos(k), v));
        }
    }
    Some(out)
}

/// Checks a name the author chose (node, calendar, attribute, prompt id) with the rule
/// ids follow everywhere in Hotline: 1–64 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(errs: &mut Errs, at: Pos, what: &str, name: &str) -> bool {
    let ok = !name.is_empty()
        && name.len() <= hotline_core::ids::MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        errs.at(
            at,
            format!(
                "{what} {name:?} must be 1-64 characters of ASCII letters, digits, '_', '-' and '.'"
            ),
        );
    }
    ok
}
