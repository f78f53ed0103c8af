//! Waits that show a countdown: `wait_visible` (polling until a record
//! answers what the script wants) and the poll of a pending Cloud DNS
//! change. Both show an [`engine::Countdown`](crate::engine::Countdown),
//! whose drop ends the bar, whichever way the wait ends.

use super::args::{known_keys, nameserver, opt_seconds, record_map, rtype, values};
use super::retry::{Stop, block, pause, retrying};
use super::{Res, Zone};
use crate::engine::{Countdown, Session};
use crate::events::format_duration;
use crate::ports::dns::{DnsError, DnsErrorKind, RecordSet};
use rhai::{Dynamic, Map, Position};
use std::time::Duration;

/// A countdown that sleeps between looks at the DNS.
struct Wait<'s> {
    session: &'s Session,
    countdown: Countdown,
}

impl<'s> Wait<'s> {
    fn start(session: &'s Session, label: String, total: Duration) -> Self {
        Wait {
            session,
            countdown: Countdown::start(&session.events, label, total),
        }
    }

    /// Sleeps up to `interval` (never past the deadline); false once the
    /// deadline has passed.
    fn tick(&self, interval: Duration) -> Result<bool, Stop> {
        let left = self.countdown.remaining_ms();
        if left == 0 {
            return Ok(false);
        }
        pause(self.session, interval.min(Duration::from_millis(left)))?;
        self.countdown.progress();
        Ok(true)
    }
}

/// What a look cut short by the wait's deadline reports.
const DEADLINE: &str = "no answer before the wait's deadline";

/// `fut`, or a transient error once `left` has passed.
async fn within<T>(
    left: Duration,
    fut: impl std::future::Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    tokio::time::timeout(left, fut)
        .await
        .unwrap_or_else(|_| Err(DnsError::new(DnsErrorKind::Transient, DEADLINE)))
}

const CHANGE_TIMEOUT: Duration = Duration::from_secs(600);

/// Polls a Cloud DNS change until its status is `done`.
pub(super) fn wait_change(session: &Session, zone: &Zone, id: &str) -> Result<(), Stop> {
    let wait = Wait::start(
        session,
        format!("{} change {id} done", zone.port().label()),
        CHANGE_TIMEOUT,
    );
    let mut interval = Duration::from_millis(100);
    loop {
        if retrying(session, || zone.port().change_done(id))? {
            return Ok(());
        }
        if !wait.tick(interval)? {
            return Err(Stop::Dns(DnsError::new(
                DnsErrorKind::Timeout,
                format!(
                    "change {id} was still pending after {}",
                    format_duration(CHANGE_TIMEOUT.as_millis() as u64)
                ),
            )));
        }
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}

pub(super) fn wait_visible(
    session: &Session,
    zone: &Zone,
    name: &str,
    t: &str,
    wanted: Dynamic,
    options: &Map,
    pos: Position,
) -> Res<Map> {
    known_keys(
        options,
        "zone.wait_visible",
        &["nameserver", "timeout", "interval"],
        pos,
    )?;
    let name = zone.name(name, pos)?;
    let t = rtype(t, pos)?;
    let wanted = values(&t, wanted, pos)?;
    let timeout = opt_seconds(options, "timeout", pos)?.unwrap_or(Duration::from_secs(120));
    let interval = opt_seconds(options, "interval", pos)?
        .unwrap_or(Duration::from_millis(500))
        .max(Duration::from_millis(50));
    let record = format!("{} {t}", super::mutate::shown(&name));
    // An explicit nameserver may be a resolver (recursive query); otherwise
    // ask the zone's authoritative server, or the provider's API.
    let given = nameserver(options, pos)?;
    let server = given.or(zone.port().authoritative());
    let place = server.map_or_else(|| zone.port().label().to_owned(), |s| s.to_string());
    if let Some(plan) = &session.plan {
        // The plan's own view (planned records included) says whether it
        // would be there once the changes before it are made.
        let planned = block(session, zone.port().get(&name, &t))
            .map_err(|stop| zone.error("wait_visible", &record, stop, pos))?;
        let values = planned.as_ref().map_or(Vec::new(), |r| r.values.clone());
        plan.note(crate::plan::Entry::Wait {
            what: format!(
                "{record} = {wanted:?} visible at {place} (within {})",
                format_duration(timeout.as_millis() as u64)
            ),
            now: (values != wanted).then(|| format!("the plan's records hold {values:?}")),
        });
        let set = planned.unwrap_or_else(|| RecordSet::new(&name, &t, 0, wanted.clone()));
        return Ok(record_map(&set));
    }
    let wait = Wait::start(session, format!("{record} visible at {place}"), timeout);
    let fail = |stop| zone.error("wait_visible", &record, stop, pos);
    // What the server last answered; a look cut short by the deadline
    // keeps the answer before it (it says nothing new about the record).
    let mut last: Option<String> = None;
    loop {
        // Each look gets only the time left: a server that does not answer
        // would otherwise hold the wait a whole request timeout past its
        // deadline.
        let left = Duration::from_millis(wait.countdown.remaining_ms().max(1));
        let observed = match server {
            Some(server) => block(
                session,
                within(
                    left,
                    zone.0.lookup.query(server, &name, &t, given.is_some()),
                ),
            )
            .map(|a| (a.records, a.rcode)),
            None => block(session, within(left, zone.port().get(&name, &t)))
                .map(|r| (r, "API".to_owned())),
        };
        match observed {
            Ok((records, rcode)) => {
                let seen = records.as_ref().map_or(Vec::new(), |r| r.values.clone());
                if seen == wanted {
                    drop(wait);
                    let set = records.unwrap_or_else(|| RecordSet::new(&name, &t, 0, vec![]));
                    return Ok(record_map(&set));
                }
                last = Some(if seen.is_empty() {
                    format!("no {t} records ({rcode})")
                } else {
                    format!("{seen:?}")
                });
            }
            Err(Stop::Dns(e)) if e.kind == DnsErrorKind::Transient => {
                if last.is_none() || e.message != DEADLINE {
                    last = Some(format!("error: {}", e.message));
                }
            }
            Err(stop) => return Err(fail(stop)),
        }
        if !wait.tick(interval).map_err(fail)? {
            drop(wait);
            let mut e = DnsError::new(
                DnsErrorKind::Transient,
                format!(
                    "not visible at {place} after {}: wanted {wanted:?}, last answer: {}",
                    format_duration(timeout.as_millis() as u64),
                    last.as_deref().unwrap_or("none")
                ),
            );
            e.kind = DnsErrorKind::Timeout;
            return Err(fail(Stop::Dns(e)));
        }
    }
}
