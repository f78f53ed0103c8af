//! `dns(spec)`: a DNS zone, and its methods `get`, `list`, `resolve`,
//! `upsert`, `delete` and `wait_visible`.
//!
//! ```rhai
//! let zone = dns(#{ provider: "clouddns", project: "p", zone: "mycompany-internal" });
//! step("old record", || zone.upsert("old", "A", ["192.168.100.16"], 60));
//! zone.wait_visible("old", "A", ["192.168.100.16"]);
//! ```
//!
//! Everything provider-specific sits behind the `DnsZone` port
//! (`adapters::clouddns`, `adapters::rfc2136`). Here, once for both:
//! names relative to the zone, ownership records (`dns/ownership.rs`),
//! idempotent plans re-read after a conflict, retries of transient errors
//! with backoff, Ctrl-C, waits with progress, and errors that name the zone,
//! the record and the server's message. Secrets are read by the adapters
//! from the environment or a file; the spec is never journaled.

mod ownership;

use super::require_step;
use crate::adapters::clouddns::{CloudDnsSpec, CloudDnsZone};
use crate::adapters::dns_wire::{WireLookup, parse_server};
use crate::adapters::rfc2136::Rfc2136Zone;
use crate::adapters::tsig::{SecretSource, TsigKey};
use crate::engine::signal::{Signal, host_error, runtime_error};
use crate::engine::{Session, frames};
use crate::events::{Event, format_duration};
use crate::journal::now_ms;
use crate::ports::dns::{
    Applied, DnsError, DnsErrorKind, DnsFuture, DnsZone, Lookup, RecordSet, absolute_name,
    canonical_value, record_type,
};
use ownership::{is_reserved, owner_name, plan_delete, plan_upsert, valid_owner};
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FLOAT, FuncRegistration, INT, Map, NativeCallContext,
    Position,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The `DnsZone` value scripts hold.
#[derive(Clone)]
pub struct Zone(Arc<ZoneInner>);

struct ZoneInner {
    port: Arc<dyn DnsZone>,
    lookup: Arc<dyn Lookup>,
    /// Written into ownership records: the run id or the spec's `owner`.
    owner: String,
}

/// Why a DNS call stopped.
enum Stop {
    Cancelled,
    Dns(DnsError),
}

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Attempts for a transient error, and for re-planning after conflicts.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

fn block<T>(
    session: &Session,
    fut: impl std::future::Future<Output = Result<T, DnsError>>,
) -> Result<T, Stop> {
    session
        .block_on(fut)
        .ok_or(Stop::Cancelled)?
        .map_err(Stop::Dns)
}

fn pause(session: &Session, duration: Duration) -> Result<(), Stop> {
    block(session, async {
        tokio::time::sleep(duration).await;
        Ok(())
    })
}

/// Runs `op`, retrying transient errors with exponential backoff.
fn retrying<'a, T>(session: &Session, op: impl Fn() -> DnsFuture<'a, T>) -> Result<T, Stop> {
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

impl Zone {
    fn port(&self) -> &dyn DnsZone {
        &*self.0.port
    }

    /// A failure as a catchable map naming zone, record and server message.
    fn error(&self, op: &str, record: &str, stop: Stop, pos: Position) -> Box<EvalAltResult> {
        match stop {
            Stop::Cancelled => Signal::Cancelled.raise(pos),
            Stop::Dns(e) => {
                let mut details = Map::new();
                details.insert("zone".into(), self.port().label().to_owned().into());
                details.insert("record".into(), record.to_owned().into());
                details.insert("kind".into(), e.kind_name().into());
                if let Some(status) = e.status {
                    details.insert("status".into(), Dynamic::from(status as INT));
                }
                if let Some(rcode) = &e.rcode {
                    details.insert("rcode".into(), rcode.clone().into());
                }
                host_error(
                    "dns",
                    format!("{}: {op} `{record}`: {}", self.port().label(), e.message),
                    details,
                    pos,
                )
            }
        }
    }

    fn name(&self, name: &str, pos: Position) -> Res<String> {
        absolute_name(name, self.port().origin())
            .map_err(|e| runtime_error(format!("{}: {e}", self.port().label()), pos))
    }
}

fn rtype(rtype: &str, pos: Position) -> Res<String> {
    record_type(rtype)
        .map(|t| t.to_string())
        .map_err(|e| runtime_error(e, pos))
}

fn values(rtype: &str, values: Dynamic, pos: Position) -> Res<Vec<String>> {
    let t = record_type(rtype).map_err(|e| runtime_error(e, pos))?;
    let items: Vec<Dynamic> = if values.is_array() {
        values.cast::<Array>()
    } else if values.is_string() {
        vec![values]
    } else {
        return Err(runtime_error(
            format!(
                "record values must be a string or an array of strings, got {}",
                values.type_name()
            ),
            pos,
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.clone().into_string().ok() else {
            return Err(runtime_error(
                format!("record values must be strings, got {}", item.type_name()),
                pos,
            ));
        };
        out.push(canonical_value(t, &text).map_err(|e| runtime_error(e, pos))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn record_map(set: &RecordSet) -> Map {
    let mut map = Map::new();
    map.insert("name".into(), set.name.clone().into());
    map.insert("type".into(), set.rtype.clone().into());
    map.insert("ttl".into(), Dynamic::from(set.ttl as INT));
    map.insert(
        "values".into(),
        Dynamic::from_array(set.values.iter().cloned().map(Dynamic::from).collect()),
    );
    map
}

fn opt_str(map: &Map, key: &str, pos: Position) -> Res<Option<String>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .into_string()
            .map(Some)
            .map_err(|t| runtime_error(format!("`{key}` must be a string, got {t}"), pos)),
    }
}

fn opt_seconds(map: &Map, key: &str, pos: Position) -> Res<Option<Duration>> {
    let Some(v) = map.get(key).filter(|v| !v.is_unit()) else {
        return Ok(None);
    };
    let secs = if let Some(i) = v.clone().try_cast::<INT>() {
        i as f64
    } else if let Some(f) = v.clone().try_cast::<FLOAT>() {
        f
    } else {
        return Err(runtime_error(
            format!("`{key}` must be a number of seconds, got {}", v.type_name()),
            pos,
        ));
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(runtime_error(
            format!("`{key}` must be 0 to 86400 seconds, got {secs}"),
            pos,
        ));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

fn opt_bool(map: &Map, key: &str, pos: Position) -> Res<bool> {
    match map.get(key) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .map_err(|t| runtime_error(format!("`{key}` must be true or false, got {t}"), pos)),
    }
}

/// Refuses option keys a call does not know (typos would otherwise be ignored).
fn known_keys(map: &Map, what: &str, allowed: &[&str], pos: Position) -> Res<()> {
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(runtime_error(
            format!(
                "{what}: unknown option `{key}` (known: {})",
                allowed.join(", ")
            ),
            pos,
        ));
    }
    Ok(())
}

const COMMON_KEYS: &[&str] = &["provider", "zone", "owner", "timeout"];
const CLOUDDNS_KEYS: &[&str] = &["project", "endpoint", "credentials"];
const RFC2136_KEYS: &[&str] = &[
    "server",
    "tsig_name",
    "tsig_secret_env",
    "tsig_secret_file",
    "tsig_algorithm",
];

/// `dns(spec)`: opens the zone. Reads only; runs again on every resume.
fn open(session: &Session, spec: &Map, pos: Position) -> Res<Zone> {
    for secret in ["tsig_secret", "secret", "tsig_key", "password", "token"] {
        if spec.contains_key(secret) {
            return Err(runtime_error(
                format!(
                    "dns spec: `{secret}` is not accepted: secrets are never read from the script; \
                     name an environment variable (tsig_secret_env) or a file (tsig_secret_file)"
                ),
                pos,
            ));
        }
    }
    let provider = opt_str(spec, "provider", pos)?.ok_or_else(|| {
        runtime_error(
            "dns spec needs `provider`: \"clouddns\" or \"rfc2136\"",
            pos,
        )
    })?;
    let zone = opt_str(spec, "zone", pos)?
        .filter(|z| !z.trim().is_empty())
        .ok_or_else(|| runtime_error("dns spec needs `zone`", pos))?;
    let owner = match opt_str(spec, "owner", pos)? {
        Some(owner) if valid_owner(&owner) => owner,
        Some(owner) => {
            return Err(runtime_error(
                format!("dns spec: owner `{owner}` may only hold letters, digits and . _ - : @"),
                pos,
            ));
        }
        None => session.run_id.clone(),
    };
    let timeout = opt_seconds(spec, "timeout", pos)?.unwrap_or(Duration::from_secs(5));
    let lookup: Arc<dyn Lookup> = Arc::new(WireLookup { timeout });
    let port: Arc<dyn DnsZone> = match provider.as_str() {
        "clouddns" => {
            let allowed: Vec<&str> = COMMON_KEYS.iter().chain(CLOUDDNS_KEYS).copied().collect();
            known_keys(spec, "dns spec (clouddns)", &allowed, pos)?;
            let project = opt_str(spec, "project", pos)?
                .ok_or_else(|| runtime_error("dns spec (clouddns) needs `project`", pos))?;
            let anonymous = match opt_str(spec, "credentials", pos)?.as_deref() {
                None | Some("adc") => false,
                Some("anonymous") => true,
                Some(other) => {
                    return Err(runtime_error(
                        format!(
                            "dns spec (clouddns): credentials `{other}` is unknown: \"adc\" (default) or \"anonymous\""
                        ),
                        pos,
                    ));
                }
            };
            let cloud = CloudDnsSpec {
                project: project.clone(),
                zone: zone.clone(),
                endpoint: opt_str(spec, "endpoint", pos)?,
                anonymous,
            };
            let opened = retrying(session, || Box::pin(CloudDnsZone::open(cloud.clone())));
            let opened = opened.map_err(|stop| match stop {
                Stop::Cancelled => Signal::Cancelled.raise(pos),
                Stop::Dns(e) => {
                    let mut details = Map::new();
                    details.insert(
                        "zone".into(),
                        format!("Cloud DNS zone {project}/{zone}").into(),
                    );
                    details.insert("kind".into(), e.kind_name().into());
                    if let Some(status) = e.status {
                        details.insert("status".into(), Dynamic::from(status as INT));
                    }
                    host_error(
                        "dns",
                        format!(
                            "Cloud DNS zone {project}/{zone}: cannot open: {}",
                            e.message
                        ),
                        details,
                        pos,
                    )
                }
            })?;
            let identity = opened.identity();
            let origin = opened.origin().to_owned();
            session.check_identity(
                &format!("dns:{origin}"),
                serde_json::json!({ "id": identity }),
                pos,
            )?;
            Arc::new(opened)
        }
        "rfc2136" => {
            let allowed: Vec<&str> = COMMON_KEYS.iter().chain(RFC2136_KEYS).copied().collect();
            known_keys(spec, "dns spec (rfc2136)", &allowed, pos)?;
            let server = opt_str(spec, "server", pos)?.ok_or_else(|| {
                runtime_error("dns spec (rfc2136) needs `server`: \"IP[:PORT]\"", pos)
            })?;
            let server = parse_server(&server, 53)
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            let signer = tsig(spec, pos)?
                .map(|key| key.signer())
                .transpose()
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            let zone = Rfc2136Zone::new(server, &zone, signer, timeout)
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            Arc::new(zone)
        }
        other => {
            return Err(runtime_error(
                format!("dns spec: provider `{other}` is unknown: \"clouddns\" or \"rfc2136\""),
                pos,
            ));
        }
    };
    Ok(Zone(Arc::new(ZoneInner {
        port,
        lookup,
        owner,
    })))
}

fn tsig(spec: &Map, pos: Position) -> Res<Option<TsigKey>> {
    let name = opt_str(spec, "tsig_name", pos)?;
    let env = opt_str(spec, "tsig_secret_env", pos)?;
    let file = opt_str(spec, "tsig_secret_file", pos)?;
    let algorithm =
        opt_str(spec, "tsig_algorithm", pos)?.unwrap_or_else(|| "hmac-sha256".to_owned());
    let secret = match (env, file) {
        (Some(var), None) => Some(SecretSource::Env(var)),
        (None, Some(path)) => Some(SecretSource::File(path.into())),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(runtime_error(
                "dns spec (rfc2136): give tsig_secret_env or tsig_secret_file, not both",
                pos,
            ));
        }
    };
    match (name, secret) {
        (Some(name), Some(secret)) => Ok(Some(TsigKey {
            name,
            algorithm,
            secret,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(runtime_error(
            "dns spec (rfc2136): tsig_name needs tsig_secret_env or tsig_secret_file",
            pos,
        )),
        (None, Some(_)) => Err(runtime_error(
            "dns spec (rfc2136): a TSIG secret needs tsig_name",
            pos,
        )),
    }
}

/// Progress of a wait, shown as a countdown; always ends with `WaitEnded`.
struct Wait<'s> {
    session: &'s Session,
    step: Option<String>,
    label: String,
    deadline: i64,
}

impl<'s> Wait<'s> {
    fn start(session: &'s Session, label: String, total: Duration) -> Self {
        let total_ms = total.as_millis() as u64;
        let step = frames::current();
        session.events.emit(Event::WaitStarted {
            step: step.clone(),
            depth: frames::depth(),
            label: label.clone(),
            total_ms,
            remaining_ms: total_ms,
        });
        Wait {
            session,
            step,
            label,
            deadline: now_ms() + total_ms as i64,
        }
    }

    fn remaining(&self) -> u64 {
        (self.deadline - now_ms()).max(0) as u64
    }

    /// Sleeps up to `interval` (never past the deadline); false once the
    /// deadline has passed.
    fn tick(&self, interval: Duration) -> Result<bool, Stop> {
        let left = self.remaining();
        if left == 0 {
            return Ok(false);
        }
        pause(self.session, interval.min(Duration::from_millis(left)))?;
        self.session.events.emit(Event::WaitProgress {
            step: self.step.clone(),
            label: self.label.clone(),
            remaining_ms: self.remaining(),
        });
        Ok(true)
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        self.session.events.emit(Event::WaitEnded {
            step: self.step.clone(),
            label: self.label.clone(),
        });
    }
}

const CHANGE_TIMEOUT: Duration = Duration::from_secs(600);

/// Polls a Cloud DNS change until its status is `done`.
fn wait_change(session: &Session, zone: &Zone, id: &str) -> Result<(), Stop> {
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

/// Applies the plan `plan(current, ownership)` until the zone holds what it
/// wants: reads again after a conflict (someone changed the zone since the
/// read) and after transient errors, at most [`ATTEMPTS`] times.
fn converge(
    session: &Session,
    zone: &Zone,
    name: &str,
    rtype: &str,
    plan: impl Fn(
        Option<&RecordSet>,
        Option<&RecordSet>,
    ) -> Result<crate::ports::dns::Change, ownership::Refusal>,
    op: &str,
    pos: Position,
) -> Res<bool> {
    let record = format!("{name} {rtype}");
    let oname = owner_name(name, rtype);
    let fail = |stop| zone.error(op, &record, stop, pos);
    let mut delay = FIRST_BACKOFF;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let current = retrying(session, || zone.port().get(name, rtype)).map_err(fail)?;
        let owner = retrying(session, || zone.port().get(&oname, "TXT")).map_err(fail)?;
        let planned = plan(current.as_ref(), owner.as_ref());
        if planned.is_err() {
            // The two reads are not atomic: a concurrent change (another
            // branch deleting the same shared record with its ownership
            // record) between them looks like a foreign record. Refuse only
            // if the record is still what was read.
            let again = retrying(session, || zone.port().get(name, rtype)).map_err(fail)?;
            if again != current {
                continue;
            }
        }
        let change = planned.map_err(|refusal| {
            let mut details = Map::new();
            details.insert("zone".into(), zone.port().label().to_owned().into());
            details.insert("record".into(), record.clone().into());
            details.insert("kind".into(), "not_owner".into());
            details.insert(
                "owner".into(),
                refusal.owner.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            host_error(
                "dns",
                format!("{}: {}", zone.port().label(), refusal.message),
                details,
                pos,
            )
        })?;
        if change.is_empty() {
            return Ok(false);
        }
        if session.settings.dry_run {
            let describe = |sets: &[RecordSet]| {
                sets.iter()
                    .map(|s| format!("{} {:?}", s.key(), s.values))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            session.events.emit(Event::Output {
                step: frames::current(),
                depth: frames::depth(),
                text: format!(
                    "dry run: {}: would delete [{}] and add [{}]",
                    zone.port().label(),
                    describe(&change.deletions),
                    describe(&change.additions)
                ),
                debug: false,
            });
            return Ok(true);
        }
        match block(session, zone.port().apply(&change)) {
            Ok(Applied::Done) => return Ok(true),
            Ok(Applied::Pending { id }) => {
                wait_change(session, zone, &id).map_err(fail)?;
                return Ok(true);
            }
            Err(Stop::Dns(e)) if e.kind == DnsErrorKind::Conflict => last = Some(e),
            Err(Stop::Dns(e)) if e.kind == DnsErrorKind::Transient => {
                last = Some(e);
                pause(session, delay).map_err(fail)?;
                delay *= 2;
            }
            Err(stop) => return Err(fail(stop)),
        }
    }
    let mut e = last.unwrap_or_else(|| DnsError::invalid("no attempt was made"));
    e.message = format!(
        "gave up after {ATTEMPTS} attempts while the zone kept changing or failing; last: {}",
        e.message
    );
    Err(fail(Stop::Dns(e)))
}

fn upsert(
    ctx: &NativeCallContext,
    session: &Session,
    zone: &Zone,
    args: (&str, &str, Dynamic, INT),
    options: &Map,
) -> Res<Map> {
    let pos = ctx.call_position();
    let (name, t, vals, ttl) = args;
    let (name, t, force) = mutation(ctx, zone, "upsert", name, t, options)?;
    let vals = values(&t, vals, pos)?;
    if vals.is_empty() {
        return Err(runtime_error(
            "upsert needs at least one value; use delete to remove a record",
            pos,
        ));
    }
    let ttl = u32::try_from(ttl)
        .ok()
        .filter(|t| *t <= 2_147_483_647)
        .ok_or_else(|| runtime_error(format!("ttl must be 0 to 2147483647, got {ttl}"), pos))?;
    let desired = RecordSet::new(&name, &t, ttl, vals);
    let me = &zone.0.owner;
    let changed = converge(
        session,
        zone,
        &name,
        &t,
        |current, owner| plan_upsert(&desired, current, owner, me, force),
        "upsert",
        pos,
    )?;
    let mut map = record_map(&desired);
    map.insert("changed".into(), changed.into());
    Ok(map)
}

/// What `upsert` and `delete` check before changing anything: inside a step,
/// only the `force` option, a name that is not an ownership record. Returns
/// the absolute name, the type and `force`.
fn mutation(
    ctx: &NativeCallContext,
    zone: &Zone,
    verb: &str,
    name: &str,
    t: &str,
    options: &Map,
) -> Res<(String, String, bool)> {
    let pos = ctx.call_position();
    require_step(ctx, verb)?;
    known_keys(options, verb, &["force"], pos)?;
    let force = opt_bool(options, "force", pos)?;
    let name = zone.name(name, pos)?;
    if is_reserved(&name) {
        return Err(runtime_error(
            format!("`{name}` is reserved for ferry's ownership records"),
            pos,
        ));
    }
    Ok((name, rtype(t, pos)?, force))
}

fn delete(
    ctx: &NativeCallContext,
    session: &Session,
    zone: &Zone,
    name: &str,
    t: &str,
    options: &Map,
) -> Res<bool> {
    let pos = ctx.call_position();
    let (name, t, force) = mutation(ctx, zone, "delete", name, t, options)?;
    let me = &zone.0.owner;
    converge(
        session,
        zone,
        &name,
        &t,
        |current, owner| plan_delete(current, owner, me, force),
        "delete",
        pos,
    )
}

fn nameserver(options: &Map, pos: Position) -> Res<Option<SocketAddr>> {
    opt_str(options, "nameserver", pos)?
        .map(|ns| parse_server(&ns, 53).map_err(|e| runtime_error(e, pos)))
        .transpose()
}

fn resolve(
    session: &Session,
    zone: &Zone,
    name: &str,
    t: &str,
    options: &Map,
    pos: Position,
) -> Res<Dynamic> {
    known_keys(options, "resolve", &["nameserver"], pos)?;
    let name = zone.name(name, pos)?;
    let t = rtype(t, pos)?;
    let record = format!("{name} {t}");
    let server = match nameserver(options, pos)? {
        Some(server) => server,
        None => zone
            .0
            .lookup
            .system_nameserver()
            .map_err(|e| zone.error("resolve", &record, Stop::Dns(e), pos))?,
    };
    let answer = retrying(session, || zone.0.lookup.query(server, &name, &t, true))
        .map_err(|stop| zone.error("resolve", &record, stop, pos))?;
    Ok(answer
        .records
        .map_or(Dynamic::UNIT, |r| Dynamic::from_map(record_map(&r))))
}

fn wait_visible(
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
        "wait_visible",
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
    let record = format!("{name} {t}");
    // An explicit nameserver may be a resolver (recursive query); otherwise
    // ask the zone's authoritative server, or the provider's API.
    let given = nameserver(options, pos)?;
    let server = given.or(zone.port().authoritative());
    let place = server.map_or_else(|| zone.port().label().to_owned(), |s| s.to_string());
    let wait = Wait::start(session, format!("{record} visible at {place}"), timeout);
    let fail = |stop| zone.error("wait_visible", &record, stop, pos);
    let mut last;
    loop {
        let observed = match server {
            Some(server) => block(
                session,
                zone.0.lookup.query(server, &name, &t, given.is_some()),
            )
            .map(|a| (a.records, a.rcode)),
            None => block(session, zone.port().get(&name, &t)).map(|r| (r, "API".to_owned())),
        };
        match observed {
            Ok((records, rcode)) => {
                let seen = records.as_ref().map_or(Vec::new(), |r| r.values.clone());
                if seen == wanted {
                    drop(wait);
                    let set = records.unwrap_or_else(|| RecordSet::new(&name, &t, 0, vec![]));
                    return Ok(record_map(&set));
                }
                last = if seen.is_empty() {
                    format!("no {t} records ({rcode})")
                } else {
                    format!("{seen:?}")
                };
            }
            Err(Stop::Dns(e)) if e.kind == DnsErrorKind::Transient => {
                last = format!("error: {}", e.message);
            }
            Err(stop) => return Err(fail(stop)),
        }
        if !wait.tick(interval).map_err(fail)? {
            drop(wait);
            let mut e = DnsError::new(
                DnsErrorKind::Transient,
                format!(
                    "not visible at {place} after {}: wanted {wanted:?}, last answer: {last}",
                    format_duration(timeout.as_millis() as u64)
                ),
            );
            e.kind = DnsErrorKind::Timeout;
            return Err(fail(Stop::Dns(e)));
        }
    }
}

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    engine.register_type_with_name::<Zone>("DnsZone");
    engine.register_get("origin", |z: &mut Zone| z.port().origin().to_owned());
    engine.register_fn("to_string", |z: &mut Zone| z.port().label().to_owned());
    engine.register_fn("to_debug", |z: &mut Zone| z.port().label().to_owned());

    let s = session.clone();
    FuncRegistration::new("dns")
        .with_params_info(["spec: Map", "DnsZone"])
        .with_comments([
            "/// Opens a DNS zone. Cloud DNS (Application Default Credentials):",
            "/// `#{ provider: \"clouddns\", project, zone, endpoint?, credentials?: \"adc\"|\"anonymous\" }`.",
            "/// RFC 2136 (BIND, Knot, PowerDNS): `#{ provider: \"rfc2136\", server: \"IP[:PORT]\", zone,",
            "/// tsig_name, tsig_secret_env | tsig_secret_file, tsig_algorithm?: \"hmac-sha256\" }`.",
            "/// Both: `owner` (default: the run id) names who owns the records ferry creates;",
            "/// `timeout` (seconds, default 5) bounds each request. Secrets are never read from the script.",
            "///",
            "/// ```rhai",
            "/// let zone = dns(#{ provider: \"rfc2136\", server: \"10.0.0.53\", zone: \"mycompany.internal.\",",
            "///                  tsig_name: \"ferry\", tsig_secret_env: \"FERRY_TSIG_SECRET\" });",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, spec: Map| {
            open(&s, &spec, ctx.call_position())
        });
    let s = session.clone();
    FuncRegistration::new("dns")
        .with_params_info(["name: &str", "DnsZone"])
        .with_comments([
            "/// Opens the zone the environment profile names `name` (`[dns.<name>]` in",
            "/// ferry.toml, `--env FILE`, or the lab's `private` / `clouddns` with `--lab`).",
            "///",
            "/// ```rhai",
            "/// let zone = dns(\"private\");",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, name: &str| {
            let pos = ctx.call_position();
            let spec = s
                .settings
                .environment
                .zone(name)
                .map_err(|e| runtime_error(e, pos))?;
            let spec: Map = spec
                .into_iter()
                .map(|(k, v)| (k.into(), crate::engine::value::from_json(&v)))
                .collect();
            open(&s, &spec, pos)
        });

    let s = session.clone();
    FuncRegistration::new("get")
        .with_params_info(["zone: DnsZone", "name: &str", "type: &str", "Dynamic"])
        .with_comments([
            "/// The record set `name` (relative to the zone or absolute) of `type`:",
            "/// `#{ name, type, ttl, values }`, or `()` if there is none. Allowed anywhere.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str| -> Res<Dynamic> {
                let pos = ctx.call_position();
                let name = zone.name(name, pos)?;
                let t = rtype(t, pos)?;
                let found = retrying(&s, || zone.port().get(&name, &t))
                    .map_err(|stop| zone.error("get", &format!("{name} {t}"), stop, pos))?;
                Ok(found.map_or(Dynamic::UNIT, |r| Dynamic::from_map(record_map(&r))))
            },
        );

    for with_filter in [false, true] {
        let s = session.clone();
        let list = move |ctx: NativeCallContext, zone: &mut Zone, filter: Map| -> Res<Array> {
            let pos = ctx.call_position();
            known_keys(&filter, "list", &["name", "type"], pos)?;
            let name = opt_str(&filter, "name", pos)?
                .map(|n| zone.name(&n, pos))
                .transpose()?;
            let t = opt_str(&filter, "type", pos)?
                .map(|t| rtype(&t, pos))
                .transpose()?;
            if t.is_some() && name.is_none() {
                return Err(runtime_error("list: `type` needs `name` too", pos));
            }
            let what = format!(
                "{} {}",
                name.as_deref().unwrap_or("*"),
                t.as_deref().unwrap_or("*")
            );
            let sets = retrying(&s, || zone.port().list(name.as_deref(), t.as_deref()))
                .map_err(|stop| zone.error("list", &what, stop, pos))?;
            Ok(sets
                .iter()
                .map(|r| Dynamic::from_map(record_map(r)))
                .collect())
        };
        if with_filter {
            FuncRegistration::new("list")
                .with_params_info(["zone: DnsZone", "filter: Map", "Array"])
                .with_comments([
                    "/// Record sets of the zone, optionally only `#{ name, type }` (type needs name).",
                    "/// RFC 2136 lists through a zone transfer (AXFR) the TSIG key must be allowed.",
                ])
                .register_into_engine(engine, list);
        } else {
            FuncRegistration::new("list")
                .with_params_info(["zone: DnsZone", "Array"])
                .with_comments(["/// Every record set of the zone."])
                .register_into_engine(engine, move |ctx: NativeCallContext, zone: &mut Zone| {
                    list(ctx, zone, Map::new())
                });
        }
    }

    let s = session.clone();
    FuncRegistration::new("resolve")
        .with_params_info(["zone: DnsZone", "name: &str", "type: &str", "Dynamic"])
        .with_comments([
            "/// A real DNS query through the system's resolver (/etc/resolv.conf):",
            "/// `#{ name, type, ttl, values }` or `()`.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str| {
                resolve(&s, zone, name, t, &Map::new(), ctx.call_position())
            },
        );
    let s = session.clone();
    FuncRegistration::new("resolve")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "options: Map",
            "Dynamic",
        ])
        .with_comments([
            "/// A real DNS query to `#{ nameserver: \"IP[:PORT]\" }` (recursion desired).",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str, options: Map| {
                resolve(&s, zone, name, t, &options, ctx.call_position())
            },
        );

    let s = session.clone();
    FuncRegistration::new("upsert")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic",
            "ttl: INT",
            "Map",
        ])
        .with_comments([
            "/// Makes `name`/`type` hold exactly `values` (a string or an array) with `ttl`,",
            "/// replacing the record set atomically, with an ownership record. Only inside a",
            "/// step; idempotent. Refuses a record ferry does not own (the error names the",
            "/// owner) unless `#{ force: true }`. Returns `#{ name, type, ttl, values, changed }`.",
            "///",
            "/// ```rhai",
            "/// step(\"old record\", || zone.upsert(\"old\", \"A\", [ip], 60));",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  zone: &mut Zone,
                  name: &str,
                  t: &str,
                  vals: Dynamic,
                  ttl: INT| {
                upsert(&ctx, &s, zone, (name, t, vals, ttl), &Map::new())
            },
        );
    let s = session.clone();
    FuncRegistration::new("upsert")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic",
            "ttl: INT",
            "options: Map",
            "Map",
        ])
        .with_comments([
            "/// `upsert` with `#{ force: true }` to take over a record ferry does not own.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  zone: &mut Zone,
                  name: &str,
                  t: &str,
                  vals: Dynamic,
                  ttl: INT,
                  options: Map| {
                upsert(&ctx, &s, zone, (name, t, vals, ttl), &options)
            },
        );

    let s = session.clone();
    FuncRegistration::new("delete")
        .with_params_info(["zone: DnsZone", "name: &str", "type: &str", "bool"])
        .with_comments([
            "/// Removes `name`/`type` and its ownership record if present; true if it",
            "/// removed a record. Only inside a step; idempotent. Refuses a record ferry",
            "/// does not own unless `#{ force: true }`.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str| {
                delete(&ctx, &s, zone, name, t, &Map::new())
            },
        );
    let s = session.clone();
    FuncRegistration::new("delete")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "options: Map",
            "bool",
        ])
        .with_comments([
            "/// `delete` with `#{ force: true }` to remove a record ferry does not own.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str, options: Map| {
                delete(&ctx, &s, zone, name, t, &options)
            },
        );

    let s = session.clone();
    FuncRegistration::new("wait_visible")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic",
            "Map",
        ])
        .with_comments([
            "/// Polls until `name`/`type` answers exactly `values` (`[]`: until it is gone),",
            "/// asking the zone's authoritative server (RFC 2136) or the Cloud DNS API.",
            "/// Times out after 120 s with the last answer seen.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str, vals: Dynamic| {
                wait_visible(&s, zone, name, t, vals, &Map::new(), ctx.call_position())
            },
        );
    let s = session.clone();
    FuncRegistration::new("wait_visible")
        .with_params_info([
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic",
            "options: Map",
            "Map",
        ])
        .with_comments([
            "/// `wait_visible` with `#{ nameserver: \"IP[:PORT]\", timeout: seconds, interval: seconds }`;",
            "/// a given nameserver may be a resolver (the query asks for recursion).",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  zone: &mut Zone,
                  name: &str,
                  t: &str,
                  vals: Dynamic,
                  options: Map| {
                wait_visible(&s, zone, name, t, vals, &options, ctx.call_position())
            },
        );
}
