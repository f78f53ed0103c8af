//! `ferry status RUN --watch` and `ferry log RUN -f`: live views of a run
//! another process drives. The journal is the only channel between them (the
//! driver may be on another machine sharing the state), so these poll the
//! store at a modest interval and print only when something changed.

use super::args::Format;
use super::inspect::{Snapshot, record_fingerprint, render_record, render_status};
use super::output::emit;
use crate::error::{Result, exit};
use crate::journal::Store;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

/// How often the journal is read: fast enough to feel live, slow enough to
/// cost the driver nothing (one read transaction per poll).
const POLL: Duration = Duration::from_millis(300);

/// Prints the status again whenever it changes, until the run is finished
/// (succeeded, rolled back or aborted) or the user leaves (Ctrl-C).
pub fn watch(store: &dyn Store, id: &str, format: Format) -> Result<i32> {
    let clear = format == Format::Text && std::io::stdout().is_terminal();
    let mut last = String::new();
    loop {
        let snap = Snapshot::load(store, id)?;
        let fingerprint = snap.fingerprint();
        if fingerprint != last {
            last = fingerprint;
            let text = match format {
                Format::Text if clear => format!("\x1b[2J\x1b[H{}", render_status(&snap)),
                Format::Text => format!("{}\n", render_status(&snap)),
                // One document per line, so a reader can take them one by one.
                Format::Json => serde_json::to_string(&snap.to_json()).unwrap_or_default() + "\n",
                Format::Yaml => format!(
                    "---\n{}",
                    serde_yaml_ng::to_string(&snap.to_json()).unwrap_or_default()
                ),
            };
            emit(&text)?;
        }
        if snap.finished() {
            return Ok(exit::SUCCEEDED);
        }
        std::thread::sleep(POLL);
    }
}

/// Prints every record, then each record again when it changes (numbered
/// by its place in the run), until the run is no longer driven.
pub fn follow_log(store: &dyn Store, id: &str, json_lines: bool) -> Result<i32> {
    let mut printed: HashMap<(String, String), String> = HashMap::new();
    let mut header = !json_lines;
    // A run just started may not hold its lock yet: it counts as stopped
    // only once two reads in a row find nobody driving it.
    let mut idle_polls = 0;
    loop {
        let snap = Snapshot::load(store, id)?;
        let mut text = String::new();
        if header {
            text.push_str(&super::inspect::render_run(&snap.run, &snap.state()));
            header = false;
        }
        for (i, step) in snap.steps.iter().enumerate() {
            let key = (step.kind.to_string(), step.name.clone());
            let fingerprint = record_fingerprint(step);
            if printed.get(&key) == Some(&fingerprint) {
                continue;
            }
            printed.insert(key, fingerprint);
            if json_lines {
                text.push_str(&serde_json::to_string(step).unwrap_or_default());
                text.push('\n');
            } else {
                text.push_str(&render_record(i + 1, step));
            }
        }
        if !text.is_empty() {
            emit(&text)?;
        }
        idle_polls = if snap.lock.held { 0 } else { idle_polls + 1 };
        if snap.finished() || idle_polls >= 2 {
            if !json_lines {
                emit(&format!("run {} is {}\n", snap.run.id, snap.state()))?;
            }
            return Ok(exit::SUCCEEDED);
        }
        std::thread::sleep(POLL);
    }
}
