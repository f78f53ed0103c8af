//! The board's pages as maud templates: every string from a script, a
//! cluster or the journal goes through maud's escaping (`(value)` in a
//! template), nothing is concatenated into HTML by hand. A page is a
//! layout around one `<main>` fragment; the live stream sends the same
//! fragment again whenever it changes (`crate::board::routes`).

use super::chart;
use super::fleet::{AppRow, Fleet};
use crate::journal::{
    Claim, Gate, LockState, Run, RunStatus, Step, StepKind, StepStatus, UndoStatus, format_ms,
};
use crate::probes::series::Series;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::BTreeMap;

/// The stylesheet, served as `/board.css`.
pub const CSS: &str = include_str!("board.css");
/// The live-update script, served as `/board.js`.
pub const JS: &str = include_str!("board.js");

/// A fingerprint of a `<main>` fragment: the live stream sends a fragment
/// only when it differs from the one the page already shows.
pub fn version(main: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    main.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A whole page: `main` is what the live stream replaces.
pub fn page(title: &str, live: &str, main: Markup) -> Markup {
    let version = version(&main.0);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ferry board" }
                link rel="stylesheet" href="/board.css";
                script src="/board.js" defer {}
            }
            body data-live=(live) data-version=(version) {
                header {
                    a.brand href="/" { "ferry board" }
                    span.live #live title="updates as the journal changes" { "live" }
                }
                main #main { (main) }
            }
        }
    }
}

/// A page that only says something went wrong (or was refused).
pub fn message(title: &str, text: &str) -> Markup {
    html! {
        h1 { (title) }
        p.notice { (text) }
        p { a href="/" { "back to the fleet" } }
    }
}

/// A run's status; a run recorded running whose driver is gone says so.
fn run_badge(status: RunStatus, dead: bool) -> Markup {
    if dead {
        html! { span.badge.st-failed title="recorded running, but no live process holds it: ferry resume continues it" { "running (driver died)" } }
    } else {
        status_badge(status)
    }
}

fn status_badge(status: RunStatus) -> Markup {
    html! { span class={ "badge st-" (status.as_str()) } { (status.as_str()) } }
}

/// Percent-encodes a URL path segment (a run id or a gate name).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn when(ms: i64) -> String {
    format_ms(ms)
}

/// What the fleet view filters by (`/?status=&namespace=&cluster=&phase=&q=&group=`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FleetFilter {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub q: String,
    /// `namespace` (the default), `status`, `phase` or `none`.
    #[serde(default)]
    pub group: String,
}

impl FleetFilter {
    fn keeps(&self, fleet: &Fleet, row: &AppRow) -> bool {
        let is = |want: &str, have: Option<&str>| want.is_empty() || have == Some(want);
        is(&self.status, Some(row.latest.status.as_str()))
            && is(&self.namespace, row.namespace.as_deref())
            && is(&self.cluster, row.cluster.as_deref())
            && is(&self.phase, Some(furthest_name(fleet, row)))
            && (self.q.is_empty() || {
                let q = self.q.to_lowercase();
                row.app.to_lowercase().contains(&q)
                    || row
                        .namespace
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(&q))
                    || row.latest.id.to_lowercase().contains(&q)
            })
    }

    fn group_of(&self, fleet: &Fleet, row: &AppRow) -> String {
        match self.group.as_str() {
            "none" => String::new(),
            "status" => row.latest.status.as_str().to_owned(),
            "phase" => furthest_name(fleet, row).to_owned(),
            _ => row
                .namespace
                .clone()
                .unwrap_or_else(|| "(no namespace recorded)".into()),
        }
    }
}

fn furthest_name<'a>(fleet: &'a Fleet, row: &AppRow) -> &'a str {
    row.furthest()
        .map(|i| fleet.phases[i].as_str())
        .unwrap_or("not started")
}

/// A gate some run waits at, for the fleet's "waiting" list.
pub struct Waiting {
    pub run: String,
    pub gate: Gate,
    pub approvers: Option<Vec<String>>,
}

/// The fleet view's `<main>`.
/// The fleet view's `<main>`; `dead`: runs recorded running that no live
/// process drives.
pub fn fleet(
    fleet: &Fleet,
    runs: &[Run],
    waiting: &[Waiting],
    dead: &std::collections::HashSet<String>,
    filter: &FleetFilter,
) -> Markup {
    // The filters' choices: each value the rows have, once, in order.
    let distinct = |of: fn(&AppRow) -> Option<&str>| -> Vec<&str> {
        let mut values: Vec<&str> = fleet.rows.iter().filter_map(of).collect();
        values.sort_unstable();
        values.dedup();
        values
    };
    let namespaces = distinct(|r| r.namespace.as_deref());
    let clusters = distinct(|r| r.cluster.as_deref());
    let shown: Vec<&AppRow> = fleet
        .rows
        .iter()
        .filter(|r| filter.keeps(fleet, r))
        .collect();
    let mut groups: BTreeMap<String, Vec<&AppRow>> = BTreeMap::new();
    for row in &shown {
        groups
            .entry(filter.group_of(fleet, row))
            .or_default()
            .push(row);
    }
    let mut by_phase = vec![0usize; fleet.phases.len()];
    for row in &fleet.rows {
        if let Some(i) = row.furthest() {
            by_phase[i] += 1;
        }
    }
    let statuses: Vec<&str> = [
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Succeeded,
        RunStatus::RollingBack,
        RunStatus::RolledBack,
        RunStatus::RollbackFailed,
        RunStatus::Aborted,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    let select = |name: &str, label: &str, current: &str, options: &[&str]| {
        html! {
            label { (label) " "
                select name=(name) {
                    option value="" { "any" }
                    @for o in options {
                        option value=(o) selected[*o == current] { (o) }
                    }
                }
            }
        }
    };
    let phase_options: Vec<&str> = std::iter::once("not started")
        .chain(fleet.phases.iter().map(String::as_str))
        .collect();
    html! {
        h1 { "Fleet" }
        p.summary #fleet-summary {
            (plural(fleet.rows.len(), "app")) " in " (plural(runs.len(), "run")) "; furthest phase:"
            @for (i, phase) in fleet.phases.iter().enumerate() {
                " · " span class={ "ph ph" (i.min(4)) } { (phase) } " " (by_phase[i])
            }
        }
        @if !waiting.is_empty() {
            section.waiting #waiting {
                h2 { "Waiting at gates" }
                ul {
                    @for w in waiting {
                        li {
                            a href={ "/runs/" (segment(&w.run)) } { (w.run) } " waits at "
                            code { (w.gate.name) } ": " (w.gate.message)
                            " (since " (when(w.gate.requested_at)) ")"
                            @if let Some(approvers) = &w.approvers {
                                " · for " (approvers.join(", "))
                            }
                        }
                    }
                }
            }
        }
        form.filters method="get" action="/" {
            input type="search" name="q" value=(filter.q) placeholder="search app, namespace, run";
            (select("status", "status", &filter.status, &statuses))
            (select("namespace", "namespace", &filter.namespace, &namespaces))
            (select("cluster", "cluster", &filter.cluster, &clusters))
            (select("phase", "phase", &filter.phase, &phase_options))
            label { "group by "
                select name="group" {
                    @for (value, text) in [("namespace", "namespace"), ("status", "run status"), ("phase", "phase"), ("none", "nothing")] {
                        option value=(value) selected[filter.group == value || (filter.group.is_empty() && value == "namespace")] { (text) }
                    }
                }
            }
            button type="submit" { "show" }
        }
        @if shown.is_empty() {
            p.notice { @if fleet.rows.is_empty() { "No app has reached a phase yet: runs of the stdlib recipe (or scripts calling phase(app, name)) show up here." } @else { "No app matches." } }
        } @else {
            table.fleet #fleet {
                thead {
                    tr {
                        th { "app" } th { "namespace" } th { "cluster" }
                        @for phase in &fleet.phases { th.phase { (phase) } }
                        th { "latest run" } th { "status" } th { "started by" } th { "when" }
                    }
                }
                @for (group, rows) in &groups {
                    @if !group.is_empty() {
                        tbody.group {
                            tr { th.group colspan=(fleet.phases.len() + 7) { (group) " (" (rows.len()) ")" } }
                        }
                    }
                    tbody {
                        @for row in rows {
                            tr.app data-app=(row.app) {
                                td.name { (row.app) }
                                td { (row.namespace.as_deref().unwrap_or("")) }
                                td { (row.cluster.as_deref().unwrap_or("")) }
                                @for (i, cell) in row.phases.iter().enumerate() {
                                    @match cell {
                                        Some((run, at)) => {
                                            td class={ "cell ph" (i.min(4)) } data-phase=(fleet.phases[i]) title={ (fleet.phases[i]) " by run " (run.id) @if let Some(at) = at { " at " (when(*at)) } } {
                                                a href={ "/runs/" (segment(&run.id)) } { "✔" }
                                            }
                                        }
                                        None => { td.cell.none data-phase=(fleet.phases[i]) { "·" } }
                                    }
                                }
                                td { a href={ "/runs/" (segment(&row.latest.id)) } { (row.latest.id) } }
                                td { (run_badge(row.latest.status, dead.contains(&row.latest.id))) }
                                td { (row.latest.started_by.as_deref().unwrap_or("")) }
                                td.when { (when(row.latest.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Runs" }
        table.runs #runs {
            thead { tr { th { "run" } th { "status" } th { "script" } th { "started by" } th { "started" } th { "updated" } } }
            tbody {
                @for run in runs.iter().take(200) {
                    tr {
                        td { a href={ "/runs/" (segment(&run.id)) } { (run.id) } }
                        td { (run_badge(run.status, dead.contains(&run.id))) }
                        td { (run.script.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()) }
                        td { (run.started_by().unwrap_or("")) }
                        td.when { (when(run.created_at)) }
                        td.when { (when(run.updated_at)) }
                    }
                }
            }
        }
        @if runs.len() > 200 {
            p.notice { "The 200 newest runs of " (runs.len()) "; `ferry runs` lists them all." }
        }
    }
}

/// What the run view shows.
pub struct RunView<'a> {
    pub run: &'a Run,
    pub steps: &'a [Step],
    pub gates: &'a [Gate],
    pub lock: &'a LockState,
    pub claims: &'a [Claim],
    /// The session's CSRF token, when this browser may approve.
    pub csrf: Option<&'a str>,
    /// Whether the board was started with `--allow-approve`.
    pub allow_approve: bool,
    /// The outcome of an approval just tried.
    pub notice: Option<&'a str>,
}

fn short(value: &serde_json::Value, max: usize) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= max {
        text
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

fn duration(ms: i64) -> String {
    crate::events::format_duration(ms.max(0) as u64)
}

/// The run view's `<main>`.
pub fn run(view: &RunView) -> Markup {
    let run = view.run;
    let steps = view.steps;
    let records: Vec<&Step> = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Step | StepKind::Gate | StepKind::Sleep))
        .collect();
    let first = records
        .iter()
        .filter_map(|s| s.started_at)
        .min()
        .unwrap_or(run.created_at);
    let last = records
        .iter()
        .filter_map(|s| s.ended_at.or(s.started_at))
        .max()
        .unwrap_or(run.updated_at)
        .max(first + 1);
    let span = (last - first) as f64;
    let resumed_at = run
        .actions
        .iter()
        .rev()
        .find(|a| a.action == crate::journal::ActionKind::Resume)
        .map(|a| a.at);
    let parents: std::collections::HashMap<&str, Option<&str>> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Step)
        .map(|s| (s.name.as_str(), s.parent.as_deref()))
        .collect();
    let depth_of = |step: &Step| {
        let mut depth = 0;
        let mut parent = step.parent.as_deref();
        while let Some(p) = parent {
            depth += 1;
            if depth > 16 {
                break;
            }
            parent = parents.get(p).copied().flatten();
        }
        depth
    };
    let guards: Vec<(&Step, &serde_json::Value)> = steps
        .iter()
        .filter_map(|s| Some((s, s.data.as_ref()?.get("guard")?)))
        .collect();
    let phases: Vec<&Step> = steps.iter().filter(|s| s.kind == StepKind::Phase).collect();
    let finished = crate::runner::finished(run.status);
    html! {
        h1 { "Run " code { (run.id) } " " (run_badge(run.status, run.status == RunStatus::Running && !view.lock.held)) }
        @if let Some(notice) = view.notice { p.notice #notice { (notice) } }
        dl.facts {
            dt { "script" } dd { (run.script.display().to_string()) }
            dt { "started" } dd { (when(run.created_at)) " by " (run.started_by().unwrap_or("?")) }
            dt { "updated" } dd { (when(run.updated_at)) }
            @if run.dry_run { dt { "mode" } dd { "dry run" } }
            dt { "driver" } dd #lock {
                @match (&view.lock.holder, view.lock.held) {
                    (Some(h), true) => { (h.to_string()) " (alive)" }
                    (Some(h), false) if run.status == RunStatus::Running => { "died: " (h.to_string()) " is gone without recording how the run ended" }
                    (Some(h), false) => { "none (last: " (h.to_string()) ")" }
                    (None, _) => { "none" }
                }
            }
            @if !view.claims.is_empty() {
                dt { "holds" } dd { @for (i, c) in view.claims.iter().enumerate() { @if i > 0 { ", " } code { (c.key) } } }
            }
            @if let Some(error) = &run.error { dt { "error" } dd { pre.error { (error) } } }
        }
        @if !run.params.is_empty() {
            h2 { "Parameters" }
            table.params { @for (k, v) in &run.params { tr { th { (k) } td { code { (v) } } } } }
        }
        @if !view.gates.is_empty() {
            h2 { "Gates" }
            table.gates #gates {
                thead { tr { th { "gate" } th { "why" } th { "requested" } th { "approvers" } th { "approved" } } }
                tbody {
                    @for gate in view.gates {
                        @let approvers = crate::journal::gate_approvers(steps, &gate.name);
                        tr data-gate=(gate.name) class=(if gate.approved_at.is_some() { "approved" } else { "waiting" }) {
                            td { code { (gate.name) } }
                            td { (gate.message) }
                            td.when { (when(gate.requested_at)) }
                            td { (approvers.as_ref().map(|a| a.join(", ")).unwrap_or_else(|| "anyone".into())) }
                            td.approval {
                                @if let (Some(at), by) = (gate.approved_at, &gate.approved_by) {
                                    "approved by " (by.as_deref().unwrap_or("?")) " at " (when(at))
                                } @else if finished {
                                    "never approved (the run has ended)"
                                } @else if let Some(csrf) = view.csrf {
                                    form.approve method="post" action={ "/runs/" (segment(&run.id)) "/gates/" (segment(&gate.name)) "/approve" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="text" name="name" required placeholder="your name" autocomplete="name";
                                        button type="submit" { "approve" }
                                    }
                                } @else if view.allow_approve {
                                    "waiting · open the token URL the board printed to approve here"
                                } @else {
                                    "waiting · ferry approve " (run.id) " " (gate.name)
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !phases.is_empty() {
            h2 { "Phases" }
            p.phases { @for p in &phases { span.ph.ph0 title=(p.ended_at.map(when).unwrap_or_default()) { (p.name) } " " } }
        }
        @if !guards.is_empty() {
            h2 { "Guarded flips" }
            @for (step, guard) in &guards {
                section.guard data-step=(step.name) {
                    h3 {
                        (step.name) " "
                        @if guard.get("ok").and_then(|v| v.as_bool()) == Some(false) { span.badge.st-failed { "broke its limits" } } @else { span.badge.st-succeeded { "held" } }
                    }
                    p.summary { (guard.get("target").and_then(|v| v.as_str()).unwrap_or("")) ": " (guard.get("summary").and_then(|v| v.as_str()).unwrap_or("")) }
                    @match guard.get("series").and_then(Series::from_json) {
                        Some(series) => {
                            @match chart::guard_svg(&series, guard.get("flip_ms").and_then(|v| v.as_u64())) {
                                Ok(svg) => { div.chart { (PreEscaped(svg)) } }
                                Err(e) => { p.notice { (e) } }
                            }
                        }
                        None => { p.notice { "No time series was recorded for this guard (a journal from an older ferry)." } }
                    }
                }
            }
        }
        h2 { "Timeline" }
        p.legend { (records.len()) " records from " (when(first)) " to " (when(last)) " (" (duration(last - first)) ")" }
        table.timeline #timeline {
            thead { tr { th { "step" } th { "status" } th { "tries" } th.barcol { "when" } th { "took" } th { "value / error" } } }
            tbody {
                @for step in &records {
                    @let start = step.started_at.unwrap_or(first);
                    @let end = step.ended_at.unwrap_or(if step.status == StepStatus::Running { last } else { start });
                    @let left = (start - first) as f64 / span * 100.0;
                    @let width = ((end - start) as f64 / span * 100.0).max(0.3);
                    @let replayed = step.status == StepStatus::Completed && resumed_at.is_some_and(|r| step.ended_at.is_some_and(|e| e < r));
                    tr class={ "k-" (step.kind.as_str()) " s-" (step.status.as_str()) } data-step=(step.name) {
                        td.name style={ "padding-left:" (0.4 + depth_of(step) as f64 * 1.2) "em" } {
                            @if step.kind != StepKind::Step { span.kind { (step.kind.as_str()) } " " }
                            (step.name)
                        }
                        td {
                            (step.status.as_str())
                            @if replayed { " · replayed" }
                            @match step.undo { UndoStatus::Done => { " · undone" } UndoStatus::Failed => { " · undo failed" } UndoStatus::Running => { " · undoing" } _ => {} }
                        }
                        td.num { (step.attempts) }
                        td.barcol { div.track { i style={ "left:" (format!("{left:.2}")) "%;width:" (format!("{width:.2}")) "%" } {} } }
                        td.num { @if step.ended_at.is_some() { (duration(end - start)) } }
                        td.value {
                            @if let Some(error) = &step.error {
                                span.error { (error) } br; span.pos { "at " (step.position) }
                            } @else if let Some(error) = &step.undo_error {
                                span.error { "undo: " (error) }
                            } @else if let Some(value) = &step.value {
                                @if !value.is_null() { code { (short(value, 120)) } }
                            }
                        }
                    }
                }
            }
        }
        @if !run.actions.is_empty() {
            h2 { "Who did what" }
            ul.actions {
                @for a in &run.actions {
                    li { (when(a.at)) " · " (a.action.as_str()) " · " (a.by) @if let Some(d) = &a.detail { " · " (d) } }
                }
            }
        }
        @if !run.sources.is_empty() {
            h2 { "Script as recorded" }
            @for (label, text) in &run.sources {
                details.source {
                    summary { code { (label) } " (" (text.lines().count()) " lines)" }
                    pre { (text) }
                }
            }
        }
    }
}
