//! How the commands that print data write it: to stdout, stopping quietly
//! when the reader goes away (`ferry log RUN | head -1` must not panic, as
//! `println!` does on a closed pipe), as text, JSON or YAML, with names made
//! safe to show on a terminal.

use super::args::Format;
use crate::error::{Error, Result};
use std::io::Write;

/// Writes `text` to stdout and flushes it; a closed pipe becomes
/// [`Error::OutputClosed`], which ends the command with exit 0 and no message.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::BrokenPipe => Error::OutputClosed,
            _ => Error::Io {
                action: "write",
                path: "stdout".into(),
                source,
            },
        })
}

/// Prints a data document in a machine format (JSON or YAML); `false` for
/// text, which the caller renders itself.
pub fn document(format: Format, value: &serde_json::Value) -> Result<bool> {
    let text = match format {
        Format::Text => return Ok(false),
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        Format::Yaml => serde_yaml_ng::to_string(value).unwrap_or_default(),
    };
    emit(&text).map(|()| true)
}

/// A name or message as one safe line: control characters (ANSI escapes,
/// newlines, tabs) are shown escaped (`\u{1b}`, `\n`) instead of acting on
/// the terminal or breaking the layout. The live display escapes the same way.
pub fn line(text: &str) -> String {
    crate::events::text::escape(text)
}

/// A multi-line text (an error with its caret, a value) indented under a
/// label: each line made safe as by [`line`], continuation lines indented.
pub fn block(text: &str, indent: &str) -> String {
    text.lines()
        .map(line)
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(line("plain name"), "plain name");
        assert_eq!(line("a\nb\u{1b}[31mred"), "a\\nb\\u{1b}[31mred");
        assert_eq!(block("one\ntwo\u{7}", "  "), "one\n  two\\u{7}");
    }
}
