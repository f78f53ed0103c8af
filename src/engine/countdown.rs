//! A wait the user sees as a countdown under the running step: started
//! with its total, told what remains as it goes, and ended when dropped, so
//! a progress bar never outlives its wait whichever way the wait ends (done,
//! timed out, failed, Ctrl-C). Every wait of every primitive goes through it.

use super::frames;
use crate::events::{Event, Events};
use crate::journal::now_ms;
use std::time::Duration;

pub struct Countdown {
    events: Events,
    step: Option<String>,
    label: String,
    deadline_ms: i64,
}

impl Countdown {
    /// Announces a wait of `total` ending at `deadline_ms` (a resumed timer
    /// may have less than its total left).
    pub fn until(
        events: &Events,
        label: impl Into<String>,
        total: Duration,
        deadline_ms: i64,
    ) -> Self {
        let label = label.into();
        let step = frames::current();
        let countdown = Countdown {
            events: events.clone(),
            step: step.clone(),
            label: label.clone(),
            deadline_ms,
        };
        events.emit(Event::WaitStarted {
            step,
            depth: frames::depth(),
            label,
            total_ms: total.as_millis() as u64,
            remaining_ms: countdown.remaining_ms(),
        });
        countdown
    }

    /// Announces a wait of `total` from now.
    pub fn start(events: &Events, label: impl Into<String>, total: Duration) -> Self {
        let deadline = now_ms() + total.as_millis() as i64;
        Self::until(events, label, total, deadline)
    }

    /// What is left until the deadline.
    pub fn remaining_ms(&self) -> u64 {
        (self.deadline_ms - now_ms()).max(0) as u64
    }

    /// Shows what is left now.
    pub fn progress(&self) {
        self.events.emit(Event::WaitProgress {
            step: self.step.clone(),
            label: self.label.clone(),
            remaining_ms: self.remaining_ms(),
        });
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        self.events.emit(Event::WaitEnded {
            step: self.step.clone(),
            label: self.label.clone(),
        });
    }
}
