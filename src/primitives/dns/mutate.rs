//! `upsert` and `delete`: read the record and its ownership record, plan the
//! change (`ownership.rs`), apply it, and plan again from a fresh read when
//! the zone changed in between, so that two runs sharing a zone never
//! overwrite each other blindly. A dry run stops after the plan and says
//! what it would have changed.

use super::args::{known_keys, opt_bool, record_map, rtype, values};
use super::ownership::{self, is_reserved, owner_name, plan_delete, plan_upsert};
use super::retry::{ATTEMPTS, FIRST_BACKOFF, Stop, block, pause, retrying};
use super::wait::wait_change;
use super::{Res, Zone};
use crate::engine::control::{host_error, runtime_error};
use crate::engine::{Session, frames};
use crate::events::Event;
use crate::ports::dns::{Applied, DnsError, DnsErrorKind, RecordSet};
use crate::primitives::require_step;
use rhai::{Dynamic, INT, Map, NativeCallContext, Position};

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
        |current, owner| plan_delete(current, owner, me, force),
        "delete",
        pos,
    )
}
