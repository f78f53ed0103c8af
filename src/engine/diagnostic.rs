//! Script errors for people: `file:line:col`, the source line, a caret, and
//! the call chain through functions and imported modules.

use rhai::{EvalAltResult, ParseError, Position};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Every script and module text the engine has loaded, by source label (the
/// name Rhai reports positions against), so errors can quote them.
#[derive(Default)]
pub struct Sources {
    map: RwLock<HashMap<String, Source>>,
}

#[derive(Clone)]
pub struct Source {
    /// What to print: a path as the user would type it.
    pub display: String,
    pub text: Arc<str>,
}

impl Sources {
    pub fn insert(&self, label: &str, display: String, text: Arc<str>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(label.to_owned(), Source { display, text });
    }

    pub fn get(&self, label: &str) -> Option<Source> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(label)
            .cloned()
    }

    /// Every source's text by label, as the journal records them.
    pub fn texts(&self) -> std::collections::BTreeMap<String, String> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(label, source)| (label.clone(), source.text.to_string()))
            .collect()
    }

    /// How many sources are loaded (a new module makes it grow).
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where a journal position (`label:line:col`) points, for people.
    pub fn display_position(&self, position: &str) -> String {
        let mut parts = position.rsplitn(3, ':');
        let (col, line, label) = (parts.next(), parts.next(), parts.next());
        match (label, line, col) {
            (Some(label), Some(line), Some(col)) => {
                format!("{}:{line}:{col}", self.display(label))
            }
            _ => position.to_owned(),
        }
    }

    /// What to print for a source label.
    pub fn display_label(&self, label: &str) -> String {
        self.display(label)
    }

    fn display(&self, label: &str) -> String {
        self.get(label)
            .map(|s| s.display)
            .unwrap_or_else(|| label.to_owned())
    }

    /// `display:line:col`
    pub fn locate(&self, label: &str, pos: Position) -> String {
        match (pos.line(), pos.position()) {
            (Some(line), Some(col)) => format!("{}:{line}:{col}", self.display(label)),
            (Some(line), None) => format!("{}:{line}", self.display(label)),
            _ => self.display(label),
        }
    }

    /// The source line with a caret under the column, indented for a report.
    fn excerpt(&self, label: &str, pos: Position) -> Option<String> {
        let source = self.get(label)?;
        let line_no = pos.line()?;
        let line = source.text.lines().nth(line_no - 1)?;
        let col = pos.position().unwrap_or(1).max(1);
        let gutter = line_no.to_string().len();
        // Tabs keep their width under the caret.
        let pad: String = line
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        Some(format!(
            "{:gutter$} |\n{line_no} | {line}\n{:gutter$} | {pad}^",
            "",
            "",
            gutter = gutter
        ))
    }
}

/// The innermost error of a chain, with the label of the source it happened in
/// and the chain of calls that led there (outermost first).
pub struct Located<'a> {
    pub error: &'a EvalAltResult,
    pub label: String,
    pub chain: Vec<(String, String, Position)>,
}

pub fn locate<'a>(err: &'a EvalAltResult, main_label: &str) -> Located<'a> {
    let mut label = main_label.to_owned();
    let mut chain = Vec::new();
    let mut error = err;
    loop {
        match error {
            EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                let what = if name.starts_with("anon$") {
                    "in closure".to_owned()
                } else {
                    format!("in call to `{name}`")
                };
                chain.push((what, label.clone(), *pos));
                if !source.is_empty() {
                    label = source.clone();
                }
                error = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                chain.push((format!("in module `{path}`"), label.clone(), *pos));
                label = path.clone();
                error = inner;
            }
            _ => {
                return Located {
                    error,
                    label,
                    chain,
                };
            }
        }
    }
}

/// The error's own words, without Rhai's "(line x, position y)" suffix.
pub fn message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) if value.is_string() => {
            value.clone().into_string().unwrap_or_default()
        }
        EvalAltResult::ErrorRuntime(value, _) if value.is::<super::host_error::HostError>() => {
            value
                .read_lock::<super::host_error::HostError>()
                .map(|e| e.message())
                .unwrap_or_default()
        }
        // Scripts that throw maps carry their text in `message`, like host errors.
        EvalAltResult::ErrorRuntime(value, _) if value.is_map() => {
            match value.clone().cast::<rhai::Map>().get("message") {
                Some(message) => message.to_string(),
                None => format!("{value}"),
            }
        }
        EvalAltResult::ErrorRuntime(value, _) => format!("{value}"),
        EvalAltResult::ErrorParsing(kind, _) => kind.to_string(),
        _ => {
            // Rhai appends " (line L, position C)"; the report shows it better.
            let text = err.to_string();
            match text.rfind(" (line ") {
                Some(at) if text.ends_with(')') => text[..at].to_owned(),
                _ => text,
            }
        }
    }
}

/// A full report: message, location, excerpt, call chain.
pub fn render(err: &EvalAltResult, main_label: &str, sources: &Sources) -> String {
    let located = locate(err, main_label);
    let pos = located.error.position();
    let mut out = format!(
        "error: {}\n  --> {}",
        message(located.error),
        sources.locate(&located.label, pos)
    );
    if let Some(excerpt) = sources.excerpt(&located.label, pos) {
        out.push('\n');
        out.push_str(&excerpt);
    }
    for (what, label, pos) in located.chain.iter().rev() {
        out.push_str(&format!("\n  = {what} at {}", sources.locate(label, *pos)));
    }
    out
}

/// One line: `message (at file:line:col)`, for the journal and progress lines.
pub fn summary(err: &EvalAltResult, main_label: &str, sources: &Sources) -> String {
    let located = locate(err, main_label);
    let pos = located.error.position();
    if pos.is_none() {
        return message(located.error);
    }
    format!(
        "{} (at {})",
        message(located.error),
        sources.locate(&located.label, pos)
    )
}

pub fn render_parse(err: &ParseError, label: &str, sources: &Sources) -> String {
    render(
        &EvalAltResult::ErrorParsing(err.err_type().clone(), err.position()),
        label,
        sources,
    )
}
