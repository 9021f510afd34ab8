//! Problems found in a scenario file, and how they are shown.
//!
//! Every problem has a byte span into the file; line and column (1-based, columns in
//! characters) are derived from it. [`ScenarioErrors`] prints one line per problem,
//! `path:line:col: message`, for terminals, CI logs and editors' "jump to error", and is
//! a [`miette::Diagnostic`] with one label per problem for the pretty rendering.
//!
//! A file that cannot be read has no position: its one problem has line 0 and column 0
//! and prints as `path: message`, and it carries no label.
//!
//! The API secret never shows: messages do not quote it, and the source text kept for
//! the labelled snippets has the secret's characters replaced by `*` (same byte length,
//! so every span stays valid). `Debug` omits the source text altogether.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as given to [`super::parse`] or [`super::load`].
    pub path: String,
    /// 1-based; 0 when the problem has no position (unreadable file).
    pub line: usize,
    /// 1-based, in characters; 0 when the problem has no position.
    pub column: usize,
    pub message: String,
    /// Bytes of the file the problem is about.
    pub span: Range<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in one scenario file (never empty), ordered by position.
pub struct ScenarioErrors {
    pub problems: Vec<Problem>,
    source: NamedSource<String>,
    positioned: bool,
}

impl ScenarioErrors {
    /// Problems at byte spans of `source` (already redacted by the caller).
    pub(crate) fn new(path: &str, source: String, mut found: Vec<(Range<usize>, String)>) -> Self {
        found.sort_by(|a, b| (a.0.start, a.0.end, &a.1).cmp(&(b.0.start, b.0.end, &b.1)));
        found.dedup();
        let problems = found
            .into_iter()
            .map(|(span, message)| {
                let (line, column) = line_col(&source, span.start);
                Problem {
                    path: path.to_owned(),
                    line,
                    column,
                    message,
                    span,
                }
            })
            .collect();
        ScenarioErrors {
            problems,
            source: NamedSource::new(path, source),
            positioned: true,
        }
    }

    /// The file could not be read at all.
    pub(crate) fn unreadable(path: &str, message: String) -> Self {
        let problem = Problem {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
            span: 0..0,
        };
        ScenarioErrors {
            problems: vec![problem],
            source: NamedSource::new(path, String::new()),
            positioned: false,
        }
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
}

/// 1-based line and character column of byte `offset`.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioErrors")
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for ScenarioErrors {}

impl Diagnostic for ScenarioErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("sfu_harness::scenario"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let n = self.problems.len();
        (n > 1).then(|| Box::new(format!("{n} problems in this file")) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.positioned.then_some(&self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if !self.positioned {
            return None;
        }
        Some(Box::new(self.problems.iter().map(|p| {
            LabeledSpan::new(Some(p.message.clone()), p.span.start, p.span.len())
        })))
    }
}

/// `"; did you mean `x`?"` when a candidate is close to `found`, else `""`.
pub(crate) fn hint<'a>(found: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(found, candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// The closest candidate within a third of `found`'s length in edits (at least one).
pub(crate) fn did_you_mean<'a>(
    found: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = (found.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(found, c), c))
        .filter(|(d, c)| *d <= max && *d < c.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the
/// commonest typo (`coutn`).
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
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(src, src.find('"').unwrap()), (2, 6));
    }

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let keys = [
            "name",
            "duration",
            "room",
            "sfu",
            "groups",
            "thresholds",
            "expected-failures",
        ];
        assert_eq!(did_you_mean("durration", keys), Some("duration"));
        assert_eq!(did_you_mean("group", keys), Some("groups"));
        assert_eq!(did_you_mean("threshold", keys), Some("thresholds"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(did_you_mean("coutn", ["count"]), Some("count"));
        assert_eq!(
            did_you_mean("identity_prefix", ["identity-prefix"]),
            Some("identity-prefix")
        );
    }

    #[test]
    fn display_prints_one_line_per_problem() {
        let src = "a = 1\nb = 2\n".to_owned();
        let e = ScenarioErrors::new(
            "x.toml",
            src,
            vec![(6..7, "second".into()), (0..1, "first".into())],
        );
        assert_eq!(e.to_string(), "x.toml:1:1: first\nx.toml:2:1: second");
        assert_eq!(
            ScenarioErrors::unreadable("y.toml", "cannot read".into()).to_string(),
            "y.toml: cannot read"
        );
    }
}
