//! `resolve`: a real DNS query, as a client in the world would see the
//! record, through the system's resolver or a given nameserver. Unlike
//! `get` it never asks the provider's API, so it sees caches and
//! propagation delays.

use super::args::{known_keys, nameserver, record_map, rtype};
use super::retry::{Stop, retrying};
use super::{Res, Zone};
use crate::engine::Session;
use rhai::{Dynamic, Map, Position};

pub(super) fn resolve(
    session: &Session,
    zone: &Zone,
    name: &str,
    t: &str,
    options: &Map,
    pos: Position,
) -> Res<Dynamic> {
    known_keys(options, "zone.resolve", &["nameserver"], pos)?;
    let name = zone.name(name, pos)?;
    let t = rtype(t, pos)?;
    let record = format!("{} {t}", super::mutate::shown(&name));
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
