//! Plain lines for logs and pipes (stdout is not a terminal).

use super::show::{Shown, show};
use super::{Event, EventSink};
use std::io::Write;

pub struct PlainSink {
    pub verbose: bool,
}

impl PlainSink {
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

impl EventSink for PlainSink {
    fn emit(&self, run: &str, event: &Event) {
        match show(run, event, self.verbose) {
            Some(Shown::Start { line, .. }) => self.line(line),
            Some(Shown::Lines { lines, .. }) => lines.into_iter().for_each(|l| self.line(l)),
            Some(Shown::Progress { .. }) | None => {}
        }
    }
}
