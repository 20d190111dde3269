//! Diagnostics: what is wrong with a flow file, where, and what to do about it.
//!
//! Every problem the parser or the validator finds is a [`Diagnostic`] with a line and
//! column in the file, so `hotline ivr check` prints `FILE:LINE:COL: message` lines an
//! editor can jump to; [`FlowErrors`] carries all of them with the file's name.

use std::fmt;

/// A position in a flow file: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1, in characters.
    pub col: u32,
}

impl Pos {
    /// The position of a YAML node (saphyr counts lines from 1, columns from 0).
    pub(crate) fn of(marker: &saphyr::Marker) -> Pos {
        Pos {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
            col: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem in a flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub pos: Pos,
    /// What is wrong and what would fix it, for a supervisor editing the file.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            message: message.into(),
        }
    }
}

/// Every problem found in one flow file. A flow with any of these never runs and never
/// replaces a working version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FlowErrors {
    /// The file (or the name the text was published under), as printed before each line.
    pub file: String,
    /// The problems, in the order of their positions.
    pub diagnostics: Vec<Diagnostic>,
}

impl FlowErrors {
    /// Errors of `file`, sorted by position.
    pub fn new(file: impl Into<String>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.pos);
        diagnostics.dedup();
        FlowErrors {
            file: file.into(),
            diagnostics,
        }
    }

    /// One `FILE:LINE:COL: message` line per problem.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", self.file, d.pos, d.message))
    }
}

impl fmt::Display for FlowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

/// The candidate closest to `name` when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "x"?` when a candidate is close, else nothing.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(name, candidates).map_or_else(String::new, |c| format!("; did you mean {c:?}?"))
}

/// A comma-separated list of names, for "one of …" messages.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Edit distance over characters, counting a swap of neighbours as one edit (optimal
/// string alignment), so `mian` is one edit from `main`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_a_suggestion_and_a_stranger_does_not() {
        assert_eq!(closest("sale", ["claims", "sales"]), Some("sales"));
        assert_eq!(closest("voicemail", ["claims", "sales"]), None);
        assert_eq!(did_you_mean("mian", ["main"]), "; did you mean \"main\"?");
    }

    #[test]
    fn errors_print_one_located_line_each_in_file_order() {
        let e = FlowErrors::new(
            "f.yaml",
            vec![
                Diagnostic::new(Pos { line: 9, col: 3 }, "b"),
                Diagnostic::new(Pos { line: 2, col: 1 }, "a"),
            ],
        );
        assert_eq!(e.to_string(), "f.yaml:2:1: a\nf.yaml:9:3: b");
    }
}
