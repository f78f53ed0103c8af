//! Live progress on a terminal: a spinner line per running step with its
//! elapsed time, a countdown bar for waits, then a ✔/✖ line with the
//! duration. Finished lines are printed above the live bars (indicatif's
//! `MultiProgress::println`), so a long run does not keep thousands of bars
//! alive, and a bar is cleared and removed the moment its step, wait or
//! guard ends: nothing stale stays on screen.
//!
//! Every line fits the terminal: live lines are fitted on each redraw (the
//! terminal may be resized while a step runs) and finished lines when they
//! are printed, cut with an ellipsis; `ferry describe` has the full values.
//!
//! Under `parallel`, each branch thread is a *lane* with one live line: the
//! branch's outermost step (which names its item, as branch step names
//! must be unique) and its current step, guard or wait. The finished lines
//! of a branch are held until its outermost step ends and then printed as
//! one block, so ten apps in `parallel` read as ten blocks instead of an
//! interleaved stream.

use super::show::{Shown, show};
use super::text::{fit, width};
use super::{Event, EventSink, format_duration, indent};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

/// The name `parallel` gives its branch threads (src/primitives/parallel.rs):
/// events emitted on such a thread belong to that branch's lane.
const BRANCH_THREAD: &str = "ferry-branch";

pub struct ProgressSink {
    multi: MultiProgress,
    state: Mutex<State>,
    verbose: bool,
}

#[derive(Default)]
struct State {
    /// Live lines outside `parallel`: steps, and their guards and waits.
    bars: HashMap<String, Live>,
    lanes: HashMap<ThreadId, Lane>,
    /// Which lane an open branch step is in (guard progress arrives from
    /// the prober's task, not the branch thread).
    lane_of: HashMap<String, ThreadId>,
}

/// One branch of a `parallel`.
#[derive(Default)]
struct Lane {
    live: Option<Live>,
    /// Open steps, outermost first: (name, label).
    stack: Vec<(String, String)>,
    /// The outermost step's depth: the live line is indented under the
    /// step that called `parallel`, like the lines it will leave.
    depth: usize,
    /// The running guard's counts or wait's countdown, shown after the step.
    detail: Option<Detail>,
    /// Finished lines, printed when the outermost step ends.
    held: Vec<String>,
}

enum Detail {
    Text(String),
    Wait { label: String, remaining_ms: u64 },
}

/// What a live line shows; the bar's template key renders it fitted.
#[derive(Clone, Default)]
struct Text {
    label: String,
    /// A countdown: (total, remaining) in milliseconds.
    countdown: Option<(u64, u64)>,
}

struct Live {
    bar: ProgressBar,
    text: Arc<Mutex<Text>>,
}

impl Live {
    fn text(&self) -> MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_label(&self, label: String) {
        self.text().label = label;
    }
}

/// Columns a line may use: one less than the terminal's, so the cursor
/// never sits in the last column, where terminals differ on wrapping.
fn columns() -> usize {
    (console::Term::stderr().size().1 as usize)
        .saturating_sub(1)
        .max(20)
}

/// `label 3.2s`, or `label [━━━━──] 12s left` for a countdown, in at most
/// `room` columns: the label gives way first, then the bar.
fn render(text: &Text, elapsed: Duration, room: usize) -> String {
    let line = match text.countdown {
        None => {
            let took = format_duration(elapsed.as_millis() as u64);
            let label = fit(&text.label, room.saturating_sub(took.len() + 1));
            format!("{label} {}", console::style(took).dim())
        }
        Some((total, remaining)) => {
            let left = format!(" {} left", format_duration(remaining));
            let label_room = room.saturating_sub(left.len() + 12).max(room / 3);
            let label = fit(&text.label, label_room);
            let bar_room = room.saturating_sub(width(&label) + left.len() + 3).min(30);
            // A zero-length wait is done.
            let done = (bar_room as u64 * total.saturating_sub(remaining))
                .checked_div(total)
                .map_or(bar_room, |d| d as usize);
            let bar = if bar_room == 0 {
                String::new()
            } else {
                format!(
                    " [{}{}]",
                    console::style("━".repeat(done)).cyan(),
                    console::style("─".repeat(bar_room - done)).blue()
                )
            };
            format!("{label}{bar}{left}")
        }
    };
    // Whatever the parts, never wider than the room (a very narrow terminal).
    fit(&line, room)
}

/// A live line at `depth`, drawing `text` fitted to the terminal on every tick.
fn live(multi: &MultiProgress, depth: usize, text: Text) -> Live {
    let lead = indent(depth);
    let countdown = text.countdown.is_some();
    let text = Arc::new(Mutex::new(text));
    let shared = text.clone();
    // The lead is the indent and the spinner (or ⏳, two columns) and a space.
    let lead_width = width(&lead) + if countdown { 3 } else { 2 };
    let template = if countdown {
        format!("{lead}⏳ {{line}}")
    } else {
        format!("{lead}{{spinner:.cyan}} {{line}}")
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "line",
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let text = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let room = columns().saturating_sub(lead_width);
                let _ = out.write_str(&render(&text, state.elapsed(), room));
            },
        );
    let bar = multi.add(ProgressBar::new_spinner().with_style(style));
    bar.enable_steady_tick(Duration::from_millis(100));
    Live { bar, text }
}

impl ProgressSink {
    pub fn new(verbose: bool) -> Self {
        ProgressSink {
            multi: MultiProgress::new(),
            state: Mutex::new(State::default()),
            verbose,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A finished line above the live ones, fitted to the terminal.
    fn println(&self, line: &str) {
        let _ = self.multi.println(fit(line, columns()));
    }

    fn clear(&self, live: Live) {
        live.bar.finish_and_clear();
        self.multi.remove(&live.bar);
    }

    /// The lane an event belongs to, if it happens in a `parallel` branch.
    fn lane_for(&self, state: &State, event: &Event) -> Option<ThreadId> {
        if let Some(id) = step_of(event).and_then(|step| state.lane_of.get(step)) {
            return Some(*id);
        }
        let thread = std::thread::current();
        if thread.name() != Some(BRANCH_THREAD) {
            return None;
        }
        let open = state
            .lanes
            .get(&thread.id())
            .is_some_and(|lane| !lane.stack.is_empty());
        (open || matches!(event, Event::StepStarted { .. })).then(|| thread.id())
    }

    fn in_lane(&self, state: &mut State, id: ThreadId, event: &Event, shown: Shown) {
        let lane = state.lanes.entry(id).or_default();
        match (event, shown) {
            (Event::StepStarted { step, .. }, Shown::Start { label, depth, .. }) => {
                if lane.stack.is_empty() {
                    lane.depth = depth;
                }
                lane.stack.push((step.clone(), label));
                state.lane_of.insert(step.clone(), id);
            }
            (
                Event::WaitStarted {
                    label,
                    remaining_ms,
                    ..
                },
                _,
            ) => {
                lane.detail = Some(Detail::Wait {
                    label: super::text::escape(label),
                    remaining_ms: *remaining_ms,
                })
            }
            (_, Shown::Start { label, .. }) => lane.detail = Some(Detail::Text(label)),
            (
                _,
                Shown::Progress {
                    message,
                    remaining_ms,
                    ..
                },
            ) => match (&mut lane.detail, message, remaining_ms) {
                (_, Some(message), _) => lane.detail = Some(Detail::Text(message)),
                (Some(Detail::Wait { remaining_ms, .. }), None, Some(left)) => *remaining_ms = left,
                _ => {}
            },
            (
                Event::StepCompleted { step, .. }
                | Event::StepFailed { step, .. }
                | Event::StepInterrupted { step, .. },
                Shown::Lines { lines, .. },
            ) => {
                if let Some(at) = lane.stack.iter().rposition(|(name, _)| name == step) {
                    lane.stack.remove(at);
                }
                state.lane_of.remove(step);
                lane.detail = None;
                lane.held.extend(lines);
            }
            (Event::GuardFinished { .. } | Event::WaitEnded { .. }, Shown::Lines { lines, .. }) => {
                lane.detail = None;
                lane.held.extend(lines);
            }
            (_, Shown::Lines { lines, .. }) => lane.held.extend(lines),
        }
        let lane = state.lanes.entry(id).or_default();
        if lane.stack.is_empty() {
            // The branch's outermost step ended: its block, then no live line.
            if let Some(live) = lane.live.take() {
                self.clear(live);
            }
            for line in std::mem::take(&mut lane.held) {
                self.println(&line);
            }
            state.lanes.remove(&id);
            return;
        }
        let label = lane_label(lane);
        match &lane.live {
            Some(live) => live.set_label(label),
            None => {
                lane.live = Some(live(
                    &self.multi,
                    lane.depth,
                    Text {
                        label,
                        countdown: None,
                    },
                ))
            }
        }
    }

    fn outside_lanes(&self, state: &mut State, shown: Shown) {
        match shown {
            Shown::Start {
                key,
                depth,
                label,
                countdown,
                ..
            } => {
                let bar = live(&self.multi, depth, Text { label, countdown });
                if let Some(old) = state.bars.insert(key, bar) {
                    self.clear(old);
                }
            }
            Shown::Progress {
                key,
                message,
                remaining_ms,
            } => {
                if let Some(live) = state.bars.get(&key) {
                    let mut text = live.text();
                    if let Some(message) = message {
                        text.label = message;
                    }
                    if let (Some(left), Some((_, remaining))) = (remaining_ms, &mut text.countdown)
                    {
                        *remaining = left;
                    }
                }
            }
            Shown::Lines { key, lines } => {
                if let Some(key) = key {
                    // A step's end also ends its guards and waits, should
                    // their own end never come (a failure inside them).
                    let inner = key
                        .strip_prefix("step:")
                        .map(|step| (format!("guard:{step}:"), format!("wait:{step}:")));
                    let ended: Vec<String> = state
                        .bars
                        .keys()
                        .filter(|k| {
                            **k == key
                                || inner
                                    .as_ref()
                                    .is_some_and(|(g, w)| k.starts_with(g) || k.starts_with(w))
                        })
                        .cloned()
                        .collect();
                    for k in ended {
                        if let Some(live) = state.bars.remove(&k) {
                            self.clear(live);
                        }
                    }
                }
                for line in lines {
                    self.println(&line);
                }
            }
        }
    }
}

/// `bridge app3 › cutover app3 · guard …: 120 requests, 0 failures`: the
/// branch's outermost step (its item), the current one, and what it does.
fn lane_label(lane: &Lane) -> String {
    let labels: Vec<&str> = lane.stack.iter().map(|(_, label)| label.as_str()).collect();
    let mut label = match labels.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, last] => format!("{first} › {last}"),
        [first, .., last] => format!("{first} › … › {last}"),
    };
    match &lane.detail {
        Some(Detail::Text(text)) => label.push_str(&format!(" · {text}")),
        Some(Detail::Wait {
            label: wait,
            remaining_ms,
        }) => label.push_str(&format!(
            " · ⏳ {wait}: {} left",
            format_duration(*remaining_ms)
        )),
        None => {}
    }
    label
}

/// The step an event is about or happens in.
fn step_of(event: &Event) -> Option<&str> {
    match event {
        Event::StepStarted { step, .. }
        | Event::StepReplayed { step, .. }
        | Event::StepCompleted { step, .. }
        | Event::StepFailed { step, .. }
        | Event::StepInterrupted { step, .. } => Some(step),
        Event::Output { step, .. }
        | Event::WaitStarted { step, .. }
        | Event::WaitProgress { step, .. }
        | Event::WaitEnded { step, .. }
        | Event::GuardStarted { step, .. }
        | Event::GuardProgress { step, .. }
        | Event::GuardFinished { step, .. } => step.as_deref(),
        _ => None,
    }
}

impl EventSink for ProgressSink {
    fn emit(&self, run: &str, event: &Event) {
        let Some(shown) = show(run, event, self.verbose) else {
            return;
        };
        let mut state = self.state();
        match self.lane_for(&state, event) {
            Some(id) => self.in_lane(&mut state, id, event, shown),
            None => self.outside_lanes(&mut state, shown),
        }
    }

    /// The run ended: every live line goes, and what branches held is printed.
    fn finish(&self) {
        let mut state = self.state();
        for (_, live) in state.bars.drain() {
            live.bar.finish_and_clear();
            self.multi.remove(&live.bar);
        }
        let lanes: Vec<Lane> = state.lanes.drain().map(|(_, lane)| lane).collect();
        state.lane_of.clear();
        for mut lane in lanes {
            if let Some(live) = lane.live.take() {
                self.clear(live);
            }
            for line in lane.held {
                self.println(&line);
            }
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_line_never_exceeds_its_room() {
        let long = Text {
            label: "cut over app1 with a step name long enough to be cut ".repeat(4),
            countdown: None,
        };
        let wait = Text {
            countdown: Some((60_000, 12_000)),
            ..long.clone()
        };
        for room in 0..200 {
            for text in [&long, &wait] {
                let line = render(text, Duration::from_secs(75), room);
                assert!(width(&line) <= room.max(1), "{room}: {line}");
            }
        }
        let line = render(&wait, Duration::ZERO, 120);
        assert!(line.contains('…') && line.contains("12.0s left"), "{line}");
    }

    #[test]
    fn a_lane_shows_its_outermost_and_current_step() {
        let mut lane = Lane::default();
        for name in ["move app3", "prepare app3", "cut over app3"] {
            lane.stack.push((name.into(), name.into()));
        }
        lane.detail = Some(Detail::Text(
            "guard http://x: 3 requests, 0 failures".into(),
        ));
        assert_eq!(
            lane_label(&lane),
            "move app3 › … › cut over app3 · guard http://x: 3 requests, 0 failures"
        );
        lane.stack.truncate(1);
        lane.detail = Some(Detail::Wait {
            label: "sleep 2s".into(),
            remaining_ms: 1_500,
        });
        assert_eq!(lane_label(&lane), "move app3 · ⏳ sleep 2s: 1.5s left");
    }
}
