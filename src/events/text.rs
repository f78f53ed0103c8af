//! Text as a terminal shows it: names and messages with control characters
//! escaped (a step named with an ANSI escape or a newline must neither act
//! on the terminal nor break the layout), and lines fitted to a width with
//! an ellipsis (the full values are in `ferry describe`). Shared by the live
//! display, the plain lines and the read commands (`status`, `log`, ...).

/// `text` as one safe line: control characters (ANSI escapes, newlines,
/// tabs) shown escaped (`\u{1b}`, `\n`).
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Display columns of `text` (wide characters count two, ANSI styling none).
pub fn width(text: &str) -> usize {
    console::measure_text_width(text)
}

/// `text` cut to at most `columns` display columns, ending in `…` when cut.
pub fn fit(text: &str, columns: usize) -> String {
    console::truncate_str(text, columns, "…").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(escape("a\nb\u{1b}[31mred"), "a\\nb\\u{1b}[31mred");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_to_the_columns() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("0123456789abc", 10), "012345678…");
        assert_eq!(width(&fit("✔ 値値値値値値値値値値", 9)), 9);
        assert!(width(&fit("⏳ wait 1234567890", 8)) <= 8);
    }
}
