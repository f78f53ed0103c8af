//! `upsert` and `delete`: read the record and its ownership record, plan the
//! change (`ownership.rs`), apply it, and plan again from a fresh read when
//! the zone changed in between, so that two runs sharing a zone never
//! overwrite each other blindly. Under `ferry plan` the zone is an overlay
//! (`crate::plan::zone`) that keeps the change instead of sending it.
//!
//! Servers do not always do what they answer NOERROR to: BIND drops a CNAME
//! added next to other data (and other data next to a CNAME), PowerDNS
//! keeps the apex NS records whatever an UPDATE deletes. So a CNAME
//! conflict is refused before anything is sent, and after every change an
//! RFC 2136 server accepted the record set is read back: if it is not what was written the
//! ownership record is put back as it was (it must never claim a record
//! that ferry did not write) and the error says the server did not apply it.

use super::args::{known_keys, opt_bool, record_map, rtype, values};
use super::ownership::{self, is_reserved, owner_name, plan_delete, plan_upsert};
use super::retry::{ATTEMPTS, FIRST_BACKOFF, Stop, block, pause, retrying};
use super::wait::wait_change;
use super::{Res, Zone};
use crate::engine::Session;
use crate::engine::control::{host_error, runtime_error};
use crate::ports::dns::{Applied, DnsError, DnsErrorKind, RecordSet};
use crate::primitives::require_step;
use rhai::{Dynamic, INT, Map, NativeCallContext, Position};

/// Applies the plan `plan(current, ownership)` until the zone holds what it
/// wants (`want`: the record set, or none): reads again after a conflict
/// (someone changed the zone since the read) and after transient errors, at
/// most [`ATTEMPTS`] times.
#[allow(clippy::too_many_arguments)]
fn converge(
    session: &Session,
    zone: &Zone,
    name: &str,
    rtype: &str,
    want: Option<&RecordSet>,
    plan: impl Fn(
        Option<&RecordSet>,
        Option<&RecordSet>,
    ) -> Result<crate::ports::dns::Change, ownership::Refusal>,
    op: &str,
    pos: Position,
) -> Res<bool> {
    let record = format!("{} {rtype}", shown(name));
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
        match block(session, zone.port().apply(&change)) {
            Ok(Applied::Done) => {
                if zone.port().reads_back() {
                    verify(session, zone, name, rtype, want, owner.as_ref()).map_err(fail)?;
                }
                return Ok(true);
            }
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
    e.message = match e.rcode.as_deref() {
        // The same refusal every time is the server's answer, not a race.
        Some(rcode @ ("SERVFAIL" | "FORMERR" | "NOTIMP")) => format!(
            "the server answered {rcode} to each of {ATTEMPTS} attempts: it cannot apply this change, \
             and nothing of it was applied (a record set larger than it accepts: BIND 9.18.28 and later \
             refuse more than max-records-per-type, 100 by default, records of one type at a name; or a \
             value it rejects: its log says which): {}",
            e.message
        ),
        _ => format!(
            "gave up after {ATTEMPTS} attempts while the zone kept changing or failing; last: {}",
            e.message
        ),
    };
    Err(fail(Stop::Dns(e)))
}

/// `name` as the script wrote it: punycode labels shown in Unicode.
pub(super) fn shown(name: &str) -> String {
    if !name.contains("xn--") {
        return name.to_owned();
    }
    let (unicode, result) = idna::domain_to_unicode(name);
    if result.is_ok() {
        unicode
    } else {
        name.to_owned()
    }
}

/// Reads `name`/`rtype` back after a change the server accepted; if it is
/// not `want`, restores the ownership record read before the change (`before`)
/// and fails saying the server did not apply the change.
fn verify(
    session: &Session,
    zone: &Zone,
    name: &str,
    rtype: &str,
    want: Option<&RecordSet>,
    before: Option<&RecordSet>,
) -> Result<(), Stop> {
    let now = retrying(session, || zone.port().get(name, rtype))?;
    let applied = match (want, &now) {
        (None, None) => true,
        (Some(want), Some(now)) => want.values == now.values && want.ttl == now.ttl,
        _ => false,
    };
    if applied {
        return Ok(());
    }
    let oname = owner_name(name, rtype);
    let owner_now = retrying(session, || zone.port().get(&oname, "TXT"))?;
    let mut restore = crate::ports::dns::Change::default();
    if owner_now.as_ref() != before {
        restore.deletions.extend(owner_now);
        restore.additions.extend(before.cloned());
    }
    let restored = if restore.is_empty() {
        String::new()
    } else {
        match block(session, zone.port().apply(&restore)) {
            Ok(_) => format!("; its ownership record {oname} TXT was put back as it was"),
            Err(Stop::Dns(e)) => format!(
                "; putting its ownership record {oname} TXT back failed too: {}",
                e.message
            ),
            Err(stop) => return Err(stop),
        }
    };
    let seen = now.map_or_else(
        || "no records".to_owned(),
        |r| format!("{:?} (ttl {})", r.values, r.ttl),
    );
    let wanted = want.map_or_else(
        || "no records".to_owned(),
        |r| format!("{:?} (ttl {})", r.values, r.ttl),
    );
    let why = if rtype == "NS" && name == zone.port().origin() {
        "PowerDNS, for one, ignores UPDATEs to the apex NS records; change them in the server's own configuration or database"
    } else if rtype == "CNAME" {
        "BIND, for one, ignores a CNAME next to other data at the same name"
    } else {
        "the server accepted the UPDATE (NOERROR) but kept the record set as it was"
    };
    Err(Stop::Dns(DnsError::invalid(format!(
        "the server did not apply the change: it answered NOERROR but {name} {rtype} reads back as {seen}, not {wanted} ({why}){restored}"
    ))))
}

/// Refuses a CNAME next to other data, and other data next to a CNAME
/// (RFC 1034 3.6.2), before a server drops it without saying so.
fn check_cname(session: &Session, zone: &Zone, name: &str, rtype: &str) -> Result<(), Stop> {
    let types = retrying(session, || zone.port().types_at(name))?;
    let others: Vec<&String> = types.iter().filter(|t| *t != "CNAME").collect();
    let conflict = if rtype == "CNAME" && !others.is_empty() {
        let list: Vec<&str> = others.iter().map(|t| t.as_str()).collect();
        format!(
            "it holds {} records, and a CNAME cannot sit next to other data (RFC 1034); delete them first",
            list.join(", ")
        )
    } else if rtype != "CNAME" && types.iter().any(|t| t == "CNAME") {
        format!(
            "it is a CNAME, and no {rtype} record can sit next to one (RFC 1034); delete the CNAME first"
        )
    } else {
        return Ok(());
    };
    Err(Stop::Dns(DnsError::invalid(format!(
        "refusing to write {rtype} at `{}`: {conflict}",
        shown(name)
    ))))
}

pub(super) fn upsert(
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
    check_cname(session, zone, &name, &t)
        .map_err(|stop| zone.error("upsert", &format!("{} {t}", shown(&name)), stop, pos))?;
    let changed = converge(
        session,
        zone,
        &name,
        &t,
        Some(&desired),
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
    known_keys(options, &format!("zone.{verb}"), &["force"], pos)?;
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

pub(super) fn delete(
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
        None,
        |current, owner| plan_delete(current, owner, me, force),
        "delete",
        pos,
    )
}
