//! What changed in a run's script and modules since the journal recorded
//! them, as a unified diff per changed source.

use similar::TextDiff;
use std::collections::BTreeMap;

/// Lines of diff shown at most; the rest is summarized.
const MAX_LINES: usize = 200;

/// The unified diff of every recorded source whose current text (`current`,
/// `None` when it can no longer be found) differs; `None` if nothing changed.
pub fn diff(
    recorded: &BTreeMap<String, String>,
    current: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::new();
    for (label, old) in recorded {
        let new = current(label);
        if new.as_deref() == Some(old.as_str()) {
            continue;
        }
        let new_text = new.clone().unwrap_or_default();
        let to = if new.is_some() {
            format!("b/{label}")
        } else {
            "/dev/null (no longer found)".to_owned()
        };
        let text = TextDiff::from_lines(old.as_str(), new_text.as_str())
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{label}"), &to)
            .to_string();
        out.push_str(&text);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if out.is_empty() {
        return None;
    }
    let lines: Vec<&str> = out.lines().collect();
    if lines.len() > MAX_LINES {
        let mut short = lines[..MAX_LINES].join("\n");
        short.push_str(&format!("\n... {} more lines", lines.len() - MAX_LINES));
        return Some(short);
    }
    Some(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_a_unified_diff() {
        let recorded = BTreeMap::from([
            (
                "a.rhai".to_owned(),
                "let x = 1;\nstep(\"s\", || x);\n".to_owned(),
            ),
            ("lib/b.rhai".to_owned(), "fn f() { 2 }\n".to_owned()),
        ]);
        let diff = diff(&recorded, |label| match label {
            "a.rhai" => Some("let x = 2;\nstep(\"s\", || x);\n".to_owned()),
            _ => Some("fn f() { 2 }\n".to_owned()),
        })
        .expect("a change");
        assert!(diff.contains("--- a/a.rhai"), "{diff}");
        assert!(diff.contains("+++ b/a.rhai"), "{diff}");
        assert!(diff.contains("-let x = 1;"), "{diff}");
        assert!(diff.contains("+let x = 2;"), "{diff}");
        assert!(!diff.contains("lib/b.rhai"), "{diff}");
    }

    #[test]
    fn nothing_changed_is_none_and_a_vanished_module_is_a_change() {
        let recorded = BTreeMap::from([("a.rhai".to_owned(), "1\n".to_owned())]);
        assert_eq!(diff(&recorded, |_| Some("1\n".to_owned())), None);
        let gone = diff(&recorded, |_| None).expect("a change");
        assert!(gone.contains("no longer found"), "{gone}");
    }
}
