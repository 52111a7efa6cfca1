//! Config problems, each naming the file, line, key and a fix.

use std::fmt;

/// One bad key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `apps[2].upstream`; empty for the whole file.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            line: None,
            message: message.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

/// Everything wrong with one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn single(file: String, problem: Problem) -> Self {
        ConfigError {
            file,
            problems: vec![problem],
        }
    }

    /// Adds line numbers to problems that lack one, from their key paths.
    pub fn located(file: String, text: &str, problems: Vec<Problem>) -> Self {
        let doc = toml_edit::Document::parse(text.to_owned()).ok();
        let problems = problems
            .into_iter()
            .map(|p| {
                if p.line.is_some() {
                    return p;
                }
                let line = doc
                    .as_ref()
                    .and_then(|d| locate(d, &p.key))
                    .map(|offset| line_of(text, offset));
                p.at_line(line)
            })
            .collect::<Vec<_>>();
        let mut problems = problems;
        // Report in file order; problems without a line keep their place at the end.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        ConfigError { file, problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if !p.key.is_empty() {
                write!(f, ": {}", p.key)?;
            }
            write!(f, ": {}", p.message)?;
            if let Some(fix) = &p.fix {
                write!(f, " (fix: {fix})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte offset of a key path (`apps[1].timeouts.connect`) in the document:
/// the key itself where it is written, else its table header. Falls back to
/// the nearest enclosing key that exists, so a missing key points at its
/// table.
fn locate(doc: &toml_edit::Document<String>, path: &str) -> Option<usize> {
    let mut table: &toml_edit::Table = doc.as_table();
    let mut best: Option<usize> = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(item) = table.get(name) else { break };
        if let Some(span) = table
            .key(name)
            .and_then(|k| k.span())
            .or_else(|| item.span())
        {
            best = Some(span.start);
        }
        let next = match (item, index) {
            (toml_edit::Item::ArrayOfTables(a), Some(i)) => a.get(i),
            (toml_edit::Item::Table(t), None) => Some(t),
            _ => None,
        };
        match next {
            Some(t) => {
                if let Some(span) = t.span() {
                    best = Some(span.start);
                }
                table = t;
            }
            None => break,
        }
    }
    best
}
