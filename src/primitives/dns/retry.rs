//! Waiting on the port's futures from the script's thread: every call blocks
//! through the session so that Ctrl-C stops it ([`Stop::Cancelled`]), and
//! transient errors (timeouts, connection failures, 429, 5xx, SERVFAIL) are
//! retried here with backoff, once for both providers; the Cloud DNS
//! client's own retries are off so that nothing retries twice.

use crate::engine::Session;
use crate::ports::dns::{DnsError, DnsErrorKind, DnsFuture};
use std::time::Duration;

/// Why a DNS call stopped.
pub(super) enum Stop {
    Cancelled,
    Dns(DnsError),
}

/// Attempts for a transient error, and for re-planning after conflicts.
pub(super) const ATTEMPTS: u32 = 4;
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(200);

pub(super) fn block<T>(
    session: &Session,
    fut: impl std::future::Future<Output = Result<T, DnsError>>,
) -> Result<T, Stop> {
    session
        .block_on(fut)
        .ok_or(Stop::Cancelled)?
        .map_err(Stop::Dns)
}

pub(super) fn pause(session: &Session, duration: Duration) -> Result<(), Stop> {
    block(session, async {
        tokio::time::sleep(duration).await;
        Ok(())
    })
}

/// Runs `op`, retrying transient errors with exponential backoff.
pub(super) fn retrying<'a, T>(
    session: &Session,
    op: impl Fn() -> DnsFuture<'a, T>,
) -> Result<T, Stop> {
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match block(session, op()) {
            Err(Stop::Dns(e)) if e.kind == DnsErrorKind::Transient && attempt < ATTEMPTS => {
                pause(session, delay)?;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
